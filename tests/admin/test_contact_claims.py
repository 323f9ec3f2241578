"""Claiming a call or visit asks the loan's workflow (the real LoanCollectionWorkflow, fake activities, local
dev server) whether the borrower may be contacted at that moment: inside the hours it is claimed and is the
attempt; outside them, over a cap or while contact is ceased it is refused with the reason and the time it
becomes allowed, the task stays open and the queue holds it back until then. Reviews contact nobody.

Borrowers live in a fixed-offset zone chosen so that it is a given hour there now (`zone_at`): the outcome
does not depend on when the test runs.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from admin.i18n import catalog
from admin.queue import REFUSED_FOR_NOW_TEXT, REFUSED_UNTIL_TEXT
from authority.signer import Actor
from domain.holds import CeaseContact
from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import MakeClient, MakeUser, login, post_form, zone_at
from tests.admin.test_queue import add_task, section
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import CEASE_CONTACT_UPDATE
from workflows.registry import WORKFLOWS

StartLoan = Callable[..., Awaitable[Loan]]


@pytest.fixture
def fakes() -> FakeActivities:
    return FakeActivities()


@pytest_asyncio.fixture
async def start_loan(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    fakes: FakeActivities,
) -> AsyncIterator[StartLoan]:
    """Starts a loan 20 days past due whose borrower lives where it is `hour` o'clock now, with its portfolio
    row (what the journal activity writes: the queue reads the borrower's zone and clock there)."""
    started: list[str] = []
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):

        async def start(hour: int, jurisdiction: str = "cn") -> Loan:
            zone = zone_at(hour)
            loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
            borrower = loan.borrower.model_copy(update={"timezone": zone.key})
            loan = loan.model_copy(
                update={
                    "loan_id": f"CLM-{uuid.uuid4().hex[:8]}",
                    "jurisdiction": jurisdiction,
                    "borrower": borrower,
                }
            )
            assert await starter.start_loan(loan) == "started"
            started.append(loan.loan_id)
            now = datetime.now(UTC)
            await db_pool.execute(
                "INSERT INTO portfolio (loan_id, borrower_name, jurisdiction, timezone, locale, currency, "
                "segment, strategy, stage, overdue_since, amount_overdue_minor, principal_outstanding_minor, "
                "paid_total_minor, clock_real_anchor, clock_collections_anchor, as_of) "
                "VALUES ($1, 'Test', $2, $3, 'en', 'CNY', 'default', 'default', 'reminder', $4, 80000, "
                "320000, 0, $5, $5, $5)",
                loan.loan_id,
                jurisdiction,
                zone.key,
                loan.overdue_since,
                now,
            )
            return loan

        yield start
        for loan_id in started:
            try:
                await starter.handle(loan_id).terminate("test finished")
            except RPCError:
                pass  # closed by the test


async def collector_client(make_client: MakeClient, make_user: MakeUser) -> httpx.AsyncClient:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    return client


async def task_row(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT status, assignee, not_before, not_before_reason FROM collector_tasks WHERE id = $1::uuid",
        task_id,
    )
    assert row is not None
    return row


async def claimed_attempts(fakes: FakeActivities, task_id: str) -> list[str]:
    """The journal's contact attempts naming the task (the workflow journals an accepted claim)."""
    for _ in range(50):
        found = [
            entry.idempotency_key
            for entry in fakes.journal_of("contact_attempt")
            if task_id in entry.idempotency_key or task_id in entry.data.values()
        ]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_a_call_inside_the_borrowers_hours_is_claimed_and_journaled_as_an_attempt(
    make_client: MakeClient,
    make_user: MakeUser,
    start_loan: StartLoan,
    db_pool: asyncpg.Pool,
    fakes: FakeActivities,
) -> None:
    loan = await start_loan(hour=12)
    client = await collector_client(make_client, make_user)
    task_id, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="call")

    claimed = await post_form(client, "/", f"/tasks/{task_id}/claim", {})
    assert claimed.status_code == 303 and claimed.headers["location"] == f"/loans/{loan.loan_id}"
    row = await task_row(db_pool, task_id)
    assert (row["status"], row["not_before"]) == ("in_progress", None)
    # No outcome recorded: the claim alone is the attempt.
    assert await claimed_attempts(fakes, task_id)


async def test_a_call_outside_the_borrowers_hours_is_refused_with_the_time_it_becomes_allowed(
    make_client: MakeClient,
    make_user: MakeUser,
    start_loan: StartLoan,
    db_pool: asyncpg.Pool,
    fakes: FakeActivities,
) -> None:
    loan = await start_loan(hour=2)  # 02:xx there: before the cn profile's 08:00
    zone = ZoneInfo(loan.borrower.timezone)
    opens = datetime.now(zone).replace(hour=8, minute=0, second=0, microsecond=0)
    client = await collector_client(make_client, make_user)
    call, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="call")

    refused = await post_form(client, "/", f"/tasks/{call}/claim", {})
    assert refused.status_code == 409
    text = html.unescape(refused.text)
    assert "Contact with this borrower is not allowed now:" in text
    shown = f"{opens.strftime('%Y-%m-%d %H:%M')} ({zone.key}, UTC{opens.strftime('%z')[:3]}:00)"
    assert f"It is allowed from {shown}, the borrower's local time" in text

    row = await task_row(db_pool, call)
    assert (row["status"], row["assignee"]) == ("open", None)
    assert row["not_before"] == opens and row["not_before_reason"]
    assert "allowed from" not in row["not_before_reason"]  # the time is the column's, not the text's
    assert not [e for e in fakes.journal_of("contact_attempt") if call in e.idempotency_key]  # not counted

    page = (await client.get("/")).text
    assert loan.loan_id not in section(page, "open") and loan.loan_id in section(page, "held")
    assert shown in html.unescape(section(page, "held"))
    again = await post_form(client, "/", f"/tasks/{call}/claim", {})  # held back: the workflow is not asked
    assert again.status_code == 409 and shown in html.unescape(again.text)

    # A review of the same loan contacts nobody: claimed at any hour.
    review, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="review", step_key="review-1")
    assert (await post_form(client, "/", f"/tasks/{review}/claim", {})).status_code == 303


async def test_a_visit_after_the_borrower_ceased_contact_is_refused_for_as_long_as_that_lasts(
    make_client: MakeClient,
    make_user: MakeUser,
    start_loan: StartLoan,
    db_pool: asyncpg.Pool,
    starter: CollectionsStarter,
) -> None:
    loan = await start_loan(hour=12)
    await starter.collector_action(
        loan.loan_id,
        CEASE_CONTACT_UPDATE,
        CeaseContact(collector="li.na", note="asked in writing"),
        actor=Actor("li.na", "collector"),
    )
    client = await collector_client(make_client, make_user)
    visit, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="visit", step_key="visit-1")

    refused = await post_form(client, "/", f"/tasks/{visit}/claim", {})
    assert refused.status_code == 409
    assert "It stays refused while this restriction lasts" in html.unescape(refused.text)
    row = await task_row(db_pool, visit)
    assert row["status"] == "open" and row["assignee"] is None
    assert await db_pool.fetchval(
        "SELECT not_before = 'infinity' FROM collector_tasks WHERE id = $1::uuid", visit
    )
    held = section((await client.get("/")).text, "held")
    assert loan.loan_id in held and "Not while the restriction lasts" in held


async def test_claimed_calls_count_toward_the_cap_without_an_outcome(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, db_pool: asyncpg.Pool
) -> None:
    """us: at most 7 call attempts in 7 days (Regulation F). Seven claims within a minute, no outcome
    recorded, all accepted; the eighth, a moment later under the same rules, is refused: the claims counted.
    (Its time depends on more than the cap — the validation notice is not recorded on this loan, and the
    cap's end falls after the notice's deadline — so only the refusal is asserted here.)"""
    loan = await start_loan(hour=12, jurisdiction="us")
    client = await collector_client(make_client, make_user)
    for n in range(7):
        call, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="call", step_key=f"call-{n}")
        claimed = await post_form(client, "/", f"/tasks/{call}/claim", {})
        assert claimed.status_code == 303, html.unescape(claimed.text)
    eighth, _ = await add_task(db_pool, "default", loan_id=loan.loan_id, kind="call", step_key="call-8")
    refused = await post_form(client, "/", f"/tasks/{eighth}/claim", {})
    assert refused.status_code == 409
    assert "Contact with this borrower is not allowed" in html.unescape(refused.text)
    row = await task_row(db_pool, eighth)
    assert (row["status"], row["assignee"]) == ("open", None) and row["not_before"] is not None


def test_the_refusals_have_their_zh_cn_wording() -> None:
    """They are passed to _() as constants, which tests/admin/test_i18n.py cannot see."""
    for text in (REFUSED_UNTIL_TEXT, REFUSED_FOR_NOW_TEXT):
        translated = catalog("zh-CN").get(text)
        assert translated and "{reason}" in translated
    assert "{when}" in catalog("zh-CN")[REFUSED_UNTIL_TEXT]
