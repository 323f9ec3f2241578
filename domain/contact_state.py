"""What the contact rules read and answer: the attempts ledger, the borrower's contact state, the decision.

Plain models, apart from the rules themselves (domain.contact_rules re-exports them), so each module stays
small and the workflow's case can hold them without importing the rules.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.contact_profiles import ContactChannel

MESSAGE_CHANNELS: tuple[ContactChannel, ...] = ("sms", "email", "push")

ContactRule = Literal[
    "ok",
    "hours",
    "holiday",
    "weekday",
    "daily_call_cap",
    "call_attempt_cap",
    "quiet_after_conversation",
    "message_spacing",
    "dispute",
    "hardship",
    "breathing_space",
    "cease_all",
    "collection_stopped",
    "opted_out_channel",
    "opted_out_address",
    "unreachable",
    "validation_notice_overdue",
]


class ContactAttempt(BaseModel):
    """One contact in the ledger the workflow keeps (pruned with `prune_attempts`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: ContactChannel
    at: AwareDatetime
    address: str = Field(max_length=254)
    connected: bool = False  # a call that was answered, by anyone
    right_party: bool = False  # spoke to the borrower; implies connected; starts the US quiet period
    # A collector claimed a call or visit task: it counts as an attempt at once (a collector who never records
    # an outcome cannot dodge the caps); the outcome recorded later replaces it rather than adding one.
    claim: bool = False


def _naive_time(value: time) -> time:
    # A wall-clock time with an offset would compare unlike the naive local times the rules use.
    if value.tzinfo is not None:
        raise ValueError("must be a wall-clock time without an offset, e.g. 09:00")
    return value


class ContactState(BaseModel):
    """Holds and preferences of one borrower, kept by the workflow and changed by collectors' requests."""

    model_config = ConfigDict(extra="forbid")

    dispute_open: bool = False
    hardship_until: AwareDatetime | None = None
    breathing_space_until: AwareDatetime | None = None
    cease_all: bool = False  # the borrower asked to stop all contact
    # "bankruptcy" or "deceased": never contact again. A code, not free text: journal reasons show it.
    collection_stopped: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$")
    opted_out_channels: list[ContactChannel] = Field(default_factory=list)
    opted_out_addresses: list[str] = Field(default_factory=list)
    unreachable_addresses: list[str] = Field(default_factory=list)  # wrong number, bounced address
    preferred_hours: tuple[time, time] | None = None  # borrower-stated, intersected with the profile's hours
    validation_notice_sent_at: AwareDatetime | None = None
    first_contact_at: AwareDatetime | None = None

    @field_validator("preferred_hours")
    @classmethod
    def _ordered(cls, hours: tuple[time, time] | None) -> tuple[time, time] | None:
        if hours is not None:
            start, end = (_naive_time(h) for h in hours)
            if end <= start:
                raise ValueError("end must be after start (a window within one local day)")
        return hours


class ContactDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    at: datetime | None  # now when allowed; the earliest allowed instant when deferred; None when never
    rule: ContactRule  # the deciding rule: for a deferral, the one that blocks now
    reason: str  # for the journal; no names, numbers or addresses
    requires_validation_notice: bool = False  # US: this contact must carry the validation notice
