"""Borrower-local calendar: days past due and the instant a step of a given DPD becomes due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def days_past_due(overdue_since: date, now: datetime, zone: ZoneInfo) -> int:
    """DPD in the borrower's own calendar: the due date is DPD 0, the next local day DPD 1."""
    return max(0, (now.astimezone(zone).date() - overdue_since).days)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `zone`, as an aware datetime.

    A wall time that does not exist (spring-forward gap) resolves to the instant after the gap; an ambiguous
    one (fall-back) to its first occurrence — either way a real instant no earlier than the borrower expects.
    """
    # fold=0 takes the offset in force before a transition: in a spring-forward gap 02:30 becomes 03:30,
    # in a fall-back overlap the first 01:30. Normalising through UTC gives the real wall time.
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)


def due_instant(overdue_since: date, dpd: int, at: time, zone: ZoneInfo) -> datetime:
    return local_instant(overdue_since + timedelta(days=dpd), at, zone)


def start_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    return local_instant(day, time(0, 0), zone)


def end_of_local_day(day: date, zone_name: str) -> datetime:
    """The instant `day` ends for someone in `zone_name` (their next local midnight)."""
    return start_of_local_day(day + timedelta(days=1), ZoneInfo(zone_name))
