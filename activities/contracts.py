"""Inputs and outputs of every activity, and the names the workflow calls them by.

Pure pydantic models: the workflow imports this module; the implementations (asyncpg, HTTP, PDF) live in
sibling modules the workflow never imports. Every request carries an `idempotency_key`
("{loan_id}:{overdue_since}:{step key}") so a retried activity never sends, places or files twice: the
key is unique in PostgreSQL and sent to providers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.loan import Locale

# Activity names, shared by the workflow (caller) and the worker (implementation).
SEND_MESSAGE = "send_message"
CREATE_COLLECTOR_TASK = "create_collector_task"
PLACE_WITH_AGENCY = "place_with_agency"
RECALL_FROM_AGENCY = "recall_from_agency"
GENERATE_LAWYER_LETTER = "generate_lawyer_letter"
REFER_TO_LITIGATION = "refer_to_litigation"
CANCEL_COLLECTOR_TASKS = "cancel_collector_tasks"

# Error types raised as non-retryable ApplicationError; the workflow decides the fallback.
CONTACT_POINT_INVALID = "ContactPointInvalid"  # the recipient is not a valid phone / e-mail for the channel
NO_AGENCY_AVAILABLE = "NoAgencyAvailable"  # no active agency for the segment has capacity left
UNKNOWN_TEMPLATE = "UnknownTemplate"  # no such message template, or not in that locale
TEMPLATE_VARIABLE_MISSING = "TemplateVariableMissing"  # the template needs a variable the request lacks
INVALID_REQUEST = "InvalidRequest"  # a field the database or the rules reject (currency, amount, dates)
IDEMPOTENCY_KEY_CONFLICT = "IdempotencyKeyConflict"  # the key was already used for another loan
LOAN_ALREADY_PLACED = "LoanAlreadyPlaced"  # the loan is with an agency under another key; recall it first
PLACEMENT_NOT_FOUND = "PlacementNotFound"  # recall of a placement that is not this loan's
UNKNOWN_DOCUMENT = "UnknownDocument"  # a litigation referral naming a document this loan does not have
# The provider refused the message itself for good (HTTP 400/413/415/422 without a recipient error code, SMTP
# 5xx at DATA): the outbox row is 'failed' with the reason; the workflow falls back to the next channel.
MESSAGE_REJECTED = "MessageRejected"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


IdempotencyKey = str


class MessageRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    step_key: str
    channel: Literal["sms", "email", "push"]
    template: str
    locale: Locale
    recipient: str = Field(description="E.164 phone, e-mail address or app account (loan id) by channel")
    variables: dict[str, str] = Field(
        default_factory=dict, description="template variables, already formatted"
    )
    supersedes: list[IdempotencyKey] = Field(
        default_factory=list,
        max_length=10,
        description="keys of earlier messages of the same step that never went out: marked 'superseded' in "
        "the outbox together with storing this one, and never sent",
    )


class MessageReceipt(_Contract):
    message_id: str
    channel: str
    status: Literal["queued", "sent", "superseded"] = Field(
        description="superseded: a later message of the step replaced this key before it went out; not sent"
    )
    duplicate: bool = Field(description="true when this key was already stored: nothing was sent again")
    template_version: str | None = Field(
        default=None, description="version of the template files the message was rendered from"
    )
    superseded: list[IdempotencyKey] = Field(
        default_factory=list,
        description="the keys of `supersedes` this message replaced in the outbox (the same on a retry); "
        "keys that were sent, unknown or of another loan are not listed",
    )


class CollectorTaskRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    step_key: str
    kind: Literal["call", "visit", "review", "promise_follow_up", "trace_address"] = Field(
        description="trace_address: find the borrower's postal address before a visit or registered letter"
    )
    due_at: datetime
    priority: int = Field(ge=0, le=1000, description="higher first: DPD and balance weigh in")
    pool: str = "default"
    note: str = ""


class CollectorTaskReceipt(_Contract):
    task_id: str
    duplicate: bool


CancelReason = Literal[
    "paid", "settled", "closed", "stopped", "hold", "litigation", "written_off", "escalated", "superseded"
]


class CollectorTaskCancellation(_Contract):
    """Cancel a loan's open or claimed (in progress) collector tasks: they leave the work queue."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str = Field(min_length=1, max_length=64)
    reason: CancelReason
    step_keys: list[str] | None = Field(
        default=None, max_length=500, description="only the tasks of these steps; None: every open task"
    )
    detail: str | None = Field(
        default=None, max_length=500, description="why, for the caller's journal; not stored or logged here"
    )


class CollectorTaskCancelReceipt(_Contract):
    cancelled: list[str] = Field(
        description="ids of the tasks this key cancelled; a retry returns the same ids again"
    )


class PlacementRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    currency: str
    amount_overdue_minor: int
    principal_outstanding_minor: int
    segment: str
    dpd: int
    period_days: int
    placed_at: datetime  # collections time; the placement expires at placed_at + period_days
    exclude_agencies: list[str] = Field(
        default_factory=list, description="agency ids not to choose: those the loan was already placed with"
    )


class PlacementReceipt(_Contract):
    placement_id: str
    agency_id: str
    agency_name: str
    expires_at: datetime
    duplicate: bool
    agency_reference: str | None = Field(
        default=None, description="the agency's own reference for the account (None: file agency)"
    )


class RecallRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    placement_id: str
    reason: Literal["paid", "closed", "expired", "escalated", "written_off", "disputed"]


class RecallReceipt(_Contract):
    placement_id: str
    recalled: bool = Field(description="false when it had already been recalled")


class ReminderSent(_Contract):
    """A reminder that reached the borrower before the lawyer's letter, as the letter states it."""

    channel: Literal["sms", "email", "push", "call", "visit", "letter"]
    sent_on: date = Field(description="the borrower's local date")


class LawyerLetterRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    locale: Locale
    lender: str
    borrower_name: str
    currency: str
    amount_overdue_minor: int
    principal_outstanding_minor: int
    overdue_since: date
    dpd: int
    issued_on: date
    respond_by: date
    product: str | None = Field(
        default=None, max_length=64, description="the loan's product (Loan.product), printed in the letter"
    )
    reminders: list[ReminderSent] = Field(
        default_factory=list,
        max_length=50,
        description="the reminders actually sent, which the letter lists; empty: it claims none",
    )
    postal_address: str | None = Field(
        default=None, description="the borrower's postal address, printed under the addressee (lines: \\n)"
    )


class LawyerLetterReceipt(_Contract):
    document_id: str
    sha256: str
    size_bytes: int
    duplicate: bool


class LitigationReferralRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    currency: str
    amount_overdue_minor: int
    principal_outstanding_minor: int
    dpd: int
    document_ids: list[str]
    summary: str = Field(description="ledger summary for the court file: payments, promises, contacts")
    property_preservation: bool = Field(
        default=False, description="ask the court for property preservation (财产保全) with the filing"
    )


class LitigationReferralReceipt(_Contract):
    case_id: str
    duplicate: bool


# ------------------------------------------------------------------------------------------------ journal
# The append-only collections journal a regulator can audit (activities/journal.py, migrations/0002).
# One activity writes a batch of entries in one transaction. Each entry's `data` holds the columns of its
# kind's table; build it from the typed models below (`JournalPayment(...).entry(...)`), which dump dates
# and times as ISO-8601 strings. The activity validates each entry against the same models; an entry that
# cannot be written (a bad field, a NUL character, a table CHECK) goes to journal_dead_letters with the reason
# naming the field, and the rest of the batch is written: the journal never drops an entry. Never put names,
# phone numbers or e-mail addresses in an entry: `address_kind` says which kind of address was used, and only
# `detail` (what a collector wrote) is free text.

from typing import Annotated, ClassVar  # noqa: E402  (appended section: imports kept beside their use)

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StrictBool, StrictInt, ValidationInfo  # noqa: E402
from pydantic import field_validator as _field_validator  # noqa: E402

from domain.loan import E164, EMAIL, Jurisdiction, check_currency  # noqa: E402

RECORD_JOURNAL = "record_journal"

JournalKind = Literal[
    "contact_attempt", "deferral", "hold", "promise", "payment", "stage_transition", "collector_action"
]
JournalValue = str | int | bool | None

_Name = Annotated[str, Field(min_length=1, max_length=200)]
_Text = Annotated[str, Field(max_length=2000)]
_Detail = Annotated[
    str, BeforeValidator(lambda value: "" if value is None else value), Field(max_length=2000)
]
_Currency = Annotated[str, AfterValidator(check_currency)]


class JournalEntry(_Contract):
    kind: JournalKind
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str = Field(min_length=1, max_length=64)
    jurisdiction: Jurisdiction
    at: datetime = Field(description="when it happened (collections time, with a UTC offset)")
    data: dict[str, JournalValue] = Field(
        description="the kind's columns; dates and times as ISO-8601 strings (see the Journal* models)"
    )
    cycle: date | None = Field(
        default=None,
        description="overdue_since of the collection cycle (a cured loan overdue again starts a new one)",
    )


class PortfolioSnapshot(_Contract):
    """The case as the portfolio read model shows it (migrations/0008): written with a journal batch."""

    loan_id: str = Field(min_length=1, max_length=64)
    borrower_name: str = Field(min_length=1, max_length=200)
    jurisdiction: str
    timezone: str
    locale: str
    currency: str = Field(min_length=3, max_length=3)
    segment: str
    strategy: str
    stage: str
    outcome: str | None = None
    overdue_since: date
    amount_overdue_minor: int = Field(ge=0)
    principal_outstanding_minor: int = Field(ge=0)
    paid_total_minor: int = Field(ge=0)
    hold: str | None = None
    agency_id: str | None = None
    open_promise_due: date | None = None
    broken_promises: int = Field(default=0, ge=0)
    clock_real_anchor: datetime
    clock_collections_anchor: datetime
    clock_speed: float = Field(default=1.0, ge=1.0)
    as_of: datetime = Field(description="collections time of the snapshot; an older one never replaces it")
    cycle: date | None = Field(default=None, description="overdue_since of the collection cycle")


class JournalBatch(_Contract):
    entries: list[JournalEntry] = Field(max_length=500)
    snapshot: PortfolioSnapshot | None = Field(
        default=None, description="the case after these entries, for the portfolio read model"
    )


class JournalReceipt(_Contract):
    written: int
    duplicates: int = Field(description="entries whose idempotency key was already stored: not written again")
    dead_lettered: int = Field(
        default=0,
        description="entries that could not be written, kept in journal_dead_letters with the reason "
        "(on a retry of the batch the same entries again; the table holds each once)",
    )


class _JournalData(_Contract):
    """The columns of one journal table. `entry()` wraps them in the JournalEntry the activity takes."""

    KIND: ClassVar[JournalKind]

    @_field_validator("*", mode="after")
    @classmethod
    def _no_contact_points(cls, value: object, info: ValidationInfo) -> object:
        """Only `detail` is free text; any other field holding a phone number or e-mail is a caller bug."""
        if (
            isinstance(value, str)
            and info.field_name != "detail"
            and (E164.match(value) or EMAIL.match(value))
        ):
            raise ValueError(
                "looks like a phone number or e-mail address; the journal never stores addresses"
            )
        return value

    def entry(
        self,
        *,
        idempotency_key: str,
        loan_id: str,
        jurisdiction: Jurisdiction,
        at: datetime,
        cycle: date | None = None,
    ) -> JournalEntry:
        return JournalEntry(
            kind=self.KIND,
            idempotency_key=idempotency_key,
            loan_id=loan_id,
            jurisdiction=jurisdiction,
            at=at,
            data=self.model_dump(mode="json"),
            cycle=cycle,
        )


class JournalContactAttempt(_JournalData):
    KIND: ClassVar[JournalKind] = "contact_attempt"
    channel: _Name = Field(description="sms, email, push, call, visit, letter, ...")
    template: _Name | None = None
    content_ref: _Name | None = Field(default=None, description="messages.id, collector task id, ...")
    provider_id: _Name | None = None
    status: _Name = Field(description="queued, sent, delivered, failed, connected, no_answer, ...")
    address_kind: Literal["phone", "email", "app", "postal", "none"] = Field(
        description="which kind of address was used (postal: visits and letters); never the address itself"
    )
    actor: _Name = Field(description="workflow, collector id, agency id, ...")


class JournalDeferral(_JournalData):
    KIND: ClassVar[JournalKind] = "deferral"
    step_key: _Name
    channel: _Name | None = None
    rule: _Name = Field(description="the rule that deferred it, e.g. contact_hours, us_7_in_7, hold:dispute")
    reason: _Text
    deferred_from: AwareDatetime
    deferred_until: AwareDatetime | None = Field(description="None: never (the step was dropped)")


class JournalHold(_JournalData):
    KIND: ClassVar[JournalKind] = "hold"
    kind: Literal[
        "dispute",
        "hardship",
        "breathing_space",
        "cease_all",
        "opt_out_channel",
        "opt_out_address",
        "preferred_hours",
        "bankruptcy",
        "deceased",
    ]
    action: Literal["raised", "resolved", "expired"]
    until: AwareDatetime | None = None
    detail: _Detail = ""
    actor: _Name


class JournalPromise(_JournalData):
    KIND: ClassVar[JournalKind] = "promise"
    promise_id: _Name
    amount_minor: Annotated[StrictInt, Field(ge=0, le=10**15)]
    currency: _Currency
    due_date: date
    fate: Literal["made", "kept", "broken", "cancelled"]
    actor: _Name


class JournalPayment(_JournalData):
    KIND: ClassVar[JournalKind] = "payment"
    payment_id: _Name
    amount_minor: Annotated[StrictInt, Field(ge=0, le=10**15)]
    currency: _Currency
    received_at: AwareDatetime
    source: _Name = Field(description="bank_transfer, card, agency, ...")
    applied: StrictBool
    reason: _Text | None = Field(default=None, description="why it was (not) applied")


class JournalStageTransition(_JournalData):
    KIND: ClassVar[JournalKind] = "stage_transition"
    from_stage: _Name | None = Field(description="None: the case was opened")
    to_stage: _Name
    dpd: Annotated[StrictInt, Field(ge=0)]
    reason: _Text


class JournalCollectorAction(_JournalData):
    KIND: ClassVar[JournalKind] = "collector_action"
    collector: _Name
    action: _Name
    outcome: _Name | None = None
    detail: _Detail = Field(default="", description="free text the collector wrote (None: none)")


JOURNAL_DATA: dict[JournalKind, type[_JournalData]] = {
    model.KIND: model
    for model in (
        JournalContactAttempt,
        JournalDeferral,
        JournalHold,
        JournalPromise,
        JournalPayment,
        JournalStageTransition,
        JournalCollectorAction,
    )
}


# ---------------------------------------------------------------------------------------- registered mail
# The lawyer's letter goes out by registered mail (activities/registered_mail.py). The carrier's tracking
# reference is a UPU S10 number (RR123456785CN); a retried dispatch returns the first one.

DISPATCH_REGISTERED_MAIL = "dispatch_registered_mail"


class RegisteredMailRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    document_id: str = Field(description="a stored legal document of this loan (LawyerLetterReceipt)")
    locale: Locale


class RegisteredMailReceipt(_Contract):
    tracking_reference: str = Field(description="UPU S10 tracking number, e.g. RR123456785CN")
    duplicate: bool = Field(description="true when this key was already dispatched: nothing was sent again")
