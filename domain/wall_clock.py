"""Borrower-local wall-clock time: windows of local hours mapped to instants, exact across DST changes.

Pure helpers of the contact rules (domain.contact_rules), apart so that module keeps to the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
WallWindow = tuple[time, time | None]  # [start, end) on one local date; end None: until midnight
WHOLE_DAY: WallWindow = (time(0), None)


def utc_offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def offset_change(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant in (start, end] whose UTC offset differs from start's, to the microsecond.

    Assumes at most one change in the span (a day): true of every zone's rules since 1970.
    """
    before = utc_offset(start, zone)
    if utc_offset(end, zone) == before:
        return None
    low, high = start, end
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if utc_offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    return high


def next_open(
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
        offset = utc_offset(instant, zone)
        piece_end = offset_change(instant, instant + DAY, zone) or instant + DAY
        wall = instant.replace(tzinfo=None) + offset
        wall_end = piece_end.replace(tzinfo=None) + offset
        day = wall.date()
        while day <= wall_end.date():
            window = window_for(day)
            if window is not None:
                start, end = window
                low = max(wall, datetime.combine(day, start))
                high = min(
                    wall_end, datetime.combine(day, end) if end else datetime.combine(day + DAY, time(0))
                )
                if low < high:
                    return (low - offset).replace(tzinfo=UTC)
            day += DAY
        instant = piece_end
    return None


def hm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def local_label(instant: datetime, zone: ZoneInfo) -> str:
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"
