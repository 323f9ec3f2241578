"""DPD and due instants in the borrower's own calendar, across midnight and DST transitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from domain.calendar import days_past_due, due_instant, local_instant, start_of_local_day
from tests.domain.factories import LONDON, NEW_YORK, SHANGHAI

DUE = date(2026, 11, 25)


def test_east_of_utc_the_next_local_day_has_already_begun() -> None:
    # 17:00 UTC on the 25th is 01:00 on the 26th in Shanghai.
    assert days_past_due(DUE, datetime(2026, 11, 25, 17, 0, tzinfo=UTC), SHANGHAI) == 1


def test_east_of_utc_one_minute_before_local_midnight_is_still_the_due_date() -> None:
    # 15:59 UTC is 23:59 in Shanghai.
    assert days_past_due(DUE, datetime(2026, 11, 25, 15, 59, tzinfo=UTC), SHANGHAI) == 0


def test_west_of_utc_the_same_instant_is_still_the_due_date() -> None:
    # 17:00 UTC on the 25th is 12:00 on the 25th in New York.
    assert days_past_due(DUE, datetime(2026, 11, 25, 17, 0, tzinfo=UTC), NEW_YORK) == 0


def test_west_of_utc_the_utc_date_runs_ahead_of_the_local_one() -> None:
    # 04:30 UTC on the 26th is 23:30 on the 25th in New York (EST, -05:00); 05:00 UTC is local midnight.
    assert days_past_due(DUE, datetime(2026, 11, 26, 4, 30, tzinfo=UTC), NEW_YORK) == 0
    assert days_past_due(DUE, datetime(2026, 11, 26, 5, 0, tzinfo=UTC), NEW_YORK) == 1


def test_dpd_counts_local_days() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI)

    assert days_past_due(DUE, now, SHANGHAI) == 10


def test_dpd_before_the_due_date_is_zero_not_negative() -> None:
    assert days_past_due(DUE, datetime(2026, 11, 20, 12, 0, tzinfo=UTC), SHANGHAI) == 0


def test_local_instant_on_an_ordinary_day_keeps_the_wall_time() -> None:
    instant = local_instant(DUE, time(9, 0), SHANGHAI)

    assert instant.isoformat() == "2026-11-25T09:00:00+08:00"
    assert instant == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_local_instant_in_the_spring_forward_gap_moves_to_after_the_gap() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT in New York: 02:30 does not exist.
    instant = local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK)

    assert instant.isoformat() == "2026-03-08T03:30:00-04:00"
    assert instant == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_local_instant_in_the_fall_back_overlap_is_the_first_occurrence() -> None:
    # 2026-10-25 02:00 BST -> 01:00 GMT in London: 01:30 happens twice.
    instant = local_instant(date(2026, 10, 25), time(1, 30), LONDON)

    assert instant.isoformat() == "2026-10-25T01:30:00+01:00"
    # (an instant in a fold never compares == across zones, PEP 495: compare its UTC value)
    assert instant.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_due_instant_is_contact_time_on_the_dpd_day() -> None:
    instant = due_instant(DUE, 15, time(9, 0), SHANGHAI)

    assert instant.isoformat() == "2026-12-10T09:00:00+08:00"


def test_due_instants_across_a_dst_change_keep_the_local_wall_time() -> None:
    before = due_instant(date(2026, 3, 1), 0, time(9, 0), NEW_YORK)
    after = due_instant(date(2026, 3, 1), 10, time(9, 0), NEW_YORK)

    assert before.isoformat() == "2026-03-01T09:00:00-05:00"
    assert after.isoformat() == "2026-03-11T09:00:00-04:00"
    # (same-zone subtraction is wall-clock: compare the real elapsed time in UTC)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(days=10, hours=-1)


def test_start_of_local_day_is_local_midnight() -> None:
    assert start_of_local_day(DUE, NEW_YORK) == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
