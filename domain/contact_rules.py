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
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.contact_profiles import WEEKDAY_NAMES, ContactChannel, ContactProfile
from domain.loan import require_aware
from domain.wall_clock import (
    WHOLE_DAY as _WHOLE_DAY,
)
from domain.wall_clock import (
    hm as _hm,
)
from domain.wall_clock import (
    local_label as _local,
)
from domain.wall_clock import (
    next_open as _next_open,
)

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

from domain.contact_state import (
    MESSAGE_CHANNELS,
    ContactAttempt,
    ContactDecision,
    ContactRule,
    ContactState,
)


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
