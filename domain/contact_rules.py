"""May we contact the borrower on this channel now, and if not, when? Pure and deterministic.

`check_contact` answers from the loan's contact profile (domain.contact_profiles), the borrower's time zone,
the ledger of recent attempts and the contact state (holds, opt-outs, preferences). It does no I/O and never
reads the clock, so the workflow calls it directly and replays it to the same answer.

Three kinds of answer:
  * allowed: `at` is `now`;
  * deferred: `at` is the earliest instant every rule allows, found by a fixpoint: start at `now`, ask each
    rule; a rule either passes, or names the earliest instant it would pass (the candidate moves there and
    every rule is asked again), or says never. Each rule's allowed instants are fixed (they do not depend on
    the candidate), so the first candidate all rules pass is the earliest common one;
  * never (`at` None): a block only a change of state lifts — collection stopped, cease, opt-out, an
    unreachable address, an open dispute that stops collection, an overdue validation notice — or no allowed
    instant within `horizon_days`.

Letters: of the permanent blocks only `collection_stopped` and an open dispute stop a letter. A cease request,
an opt-out or a returned address do not, because the letter is how the lender gives the notices it still
owes (US: a cease request still allows a final notice; the validation notice itself goes by letter).
Time-bounded holds (hardship, Breathing Space) stop every channel, letters included. Hours, holidays and
non-contact weekdays bind the profile's `hours_apply_to` channels (all but letters by default); caps and the
quiet period bind calls; message spacing binds sms, e-mail and push.

Hours are borrower wall-clock time: an instant is inside when its local time is in [start, end) on a local
date that is neither a holiday nor a non-contact weekday. Daylight-saving changes follow from that: a window
opening inside a spring-forward gap opens at the first real instant after the gap; in a fall-back overlap the
wall clock decides, both times round.

Reasons are sentences for the journal. They name channels, rules, dates and the zone, never an address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.contact_profiles import WEEKDAY_NAMES, ContactChannel, ContactProfile
from domain.loan import require_aware

__all__ = [
    "MESSAGE_CHANNELS",
    "ContactAttempt",
    "ContactChannel",
    "ContactDecision",
    "ContactRule",
    "ContactState",
    "check_contact",
    "earliest_contact",
    "prune_attempts",
]

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


# -- borrower-local wall clock -------------------------------------------------------------------------------

_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
WallWindow = tuple[time, time | None]  # [start, end) on one local date; end None: until midnight
_WHOLE_DAY: WallWindow = (time(0), None)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _offset_change(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant in (start, end] whose UTC offset differs from start's, to the microsecond.

    Assumes at most one change in the span (a day): true of every zone's rules since 1970.
    """
    before = _offset(start, zone)
    if _offset(end, zone) == before:
        return None
    low, high = start, end
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if _offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    return high


def _next_open(
    after: datetime, zone: ZoneInfo, window_for: Callable[[date], WallWindow | None], limit: datetime
) -> datetime | None:
    """The earliest instant >= `after` whose local wall time lies in its local date's window; None if there is
    none up to `limit`.

    Walks pieces of constant UTC offset (at most a day each): inside a piece the wall clock is the instant
    plus the offset, so the earliest wall time in a window maps back to exactly one instant. Offset changes
    are thereby exact: a window opening in a spring-forward gap opens at the end of the gap, and a wall time
    that repeats after a fall-back is inside again.
    """
    instant = after.astimezone(UTC)
    while instant <= limit:
        offset = _offset(instant, zone)
        piece_end = _offset_change(instant, instant + _DAY, zone) or instant + _DAY
        wall = instant.replace(tzinfo=None) + offset
        wall_end = piece_end.replace(tzinfo=None) + offset
        day = wall.date()
        while day <= wall_end.date():
            window = window_for(day)
            if window is not None:
                start, end = window
                low = max(wall, datetime.combine(day, start))
                high = min(
                    wall_end, datetime.combine(day, end) if end else datetime.combine(day + _DAY, time(0))
                )
                if low < high:
                    return (low - offset).replace(tzinfo=UTC)
            day += _DAY
        instant = piece_end
    return None


def _hm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


@dataclass(frozen=True)
class _Hours:
    start: time
    end: time
    label: str  # "08:00-22:00 Asia/Shanghai", with where it comes from
    note: str | None  # said in every reason: the borrower's preferred hours could not be honoured


def _hours(profile: ContactProfile, state: ContactState, zone: ZoneInfo) -> _Hours:
    start, end = profile.contact_hours_start, profile.contact_hours_end
    own = f"{_hm(start)}-{_hm(end)}"
    if state.preferred_hours is None:
        return _Hours(start, end, f"{own} {zone.key}", None)
    wanted_start, wanted_end = state.preferred_hours
    wanted = f"{_hm(wanted_start)}-{_hm(wanted_end)}"
    both_start, both_end = max(start, wanted_start), min(end, wanted_end)
    if both_start >= both_end:
        # The profile's hours are the legal bound and the preference cannot be met inside them: contacting
        # within the bound beats never contacting a borrower who simply named an impossible time.
        note = f"the borrower's preferred hours {wanted} lie outside the profile's {own}: the profile's apply"
        return _Hours(start, end, f"{own} {zone.key}", note)
    label = f"{_hm(both_start)}-{_hm(both_end)} {zone.key} (borrower's preferred hours {wanted})"
    return _Hours(both_start, both_end, label, None)


# -- the rules -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    rule: ContactRule
    why: str
    until: datetime | None  # the earliest instant this rule allows; None: none within the horizon


_Rule = Callable[[datetime], _Block | None]


def _address_key(address: str) -> str:
    # Errs towards matching (and so blocking): case, spaces and phone punctuation never tell two apart.
    key = address.strip().casefold()
    return key if "@" in key else "".join(c for c in key if c not in " -().")


def _permanent_block(
    profile: ContactProfile, channel: ContactChannel, address: str, state: ContactState
) -> tuple[ContactRule, str] | None:
    if state.collection_stopped is not None:
        return "collection_stopped", f"collection stopped ({state.collection_stopped}): never contact again"
    if state.dispute_open and profile.dispute_stops_collection:
        return "dispute", "a dispute is open: collection stops until verification of the debt is sent"
    if channel == "letter":
        return None
    if state.cease_all:
        return "cease_all", "the borrower asked to stop all contact"
    if channel in state.opted_out_channels:
        return "opted_out_channel", f"the borrower opted out of {channel}"
    key = _address_key(address)
    if key in {_address_key(a) for a in state.opted_out_addresses}:
        return "opted_out_address", f"the borrower opted out of this {channel} address"
    if key in {_address_key(a) for a in state.unreachable_addresses}:
        return "unreachable", f"this {channel} address is unreachable (wrong number or bounced)"
    return None


def _timed_rules(
    *,
    profile: ContactProfile,
    zone: ZoneInfo,
    channel: ContactChannel,
    attempts: Sequence[ContactAttempt],
    state: ContactState,
    hours: _Hours,
    limit: datetime,
) -> list[_Rule]:
    """The rules that defer, in the order they are asked (the first to block `now` names the decision)."""
    rules: list[_Rule] = []

    def not_before(rule: ContactRule, why: str, until: datetime) -> None:
        rules.append(lambda t: _Block(rule, why, until) if t < until else None)

    if state.breathing_space_until is not None:
        until = state.breathing_space_until
        not_before("breathing_space", f"Breathing Space until {_local(until, zone)}", until)
    if state.hardship_until is not None:
        until = state.hardship_until
        not_before("hardship", f"hardship hold until {_local(until, zone)}", until)

    if channel in profile.hours_apply_to:
        holidays = set(profile.holidays)
        if holidays:

            def holiday(t: datetime) -> _Block | None:
                day = t.astimezone(zone).date()
                if day not in holidays:
                    return None
                until = _next_open(t, zone, lambda d: None if d in holidays else _WHOLE_DAY, limit)
                return _Block("holiday", f"{day} is a non-contact holiday", until)

            rules.append(holiday)
        weekdays = set(profile.non_contact_weekdays)
        if weekdays:

            def weekday(t: datetime) -> _Block | None:
                day = t.astimezone(zone).date()
                if day.weekday() not in weekdays:
                    return None
                until = _next_open(t, zone, lambda d: None if d.weekday() in weekdays else _WHOLE_DAY, limit)
                return _Block(
                    "weekday", f"{day} is a {WEEKDAY_NAMES[day.weekday()]}, a non-contact day", until
                )

            rules.append(weekday)

        def in_hours(t: datetime) -> _Block | None:
            if hours.start <= t.astimezone(zone).time() < hours.end:
                return None
            until = _next_open(t, zone, lambda d: (hours.start, hours.end), limit)
            return _Block("hours", f"outside contact hours {hours.label}", until)

        rules.append(in_hours)

    if channel == "call":
        calls = [a for a in attempts if a.channel == "call"]
        quiet_days = profile.quiet_days_after_conversation
        conversations = [a.at for a in calls if a.right_party]
        if quiet_days is not None and conversations:
            last = max(conversations)
            not_before(
                "quiet_after_conversation",
                f"no call within {quiet_days} days after a conversation with the borrower "
                f"({_local(last, zone)})",
                last + timedelta(days=quiet_days),
            )
        cap = profile.max_call_attempts
        if cap is not None:
            window = timedelta(days=profile.call_attempt_window_days)
            call_times = sorted(a.at for a in calls)

            def attempt_cap(t: datetime) -> _Block | None:
                counted = [at for at in call_times if t - window < at <= t]
                if len(counted) < cap:
                    return None
                # The call may go once enough of the counted attempts have left the rolling window.
                until = counted[len(counted) - cap] + window
                return _Block(
                    "call_attempt_cap",
                    f"{len(counted)} call attempts within {profile.call_attempt_window_days} days "
                    f"(at most {cap})",
                    until,
                )

            rules.append(attempt_cap)
        daily = profile.max_connected_calls_per_day
        if daily is not None:
            per_day = Counter(a.at.astimezone(zone).date() for a in calls if a.connected or a.right_party)

            def daily_cap(t: datetime) -> _Block | None:
                day = t.astimezone(zone).date()
                if per_day[day] < daily:
                    return None
                until = _next_open(t, zone, lambda d: None if per_day[d] >= daily else _WHOLE_DAY, limit)
                return _Block(
                    "daily_call_cap",
                    f"{per_day[day]} connected calls on {day} (at most {daily} a day)",
                    until,
                )

            rules.append(daily_cap)

    spacing = profile.min_hours_between_messages
    if channel in MESSAGE_CHANNELS and spacing is not None:
        messages = [a.at for a in attempts if a.channel in MESSAGE_CHANNELS]
        if messages:
            last_message = max(messages)
            not_before(
                "message_spacing",
                f"at least {spacing} h between messages (last {_local(last_message, zone)})",
                last_message + timedelta(hours=spacing),
            )
    return rules


def check_contact(
    *,
    profile: ContactProfile,
    zone: ZoneInfo,
    channel: ContactChannel,
    address: str,
    attempts: Sequence[ContactAttempt],
    state: ContactState,
    now: datetime,
    horizon_days: int = 400,
) -> ContactDecision:
    """Whether `channel` to `address` is allowed at `now`; if not, the earliest instant it is, or never."""
    require_aware(now)
    if horizon_days < 0:
        raise ValueError(f"horizon_days must not be negative, got {horizon_days}")
    permanent = _permanent_block(profile, channel, address, state)
    if permanent is not None:
        return ContactDecision(allowed=False, at=None, rule=permanent[0], reason=permanent[1])

    notice_days = profile.validation_notice_within_days
    notice_owed = notice_days is not None and state.validation_notice_sent_at is None
    notice_deadline = (
        state.first_contact_at + timedelta(days=notice_days)
        if notice_owed
        and notice_days is not None
        and state.first_contact_at is not None
        and channel != "letter"
        else None
    )

    def notice_overdue(at: datetime) -> ContactDecision:
        assert notice_deadline is not None
        when = "" if at == now else f" (this contact could go no earlier than {_local(at, zone)})"
        return ContactDecision(
            allowed=False,
            at=None,
            rule="validation_notice_overdue",
            reason=f"the validation notice was due by {_local(notice_deadline, zone)} and is not recorded: "
            f"only a letter may go until it is{when}",
        )

    if notice_deadline is not None and now > notice_deadline:
        return notice_overdue(now)

    hours = _hours(profile, state, zone)
    limit = now + timedelta(days=horizon_days)
    rules = _timed_rules(
        profile=profile, zone=zone, channel=channel, attempts=attempts, state=state, hours=hours, limit=limit
    )
    candidate = now
    blockers: dict[ContactRule, str] = {}  # each blocking rule's first explanation, in order
    while True:
        block = next((b for b in (rule(candidate) for rule in rules) if b is not None), None)
        if block is None:
            break
        blockers.setdefault(block.rule, block.why)
        if block.until is None or block.until > limit:
            return ContactDecision(
                allowed=False,
                at=None,
                rule=block.rule,
                reason=f"no allowed instant within {horizon_days} days: {'; then '.join(blockers.values())}",
            )
        candidate = block.until

    if notice_deadline is not None and candidate > notice_deadline:
        return notice_overdue(candidate)

    notes = [hours.note] if hours.note and channel in profile.hours_apply_to else []
    if notice_owed:
        notes.append("it must carry the validation notice")
    if not blockers:
        return ContactDecision(
            allowed=True,
            at=now,
            rule="ok",
            reason="; ".join([f"{channel} allowed now", *notes]),
            requires_validation_notice=notice_owed,
        )
    return ContactDecision(
        allowed=False,
        at=candidate.astimezone(UTC),
        rule=next(iter(blockers)),
        reason="; ".join(
            ["; then ".join(blockers.values()), f"next allowed {_local(candidate, zone)}", *notes]
        ),
        requires_validation_notice=notice_owed,
    )


def earliest_contact(
    *,
    profile: ContactProfile,
    zone: ZoneInfo,
    channel: ContactChannel,
    address: str,
    attempts: Sequence[ContactAttempt],
    state: ContactState,
    now: datetime,
    horizon_days: int = 400,
) -> datetime | None:
    """`now` if the contact is allowed, the earliest instant it will be, or None if never."""
    return check_contact(
        profile=profile,
        zone=zone,
        channel=channel,
        address=address,
        attempts=attempts,
        state=state,
        now=now,
        horizon_days=horizon_days,
    ).at


def prune_attempts(
    attempts: Sequence[ContactAttempt], now: datetime, keep_days: int = 8
) -> list[ContactAttempt]:
    """The ledger without attempts no rule looks at any more, in its original order.

    8 days cover the shipped profiles (the US 7-day windows); a profile with longer windows needs
    `keep_days=profile.ledger_days()`.
    """
    cutoff = now - timedelta(days=keep_days)
    return [a for a in attempts if a.at >= cutoff]
