"""The per-loan contact offset (domain.herd): deterministic, within bounds, roughly uniform, within hours."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.decision import Children, due_steps
from domain.herd import describe_offset, loan_contact_time, spread_offset, usable_spread
from tests.domain.factories import DEFAULT, loan, open_case

PROPERTY = settings(max_examples=300, deadline=None)
LOAN_IDS = st.text(min_size=1, max_size=40)
TIMES = st.times().map(lambda t: t.replace(microsecond=0))


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@PROPERTY
@given(loan_id=LOAN_IDS, minutes=st.integers(min_value=0, max_value=720))
def test_the_offset_is_a_whole_second_within_the_spread(loan_id: str, minutes: int) -> None:
    offset = spread_offset(loan_id, timedelta(minutes=minutes))
    assert offset == spread_offset(loan_id, timedelta(minutes=minutes))
    assert timedelta(0) <= offset < max(timedelta(minutes=minutes), timedelta(seconds=1))
    assert offset.microseconds == 0


@PROPERTY
@given(loan_id=LOAN_IDS, at=TIMES, minutes=st.integers(min_value=0, max_value=720), end=TIMES)
def test_the_loans_contact_time_never_leaves_the_contact_hours(
    loan_id: str, at: time, minutes: int, end: time
) -> None:
    own = loan_contact_time(loan_id, at, minutes, end)
    assert _seconds(at) <= _seconds(own) < _seconds(at) + max(60 * minutes, 1)
    if at < end:
        assert own < end  # the hours' end is exclusive
    else:
        assert own == at  # already outside: the contact rules defer it, no spread on top


def test_the_offset_does_not_depend_on_the_process() -> None:
    """Not Python's salted hash(): a replay on another worker computes the same offset."""
    code = "from datetime import timedelta; from domain.herd import spread_offset; "
    code += "print(spread_offset('LN-42', timedelta(minutes=60)).total_seconds())"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in "ab"}
    assert runs == {f"{spread_offset('LN-42', timedelta(minutes=60)).total_seconds()}\n"}


def test_a_book_of_loans_spreads_roughly_evenly_over_the_spread() -> None:
    """10,000 loans over 60 minutes: every 5-minute slice holds about a twelfth of them (±15%)."""
    slices = Counter(
        spread_offset(f"LN-{n}", timedelta(minutes=60)) // timedelta(minutes=5) for n in range(10_000)
    )
    assert sorted(slices) == list(range(12))
    expected = 10_000 / 12
    assert all(abs(count - expected) < 0.15 * expected for count in slices.values()), slices


def test_no_spread_keeps_the_strategys_contact_time() -> None:
    assert loan_contact_time("LN-1", time(9), 0, time(21)) == time(9)
    assert usable_spread(time(9), 60, time(9, 30)) == timedelta(minutes=30)
    assert usable_spread(time(22), 60, time(21)) == timedelta(0)


def test_a_loans_first_step_falls_due_at_its_own_time_not_at_contact_time() -> None:
    """Two loans overdue the same day, under the shipped strategy (60-minute spread): neither is due at
    09:00 sharp unless its offset is zero, each at its own instant, within 09:00-10:00 Shanghai time."""
    assert DEFAULT.contact_spread_minutes == 60
    case = open_case(loan(loan_id="LN-herd-1"))
    own = case.contact_time
    assert time(9) <= own < time(10)
    assert own == loan_contact_time("LN-herd-1", time(9), 60, None)
    assert own != open_case(loan(loan_id="LN-herd-2")).contact_time

    dpd1 = case.loan.overdue_since + timedelta(days=1)
    zone = case.loan.zone
    just_before = datetime.combine(dpd1, own, zone) - timedelta(seconds=1)
    at = datetime.combine(dpd1, own, zone)
    children = Children()
    waiting = due_steps(case, just_before.astimezone(UTC), children)
    assert waiting.kind == "wait" and waiting.until == at
    assert due_steps(case, at.astimezone(UTC), children).kind == "run_steps"


def test_the_web_ui_line_names_the_time_and_the_offset() -> None:
    assert describe_offset(time(9), time(9, 37, 12)) == "09:37:12 local (+37 min spread)"
