"""Holds, preferences and call outcomes from collectors: validation and their effect on the contact state.

One pure function per request returns the new `ContactState` (and ledger entries) or raises
`HoldRejected` with a reason naming the field. The workflow's update validators call the same function on
the current state and discard the result, so what is validated is exactly what would be applied.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.contact_profiles import ContactProfile
from domain.contact_rules import ContactAttempt, ContactChannel, ContactState
from domain.text import CleanLine, CleanText, Identifier

MAX_HARDSHIP_DAYS = 180


class HoldRejected(ValueError):
    """A collector's request that cannot be applied; the message names the field to fix."""


class CollectorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    collector: Identifier = Field(min_length=1, max_length=64)
    note: CleanText | None = Field(default=None, max_length=500)


class RaiseDispute(CollectorRequest):
    pass


class ResolveDispute(CollectorRequest):
    verification_sent: bool = Field(description="verification of the debt was sent to the borrower")


class HardshipHold(CollectorRequest):
    days: int = Field(ge=1, le=MAX_HARDSHIP_DAYS)


class StartBreathingSpace(CollectorRequest):
    reference: Identifier | None = Field(
        default=None, max_length=64, description="Debt Respite Scheme reference"
    )


class CeaseContact(CollectorRequest):
    pass


class OptOut(CollectorRequest):
    channel: ContactChannel | None = None
    address: CleanLine | None = Field(default=None, max_length=254)

    @model_validator(mode="after")
    def _one_target(self) -> OptOut:
        if (self.channel is None) == (self.address is None):
            raise ValueError("give exactly one of channel or address")
        return self


class PreferredHours(CollectorRequest):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> PreferredHours:
        if self.end <= self.start:
            raise ValueError("end must be after start (a window within one local day)")
        return self


class StopCollection(CollectorRequest):
    reason: Literal["bankruptcy", "deceased"]


CallOutcomeKind = Literal[
    "no_answer",
    "right_party",
    "wrong_number",
    "refused",
    "promise_given",
    "dispute_raised",
    "callback_requested",
]


class ContactOutcome(CollectorRequest):
    channel: Literal["call", "visit"] = "call"
    outcome: CallOutcomeKind
    address: CleanLine | None = Field(
        default=None, max_length=254, description="number called; default the loan's"
    )
    callback_at: datetime | None = None

    @model_validator(mode="after")
    def _callback(self) -> ContactOutcome:
        if self.outcome == "callback_requested" and self.callback_at is None:
            raise ValueError("callback_at is required when the borrower asked to be called back")
        if self.outcome != "callback_requested" and self.callback_at is not None:
            raise ValueError("callback_at only goes with outcome callback_requested")
        if self.callback_at is not None and self.callback_at.utcoffset() is None:
            raise ValueError("callback_at must carry a timezone offset")
        return self


def _copy(state: ContactState, **changes: object) -> ContactState:
    return state.model_copy(update=changes)


def raise_dispute(state: ContactState, request: RaiseDispute) -> ContactState:
    if state.dispute_open:
        raise HoldRejected("dispute: a dispute is already open")
    return _copy(state, dispute_open=True)


def resolve_dispute(state: ContactState, request: ResolveDispute, profile: ContactProfile) -> ContactState:
    if not state.dispute_open:
        raise HoldRejected("dispute: no dispute is open")
    if profile.dispute_stops_collection and not request.verification_sent:
        raise HoldRejected(
            f"verification_sent: under the {profile.name} profile collection resumes only once verification "
            "of the debt has been sent"
        )
    return _copy(state, dispute_open=False)


def hardship_hold(state: ContactState, request: HardshipHold, now: datetime) -> ContactState:
    until = now + timedelta(days=request.days)
    if state.hardship_until is not None and state.hardship_until > until:
        raise HoldRejected(f"days: a hardship hold already runs until {state.hardship_until:%Y-%m-%d}")
    return _copy(state, hardship_until=until)


def borrower_hardship(profile: ContactProfile, request: HardshipHold) -> None:
    """A hardship hold the borrower asks for from their page: only where the profile provides one, and no
    longer than it says (a collector may set any hold; the borrower's own is bounded)."""
    allowed = profile.borrower_hardship_hold_days
    if allowed is None:
        raise HoldRejected(
            f"days: a borrower's hardship request does not pause collection under the {profile.name} profile"
        )
    if request.days > allowed:
        raise HoldRejected(f"days: at most {allowed} for a borrower's own hardship request")


def breathing_space(
    state: ContactState, request: StartBreathingSpace, profile: ContactProfile, now: datetime
) -> ContactState:
    if profile.breathing_space_days is None:
        raise HoldRejected(f"loan: Breathing Space does not exist under the {profile.name} profile")
    if state.breathing_space_until is not None and state.breathing_space_until > now:
        raise HoldRejected(f"loan: Breathing Space already runs until {state.breathing_space_until:%Y-%m-%d}")
    return _copy(state, breathing_space_until=now + timedelta(days=profile.breathing_space_days))


def cease_contact(state: ContactState, request: CeaseContact) -> ContactState:
    if state.cease_all:
        raise HoldRejected("loan: contact has already ceased")
    return _copy(state, cease_all=True)


def opt_out(state: ContactState, request: OptOut, contact_points: list[str]) -> ContactState:
    if request.channel is not None:
        if request.channel in state.opted_out_channels:
            raise HoldRejected(f"channel: already opted out of {request.channel}")
        return _copy(state, opted_out_channels=[*state.opted_out_channels, request.channel])
    assert request.address is not None
    if request.address not in contact_points:
        raise HoldRejected("address: not one of this loan's contact points")
    if request.address in state.opted_out_addresses:
        raise HoldRejected("address: already opted out")
    return _copy(state, opted_out_addresses=[*state.opted_out_addresses, request.address])


class ContactPointUnreachable(BaseModel):
    """A provider's receipt says a contact point cannot be reached for good (an unknown subscriber, a hard
    bounce): sent by the product's inbound webhooks, not by a person (README "Inbound messages and
    receipts")."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    channel: Literal["sms", "email", "push"]
    address: CleanLine = Field(min_length=1, max_length=254)
    reason: str = Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="the provider's code, never free text"
    )
    message_id: CleanLine = Field(min_length=1, max_length=64, description="the outbox message it answers")


def contact_point_unreachable(
    state: ContactState, request: ContactPointUnreachable, contact_points: list[str]
) -> ContactState:
    """The contact point closed for good, so the next step falls back to another channel; the same state when
    it already was (a receipt repeated by another message)."""
    if request.address not in contact_points:
        raise HoldRejected("address: not one of this loan's contact points")
    if request.address in state.unreachable_addresses:
        return state
    return _copy(state, unreachable_addresses=[*state.unreachable_addresses, request.address])


def preferred_hours(state: ContactState, request: PreferredHours) -> ContactState:
    return _copy(state, preferred_hours=(request.start, request.end))


def stop_collection(state: ContactState, request: StopCollection) -> ContactState:
    if state.collection_stopped:
        raise HoldRejected(f"reason: collection already stopped ({state.collection_stopped})")
    return _copy(state, collection_stopped=request.reason)


class OutcomeEffect(BaseModel):
    state: ContactState
    attempt: ContactAttempt
    callback_at: datetime | None = None


def contact_outcome(
    state: ContactState,
    request: ContactOutcome,
    *,
    now: datetime,
    default_address: str,
    contact_points: list[str],
) -> OutcomeEffect:
    """What a recorded call or visit means for the ledger and the contact state.

    A conversation with the borrower (right party) starts the US quiet period; a wrong number closes that
    phone; a dispute raised on the call opens a dispute; a callback request schedules the next call.
    """
    address = request.address or default_address
    if address not in contact_points:
        raise HoldRejected("address: not one of this loan's contact points")
    if request.callback_at is not None and request.callback_at <= now:
        raise HoldRejected("callback_at: must be in the future")
    spoke_to_borrower = request.outcome in (
        "right_party",
        "refused",
        "promise_given",
        "dispute_raised",
        "callback_requested",
    )
    attempt = ContactAttempt(
        channel=request.channel,
        at=now,
        address=address,
        connected=request.outcome != "no_answer",
        right_party=spoke_to_borrower,
    )
    new_state = state
    if request.outcome == "wrong_number" and address not in state.unreachable_addresses:
        new_state = _copy(state, unreachable_addresses=[*state.unreachable_addresses, address])
    if request.outcome == "dispute_raised" and not state.dispute_open:
        new_state = _copy(new_state, dispute_open=True)
    if new_state.first_contact_at is None and spoke_to_borrower:
        new_state = _copy(new_state, first_contact_at=now)
    return OutcomeEffect(state=new_state, attempt=attempt, callback_at=request.callback_at)
