"""The portfolio read model (migrations/0008): the journal activity upserts a loan's snapshot; an older
snapshot never replaces a newer one; DPD moves with the loan's clock, not with writes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from activities.contracts import JournalBatch, PortfolioSnapshot
from activities.journal import Journal

NOW = datetime.now(UTC)


def snapshot(loan_id: str, **changes: object) -> PortfolioSnapshot:
    base = PortfolioSnapshot(
        loan_id=loan_id,
        borrower_name="王芳",
        jurisdiction="cn",
        timezone="Asia/Shanghai",
        locale="zh-CN",
        currency="CNY",
        segment="standard",
        strategy="default",
        stage="reminder",
        overdue_since=date(2026, 1, 1),
        amount_overdue_minor=120_000,
        principal_outstanding_minor=480_000,
        paid_total_minor=0,
        clock_real_anchor=NOW,
        clock_collections_anchor=NOW,
        as_of=NOW,
    )
    return base.model_copy(update=changes)


@pytest.fixture
def loan_id() -> str:
    return f"PF-{uuid.uuid4().hex[:10]}"


async def row(pool: asyncpg.Pool, loan_id: str) -> asyncpg.Record:
    found = await pool.fetchrow("SELECT * FROM portfolio_now WHERE loan_id = $1", loan_id)
    assert found is not None
    return found


async def test_a_snapshot_alone_is_written(db_pool: asyncpg.Pool, loan_id: str) -> None:
    receipt = await Journal(db_pool).record(JournalBatch(entries=[], snapshot=snapshot(loan_id)))

    assert receipt.written == 0
    stored = await row(db_pool, loan_id)
    assert (stored["borrower_name"], stored["stage"], stored["amount_overdue_minor"]) == (
        "王芳",
        "reminder",
        120_000,
    )
    assert stored["outcome"] is None


async def test_a_newer_snapshot_replaces_and_an_older_one_does_not(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    journal = Journal(db_pool)
    await journal.record(JournalBatch(entries=[], snapshot=snapshot(loan_id)))
    later = NOW + timedelta(hours=1)
    await journal.record(
        JournalBatch(
            entries=[], snapshot=snapshot(loan_id, stage="deep_contact", amount_overdue_minor=0, as_of=later)
        )
    )
    # A retry of the first activity, arriving late: must not move the read model back.
    await journal.record(JournalBatch(entries=[], snapshot=snapshot(loan_id)))

    stored = await row(db_pool, loan_id)
    assert (stored["stage"], stored["amount_overdue_minor"]) == ("deep_contact", 0)


async def test_dpd_follows_the_collections_clock(db_pool: asyncpg.Pool, loan_id: str) -> None:
    today = datetime.now(UTC).date()
    real_time = snapshot(loan_id, overdue_since=date.today() - timedelta(days=10))
    await Journal(db_pool).record(JournalBatch(entries=[], snapshot=real_time))
    assert abs((await row(db_pool, loan_id))["dpd"] - 10) <= 1  # Shanghai's date may be a day ahead of UTC

    # Demo clock: one collections day per 10 real seconds, anchored 100 real seconds ago → 10 days later.
    demo_id = loan_id + "-demo"
    demo = snapshot(
        demo_id,
        overdue_since=today,
        timezone="UTC",
        clock_real_anchor=datetime.now(UTC) - timedelta(seconds=100),
        clock_collections_anchor=datetime.combine(today, datetime.min.time(), tzinfo=UTC),
        clock_speed=8640.0,
    )
    await Journal(db_pool).record(JournalBatch(entries=[], snapshot=demo))
    assert (await row(db_pool, demo_id))["dpd"] == 10
