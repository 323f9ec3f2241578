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


class MessageReceipt(_Contract):
    message_id: str
    channel: str
    status: Literal["queued", "sent"]
    duplicate: bool = Field(description="true when this key was already stored: nothing was sent again")


class CollectorTaskRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    step_key: str
    kind: Literal["call", "visit", "review", "promise_follow_up"]
    due_at: datetime
    priority: int = Field(ge=0, le=1000, description="higher first: DPD and balance weigh in")
    pool: str = "default"
    note: str = ""


class CollectorTaskReceipt(_Contract):
    task_id: str
    duplicate: bool


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


class PlacementReceipt(_Contract):
    placement_id: str
    agency_id: str
    agency_name: str
    expires_at: datetime
    duplicate: bool


class RecallRequest(_Contract):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    loan_id: str
    placement_id: str
    reason: Literal["paid", "closed", "expired", "escalated", "written_off"]


class RecallReceipt(_Contract):
    placement_id: str
    recalled: bool = Field(description="false when it had already been recalled")


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


class LitigationReferralReceipt(_Contract):
    case_id: str
    duplicate: bool
