"""Contact rules, one behaviour per test, with real profiles, zones and dates.

The server runs in UTC; borrowers live east (Shanghai), west (Los Angeles) and across DST changes (New York).
Times in the tests are the borrower's wall clock unless they say UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.contact_profiles import ContactChannel, ContactProfile, default_profiles
from domain.contact_rules import (
    ContactAttempt,
    ContactDecision,
    ContactState,
    check_contact,
    earliest_contact,
    prune_attempts,
)

PROFILES = default_profiles()
CN, US, UK = PROFILES["cn"], PROFILES["us"], PROFILES["uk"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
PHONE = "+8613800138000"
EMAIL = "li.na@example.com"


def local(zone: ZoneInfo, year: int, month: int, day: int, *hms: int, fold: int = 0) -> datetime:
    """A borrower-local wall time; `fold=1` picks the second of a repeated (fall-back) time."""
    hour, minute, second, microsecond = (*hms, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone, fold=fold)


def check(
    *,
    now: datetime,
    profile: ContactProfile = CN,
    zone: ZoneInfo = SHANGHAI,
    channel: ContactChannel = "sms",
    address: str = PHONE,
    attempts: Sequence[ContactAttempt] = (),
    state: ContactState | None = None,
    **kwargs: Any,
) -> ContactDecision:
    return check_contact(
        profile=profile,
        zone=zone,
        channel=channel,
        address=address,
        attempts=attempts,
        state=state or ContactState(),
        now=now,
        **kwargs,
    )


def with_profile(profile: ContactProfile, **changes: Any) -> ContactProfile:
    return ContactProfile.model_validate(profile.model_dump() | changes)


def call(at: datetime, *, connected: bool = False, right_party: bool = False) -> ContactAttempt:
    return ContactAttempt(channel="call", at=at, address=PHONE, connected=connected, right_party=right_party)


def assert_allowed(decision: ContactDecision, now: datetime) -> None:
    assert decision.allowed, decision.reason
    assert decision.at == now
    assert decision.rule == "ok"


def assert_deferred(decision: ContactDecision, at: datetime, rule: str) -> None:
    assert not decision.allowed
    assert decision.at == at, f"{decision.at} != {at}: {decision.reason}"
    assert decision.rule == rule, decision.reason


def assert_never(decision: ContactDecision, rule: str) -> None:
    assert not decision.allowed
    assert decision.at is None
    assert decision.rule == rule, decision.reason


# -- contact hours -------------------------------------------------------------------------------------------


def test_cn_step_due_at_2330_waits_for_0800_next_day() -> None:
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 23, 30))
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 26, 8, 0), "hours")
    assert decision.reason == (
        "outside contact hours 08:00-22:00 Asia/Shanghai; next allowed 2026-11-26 08:00 Asia/Shanghai"
    )


def test_cn_contact_at_exactly_2200_is_outside() -> None:
    assert_deferred(
        check(now=local(SHANGHAI, 2026, 11, 25, 22, 0)), local(SHANGHAI, 2026, 11, 26, 8, 0), "hours"
    )


def test_cn_contact_a_second_before_2200_is_inside() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 21, 59, 59)
    assert_allowed(check(now=now), now)


def test_us_contact_at_exactly_2100_is_outside() -> None:
    decision = check(now=local(NEW_YORK, 2026, 6, 10, 21, 0), profile=US, zone=NEW_YORK)
    assert_deferred(decision, local(NEW_YORK, 2026, 6, 11, 8, 0), "hours")


def test_us_contact_at_2059_is_inside() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 20, 59)
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK), now)


def test_window_opens_at_exactly_0800() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 8, 0)
    assert_allowed(check(now=now), now)


def test_early_morning_waits_for_0800_the_same_day() -> None:
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 7, 59))
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 25, 8, 0), "hours")


def test_local_midnight_waits_for_0800_the_same_local_day() -> None:
    decision = check(now=local(SHANGHAI, 2026, 11, 26, 0, 0))
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 26, 8, 0), "hours")


def test_last_microsecond_of_the_day_waits_for_the_next_day() -> None:
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 23, 59, 59, 999999))
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 26, 8, 0), "hours")


def test_borrower_east_of_the_server_uses_shanghai_time() -> None:
    # 15:30 UTC is afternoon on the server and 23:30 in Shanghai.
    decision = check(now=datetime(2026, 11, 25, 15, 30, tzinfo=UTC))
    assert_deferred(decision, datetime(2026, 11, 26, 0, 0, tzinfo=UTC), "hours")


def test_borrower_west_of_the_server_is_inside_hours_while_utc_is_past_midnight() -> None:
    now = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)  # 19:30 on the 25th in Los Angeles
    assert_allowed(check(now=now, profile=US, zone=LOS_ANGELES), now)


def test_borrower_west_of_the_server_waits_for_their_own_morning() -> None:
    decision = check(now=datetime(2026, 11, 26, 5, 30, tzinfo=UTC), profile=US, zone=LOS_ANGELES)  # 21:30
    assert_deferred(decision, datetime(2026, 11, 26, 16, 0, tzinfo=UTC), "hours")  # 08:00 PST


def test_letters_are_not_bound_by_hours() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 23, 30)
    assert_allowed(check(now=now, channel="letter"), now)


def test_channels_outside_hours_apply_to_are_free_of_hours() -> None:
    profile = with_profile(CN, hours_apply_to=["call", "visit"])
    now = local(SHANGHAI, 2026, 11, 25, 23, 30)
    assert_allowed(check(now=now, profile=profile, channel="sms"), now)


def test_us_hours_bind_email() -> None:
    decision = check(now=local(NEW_YORK, 2026, 6, 10, 6, 0), profile=US, zone=NEW_YORK, channel="email")
    assert_deferred(decision, local(NEW_YORK, 2026, 6, 10, 8, 0), "hours")


# -- daylight saving (America/New_York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00) ----------------


def test_spring_forward_night_waits_for_0800_edt() -> None:
    decision = check(now=local(NEW_YORK, 2026, 3, 8, 1, 30), profile=US, zone=NEW_YORK)
    # 01:30 EST is 06:30 UTC; 08:00 EDT is 12:00 UTC: five and a half hours later, not six and a half.
    assert_deferred(decision, datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "hours")


def test_spring_forward_eve_after_2100_waits_for_0800_edt() -> None:
    decision = check(now=local(NEW_YORK, 2026, 3, 7, 21, 0), profile=US, zone=NEW_YORK)
    assert_deferred(decision, datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "hours")


def test_fall_back_eve_after_2100_waits_for_0800_est() -> None:
    decision = check(now=local(NEW_YORK, 2026, 10, 31, 21, 0), profile=US, zone=NEW_YORK)
    assert_deferred(decision, datetime(2026, 11, 1, 13, 0, tzinfo=UTC), "hours")


def test_fall_back_day_window_closes_at_2100_est() -> None:
    now = datetime(2026, 11, 2, 1, 59, tzinfo=UTC)  # 20:59 EST on 1 November
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK), now)
    later = check(now=datetime(2026, 11, 2, 2, 0, tzinfo=UTC), profile=US, zone=NEW_YORK)  # 21:00 EST
    assert_deferred(later, datetime(2026, 11, 2, 13, 0, tzinfo=UTC), "hours")


def test_window_opening_inside_the_spring_forward_gap_opens_when_the_gap_ends() -> None:
    profile = with_profile(US, contact_hours_start=time(2, 30))
    decision = check(now=local(NEW_YORK, 2026, 3, 8, 1, 0), profile=profile, zone=NEW_YORK)
    # 02:30 does not exist that night; the first real instant at or after it is 03:00 EDT (07:00 UTC).
    assert_deferred(decision, datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "hours")


def test_window_closing_inside_the_spring_forward_gap_closes_at_the_gap() -> None:
    profile = with_profile(US, contact_hours_start=time(1, 0), contact_hours_end=time(2, 30))
    inside = local(NEW_YORK, 2026, 3, 8, 1, 59)
    assert_allowed(check(now=inside, profile=profile, zone=NEW_YORK), inside)
    after_gap = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT: past 02:30 on the wall clock
    decision = check(now=after_gap, profile=profile, zone=NEW_YORK)
    assert_deferred(decision, local(NEW_YORK, 2026, 3, 9, 1, 0), "hours")


def test_repeated_hour_before_the_window_waits_for_its_second_opening() -> None:
    profile = with_profile(US, contact_hours_start=time(1, 30))
    first_pass = local(NEW_YORK, 2026, 11, 1, 1, 45)  # EDT, inside
    assert_allowed(check(now=first_pass, profile=profile, zone=NEW_YORK), first_pass)
    second_pass = local(NEW_YORK, 2026, 11, 1, 1, 15, fold=1)  # EST: the wall clock shows 01:15 again
    decision = check(now=second_pass, profile=profile, zone=NEW_YORK)
    assert_deferred(decision, datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "hours")  # 01:30 EST


def test_window_closing_inside_the_repeated_hour_reopens_when_the_clock_goes_back() -> None:
    profile = with_profile(US, contact_hours_start=time(0, 30), contact_hours_end=time(1, 30))
    decision = check(now=local(NEW_YORK, 2026, 11, 1, 1, 45), profile=profile, zone=NEW_YORK)
    # At 02:00 EDT the wall clock goes back to 01:00 EST (06:00 UTC), inside [00:30, 01:30) again.
    assert_deferred(decision, datetime(2026, 11, 1, 6, 0, tzinfo=UTC), "hours")


# -- holidays and non-contact weekdays -----------------------------------------------------------------------


def test_holiday_eve_at_2330_waits_for_the_day_after_the_holiday() -> None:
    profile = with_profile(CN, holidays=[date(2026, 10, 1)])
    decision = check(now=local(SHANGHAI, 2026, 9, 30, 23, 30), profile=profile)
    assert_deferred(decision, local(SHANGHAI, 2026, 10, 2, 8, 0), "hours")
    assert "2026-10-01 is a non-contact holiday" in decision.reason


def test_on_a_holiday_contact_waits_for_the_next_working_morning() -> None:
    profile = with_profile(CN, holidays=[date(2026, 10, 1)])
    decision = check(now=local(SHANGHAI, 2026, 10, 1, 10, 0), profile=profile)
    assert_deferred(decision, local(SHANGHAI, 2026, 10, 2, 8, 0), "holiday")


def test_a_run_of_holidays_is_skipped_whole() -> None:
    golden_week = [date(2026, 10, d) for d in range(1, 8)]
    profile = with_profile(CN, holidays=golden_week)
    decision = check(now=local(SHANGHAI, 2026, 10, 1, 10, 0), profile=profile)
    assert_deferred(decision, local(SHANGHAI, 2026, 10, 8, 8, 0), "holiday")


def test_holidays_are_borrower_local_dates() -> None:
    profile = with_profile(CN, holidays=[date(2026, 10, 1)])
    now = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)  # still 30 September on the server, 07:00 on the holiday
    assert_deferred(check(now=now, profile=profile), local(SHANGHAI, 2026, 10, 2, 8, 0), "holiday")


def test_non_contact_weekday_waits_for_the_next_contact_day() -> None:
    profile = with_profile(UK, non_contact_weekdays=[6])
    decision = check(now=local(LONDON, 2026, 6, 14, 11, 0), profile=profile, zone=LONDON)  # a Sunday
    assert_deferred(decision, local(LONDON, 2026, 6, 15, 8, 0), "weekday")
    assert "2026-06-14 is a Sunday, a non-contact day" in decision.reason


def test_saturday_night_with_sunday_off_waits_for_monday_morning() -> None:
    profile = with_profile(UK, non_contact_weekdays=[6])
    decision = check(now=local(LONDON, 2026, 6, 13, 21, 30), profile=profile, zone=LONDON)
    assert_deferred(decision, local(LONDON, 2026, 6, 15, 8, 0), "hours")


def test_holidays_do_not_bind_letters() -> None:
    profile = with_profile(CN, holidays=[date(2026, 10, 1)])
    now = local(SHANGHAI, 2026, 10, 1, 10, 0)
    assert_allowed(check(now=now, profile=profile, channel="letter"), now)


# -- the borrower's preferred hours --------------------------------------------------------------------------


def test_preferred_hours_narrow_the_window() -> None:
    state = ContactState(preferred_hours=(time(18, 0), time(20, 0)))
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 10, 0), state=state)
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 25, 18, 0), "hours")
    assert "18:00-20:00 Asia/Shanghai (borrower's preferred hours 18:00-20:00)" in decision.reason


def test_preferred_hours_never_widen_the_profile_window() -> None:
    state = ContactState(preferred_hours=(time(6, 0), time(9, 0)))
    early = check(now=local(SHANGHAI, 2026, 11, 25, 6, 30), state=state)
    assert_deferred(early, local(SHANGHAI, 2026, 11, 25, 8, 0), "hours")
    late = check(now=local(SHANGHAI, 2026, 11, 25, 9, 0), state=state)
    assert_deferred(late, local(SHANGHAI, 2026, 11, 26, 8, 0), "hours")


def test_preferred_hours_outside_the_profile_window_fall_back_to_the_profile_and_say_so() -> None:
    state = ContactState(preferred_hours=(time(22, 30), time(23, 30)))
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    decision = check(now=now, state=state)
    assert_allowed(decision, now)
    assert "preferred hours 22:30-23:30 lie outside the profile's 08:00-22:00" in decision.reason


def test_preferred_hours_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="end must be after start"):
        ContactState(preferred_hours=(time(20, 0), time(9, 0)))


# -- call caps -----------------------------------------------------------------------------------------------


def test_cn_fourth_connected_call_of_the_day_waits_for_next_morning() -> None:
    calls = [call(local(SHANGHAI, 2026, 11, 25, h, 0), connected=True) for h in (9, 11, 14)]
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 16, 0), channel="call", attempts=calls)
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 26, 8, 0), "daily_call_cap")
    assert "3 connected calls on 2026-11-25 (at most 3 a day)" in decision.reason


def test_cn_unanswered_calls_do_not_count_toward_the_daily_cap() -> None:
    calls = [call(local(SHANGHAI, 2026, 11, 25, h, 0)) for h in (9, 11, 14)]
    now = local(SHANGHAI, 2026, 11, 25, 16, 0)
    assert_allowed(check(now=now, channel="call", attempts=calls), now)


def test_cn_daily_cap_counts_the_borrower_local_day() -> None:
    calls = [call(local(SHANGHAI, 2026, 11, 25, h, 0), connected=True) for h in (9, 11, 14)]
    now = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 25 November in UTC, 08:30 on the 26th in Shanghai
    assert_allowed(check(now=now, channel="call", attempts=calls), now)


def test_cn_daily_cap_binds_only_calls() -> None:
    calls = [call(local(SHANGHAI, 2026, 11, 25, h, 0), connected=True) for h in (9, 11, 14)]
    now = local(SHANGHAI, 2026, 11, 25, 16, 0)
    assert_allowed(check(now=now, channel="sms", attempts=calls), now)


def test_us_eighth_call_in_seven_days_waits_until_the_oldest_leaves_the_window() -> None:
    oldest = local(NEW_YORK, 2026, 6, 3, 10, 0)
    calls = [call(oldest + timedelta(days=d)) for d in range(7)]  # one a day, 3..9 June at 10:00
    decision = check(
        now=local(NEW_YORK, 2026, 6, 9, 15, 0), profile=US, zone=NEW_YORK, channel="call", attempts=calls
    )
    assert_deferred(decision, oldest + timedelta(days=7), "call_attempt_cap")
    assert "7 call attempts within 7 days (at most 7)" in decision.reason


def test_us_cap_release_outside_hours_waits_for_the_next_window() -> None:
    oldest = local(NEW_YORK, 2026, 6, 3, 20, 50)
    calls = [call(oldest), *(call(local(NEW_YORK, 2026, 6, d, 12, 0)) for d in range(4, 10))]
    decision = check(
        now=local(NEW_YORK, 2026, 6, 9, 15, 0), profile=US, zone=NEW_YORK, channel="call", attempts=calls
    )
    # Released 10 June 20:50, inside the hours; it would be 11 June 08:00 had the oldest been at 21:30.
    assert_deferred(decision, local(NEW_YORK, 2026, 6, 10, 20, 50), "call_attempt_cap")
    late = [call(local(NEW_YORK, 2026, 6, 3, 21, 30)), *calls[1:]]
    decision = check(
        now=local(NEW_YORK, 2026, 6, 9, 15, 0), profile=US, zone=NEW_YORK, channel="call", attempts=late
    )
    assert_deferred(decision, local(NEW_YORK, 2026, 6, 11, 8, 0), "call_attempt_cap")


def test_us_calls_exactly_seven_days_old_no_longer_count() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    calls = [call(now - timedelta(days=7)), *(call(now - timedelta(days=d)) for d in range(1, 7))]
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK, channel="call", attempts=calls), now)


def test_us_more_attempts_than_the_cap_wait_until_enough_leave_the_window() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    times = [now - timedelta(days=6, hours=h) for h in (3, 2, 1)] + [
        now - timedelta(days=d) for d in range(1, 7)
    ]
    calls = [call(t) for t in times]  # 9 calls in the window: three must leave before the next
    decision = check(now=now, profile=US, zone=NEW_YORK, channel="call", attempts=calls)
    assert_deferred(decision, sorted(times)[2] + timedelta(days=7), "call_attempt_cap")


def test_us_no_call_within_seven_days_after_a_conversation() -> None:
    conversation = local(NEW_YORK, 2026, 6, 7, 11, 0)
    decision = check(
        now=local(NEW_YORK, 2026, 6, 10, 11, 0),
        profile=US,
        zone=NEW_YORK,
        channel="call",
        attempts=[call(conversation, connected=True, right_party=True)],
    )
    assert_deferred(decision, conversation + timedelta(days=7), "quiet_after_conversation")


def test_us_quiet_period_ends_after_seven_days() -> None:
    now = local(NEW_YORK, 2026, 6, 14, 11, 0)
    attempts = [call(now - timedelta(days=7), connected=True, right_party=True)]
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK, channel="call", attempts=attempts), now)


def test_us_a_call_answered_by_someone_else_starts_no_quiet_period() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    attempts = [call(now - timedelta(days=1), connected=True)]
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK, channel="call", attempts=attempts), now)


def test_us_quiet_period_binds_only_calls() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    attempts = [call(now - timedelta(days=1), connected=True, right_party=True)]
    state = ContactState(validation_notice_sent_at=now - timedelta(days=20))
    assert_allowed(check(now=now, profile=US, zone=NEW_YORK, attempts=attempts, state=state), now)


# -- message spacing -----------------------------------------------------------------------------------------


def test_message_spacing_counts_every_message_channel() -> None:
    profile = with_profile(CN, min_hours_between_messages=24)
    email_at = local(SHANGHAI, 2026, 11, 25, 10, 0)
    attempts = [ContactAttempt(channel="email", at=email_at, address=EMAIL)]
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 15, 0), profile=profile, attempts=attempts)
    assert_deferred(decision, local(SHANGHAI, 2026, 11, 26, 10, 0), "message_spacing")


def test_message_spacing_does_not_bind_calls() -> None:
    profile = with_profile(CN, min_hours_between_messages=24)
    attempts = [ContactAttempt(channel="sms", at=local(SHANGHAI, 2026, 11, 25, 10, 0), address=PHONE)]
    now = local(SHANGHAI, 2026, 11, 25, 15, 0)
    assert_allowed(check(now=now, profile=profile, channel="call", attempts=attempts), now)


def test_message_spacing_is_off_by_default() -> None:
    attempts = [ContactAttempt(channel="sms", at=local(SHANGHAI, 2026, 11, 25, 10, 0), address=PHONE)]
    now = local(SHANGHAI, 2026, 11, 25, 10, 5)
    assert_allowed(check(now=now, attempts=attempts), now)


# -- holds ---------------------------------------------------------------------------------------------------


def test_hardship_hold_defers_to_its_end() -> None:
    until = local(SHANGHAI, 2026, 12, 9, 10, 0)
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 10, 0), state=ContactState(hardship_until=until))
    assert_deferred(decision, until, "hardship")


def test_hardship_hold_ending_at_night_defers_to_the_next_window() -> None:
    until = local(SHANGHAI, 2026, 12, 9, 23, 0)
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 10, 0), state=ContactState(hardship_until=until))
    assert_deferred(decision, local(SHANGHAI, 2026, 12, 10, 8, 0), "hardship")
    assert decision.reason.startswith(
        "hardship hold until 2026-12-09 23:00 Asia/Shanghai; then outside contact hours 08:00-22:00"
    )


def test_expired_hardship_hold_does_not_defer() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_allowed(check(now=now, state=ContactState(hardship_until=now - timedelta(seconds=1))), now)


def test_breathing_space_defers_every_channel_including_letters() -> None:
    until = local(LONDON, 2026, 8, 9, 10, 0)
    state = ContactState(breathing_space_until=until)
    for channel in ("sms", "call", "letter"):
        decision = check(
            now=local(LONDON, 2026, 6, 10, 10, 0), profile=UK, zone=LONDON, channel=channel, state=state
        )
        assert_deferred(decision, until, "breathing_space")


def test_the_rule_blocking_now_names_the_deferral() -> None:
    state = ContactState(breathing_space_until=local(LONDON, 2026, 6, 11, 10, 0))
    decision = check(now=local(LONDON, 2026, 6, 10, 23, 0), profile=UK, zone=LONDON, state=state)
    assert decision.rule == "breathing_space"


def test_us_open_dispute_stops_every_channel_until_resolved() -> None:
    state = ContactState(dispute_open=True)
    for channel in ("sms", "call", "letter"):
        decision = check(
            now=local(NEW_YORK, 2026, 6, 10, 10, 0), profile=US, zone=NEW_YORK, channel=channel, state=state
        )
        assert_never(decision, "dispute")


def test_cn_open_dispute_does_not_stop_contact() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_allowed(check(now=now, state=ContactState(dispute_open=True)), now)


def test_cease_all_stops_contact_for_good() -> None:
    decision = check(
        now=local(SHANGHAI, 2026, 11, 25, 10, 0), channel="call", state=ContactState(cease_all=True)
    )
    assert_never(decision, "cease_all")


def test_cease_all_still_allows_a_letter() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_allowed(check(now=now, channel="letter", state=ContactState(cease_all=True)), now)


def test_stopped_collection_stops_letters_too() -> None:
    state = ContactState(collection_stopped="deceased")
    decision = check(now=local(SHANGHAI, 2026, 11, 25, 10, 0), channel="letter", state=state)
    assert_never(decision, "collection_stopped")
    assert decision.reason == "collection stopped (deceased): never contact again"


def test_collection_stopped_is_a_code_not_free_text() -> None:
    with pytest.raises(ValidationError):
        ContactState(collection_stopped="Li Na died on 3 May")


def test_opted_out_channel_is_closed_and_the_others_stay_open() -> None:
    state = ContactState(opted_out_channels=["sms"])
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_never(check(now=now, state=state), "opted_out_channel")
    assert_allowed(check(now=now, channel="email", address=EMAIL, state=state), now)


def test_opted_out_address_matches_despite_formatting() -> None:
    state = ContactState(opted_out_addresses=["+86 138-0013-8000", "Li.Na@Example.com"])
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_never(check(now=now, address=PHONE, state=state), "opted_out_address")
    assert_never(check(now=now, channel="email", address=EMAIL, state=state), "opted_out_address")


def test_unreachable_address_is_never_contacted() -> None:
    state = ContactState(unreachable_addresses=[PHONE])
    assert_never(check(now=local(SHANGHAI, 2026, 11, 25, 10, 0), channel="call", state=state), "unreachable")


def test_letters_ignore_opt_outs_and_unreachable_addresses() -> None:
    state = ContactState(
        opted_out_channels=["letter"], opted_out_addresses=["postal"], unreachable_addresses=["postal"]
    )
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    assert_allowed(check(now=now, channel="letter", address="postal", state=state), now)


def test_reasons_never_name_the_address() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 23, 0)
    states = [
        ContactState(opted_out_addresses=[PHONE]),
        ContactState(unreachable_addresses=[PHONE]),
        ContactState(),
    ]
    for state in states:
        assert PHONE not in check(now=now, state=state).reason


# -- US validation notice ------------------------------------------------------------------------------------


def test_us_first_contact_must_carry_the_validation_notice() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    decision = check(now=now, profile=US, zone=NEW_YORK)
    assert_allowed(decision, now)
    assert decision.requires_validation_notice
    assert "validation notice" in decision.reason


def test_us_no_notice_needed_once_sent() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    state = ContactState(
        first_contact_at=now - timedelta(days=10), validation_notice_sent_at=now - timedelta(days=9)
    )
    decision = check(now=now, profile=US, zone=NEW_YORK, state=state)
    assert_allowed(decision, now)
    assert not decision.requires_validation_notice


def test_us_within_five_days_of_first_contact_contact_goes_with_the_notice() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    decision = check(
        now=now, profile=US, zone=NEW_YORK, state=ContactState(first_contact_at=now - timedelta(days=5))
    )
    assert_allowed(decision, now)
    assert decision.requires_validation_notice


def test_us_overdue_validation_notice_blocks_all_but_letters() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    state = ContactState(first_contact_at=now - timedelta(days=5, seconds=1))
    assert_never(check(now=now, profile=US, zone=NEW_YORK, state=state), "validation_notice_overdue")
    letter = check(now=now, profile=US, zone=NEW_YORK, channel="letter", state=state)
    assert_allowed(letter, now)
    assert letter.requires_validation_notice


def test_us_deferral_past_the_notice_deadline_is_blocked() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 10, 0)
    state = ContactState(first_contact_at=now - timedelta(days=4), hardship_until=now + timedelta(days=2))
    decision = check(now=now, profile=US, zone=NEW_YORK, state=state)
    assert_never(decision, "validation_notice_overdue")
    assert "no earlier than 2026-06-12 10:00 America/New_York" in decision.reason


def test_cn_needs_no_validation_notice() -> None:
    assert not check(now=local(SHANGHAI, 2026, 11, 25, 10, 0)).requires_validation_notice


# -- horizon, inputs, helpers --------------------------------------------------------------------------------


def test_no_allowed_instant_within_the_horizon_is_never() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    decision = check(now=now, state=ContactState(hardship_until=now + timedelta(days=500)))
    assert_never(decision, "hardship")
    assert decision.reason.startswith(
        "no allowed instant within 400 days: hardship hold until 2028-04-08 10:00"
    )


def test_horizon_is_configurable() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 10, 0)
    state = ContactState(hardship_until=now + timedelta(days=20))
    assert_never(check(now=now, state=state, horizon_days=10), "hardship")
    assert_deferred(check(now=now, state=state, horizon_days=30), now + timedelta(days=20), "hardship")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone offset"):
        check(now=datetime(2026, 11, 25, 10, 0))


def test_attempts_need_an_aware_instant() -> None:
    with pytest.raises(ValidationError):
        ContactAttempt(channel="call", at=datetime(2026, 11, 25, 10, 0), address=PHONE)


def test_checking_again_at_the_deferred_instant_allows_the_contact() -> None:
    calls = [call(local(SHANGHAI, 2026, 11, 25, h, 0), connected=True) for h in (9, 11, 14)]
    deferred = check(now=local(SHANGHAI, 2026, 11, 25, 16, 0), channel="call", attempts=calls)
    assert deferred.at is not None
    assert_allowed(check(now=deferred.at, channel="call", attempts=calls), deferred.at)


def test_earliest_contact_is_the_decisions_instant() -> None:
    now = local(SHANGHAI, 2026, 11, 25, 23, 30)
    kwargs: dict[str, Any] = {
        "profile": CN,
        "zone": SHANGHAI,
        "channel": "sms",
        "address": PHONE,
        "attempts": [],
        "state": ContactState(),
        "now": now,
    }
    assert earliest_contact(**kwargs) == local(SHANGHAI, 2026, 11, 26, 8, 0)


def test_prune_keeps_eight_days_in_order() -> None:
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    attempts = [call(now - timedelta(days=d)) for d in (9, 3, 8, 1)]
    assert prune_attempts(attempts, now) == [attempts[1], attempts[2], attempts[3]]


def test_prune_keeps_what_a_long_window_profile_needs() -> None:
    profile = with_profile(US, call_attempt_window_days=30)
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    attempts = [call(now - timedelta(days=20))]
    assert prune_attempts(attempts, now, keep_days=profile.ledger_days()) == attempts
