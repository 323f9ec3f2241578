"""The work queue and the loan dossier against the real workflow (fake activities) and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import MakeClient, MakeUser, login, post_form
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS


@pytest_asyncio.fixture
async def running_loan(
    local_client: Client, task_queue: str, starter: CollectionsStarter
) -> AsyncIterator[Loan]:
    """A CNY loan 20 days past due with 800.00 overdue, its workflow running on a worker with fakes."""
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    loan = loan.model_copy(update={"loan_id": f"ADM-{uuid.uuid4().hex[:8]}"})
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        assert await starter.start_loan(loan) == "started"
        yield loan
        await starter.handle(loan.loan_id).terminate("test finished")


def in_days(days: int) -> str:
    return (datetime.now(UTC).astimezone(SHANGHAI).date() + timedelta(days=days)).isoformat()


async def test_a_valid_promise_reaches_the_workflow(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    client = await make_client()
    user = await make_user("collector")
    await login(client, user.username)
    page = f"/loans/{running_loan.loan_id}"
    dossier = await client.get(page)
    assert dossier.status_code == 200 and "CNY 800.00" in dossier.text and "Record a promise" in dossier.text

    response = await post_form(
        client, page, f"{page}/promise", {"amount": "300.50", "due_date": in_days(3), "note": "salary day"}
    )
    assert response.status_code == 303 and response.headers["location"] == f"{page}?notice=promised"

    status = await starter.status(running_loan.loan_id)
    assert status.open_promise is not None
    assert (status.open_promise.amount_minor, status.open_promise.collector) == (30_050, user.username)
    assert status.open_promise.note == "salary day"
    shown = await client.get(response.headers["location"])
    assert "Promise recorded." in shown.text and "CNY 300.50" in shown.text


async def test_an_invalid_promise_shows_the_reason_by_the_field_and_changes_nothing(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    page = f"/loans/{running_loan.loan_id}"
    before = await starter.status(running_loan.loan_id)

    too_much = await post_form(client, page, f"{page}/promise", {"amount": "900", "due_date": in_days(3)})
    assert too_much.status_code == 422
    inline = re.search(r'<span class="field-error" id="amount-error"[^>]*>([^<]+)</span>', too_much.text)
    assert inline and "is more than the amount overdue" in inline.group(1)
    assert 'value="900"' in too_much.text  # what the collector typed is kept

    too_late = await post_form(client, page, f"{page}/promise", {"amount": "100", "due_date": in_days(90)})
    assert too_late.status_code == 422 and 'id="due_date-error"' in too_late.text

    garbage = await post_form(client, page, f"{page}/promise", {"amount": "lots", "due_date": "soon"})
    assert garbage.status_code == 422
    assert 'id="amount-error"' in garbage.text and 'id="due_date-error"' in garbage.text

    after = await starter.status(running_loan.loan_id)
    assert after.promises == before.promises == [] and after.open_promise is None


async def test_two_collectors_cannot_claim_the_same_task(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    loan_id = f"ADM-{uuid.uuid4().hex[:8]}"
    task_id = await db_pool.fetchval(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority) "
        "VALUES ($1, $2, 'review-1', 'review', now(), 999) RETURNING id",  # a call would ask its workflow
        f"{loan_id}:call-1",
        loan_id,
    )
    first, second = await make_client(), await make_client()
    first_user, second_user = await make_user("collector"), await make_user("collector")
    await login(first, first_user.username)
    await login(second, second_user.username)
    assert loan_id in (await first.get("/")).text and loan_id in (await second.get("/")).text

    # Both pages show the task as open; both collectors press Claim.
    won = await post_form(first, "/", f"/tasks/{task_id}/claim", {})
    lost = await post_form(second, "/", f"/tasks/{task_id}/claim", {})
    assert won.status_code == 303 and won.headers["location"] == f"/loans/{loan_id}"
    assert lost.status_code == 409 and "already claimed" in lost.text

    row = await db_pool.fetchrow("SELECT status, assignee FROM collector_tasks WHERE id = $1", task_id)
    assert row is not None
    assert (row["status"], row["assignee"]) == ("in_progress", first_user.username)
    assert "My tasks" in (queue := (await first.get("/")).text) and loan_id in queue.split("Open tasks")[0]
    assert loan_id not in (await second.get("/")).text
    assert (await post_form(second, "/", "/tasks/not-a-uuid/claim", {})).status_code == 409


async def test_an_unknown_loan_is_not_found(make_client: MakeClient, make_user: MakeUser) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    assert (await client.get("/loans/NO-SUCH-LOAN")).status_code == 404


async def test_the_dossier_of_a_loan_overdue_again_lists_its_cycles(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, db_pool: asyncpg.Pool
) -> None:
    """The dossier addresses the loan by its id (the workflow's latest cycle) and lists the earlier cycles."""
    earlier = running_loan.overdue_since - timedelta(days=300)
    for cycle, stage, outcome in (
        (earlier, "closed", "paid"),
        (running_loan.overdue_since, "reminder", None),
    ):
        await db_pool.execute(
            "INSERT INTO portfolio (loan_id, borrower_name, jurisdiction, timezone, locale, currency, "
            "segment, strategy, stage, outcome, overdue_since, cycle, amount_overdue_minor, "
            "principal_outstanding_minor, paid_total_minor, clock_real_anchor, clock_collections_anchor, "
            "as_of) VALUES ($1, 'Test', 'cn', 'Asia/Shanghai', 'zh-CN', 'CNY', 'standard', 'default', "
            "$2, $3, $4, $4, 0, 0, 0, now(), now(), now())",
            running_loan.loan_id,
            stage,
            outcome,
            cycle,
        )
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    page = (await client.get(f"/loans/{running_loan.loan_id}")).text
    cycles = re.search(r'<table id="cycles">(.*?)</table>', page, re.S)
    assert cycles, "no cycles table"
    rows = re.findall(r'<tr class="cycle( latest)?"><td>(\d{4}-\d{2}-\d{2})', cycles.group(1))
    assert rows == [(" latest", running_loan.overdue_since.isoformat()), ("", earlier.isoformat())]
    assert "Paid off" in cycles.group(1)
