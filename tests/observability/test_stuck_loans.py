"""The stuck-loans gauge: open latest cycles whose wake time (in real time) passed more than the grace ago."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg

from activities.contracts import JournalBatch
from activities.journal import Journal
from observability import stuck
from tests.activities.test_portfolio_snapshot import snapshot
from tests.observability.registry import one, samples

GRACE = timedelta(minutes=15)


async def _write(pool: asyncpg.Pool, loan_id: str, **changes: object) -> None:
    await Journal(pool).record(JournalBatch(entries=[], snapshot=snapshot(loan_id, **changes)))


async def test_stuck_loans_are_open_latest_cycles_past_their_wake_time(own_db_pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    ids = {name: f"ST-{name}-{uuid.uuid4().hex[:6]}" for name in "ABCDEFG"}
    await _write(own_db_pool, ids["A"], wake_at=now - timedelta(hours=1))  # stuck
    await _write(own_db_pool, ids["B"], wake_at=now + timedelta(hours=1))  # waiting
    await _write(own_db_pool, ids["C"], wake_at=now - timedelta(minutes=5))  # within the grace
    await _write(own_db_pool, ids["D"], wake_at=None)  # waits for a signal only
    await _write(own_db_pool, ids["E"], wake_at=now - timedelta(hours=1), outcome="paid")  # closed
    # A demo clock 1000x fast: 20 collections hours after the anchor is 72 real seconds after it, so about
    # 59 real minutes ago although the instant itself lies in the future.
    anchor = now - timedelta(hours=1)
    await _write(
        own_db_pool,
        ids["F"],
        stage="legal",
        clock_real_anchor=anchor,
        clock_collections_anchor=anchor,
        clock_speed=1000.0,
        wake_at=anchor + timedelta(hours=20),
    )
    # An older cycle left behind by a new one is not the loan's state any more.
    await _write(own_db_pool, ids["G"], wake_at=now - timedelta(days=3))
    await _write(
        own_db_pool,
        ids["G"],
        overdue_since=date(2026, 6, 1),
        cycle=date(2026, 6, 1),
        wake_at=now + timedelta(days=1),
    )

    counts = await stuck.refresh(own_db_pool, GRACE)

    assert counts == {"reminder": 1, "deep_contact": 0, "agency": 0, "legal": 1, "closed": 0}
    gauge = samples()
    assert gauge[one("overdue_stuck_loans", stage="reminder")] == 1
    assert gauge[one("overdue_stuck_loans", stage="legal")] == 1
    assert gauge[one("overdue_stuck_loans_checked_timestamp_seconds")] >= now.timestamp()

    # The workflow wakes and waits again: its next snapshot carries a later wake time.
    await _write(own_db_pool, ids["A"], wake_at=now + timedelta(days=1), as_of=now + timedelta(seconds=1))
    assert (await stuck.refresh(own_db_pool, GRACE))["reminder"] == 0
