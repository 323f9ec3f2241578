"""Inputs and outputs of every activity, and the names the workflow calls them by.

The journal's contracts live in activities/journal_contracts.py and are re-exported here, so callers name
every contract `contracts.X`.

Pure pydantic models: the workflow imports this module; the implementations (asyncpg, HTTP, PDF) live in
sibling modules the workflow never imports. Every request carries an `idempotency_key`
("{loan_id}:{overdue_since}:{step key}") so a retried activity never sends, places or files twice: the
key is unique in PostgreSQL and sent to providers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from activities.contract_base import IdempotencyKey as IdempotencyKey
from activities.contract_base import _Contract as _Contract
from activities.journal_contracts import JOURNAL_DATA as JOURNAL_DATA
from activities.journal_contracts import RECORD_JOURNAL as RECORD_JOURNAL
from activities.journal_contracts import JournalBatch as JournalBatch
from activities.journal_contracts import JournalCollectorAction as JournalCollectorAction
from activities.journal_contracts import JournalContactAttempt as JournalContactAttempt
from activities.journal_contracts import JournalDeferral as JournalDeferral
from activities.journal_contracts import JournalEntry as JournalEntry
from activities.journal_contracts import JournalHold as JournalHold
from activities.journal_contracts import JournalKind as JournalKind
from activities.journal_contracts import JournalPayment as JournalPayment
from activities.journal_contracts import JournalPromise as JournalPromise
from activities.journal_contracts import JournalReceipt as JournalReceipt
from activities.journal_contracts import JournalStageTransition as JournalStageTransition
from activities.journal_contracts import JournalValue as JournalValue
from activities.journal_contracts import PortfolioSnapshot as PortfolioSnapshot
from activities.journal_contracts import _JournalData as _JournalData
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
    reason: Literal["paid", "closed", "expired", "escalated", "written_off", "disputed", "hold"]


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


# ---------------------------------------------------------------------------------------- validation notice
# US Regulation F §1006.34: the validation notice (Model Form B-1 content) goes with the first communication
# or within 5 days. Without an e-mail address it goes as a one-page letter (activities/validation_notice.py),
# stored among the loan's legal documents (kind 'validation_notice') and posted by DISPATCH_REGISTERED_MAIL.

GENERATE_VALIDATION_NOTICE = "generate_validation_notice"


class ValidationNoticeRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    locale: Locale
    lender: str
    borrower_name: str
    postal_address: str = Field(
        description="the borrower's postal address, printed under the addressee (lines: \\n); required: "
        "the notice goes by post"
    )
    currency: str
    amount_overdue_minor: int
    overdue_since: date
    issued_on: date
    dispute_by: date = Field(
        description="end of the validation period: the borrower may dispute in writing until this date"
    )
    product: str | None = Field(
        default=None, max_length=64, description="the loan's product (Loan.product), printed in the notice"
    )


class ValidationNoticeReceipt(_Contract):
    document_id: str
    sha256: str
    size_bytes: int
    duplicate: bool
