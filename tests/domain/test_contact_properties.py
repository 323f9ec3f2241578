"""Property tests of the contact rules (hypothesis, 300 examples each).

Generated profiles (any window within a day, holidays, non-contact weekdays, caps), zones with and without
daylight saving (30-minute shifts, shifts at midnight, a fall-back to the previous day), ledgers, states,
channels and instants clustered around each zone's 2026 offset changes. Two focused generators make the
rarest interactions common: hours across an offset change, and calls on a dense ledger under every call rule.
The oracle below restates each rule directly on the wall clock, independently of the fixpoint and the
offset-piece search it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.contact_profiles import CONTACT_CHANNELS, ContactChannel, ContactProfile
from domain.contact_rules import (
    MESSAGE_CHANNELS,
    ContactAttempt,
    ContactDecision,
    ContactState,
    check_contact,
)

PROPERTY = settings(max_examples=300, deadline=None)

ZONES = [
    ZoneInfo(key)
    for key in (
        "UTC",
        "Asia/Shanghai",
        "Asia/Kolkata",  # +05:30
        "America/New_York",
        "America/Los_Angeles",
        "Europe/London",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "America/Havana",  # DST changes at midnight
        "Asia/Beirut",  # falls back from 00:00 to 23:00 of the previous day
    )
]


def offset_changes(zone: ZoneInfo, year: int = 2026) -> list[datetime]:
    """The hours of `year` in which `zone` changes its UTC offset (found by an hourly scan)."""
    hour = datetime(year, 1, 1, tzinfo=UTC)
    changes = []
    while hour.year == year:
        if hour.astimezone(zone).utcoffset() != (hour + timedelta(hours=1)).astimezone(zone).utcoffset():
            changes.append(hour)
        hour += timedelta(hours=1)
    return changes


# Instants are drawn around the zone's own offset changes two times in three, anywhere in 2026 otherwise.
CHANGES = {zone.key: offset_changes(zone) for zone in ZONES}
assert sum(map(len, CHANGES.values())) >= 12, CHANGES

PHONES = ["+8613800138000", "+12025550143", "li.na@example.com", "postal"]
QUARTER = 15  # minutes
DAY_MINUTES = 24 * 60

# Strategies are built once: building them inside each draw costs more than the rules under test.
_MAYBE_SMALL = st.one_of(st.none(), st.integers(1, 7))
_NEAR_CHANGE = st.integers(-DAY_MINUTES - DAY_MINUTES // 2, DAY_MINUTES // 2)  # minutes from the change
_IN_THE_YEAR = st.integers(0, 365 * DAY_MINUTES)  # minutes from 2026-01-01 UTC
_MICROSECONDS = st.sampled_from([0, 0, 1, 999_999])
# Calls (the most rules) 40 % and letters (the most exceptions) 20 % of the time.
CHANNEL_MIX: tuple[ContactChannel, ...] = (
    *("call", "sms", "letter", "call", "email"),
    *("call", "push", "letter", "call", "visit"),
)
_CHANNELS = st.sampled_from(CHANNEL_MIX)
_PROFILE_FIELDS = st.fixed_dictionaries(
    {
        "start": st.integers(0, DAY_MINUTES // QUARTER - 1),
        "length": st.integers(1, DAY_MINUTES // QUARTER),
        "holidays": st.lists(st.integers(-2, 10), max_size=6),
        "hours_apply_to": st.lists(st.sampled_from(CONTACT_CHANNELS), unique=True),
        "non_contact_weekdays": st.lists(st.integers(0, 6), unique=True, max_size=3),
        "max_connected_calls_per_day": st.one_of(st.none(), st.integers(1, 4)),
        "max_call_attempts": st.one_of(st.none(), st.integers(1, 8)),
        "call_attempt_window_days": st.integers(1, 7),
        "quiet_days_after_conversation": _MAYBE_SMALL,
        "min_hours_between_messages": st.one_of(st.none(), st.integers(1, 72)),
        "validation_notice_within_days": _MAYBE_SMALL,
        "dispute_stops_collection": st.booleans(),
        "breathing_space_days": st.one_of(st.none(), st.just(60)),
    }
)
_CALL: st.SearchStrategy[ContactChannel] = st.just("call")
# Calls are the channel with the most rules: half of the ledger, often within the last day.
_ATTEMPTS = st.lists(
    st.tuples(
        st.one_of(_CALL, st.sampled_from(CONTACT_CHANNELS)),
        st.one_of(st.integers(0, DAY_MINUTES), st.integers(0, 9 * DAY_MINUTES)),  # minutes before now
        st.sampled_from(PHONES),
        st.sampled_from(["no_answer", "answered", "right_party"]),
    ),
    max_size=12,
)


def _rarely(value: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.none(), st.none(), value)


_STATE_FIELDS = st.fixed_dictionaries(
    {
        # Rare but present; not 0, which hypothesis favours.
        "dispute_open": st.integers(0, 14).map(lambda n: n == 11),
        "hardship": _rarely(st.integers(-2 * DAY_MINUTES, 60 * DAY_MINUTES)),
        "breathing_space": _rarely(st.integers(-2 * DAY_MINUTES, 60 * DAY_MINUTES)),
        "cease_all": st.integers(0, 11).map(lambda n: n == 7),
        "collection_stopped": st.integers(0, 11).map(lambda n: "bankruptcy" if n == 7 else None),
        "opted_out_channels": st.lists(st.sampled_from(CONTACT_CHANNELS), max_size=1),
        "opted_out_addresses": st.lists(st.sampled_from(PHONES), max_size=1),
        "unreachable_addresses": st.lists(st.sampled_from(PHONES), max_size=1),
        "preferred": _rarely(st.integers(0, DAY_MINUTES // QUARTER - 1)),
        "preferred_length": st.integers(1, DAY_MINUTES // QUARTER),
        "first_contact": _rarely(st.integers(0, 10 * DAY_MINUTES)),  # minutes before now
        "notice_sent": st.booleans(),
    }
)


def wall(quarters: int) -> time:
    minutes = quarters * QUARTER
    return time.max if minutes >= DAY_MINUTES else time(minutes // 60, minutes % 60)


def profile_from(fields: dict[str, Any], now: datetime) -> ContactProfile:
    start, length, holidays = fields.pop("start"), fields.pop("length"), fields.pop("holidays")
    return ContactProfile(
        name="generated",
        contact_hours_start=wall(start),
        contact_hours_end=wall(min(start + length, DAY_MINUTES // QUARTER)),
        holidays=[now.date() + timedelta(days=d) for d in holidays],
        retention_years=3,
        **fields,
    )


def ledger_from(rows: list[tuple[ContactChannel, int, str, str]], now: datetime) -> list[ContactAttempt]:
    return [
        ContactAttempt(
            channel=channel,
            at=now - timedelta(minutes=before),
            address=address,
            connected=outcome != "no_answer",
            right_party=outcome == "right_party",
        )
        for channel, before, address, outcome in rows
    ]


def state_from(fields: dict[str, Any], now: datetime) -> ContactState:
    def later(minutes: int | None) -> datetime | None:
        return None if minutes is None else now + timedelta(minutes=minutes)

    first_contact = later(None if fields["first_contact"] is None else -fields["first_contact"])
    preferred = fields["preferred"]
    return ContactState(
        dispute_open=fields["dispute_open"],
        hardship_until=later(fields["hardship"]),
        breathing_space_until=later(fields["breathing_space"]),
        cease_all=fields["cease_all"],
        collection_stopped=fields["collection_stopped"],
        opted_out_channels=fields["opted_out_channels"],
        opted_out_addresses=fields["opted_out_addresses"],
        unreachable_addresses=fields["unreachable_addresses"],
        preferred_hours=None
        if preferred is None
        else (wall(preferred), wall(min(preferred + fields["preferred_length"], DAY_MINUTES // QUARTER))),
        validation_notice_sent_at=first_contact if fields["notice_sent"] else None,
        first_contact_at=first_contact,
    )


@dataclass(frozen=True)
class Scenario:
    profile: ContactProfile
    zone: ZoneInfo
    channel: ContactChannel
    address: str
    attempts: list[ContactAttempt]
    state: ContactState
    now: datetime

    def decide(self, **changes: Any) -> ContactDecision:
        arguments: dict[str, Any] = {
            "profile": self.profile,
            "zone": self.zone,
            "channel": self.channel,
            "address": self.address,
            "attempts": self.attempts,
            "state": self.state,
            "now": self.now,
        }
        return check_contact(**(arguments | changes))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = draw(st.sampled_from(ZONES))
    changes = CHANGES[zone.key]
    if changes and draw(st.integers(0, 2)) > 0:
        now = draw(st.sampled_from(changes)) + timedelta(minutes=draw(_NEAR_CHANGE))
    else:
        now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(_IN_THE_YEAR))
    now += timedelta(microseconds=draw(_MICROSECONDS))
    return Scenario(
        profile=profile_from(draw(_PROFILE_FIELDS), now),
        zone=zone,
        channel=draw(_CHANNELS),
        address=draw(st.sampled_from(PHONES)),
        attempts=ledger_from(draw(_ATTEMPTS), now),
        state=state_from(draw(_STATE_FIELDS), now),
        now=now,
    )


# Focused scenarios: no permanent block and no hold, so the rule under test decides most answers.
_ZONES_WITH_CHANGES = [zone for zone in ZONES if CHANGES[zone.key]]
_DENSE_CALLS = st.lists(
    st.tuples(
        _CALL,
        st.integers(0, 3 * DAY_MINUTES),
        st.sampled_from(PHONES),
        st.sampled_from(["no_answer", "answered", "answered", "right_party"]),
    ),
    max_size=14,
)


_NO_CAPS = {
    "max_connected_calls_per_day": None,
    "max_call_attempts": None,
    "quiet_days_after_conversation": None,
    "min_hours_between_messages": None,
    "validation_notice_within_days": None,
}


@st.composite
def wall_clock_scenarios(draw: st.DrawFn) -> Scenario:
    """Hours, holidays and weekdays alone, with `now` within a day and a half before an offset change."""
    zone = draw(st.sampled_from(_ZONES_WITH_CHANGES))
    now = draw(st.sampled_from(CHANGES[zone.key])) + timedelta(minutes=draw(_NEAR_CHANGE))
    fields = draw(_PROFILE_FIELDS) | _NO_CAPS | {"hours_apply_to": ["sms"]}
    preferred = draw(_rarely(st.integers(0, DAY_MINUTES // QUARTER - 1)))
    length = draw(st.integers(1, DAY_MINUTES // QUARTER))
    hours = (
        None
        if preferred is None
        else (wall(preferred), wall(min(preferred + length, DAY_MINUTES // QUARTER)))
    )
    return Scenario(
        profile=profile_from(fields, now),
        zone=zone,
        channel="sms",
        address=PHONES[0],
        attempts=[],
        state=ContactState(preferred_hours=hours),
        now=now,
    )


@st.composite
def call_scenarios(draw: st.DrawFn) -> Scenario:
    """Calls under every call rule at once, on a ledger of recent calls."""
    zone = draw(st.sampled_from(ZONES))
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(_IN_THE_YEAR))
    fields = draw(_PROFILE_FIELDS) | {
        "max_connected_calls_per_day": draw(st.integers(1, 4)),
        "max_call_attempts": draw(st.integers(1, 8)),
        "quiet_days_after_conversation": draw(st.one_of(st.none(), st.integers(1, 3))),
        "hours_apply_to": draw(st.sampled_from([[], ["call"]])),
    }
    return Scenario(
        profile=profile_from(fields, now),
        zone=zone,
        channel="call",
        address=PHONES[0],
        attempts=ledger_from(draw(_DENSE_CALLS), now),
        state=ContactState(),
        now=now,
    )


# -- the oracle: each rule restated on the borrower's wall clock ---------------------------------------------


def address_key(address: str) -> str:
    address = address.strip().casefold()
    return address if "@" in address else "".join(c for c in address if c not in " -().")


def permanently_blocked(s: Scenario) -> bool:
    state = s.state
    if state.collection_stopped or (state.dispute_open and s.profile.dispute_stops_collection):
        return True
    if s.channel == "letter":
        return False
    return (
        state.cease_all
        or s.channel in state.opted_out_channels
        or address_key(s.address) in {address_key(a) for a in state.opted_out_addresses}
        or address_key(s.address) in {address_key(a) for a in state.unreachable_addresses}
    )


def window(profile: ContactProfile, state: ContactState) -> tuple[time, time]:
    start, end = profile.contact_hours_start, profile.contact_hours_end
    if state.preferred_hours is not None:
        both = max(start, state.preferred_hours[0]), min(end, state.preferred_hours[1])
        if both[0] < both[1]:
            return both
    return start, end


def violations(s: Scenario, at: datetime) -> list[str]:
    """Every rule a contact at `at` would break (permanent blocks and the notice deadline aside)."""
    profile, state = s.profile, s.state
    broken = []
    local = at.astimezone(s.zone)
    for name, until in (("hardship", state.hardship_until), ("breathing_space", state.breathing_space_until)):
        if until is not None and at < until:
            broken.append(name)
    if s.channel in profile.hours_apply_to:
        start, end = window(profile, state)
        if not start <= local.time() < end:
            broken.append("hours")
        if local.date() in profile.holidays:
            broken.append("holiday")
        if local.weekday() in profile.non_contact_weekdays:
            broken.append("weekday")
    calls = [a for a in s.attempts if a.channel == "call"]
    if s.channel == "call" and profile.max_connected_calls_per_day is not None:
        today = [a for a in calls if a.connected and a.at.astimezone(s.zone).date() == local.date()]
        if len(today) >= profile.max_connected_calls_per_day:
            broken.append("daily_call_cap")
    if s.channel == "call" and profile.max_call_attempts is not None:
        window_start = at - timedelta(days=profile.call_attempt_window_days)
        if len([a for a in calls if window_start < a.at <= at]) >= profile.max_call_attempts:
            broken.append("call_attempt_cap")
    if s.channel == "call" and profile.quiet_days_after_conversation is not None:
        quiet = timedelta(days=profile.quiet_days_after_conversation)
        if any(a.right_party and at < a.at + quiet for a in calls):
            broken.append("quiet_after_conversation")
    if s.channel in MESSAGE_CHANNELS and profile.min_hours_between_messages is not None:
        spacing = timedelta(hours=profile.min_hours_between_messages)
        if any(a.channel in MESSAGE_CHANNELS and at < a.at + spacing for a in s.attempts):
            broken.append("message_spacing")
    return broken


def notice_deadline(s: Scenario) -> datetime | None:
    days, state = s.profile.validation_notice_within_days, s.state
    if days is None or state.validation_notice_sent_at or not state.first_contact_at or s.channel == "letter":
        return None
    return state.first_contact_at + timedelta(days=days)


# -- properties ----------------------------------------------------------------------------------------------


def assert_allowed_breaks_no_rule(s: Scenario) -> None:
    decision = s.decide()
    if decision.allowed:
        assert decision.at == s.now
        assert decision.rule == "ok"
        assert violations(s, s.now) == []
        assert not permanently_blocked(s)
        deadline = notice_deadline(s)
        assert deadline is None or s.now <= deadline


def assert_deferred_to_the_earliest_instant(s: Scenario) -> None:
    decision = s.decide()
    if decision.allowed or decision.at is None:
        return
    assert decision.at > s.now
    assert violations(s, s.now), "deferred although no rule is broken now"
    again = s.decide(now=decision.at)
    assert again.allowed, again.reason
    assert violations(s, decision.at) == []
    # The earliest instant: just before it a rule still blocks, and from there the answer is the same instant.
    just_before = decision.at - timedelta(microseconds=1)
    assert violations(s, just_before), "a later instant than the rules require"
    before = s.decide(now=just_before)
    assert not before.allowed
    assert before.at == decision.at


@PROPERTY
@given(s=scenarios())
def test_an_allowed_contact_breaks_no_rule(s: Scenario) -> None:
    assert_allowed_breaks_no_rule(s)


@PROPERTY
@given(s=scenarios())
def test_a_deferred_contact_is_allowed_at_its_instant_and_not_a_moment_before(s: Scenario) -> None:
    assert_deferred_to_the_earliest_instant(s)


@PROPERTY
@given(s=wall_clock_scenarios())
def test_hours_across_offset_changes_open_at_the_first_instant_inside(s: Scenario) -> None:
    assert_allowed_breaks_no_rule(s)
    assert_deferred_to_the_earliest_instant(s)


@PROPERTY
@given(s=call_scenarios())
def test_call_caps_and_quiet_period_defer_to_the_first_instant_they_allow(s: Scenario) -> None:
    assert_allowed_breaks_no_rule(s)
    assert_deferred_to_the_earliest_instant(s)


@PROPERTY
@given(s=scenarios())
def test_never_exactly_when_a_permanent_block_or_an_overdue_notice(s: Scenario) -> None:
    decision = s.decide()
    deadline = notice_deadline(s)
    if permanently_blocked(s):
        assert decision.at is None
        assert not decision.allowed
    elif deadline is not None and s.now > deadline:
        assert decision.at is None
        assert decision.rule == "validation_notice_overdue"
    elif decision.at is None:
        # The notice is still in time now, but the earliest contact the other rules allow is past it.
        assert decision.rule == "validation_notice_overdue", decision.reason
        assert deadline is not None
        without_notice = s.decide(state=s.state.model_copy(update={"first_contact_at": None}))
        assert without_notice.at is not None
        assert without_notice.at > deadline
    else:
        assert decision.at >= s.now


def in_utc(decision: ContactDecision) -> ContactDecision:
    return decision.model_copy(update={"at": decision.at and decision.at.astimezone(UTC)})


@PROPERTY
@given(s=scenarios(), zone_of_now=st.sampled_from(ZONES), order=st.randoms(use_true_random=False))
def test_the_decision_is_deterministic(s: Scenario, zone_of_now: ZoneInfo, order: Random) -> None:
    decision = s.decide()
    assert s.decide() == decision
    # The same instant written in another zone, and the ledger in another order, change nothing.
    attempts = list(s.attempts)
    order.shuffle(attempts)
    other = s.decide(now=s.now.astimezone(zone_of_now), attempts=attempts)
    # Compared in UTC: Python never finds a wall time in a fall-back fold equal to an instant in another zone.
    assert in_utc(other) == in_utc(decision)


@PROPERTY
@given(s=scenarios())
def test_reasons_never_name_an_address(s: Scenario) -> None:
    reason = s.decide().reason
    assert reason
    assert not any(address in reason for address in PHONES)


def test_generated_scenarios_reach_every_kind_of_answer() -> None:
    """Guard against a generator that never defers, never allows or never blocks for good."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(s=scenarios())
    def collect(s: Scenario) -> None:
        decision = s.decide()
        seen.add(decision.rule)
        seen.add("allowed" if decision.allowed else "deferred" if decision.at else "never")

    collect()
    assert {"allowed", "deferred", "never", "hours", "ok"} <= seen
    assert len(seen - {"allowed", "deferred", "never"}) >= 10, seen
