"""The state of one loan's collections case, and the pure rules that change it.

The workflow owns one `CollectionCase`, passes it through continue-as-new, and calls these methods; they
compute, the workflow orchestrates (timers, activities, search attributes).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.arrangements import (
    AgencyRecall,
    RepaymentPlan,
    SettlementOffer,
    StageHoldState,
    Waiver,
    take_first,
    waive,
)
from domain.calendar import days_past_due
from domain.clock import CollectionsClock
from domain.contact_profiles import ContactProfile
from domain.contact_rules import ContactAttempt, ContactChannel, ContactState, prune_attempts
from domain.herd import loan_contact_time
from domain.loan import Instalment, Loan, Payment
from domain.promise import PromiseToPay
from domain.strategy import Stage, Strategy
from domain.text import CleanText

Outcome = Literal[
    "paid", "settled", "written_off", "litigation", "closed_by_servicing", "bankruptcy", "deceased"
]
CloseReason = Literal["restructured", "sold", "cancelled", "settled", "other"]

# Step history kept in the case (and in `status`) is bounded so continue-as-new payloads stay small; the full
# record lives in PostgreSQL and in the workflow histories. Payment ids are never trimmed: forgetting one
# would let a late retry of that payment be applied twice.
HISTORY_LIMIT = 50


class CloseRequest(BaseModel):
    """Servicing closes the collection (restructured, sold...): kept in the case until the loop acts on it, so
    a close that arrives while the run continues as new is carried across, never lost."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reason: CloseReason
    note: CleanText | None = Field(default=None, max_length=500)


class ContactMade(BaseModel):
    """A contact that really went out (not a skipped or deferred step): what letters and referrals cite."""

    channel: ContactChannel
    at: datetime  # collections time


class LetterSent(BaseModel):
    """The lawyer's letter of this cycle, dispatched by the legal case: litigation needs it and its window."""

    document_id: str
    dispatched_at: datetime
    respond_by: date


class StepRecord(BaseModel):
    key: str
    step_id: str
    action: str
    stage: str
    at: datetime  # collections time
    result: str


class Placement(BaseModel):
    placement_id: str
    agency_id: str
    agency_name: str
    placed_at: datetime
    expires_at: datetime


class PaymentEffect(BaseModel):
    applied: bool
    reason: str
    arrears_before_minor: int = 0
    arrears_after_minor: int = 0


class CollectionCase(BaseModel):
    loan: Loan
    strategy: Strategy
    segment: str
    stage: Stage = "reminder"
    clock: CollectionsClock
    arrears: list[Instalment]
    principal_outstanding_minor: int
    paid_total_minor: int = 0
    applied_payment_ids: list[str] = Field(default_factory=list)
    done: list[str] = Field(default_factory=list)
    forced: list[str] = Field(default_factory=list)
    history: list[StepRecord] = Field(default_factory=list)
    promises: list[PromiseToPay] = Field(default_factory=list)
    broken_promises: int = 0
    placement: Placement | None = None
    documents: list[str] = Field(default_factory=list)
    outcome: Outcome | None = None
    outcome_reason: str | None = None
    closed_at: datetime | None = None
    # Contact compliance (loans started before it existed carry none of it: profile None).
    profile: ContactProfile | None = None
    contact: ContactState = Field(default_factory=ContactState)
    attempts: list[ContactAttempt] = Field(default_factory=list, description="recent contacts, pruned")
    callbacks: list[datetime] = Field(default_factory=list, description="callbacks the borrower asked for")
    deferrals: dict[str, datetime] = Field(default_factory=dict, description="step key -> not before")
    placements: int = 0  # agency placements started (children)
    placed_with: list[str] = Field(default_factory=list, description="agency ids, for re-placement")
    # Arrangements (domain.arrangements): plans, settlement offers, waivers, a stage hold.
    plans: list[RepaymentPlan] = Field(default_factory=list)
    settlements: list[SettlementOffer] = Field(default_factory=list)
    waivers: list[Waiver] = Field(default_factory=list)
    waived_total_minor: int = 0
    stage_hold: StageHoldState | None = None
    # Requests the loop carries out; in the case (not in workflow fields) so continue-as-new carries them.
    close_request: CloseRequest | None = None
    recall_request: AgencyRecall | None = None
    contacts_made: list[ContactMade] = Field(default_factory=list, description="bounded, newest last")
    letter: LetterSent | None = None
    legal_held: bool = False  # the legal case was told to wait for a hold to end
    # Collector tasks the workflow opened (task id -> step key), cancelled when the loan closes or is held;
    # the step keys of tasks a hold cancelled are created again when the hold ends.
    open_tasks: dict[str, str] = Field(default_factory=dict)
    task_kinds: dict[str, str] = Field(default_factory=dict, description="task id -> call, visit, review...")
    tasks_after_hold: list[str] = Field(default_factory=list)
    # US: no e-mail and no postal address on file, so the validation notice cannot go in writing.
    notice_undeliverable: bool = False

    @classmethod
    def open(cls, loan: Loan, strategy: Strategy, clock: CollectionsClock) -> CollectionCase:
        return cls(
            loan=loan,
            strategy=strategy,
            segment=strategy.segment_for(loan),
            clock=clock,
            arrears=loan.instalments(),
            principal_outstanding_minor=loan.principal_outstanding_minor,
        )

    # -- derived -------------------------------------------------------------------------------------------

    @property
    def arrears_minor(self) -> int:
        return sum(i.amount_minor for i in self.arrears)

    @property
    def contact_time(self) -> time:
        """Borrower-local time this loan's steps fall due: the strategy's, plus the loan's own offset within
        its contact_spread_minutes, never past the end of the profile's contact hours (domain.herd)."""
        end = self.profile.contact_hours_end if self.profile else None
        spread = self.strategy.contact_spread_minutes
        return loan_contact_time(self.loan.loan_id, self.strategy.contact_time, spread, end)

    @property
    def anchor(self) -> date:
        """DPD counts from the oldest instalment still unpaid (re-anchored as payments clear instalments)."""
        return self.arrears[0].due_date if self.arrears else self.loan.overdue_since

    @property
    def open_promise(self) -> PromiseToPay | None:
        return next((p for p in self.promises if p.status == "open"), None)

    @property
    def open_plan(self) -> RepaymentPlan | None:
        return next((p for p in self.plans if p.status == "open"), None)

    @property
    def open_settlement(self) -> SettlementOffer | None:
        return next((s for s in self.settlements if s.status == "open"), None)

    @property
    def settlement_paid(self) -> SettlementOffer | None:
        """A settlement offer paid in full: the case ends as settled."""
        return next((s for s in self.settlements if s.status == "paid"), None)

    @property
    def closed(self) -> bool:
        return self.outcome is not None

    @property
    def closing(self) -> bool:
        """Closed, or asked to close: no new arrangement, contact or escalation may start."""
        return self.outcome is not None or self.close_request is not None

    @property
    def cycle(self) -> date:
        """This collection cycle: the overdue date the loan entered collections with. A cured loan that
        goes overdue again is a new cycle (a new run of the same workflow id): ids and journal keys carry
        it."""
        return self.loan.overdue_since

    def dpd(self, now: datetime) -> int:
        return days_past_due(self.anchor, now, self.loan.zone)

    def local_today(self, now: datetime) -> date:
        return now.astimezone(self.loan.zone).date()

    # -- changes ---------------------------------------------------------------------------------------------

    def apply_payment(self, payment: Payment, now: datetime) -> PaymentEffect:
        """Apply a payment once, oldest instalment first; re-derive segment and anchor from the new state."""
        before = self.arrears_minor
        if payment.payment_id in self.applied_payment_ids:
            return PaymentEffect(
                applied=False,
                reason="duplicate payment_id",
                arrears_before_minor=before,
                arrears_after_minor=before,
            )
        if payment.currency != self.loan.currency:
            return PaymentEffect(
                applied=False,
                reason=f"currency {payment.currency} does not match the loan's {self.loan.currency}",
                arrears_before_minor=before,
                arrears_after_minor=before,
            )
        self.applied_payment_ids = [*self.applied_payment_ids, payment.payment_id]
        self.arrears = take_first(self.arrears, payment.amount_minor)  # oldest instalment first
        self.paid_total_minor += payment.amount_minor
        self.principal_outstanding_minor = max(0, self.principal_outstanding_minor - payment.amount_minor)
        promise = self.open_promise
        if promise is not None:
            promise.paid_toward_minor += payment.amount_minor
            if promise.paid_toward_minor >= promise.amount_minor or not self.arrears:
                promise.status = "kept"
                promise.settled_at = now
        plan = self.open_plan
        if plan is not None:
            plan.credit(payment.amount_minor, now, arrears_cleared=not self.arrears)
        settlement = self.open_settlement
        if settlement is not None:
            settlement.credit(payment.amount_minor, now)
        self._resegment()
        return PaymentEffect(
            applied=True,
            reason="applied",
            arrears_before_minor=before,
            arrears_after_minor=self.arrears_minor,
        )

    def _resegment(self) -> None:
        if self.arrears:
            # A smaller balance may move the loan to another segment (e.g. out of high_balance).
            self.segment = self.loan.segment or self.strategy.segment_for(
                self.loan.model_copy(update={"amount_overdue_minor": self.arrears_minor})
            )

    def apply_waiver(self, waiver: Waiver) -> None:
        """Interest waived by a supervisor lowers the arrears (newest instalment first) and the debt; a
        waiver that clears the arrears cures the loan like a full payment."""
        self.arrears = waive(self.arrears, waiver.amount_minor)
        self.waivers = [*self.waivers, waiver]
        self.waived_total_minor += waiver.amount_minor
        self.principal_outstanding_minor = max(0, self.principal_outstanding_minor - waiver.amount_minor)
        self._resegment()  # arrears of 0: the workflow closes the case as paid (and any open promise kept)

    def contact_points(self) -> list[str]:
        borrower = self.loan.borrower
        return [borrower.phone, *([borrower.email] if borrower.email else []), self.loan.loan_id]

    def add_attempt(self, attempt: ContactAttempt, now: datetime) -> None:
        keep = self.profile.ledger_days() if self.profile else 8
        self.attempts = prune_attempts([*self.attempts, attempt], now, keep_days=keep)
        if self.contact.first_contact_at is None:
            self.contact = self.contact.model_copy(update={"first_contact_at": attempt.at})

    def add_outcome_attempt(self, attempt: ContactAttempt, now: datetime) -> None:
        """A recorded call or visit outcome: it replaces the attempt its claim counted (same channel and
        address, not yet resolved), so a claimed call that gets an outcome counts once, not twice."""
        claimed = next(
            (
                a
                for a in reversed(self.attempts)
                if a.claim and a.channel == attempt.channel and a.address == attempt.address
            ),
            None,
        )
        if claimed is not None:
            self.attempts = [a for a in self.attempts if a is not claimed]
            attempt = attempt.model_copy(update={"at": claimed.at})
        self.add_attempt(attempt, now)

    def contacted(self, channel: ContactChannel, at: datetime) -> None:
        self.contacts_made = [*self.contacts_made, ContactMade(channel=channel, at=at)][-HISTORY_LIMIT:]

    def record(self, record: StepRecord) -> None:
        self.history = [*self.history, record][-HISTORY_LIMIT:]

    def mark_done(self, key: str) -> None:
        if key not in self.done:
            self.done = [*self.done, key]
        if key in self.forced:
            self.forced = [k for k in self.forced if k != key]

    def close(self, outcome: Outcome, reason: str, now: datetime) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.outcome_reason = reason
            self.closed_at = now
            self.stage = "closed"
            promise = self.open_promise
            if promise is not None:
                promise.status = "kept" if outcome == "paid" else "cancelled"
                promise.settled_at = now
            plan = self.open_plan
            if plan is not None:
                plan.end("kept" if outcome == "paid" else "cancelled", now)
            settlement = self.open_settlement
            if settlement is not None:
                settlement.end("cancelled", now)
            self.stage_hold = None
