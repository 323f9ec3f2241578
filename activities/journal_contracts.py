"""The journal's contracts: entries, their typed data per kind, the batch, its receipt, the snapshot.

Re-exported by activities/contracts.py; import them from there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
)
from pydantic import field_validator as _field_validator

from activities.contract_base import IdempotencyKey, _Contract
from domain.loan import E164, EMAIL, Jurisdiction, check_currency

# ------------------------------------------------------------------------------------------------ journal
# The append-only collections journal a regulator can audit (activities/journal.py, migrations/0002).
# One activity writes a batch of entries in one transaction. Each entry's `data` holds the columns of its
# kind's table; build it from the typed models below (`JournalPayment(...).entry(...)`), which dump dates
# and times as ISO-8601 strings. The activity validates each entry against the same models; an entry that
# cannot be written (a bad field, a NUL character, a table CHECK) goes to journal_dead_letters with the reason
# naming the field, and the rest of the batch is written: the journal never drops an entry. Never put names,
# phone numbers or e-mail addresses in an entry: `address_kind` says which kind of address was used, and only
# `detail` (what a collector wrote) is free text.


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
    wake_at: datetime | None = Field(
        default=None,
        description="collections time of the timer the workflow waits on next (None: only a signal wakes "
        "it); the stuck-loans gauge (observability/stuck.py) reads it",
    )


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
