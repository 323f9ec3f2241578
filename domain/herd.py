"""Each loan's own contact time: the strategy's `contact_time` plus a deterministic per-loan offset.

Every borrower's contact window opens at the same local hour, so a book of loans whose steps fall due on the
same day would all wake at 09:00 sharp — a thundering herd on the worker, the database and the providers.
The strategy's `contact_spread_minutes` spreads them over the first part of the window instead: each loan
waits an offset that is a pure function of its loan id (the same on every replay, every worker, every run
of the loan), roughly uniform over the spread, and never past the end of the contact hours.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta

# A contact hour is about the borrower's evening, not seconds: a whole-second offset is fine-grained enough
# to spread any realistic book and keeps the due instants readable.
_SECONDS = 60


def spread_offset(loan_id: str, spread: timedelta) -> timedelta:
    """A whole number of seconds in [0, spread), from the loan id alone (0 when there is no spread).

    sha256 rather than hash(): Python salts str hashes per process, and a replay on another worker must
    compute the same offset. 64 bits modulo a spread of at most a day leaves a negligible bias.
    """
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(loan_id.encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def usable_spread(contact_time: time, spread_minutes: int, hours_end: time | None) -> timedelta:
    """The strategy's spread, cut short so that contact_time + offset stays before the end of the contact
    hours (exclusive). A contact time at or after the end (the contact rules defer it) gets no spread."""
    spread = timedelta(minutes=spread_minutes)
    if hours_end is None:
        end = timedelta(days=1)
    else:
        end = timedelta(hours=hours_end.hour, minutes=hours_end.minute, seconds=hours_end.second)
    start = timedelta(hours=contact_time.hour, minutes=contact_time.minute, seconds=contact_time.second)
    return max(timedelta(0), min(spread, end - start))


def loan_contact_time(
    loan_id: str, contact_time: time, spread_minutes: int, hours_end: time | None = None
) -> time:
    """The borrower-local time this loan's steps fall due: contact_time plus the loan's offset."""
    offset = spread_offset(loan_id, usable_spread(contact_time, spread_minutes, hours_end))
    return (datetime.combine(date(2000, 1, 1), contact_time) + offset).time()


def describe_offset(contact_time: time, own: time) -> str:
    """What the Web UI shows on the workflow's page, e.g. `09:37:12 local (+37 min spread)`."""
    minutes = (
        datetime.combine(date(2000, 1, 1), own) - datetime.combine(date(2000, 1, 1), contact_time)
    ) // timedelta(seconds=_SECONDS)
    return f"{own:%H:%M:%S} local (+{minutes} min spread)"
