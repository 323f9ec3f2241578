"""Re-delinquency in the read side: a loan cured and overdue again has a portfolio row per collection cycle,
written by the journal activity's `upsert_snapshot` (migrations/0013 keys the table by loan id and cycle).
The search shows each loan's latest cycle unless asked for all, the work queue joins one row per loan, and the
dashboard counts cycles apart. A database of the test's own: exact counts."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest_asyncio

from activities.contracts import PortfolioSnapshot
from activities.journal import upsert_snapshot
from admin import metrics
from admin.app import Services, create_app
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, login

NOW = datetime.now(UTC)
TODAY = NOW.date()
FIRST = TODAY - timedelta(days=200)  # the first cycle: overdue 200 days ago, paid
SECOND = TODAY - timedelta(days=15)  # overdue again 15 days ago


def snapshot(loan_id: str, cycle: date | None, overdue_since: date, **changes: Any) -> PortfolioSnapshot:
    fields: dict[str, Any] = {
        "loan_id": loan_id,
        "borrower_name": "Test Borrower",
        "jurisdiction": "cn",
        "timezone": "UTC",
        "locale": "zh-CN",
        "currency": "CNY",
        "segment": "standard",
        "strategy": "default",
        "stage": "reminder",
        "overdue_since": overdue_since,
        "amount_overdue_minor": 10_000,
        "principal_outstanding_minor": 40_000,
        "paid_total_minor": 0,
        "clock_real_anchor": NOW,
        "clock_collections_anchor": NOW,
        "as_of": NOW,
        "cycle": cycle,
        **changes,
    }
    return PortfolioSnapshot(**fields)


async def write(pool: asyncpg.Pool, *snapshots: PortfolioSnapshot) -> None:
    async with pool.acquire() as connection:
        for one in snapshots:
            await upsert_snapshot(connection, one)


async def transition(
    pool: asyncpg.Pool, loan_id: str, cycle: date | None, at: datetime, to_stage: str
) -> None:
    await pool.execute(
        "INSERT INTO journal_stage_transitions (idempotency_key, loan_id, jurisdiction, at, from_stage, "
        "to_stage, dpd, reason, cycle) VALUES ($1, $2, 'cn', $3, 'reminder', $4, 30, 'test', $5)",
        uuid.uuid4().hex,
        loan_id,
        at,
        to_stage,
        cycle,
    )


async def cured_and_overdue_again(pool: asyncpg.Pool, loan_id: str) -> None:
    """Cycle 1: reached deep contact and was paid. Cycle 2: overdue again, open, 15 days past due."""
    await write(pool, snapshot(loan_id, FIRST, FIRST, as_of=NOW - timedelta(days=170)))
    await transition(pool, loan_id, FIRST, NOW - timedelta(days=180), "deep_contact")
    closed = snapshot(
        loan_id,
        FIRST,
        FIRST,
        stage="closed",
        outcome="paid",
        amount_overdue_minor=0,
        as_of=NOW - timedelta(days=160),
    )
    await write(pool, closed)
    await write(pool, snapshot(loan_id, SECOND, SECOND, amount_overdue_minor=7_700))


async def test_each_cycle_has_its_row_and_only_the_newest_is_the_loans_latest(
    own_db_pool: asyncpg.Pool,
) -> None:
    pool = own_db_pool
    await cured_and_overdue_again(pool, "RD-1")
    rows = await pool.fetch(
        "SELECT cycle, outcome, latest FROM portfolio WHERE loan_id = 'RD-1' ORDER BY cycle"
    )
    assert [(r["cycle"], r["outcome"], r["latest"]) for r in rows] == [
        (FIRST, "paid", False),
        (SECOND, None, True),
    ]
    latest = await pool.fetch("SELECT cycle, dpd FROM portfolio_now WHERE loan_id = 'RD-1'")
    assert [(r["cycle"], r["dpd"]) for r in latest] == [(SECOND, 15)]

    # A late snapshot of the first cycle updates that cycle only and never becomes the latest.
    await write(pool, snapshot("RD-1", FIRST, FIRST, stage="closed", outcome="paid", amount_overdue_minor=0))
    rows = await pool.fetch("SELECT cycle, latest FROM portfolio WHERE loan_id = 'RD-1' ORDER BY cycle")
    assert [(r["cycle"], r["latest"]) for r in rows] == [(FIRST, False), (SECOND, True)]
    # A snapshot that names no cycle (an older writer) is the cycle of its overdue_since.
    await write(pool, snapshot("RD-2", None, SECOND))
    await write(pool, snapshot("RD-2", None, SECOND, stage="deep_contact"))  # the same row again
    rows = await pool.fetch("SELECT cycle, stage FROM portfolio WHERE loan_id = 'RD-2'")
    assert [(r["cycle"], r["stage"]) for r in rows] == [(SECOND, "deep_contact")]


async def test_the_dashboard_counts_cycles_apart(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    await cured_and_overdue_again(pool, "RD-3")
    # The second cycle ends too, paid from 'reminder': it never moved, whatever the first cycle reached.
    await write(
        pool, snapshot("RD-3", SECOND, SECOND, stage="closed", outcome="paid", amount_overdue_minor=0)
    )

    cures = {c.stage: (c.left, c.cured) for c in await metrics.cure_by_stage(pool)}
    assert cures["reminder"] == (1, 1) and cures["deep_contact"] == (1, 1)
    assert sum(left for left, _ in cures.values()) == 2  # one loan, two cycles that left collection

    await cured_and_overdue_again(pool, "RD-4")  # its second cycle is open
    book = await metrics.open_book(pool, "CNY")
    assert book.loans == 1 and book.amount_overdue_minor == 7_700
    assert {c.currency: c.open_loans for c in await metrics.open_currencies(pool)} == {"CNY": 1}


@pytest_asyncio.fixture
async def client(own_db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    await cured_and_overdue_again(own_db_pool, "RD-5")
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    username = f"collector-{uuid.uuid4().hex[:8]}"
    await create_user(  # the loans are in segment "standard", the hand-made task in pool "default"
        own_db_pool, username, PASSWORD, role="collector", locale="en", pools=("default", "standard")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await login(http, username)).status_code == 303
        yield http


def rows_of(html: str) -> list[tuple[str, str]]:
    """(loan id, cycle) of each result row."""
    return re.findall(
        r'<tr class="loan">\s*<td><a href="/loans/([^"]+)">.*?<td class="cycle">([^<]+)</td>', html, re.S
    )


async def test_the_search_shows_each_loans_latest_cycle_unless_asked_for_all(
    client: httpx.AsyncClient,
) -> None:
    default = await client.get("/portfolio", params={"status": "all"})
    assert default.status_code == 200
    assert rows_of(default.text) == [("RD-5", SECOND.isoformat())]
    every = await client.get("/portfolio", params={"status": "all", "cycles": "all", "sort": "loan_id"})
    assert rows_of(every.text) == [("RD-5", SECOND.isoformat()), ("RD-5", FIRST.isoformat())]
    closed = await client.get("/portfolio", params={"status": "closed", "cycles": "all"})
    assert rows_of(closed.text) == [("RD-5", FIRST.isoformat())]
    assert rows_of((await client.get("/portfolio", params={"status": "closed"})).text) == []
    wrong = await client.get("/portfolio", params={"cycles": "some"})
    assert wrong.status_code == 422


async def test_the_queue_shows_a_task_once_with_the_latest_cycles_figures(
    client: httpx.AsyncClient, own_db_pool: asyncpg.Pool
) -> None:
    await own_db_pool.execute(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority) "
        "VALUES ('RD-5:review', 'RD-5', 'review-1', 'review', now() - interval '1 minute', 500)"
    )
    page = (await client.get("/")).text
    assert page.count('href="/loans/RD-5"') == 1
    assert "CNY 77.00" in page  # the open cycle's arrears, not the paid one's


async def test_roll_rates_start_each_cycle_in_reminder(own_db_pool: asyncpg.Pool) -> None:
    """A loan that reached the agency in its first cycle and is overdue again starts its second cycle in
    reminder: at the start of last month it is a reminder loan, not an agency one."""
    pool = own_db_pool
    last_month: datetime = await pool.fetchval("SELECT date_trunc('month', now()) - interval '1 month'")
    first, second = last_month.date() - timedelta(days=300), last_month.date() - timedelta(days=30)
    await write(pool, snapshot("RD-6", first, first, as_of=last_month - timedelta(days=250)))
    await transition(pool, "RD-6", first, last_month - timedelta(days=240), "deep_contact")
    await transition(pool, "RD-6", first, last_month - timedelta(days=200), "agency")
    paid = snapshot(
        "RD-6", first, first, stage="closed", outcome="paid", as_of=last_month - timedelta(days=100)
    )
    await write(pool, paid)
    await write(pool, snapshot("RD-6", second, second))

    rolls = await metrics.roll_rates(pool)
    month = last_month.date()
    cells = [(c.stage, c.at_start, c.rolled) for c in rolls.cells if c.month == month]
    assert cells == [("reminder", 1, 0), ("deep_contact", 0, 0), ("agency", 0, 0)]
