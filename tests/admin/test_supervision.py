"""Journal dead letters for supervisors (GET /journal/dead-letters, the dashboard's link) and the Prometheus
gauge (GET /metrics), against a database of the test's own: exact counts, no borrower data on either."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import cast

import asyncpg
import httpx
import pytest_asyncio

from activities.contracts import JournalEntry, JournalKind
from activities.dead_letters import keep
from admin.app import Services, create_app
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, login

Client = Callable[..., Awaitable[httpx.AsyncClient]]  # (role or None: logged out, locale="en")

BORROWER_NAME = "王秀英"
BORROWER_PHONE = "+8613912345678"


@pytest_asyncio.fixture
async def client_for(own_db_pool: asyncpg.Pool) -> AsyncIterator[Client]:
    # Neither page reaches a workflow: no Temporal server is needed.
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    clients: list[httpx.AsyncClient] = []

    async def make(role: str | None, locale: str = "en") -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        if role is not None:
            name = f"{role}-{uuid.uuid4().hex[:8]}"
            await create_user(own_db_pool, name, PASSWORD, role=role, display_name=name, locale=locale)
            assert (await login(client, name)).status_code == 303
        return client

    yield make
    for client in clients:
        await client.aclose()


async def dead_letter(
    pool: asyncpg.Pool, loan_id: str, reason: str, *, kind: JournalKind = "collector_action"
) -> None:
    """A journal entry the activity could not write, as it keeps it: a collector's note naming the borrower
    and a NUL character in the data (what made it unwritable)."""
    entry = JournalEntry.model_construct(
        kind=kind,
        idempotency_key=f"{loan_id}:note:{uuid.uuid4().hex[:6]}",
        loan_id=loan_id,
        jurisdiction="cn",
        at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        data={"collector": "li.na", "action": "note", "detail": f"{BORROWER_NAME} {BORROWER_PHONE}\x00"},
        cycle=date(2026, 10, 1),
    )
    async with pool.acquire() as connection:
        assert await keep(connection, entry, reason)


async def test_supervisors_see_the_dead_letters_without_borrower_data(
    client_for: Client, own_db_pool: asyncpg.Pool
) -> None:
    await dead_letter(own_db_pool, "DL-1", "data.detail: NUL character")
    await dead_letter(
        own_db_pool, "DL-2", "journal_deferrals_check: deferred_until before deferred_from", kind="deferral"
    )
    supervisor = await client_for("supervisor")

    page = await supervisor.get("/journal/dead-letters")
    assert page.status_code == 200
    assert "2 entries kept apart" in page.text
    rows = page.text.split('class="dead-letter"')[1:]
    assert len(rows) == 2
    # Newest first: kind, loan (a link to its dossier), cycle, event time in UTC, reason.
    assert "deferral" in rows[0] and 'href="/loans/DL-2"' in rows[0] and "deferred_until before" in rows[0]
    assert "collector_action" in rows[1] and "2026-10-01" in rows[1] and "2026-11-20 09:30:00" in rows[1]
    assert BORROWER_NAME not in page.text and BORROWER_PHONE not in page.text

    chinese = await client_for("supervisor", "zh-CN")
    assert "未能写入的日志记录" in (await chinese.get("/journal/dead-letters")).text


async def test_the_dashboard_links_supervisors_to_the_dead_letters_and_collectors_are_refused(
    client_for: Client, own_db_pool: asyncpg.Pool
) -> None:
    supervisor, collector = await client_for("supervisor"), await client_for("collector")
    empty = await supervisor.get("/journal/dead-letters")
    assert "No journal entry was kept apart." in empty.text
    assert "Journal entries not written: 0" in (await supervisor.get("/dashboard")).text

    await dead_letter(own_db_pool, "DL-3", "data.detail: NUL character")
    dashboard = (await supervisor.get("/dashboard")).text
    assert 'href="/journal/dead-letters"' in dashboard and "Journal entries not written: 1" in dashboard

    assert "/journal/dead-letters" not in (await collector.get("/dashboard")).text
    refused = await collector.get("/journal/dead-letters")
    assert refused.status_code == 403 and "DL-3" not in refused.text


async def test_prometheus_reads_the_dead_letter_count_without_labels(
    client_for: Client, own_db_pool: asyncpg.Pool
) -> None:
    scraper = await client_for(None)  # Prometheus has no session
    before = await scraper.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    assert "\noverdue_journal_dead_letters 0\n" in before.text
    assert "# TYPE overdue_journal_dead_letters gauge" in before.text

    await dead_letter(own_db_pool, "DL-4", "data.detail: NUL character")
    await dead_letter(own_db_pool, "DL-5", "data.detail: NUL character")
    after = (await scraper.get("/metrics")).text
    assert "\noverdue_journal_dead_letters 2\n" in after
    samples = [line for line in after.splitlines() if line and not line.startswith("#")]
    assert samples == ["overdue_journal_dead_letters 2"]  # no labels: no loan ids, nothing of a borrower
