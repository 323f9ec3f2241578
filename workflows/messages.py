"""Messages of LoanCollectionWorkflow: its input, signals, updates and query result.

Names of the handlers are constants so the starter, the admin UI and the tests call them without typos.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from activities.contracts import JournalEntry
from domain.arrangements import RepaymentPlan, SettlementOffer, StageHoldState, Waiver
from domain.borrower_plans import PlanBounds

# CloseRequest is defined with the case: servicing's close travels in the case (continue-as-new carries it).
from domain.case import CloseRequest as CloseRequest
from domain.case import CollectionCase, LetterSent, Outcome, StepRecord
from domain.contact_profiles import ContactProfile
from domain.contact_rules import ContactState
from domain.definitions import REF_PATTERN, REGISTRY
from domain.loan import Loan
from domain.promise import PromiseToPay
from domain.strategy import Strategy

WORKFLOW_NAME = "LoanCollectionWorkflow"
TASK_QUEUE = "collections"
PAYMENT_SIGNAL = "payment"
CLOSE_SIGNAL = "close"
PROMISE_UPDATE = "promise_to_pay"
STATUS_QUERY = "status"
# Collectors' holds, preferences and call outcomes (updates with validators).
RAISE_DISPUTE_UPDATE = "raise_dispute"
RESOLVE_DISPUTE_UPDATE = "resolve_dispute"
HARDSHIP_HOLD_UPDATE = "hardship_hold"
BREATHING_SPACE_UPDATE = "breathing_space"
CEASE_CONTACT_UPDATE = "cease_contact"
OPT_OUT_UPDATE = "opt_out"
PREFERRED_HOURS_UPDATE = "set_contact_hours"
STOP_COLLECTION_UPDATE = "stop_collection"
CONTACT_OUTCOME_UPDATE = "record_contact_outcome"
# A provider's receipt: a contact point is unreachable for good (update with validator; the inbound webhooks).
CONTACT_POINT_UNREACHABLE_UPDATE = "contact_point_unreachable"
# A collector claims a call or visit task: the contact rules are asked at that moment (update with validator).
CLAIM_CONTACT_UPDATE = "claim_contact"
CONTACT_NOT_ALLOWED = "ContactNotAllowed"
# Arrangements by collectors and supervisors (updates with validators, `domain.arrangements` requests); each
# returns the loan's CollectionStatus after the change.
REPAYMENT_PLAN_UPDATE = "arrange_repayment_plan"
SETTLEMENT_UPDATE = "approve_settlement"
WAIVE_INTEREST_UPDATE = "waive_interest"
HOLD_STAGE_UPDATE = "hold_stage"
RELEASE_STAGE_HOLD_UPDATE = "release_stage_hold"
ESCALATE_STAGE_UPDATE = "escalate_stage"
RECALL_FROM_AGENCY_UPDATE = "recall_from_agency"
ARRANGEMENT_UPDATES = (
    REPAYMENT_PLAN_UPDATE,
    SETTLEMENT_UPDATE,
    WAIVE_INTEREST_UPDATE,
    HOLD_STAGE_UPDATE,
    RELEASE_STAGE_HOLD_UPDATE,
    ESCALATE_STAGE_UPDATE,
    RECALL_FROM_AGENCY_UPDATE,
)


def workflow_id(loan_id: str) -> str:
    """The loan's collection workflow; every cycle of the loan is a run of this id (see starter.api)."""
    return f"collection-{loan_id}"


def child_workflow_id(parent_id: str, cycle: date, child: str) -> str:
    """Children of a loan's workflow: `collection-{loan_id}/{cycle}/legal`. Loan ids cannot contain "/", so
    no loan's workflow id (say loan `X-legal`'s) can ever take a child's id, and each cycle has its own."""
    return f"{parent_id}/{cycle.isoformat()}/{child}"


class CollectionInput(BaseModel):
    """A loan's workflow input. The strategy and the contact profile come either as copies (`strategy`,
    `profile`) or as references to stored definitions (`strategy_ref`, `profile_ref`; domain.definitions):
    with a reference, neither the start nor any continue-as-new carries the ~5.7 KB of definitions, and
    every cached loan shares one object. A reference must be stored (activities.definitions.save_definition)
    before the start. Either way the validated input holds the interned definitions."""

    loan: Loan
    strategy: Strategy = Field(default=None, validate_default=False)  # type: ignore[assignment]
    strategy_ref: str | None = Field(
        default=None, pattern=REF_PATTERN, description="sha256 of the stored strategy, instead of a copy"
    )
    profile_ref: str | None = Field(
        default=None, pattern=REF_PATTERN, description="sha256 of the stored contact profile"
    )
    demo_day_seconds: float | None = Field(
        default=None,
        gt=0,
        description="DEMO ONLY: one collections day lasts this many real seconds. Never set in production.",
    )
    profile: ContactProfile | None = Field(
        default=None, description="contact rules of the loan's jurisdiction (domain.contact_profiles)"
    )
    case: CollectionCase | None = Field(default=None, description="carried state on continue-as-new")
    journal_pending: list[JournalEntry] = Field(
        default_factory=list, description="journal entries not yet written, carried on continue-as-new"
    )
    used_assertions: dict[str, datetime] = Field(
        default_factory=dict,
        description="nonces of applied signed updates (until expiry), carried on continue-as-new",
    )
    refused_signals: int = Field(
        default=0, ge=0, description="unverified signals refused, carried on continue-as-new"
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_references(cls, data: object) -> object:
        """A reference becomes the shared definition; the case carried on continue-as-new gets the same."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        strategy_ref, profile_ref = data.get("strategy_ref"), data.get("profile_ref")
        if data.get("strategy") is None:
            if not strategy_ref:
                raise ValueError("strategy: a strategy or a strategy_ref is required")
            data["strategy"] = REGISTRY.strategy(strategy_ref)
        if data.get("profile") is None and profile_ref:
            data["profile"] = REGISTRY.profile(profile_ref)
        case = data.get("case")
        if isinstance(case, dict):
            case = dict(case)
            if case.get("strategy") is None:
                case["strategy"] = data["strategy"]
            if "profile" not in case and profile_ref:
                case["profile"] = data["profile"]
            data["case"] = case
        return data

    @model_validator(mode="after")
    def _share_definitions(self) -> CollectionInput:
        # One object per definition in the worker, however many loans use it (worker memory, issue 12).
        _, self.strategy = REGISTRY.intern(self.strategy)
        if self.profile is not None:
            _, self.profile = REGISTRY.intern(self.profile)
        if self.case is not None:
            _, self.case.strategy = REGISTRY.intern(self.case.strategy)
            if self.case.profile is not None:
                _, self.case.profile = REGISTRY.intern(self.case.profile)
        return self

    @model_serializer(mode="wrap")
    def _references_instead_of_copies(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """With a reference, the definition is left out of the payload, in the case too."""
        data: dict[str, Any] = handler(self)
        case = data.get("case")
        if self.strategy_ref is not None and self.strategy_ref == REGISTRY.intern(self.strategy)[0]:
            data.pop("strategy", None)
            if isinstance(case, dict) and self.case is not None and self.case.strategy is self.strategy:
                case.pop("strategy", None)
        if self.profile_ref is not None and self.profile is not None:
            if self.profile_ref == REGISTRY.intern(self.profile)[0]:
                data.pop("profile", None)
                if isinstance(case, dict) and self.case is not None and self.case.profile is self.profile:
                    case.pop("profile", None)
        return data

    @model_validator(mode="after")
    def _rules_apply(self) -> CollectionInput:
        # Every loan is collected under its jurisdiction's contact rules: there is no loan without them.
        if self.profile is None and (self.case is None or self.case.profile is None):
            raise ValueError("profile: the contact rules of the loan's jurisdiction are required")
        return self


class ContactClaim(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    channel: Literal["call", "visit"]
    collector: str = Field(min_length=1, max_length=64)


class ContactClaimAccepted(BaseModel):
    task_id: str
    attempt_at: datetime


class PromiseAccepted(BaseModel):
    promise_id: str
    deadline: datetime


class NextStep(BaseModel):
    key: str
    action: str
    stage: str
    due_at: datetime  # collections time
    summary: str


class CollectionStatus(BaseModel):
    loan_id: str
    stage: str
    segment: str
    strategy: str
    dpd: int
    currency: str
    amount_overdue_minor: int
    principal_outstanding_minor: int
    paid_total_minor: int
    overdue_since: date
    cycle: date | None = Field(default=None, description="the cycle's overdue date as the loan entered")
    open_promise: PromiseToPay | None
    promises: list[PromiseToPay]
    broken_promises: int
    last_step: StepRecord | None
    next_step: NextStep | None
    waiting_for: str
    agency_placement_id: str | None
    agency_name: str | None
    documents: list[str]
    outcome: Outcome | None
    outcome_reason: str | None
    collections_now: datetime
    demo_speed: float
    contact_profile: str | None = None
    contact: ContactState | None = None
    escalation_hold: str | None = None
    deferred: dict[str, datetime] = Field(default_factory=dict)
    callbacks: list[datetime] = Field(default_factory=list)
    loan: Loan | None = Field(default=None, description="the loan as started: borrower profile and contacts")
    repayment_plan: RepaymentPlan | None = Field(
        default=None, description="the open repayment plan, else the latest one (kept, broken, cancelled)"
    )
    settlement: SettlementOffer | None = Field(
        default=None, description="the open settlement offer, else the latest one (paid, lapsed, cancelled)"
    )
    borrower_plan: PlanBounds | None = Field(
        default=None,
        description="what the borrower may arrange alone for these arrears (None: promise and pay only)",
    )
    borrower_hardship_hold_days: int | None = Field(
        default=None,
        description="days a borrower's own hardship request pauses collection (None: review only)",
    )
    waived_total_minor: int = 0
    waivers: list[Waiver] = Field(default_factory=list)
    stage_hold: StageHoldState | None = Field(
        default=None, description="stage advance frozen by a supervisor until `until` (None: not held)"
    )
    letter: LetterSent | None = Field(
        default=None, description="the lawyer's letter of this cycle, once sent"
    )
    refused_signals: int = Field(
        default=0, description="signals refused as unverified (no valid actor assertion); each is journaled"
    )
    contact_time: time | None = Field(
        default=None,
        description="borrower-local time this loan's steps fall due: the strategy's contact_time plus the "
        "loan's own offset (domain.herd)",
    )
    contact_offset_seconds: int = Field(
        default=0, description="the loan's offset within the strategy's contact_spread_minutes"
    )
