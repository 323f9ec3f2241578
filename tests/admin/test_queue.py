"""The work queue over HTTP against PostgreSQL: tasks due now in my pools, its sections, claim and release.

Tasks here are reviews unless a test says otherwise: claiming a call or visit asks the loan's workflow first
(tests/admin/test_contact_claims.py), these loans have none."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from admin.queue import claim_task
from admin.users import User, create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, MakeClient, csrf_of, login, post_form


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def add_task(
    pool: asyncpg.Pool,
    task_pool: str,
    *,
    loan_id: str | None = None,
    kind: str = "review",
    step_key: str = "call-1",
    note: str = "",
    due_in: timedelta = timedelta(minutes=-1),
    priority: int = 500,
) -> tuple[str, str]:
    """An open task; (task id, loan id)."""
    loan_id = loan_id or unique("Q")
    task_id = await pool.fetchval(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority, pool, "
        "note) VALUES ($1, $2, $3, $4, now() + $5::interval, $6, $7, $8) RETURNING id",
        f"{loan_id}:{step_key}:{uuid.uuid4().hex[:6]}",
        loan_id,
        step_key,
        kind,
        due_in,
        priority,
        task_pool,
        note,
    )
    return str(task_id), loan_id


async def add_portfolio_row(pool: asyncpg.Pool, loan_id: str, *, dpd: int, amount_minor: int) -> None:
    now = datetime.now(UTC)
    await pool.execute(
        "INSERT INTO portfolio (loan_id, borrower_name, jurisdiction, timezone, locale, currency, "
        "segment, strategy, stage, overdue_since, amount_overdue_minor, principal_outstanding_minor, "
        "paid_total_minor, clock_real_anchor, clock_collections_anchor, as_of) "
        "VALUES ($1, 'Test Borrower', 'cn', 'UTC', 'en', 'CNY', 'standard', 'default', 'reminder', $2, "
        "$3, $3, 0, $4, $4, $4)",
        loan_id,
        now.date() - timedelta(days=dpd),
        amount_minor,
        now,
    )


async def user_in(pool: asyncpg.Pool, role: str, *pools: str) -> User:
    name = unique(role)
    return await create_user(pool, name, PASSWORD, role=role, display_name=name, locale="en", pools=pools)


async def client_for(make_client: MakeClient, user: User) -> httpx.AsyncClient:
    client = await make_client()
    await login(client, user.username)
    return client


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert found, f"no section {section_id}"
    return found.group(1)


async def test_collectors_see_the_open_tasks_due_now_in_their_pools_and_supervisors_see_all(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    north, south = unique("north"), unique("south")
    _, in_north = await add_task(db_pool, north)
    _, in_south = await add_task(db_pool, south)
    _, later_in_north = await add_task(db_pool, north, due_in=timedelta(hours=2))
    _, done_in_north = await add_task(db_pool, north)
    await db_pool.execute("UPDATE collector_tasks SET status = 'done' WHERE loan_id = $1", done_in_north)

    north_page = (
        await (await client_for(make_client, await user_in(db_pool, "collector", north))).get("/")
    ).text
    assert in_north in section(north_page, "open") and north in north_page
    assert in_south not in north_page and later_in_north not in north_page and done_in_north not in north_page

    both = await client_for(make_client, await user_in(db_pool, "collector", north, south))
    both_page = (await both.get("/")).text
    assert in_north in both_page and in_south in both_page and later_in_north not in both_page

    supervisor = await client_for(make_client, await user_in(db_pool, "supervisor", "default"))
    supervisor_page = (await supervisor.get("/")).text
    assert in_north in supervisor_page and in_south in supervisor_page and "All pools" in supervisor_page
    assert later_in_north not in supervisor_page


async def test_broken_promises_and_callbacks_have_their_own_sections_and_urgency_orders_the_rest(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    pool = unique("sections")
    _, follow_up = await add_task(db_pool, pool, kind="promise_follow_up", step_key="promise:P-1")
    _, callback = await add_task(
        db_pool, pool, step_key="callback:2026-11-25T10:00:00+00:00", note="callback requested"
    )
    _, low = await add_task(db_pool, pool, priority=100)
    _, high = await add_task(db_pool, pool, priority=900)
    # Same priority: the loan further past due first, then (same DPD) the larger arrears.
    _, late = await add_task(db_pool, pool, priority=400)
    _, big = await add_task(db_pool, pool, priority=400)
    _, small = await add_task(db_pool, pool, priority=400)
    await add_portfolio_row(db_pool, late, dpd=60, amount_minor=1_000)
    await add_portfolio_row(db_pool, big, dpd=10, amount_minor=900_000)
    await add_portfolio_row(db_pool, small, dpd=10, amount_minor=5_000)

    page = (await (await client_for(make_client, await user_in(db_pool, "collector", pool))).get("/")).text
    assert follow_up in section(page, "broken-promises") and follow_up not in section(page, "open")
    assert callback in section(page, "callbacks") and callback not in section(page, "open")
    rest = section(page, "open")
    order = re.findall(r'href="/loans/([^"]+)"', rest)
    assert order == [high, late, big, small, low]


async def test_a_task_can_be_claimed_only_when_due_and_in_my_pool(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    collector = await client_for(make_client, await user_in(db_pool, "collector", mine))
    not_due, _ = await add_task(db_pool, mine, due_in=timedelta(hours=1))
    other_pool, _ = await add_task(db_pool, theirs)
    due, due_loan = await add_task(db_pool, mine)

    response = await post_form(collector, "/", f"/tasks/{not_due}/claim", {})
    assert response.status_code == 409 and "not due yet" in response.text
    # Another pool's task is answered word for word like a task that does not exist.
    response = await post_form(collector, "/", f"/tasks/{other_pool}/claim", {})
    unknown = await post_form(collector, "/", f"/tasks/{uuid.uuid4()}/claim", {})
    assert response.status_code == unknown.status_code == 409 and "no longer open" in response.text
    assert response.text.split("<main>")[1] == unknown.text.split("<main>")[1]
    for task_id in (not_due, other_pool):
        row = await db_pool.fetchrow(
            "SELECT status, assignee FROM collector_tasks WHERE id = $1::uuid", task_id
        )
        assert row is not None and (row["status"], row["assignee"]) == ("open", None)

    response = await post_form(collector, "/", f"/tasks/{due}/claim", {})
    assert response.status_code == 303 and response.headers["location"] == f"/loans/{due_loan}"
    assert due_loan in section((await collector.get("/")).text, "mine")

    # A supervisor may claim in any pool.
    supervisor = await client_for(make_client, await user_in(db_pool, "supervisor", "default"))
    assert (await post_form(supervisor, "/", f"/tasks/{other_pool}/claim", {})).status_code == 303


async def test_two_collectors_claiming_at_once_exactly_one_wins(
    make_client: MakeClient, db_pool: asyncpg.Pool, starter: CollectionsStarter
) -> None:
    pool = unique("race")
    first_user, second_user = (
        await user_in(db_pool, "collector", pool),
        await user_in(db_pool, "collector", pool),
    )
    first, second = await client_for(make_client, first_user), await client_for(make_client, second_user)
    tokens = [csrf_of((await client.get("/")).text) for client in (first, second)]
    for _ in range(5):
        task_id, loan_id = await add_task(db_pool, pool)
        responses = await asyncio.gather(
            first.post(f"/tasks/{task_id}/claim", data={"csrf_token": tokens[0]}),
            second.post(f"/tasks/{task_id}/claim", data={"csrf_token": tokens[1]}),
        )
        codes = sorted(response.status_code for response in responses)
        assert codes == [303, 409], codes
        winner = first_user if responses[0].status_code == 303 else second_user
        row = await db_pool.fetchrow(
            "SELECT status, assignee FROM collector_tasks WHERE id = $1::uuid", task_id
        )
        assert row is not None and (row["status"], row["assignee"]) == ("in_progress", winner.username)

    # And at the level of the statement, with more contenders than the pool has connections.
    task_id, loan_id = await add_task(db_pool, pool)
    contenders = [await user_in(db_pool, "collector", pool) for _ in range(8)]
    results = await asyncio.gather(*(claim_task(db_pool, starter, task_id, user) for user in contenders))
    assert results.count(loan_id) == 1 and results.count(None) == 7


async def test_a_claimed_task_can_be_released_by_its_collector_or_a_supervisor(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    pool = unique("release")
    owner, other = await user_in(db_pool, "collector", pool), await user_in(db_pool, "collector", pool)
    owner_client, other_client = await client_for(make_client, owner), await client_for(make_client, other)
    task_id, loan_id = await add_task(db_pool, pool)
    assert (await post_form(owner_client, "/", f"/tasks/{task_id}/claim", {})).status_code == 303
    mine = section((await owner_client.get("/")).text, "mine")
    assert loan_id in mine and f'action="/tasks/{task_id}/release"' in mine
    assert loan_id not in (await other_client.get("/")).text

    refused = await post_form(other_client, "/", f"/tasks/{task_id}/release", {})
    assert refused.status_code == 409
    assert (await post_form(other_client, "/", "/tasks/not-a-uuid/release", {})).status_code == 409

    released = await post_form(owner_client, "/", f"/tasks/{task_id}/release", {})
    assert released.status_code == 303 and released.headers["location"] == "/"
    row = await db_pool.fetchrow("SELECT status, assignee FROM collector_tasks WHERE id = $1::uuid", task_id)
    assert row is not None and (row["status"], row["assignee"]) == ("open", None)
    assert loan_id in section((await other_client.get("/")).text, "open")

    # Taken again by the other collector; a supervisor puts it back.
    assert (await post_form(other_client, "/", f"/tasks/{task_id}/claim", {})).status_code == 303
    supervisor = await client_for(make_client, await user_in(db_pool, "supervisor", "default"))
    assert (await post_form(supervisor, "/", f"/tasks/{task_id}/release", {})).status_code == 303
    assert await db_pool.fetchval("SELECT status FROM collector_tasks WHERE id = $1::uuid", task_id) == "open"
    logged_out = await make_client()
    response = await logged_out.post(f"/tasks/{task_id}/release", data={})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_cancelled_tasks_never_show_and_cannot_be_claimed_or_released(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    pool = unique("cancelled")
    collector_user = await user_in(db_pool, "collector", pool)
    collector = await client_for(make_client, collector_user)
    open_task, open_loan = await add_task(db_pool, pool)
    claimed_task, claimed_loan = await add_task(db_pool, pool)
    assert (await post_form(collector, "/", f"/tasks/{claimed_task}/claim", {})).status_code == 303
    # The loans were paid: the workflow's activity cancels their open and claimed tasks (migrations/0012).
    await db_pool.execute(
        "UPDATE collector_tasks SET status = 'cancelled', cancel_reason = 'paid', cancelled_at = now() "
        "WHERE id = ANY($1::uuid[])",
        [open_task, claimed_task],
    )

    for viewer in (collector, await client_for(make_client, await user_in(db_pool, "supervisor", "default"))):
        page = (await viewer.get("/")).text
        assert open_loan not in page and claimed_loan not in page
    refused = await post_form(collector, "/", f"/tasks/{open_task}/claim", {})
    assert refused.status_code == 409 and "no longer open" in refused.text
    assert (await post_form(collector, "/", f"/tasks/{claimed_task}/release", {})).status_code == 409
    rows = await db_pool.fetch(
        "SELECT status, cancel_reason FROM collector_tasks WHERE id = ANY($1::uuid[])",
        [open_task, claimed_task],
    )
    assert [(row["status"], row["cancel_reason"]) for row in rows] == [("cancelled", "paid")] * 2


async def test_a_task_the_contact_rules_refused_waits_with_its_time_and_reason_and_is_not_claimable(
    make_client: MakeClient, db_pool: asyncpg.Pool
) -> None:
    pool = unique("held")
    collector = await client_for(make_client, await user_in(db_pool, "collector", pool))
    later, later_loan = await add_task(db_pool, pool, kind="call")
    never, never_loan = await add_task(db_pool, pool, kind="visit")
    await add_portfolio_row(db_pool, later_loan, dpd=12, amount_minor=5_000)  # borrower zone: UTC
    await db_pool.execute(
        "UPDATE collector_tasks SET not_before = '2099-01-02 08:00+00', "
        "not_before_reason = 'call: outside contact hours' WHERE id = $1::uuid",
        later,
    )
    await db_pool.execute(
        "UPDATE collector_tasks SET not_before = 'infinity', not_before_reason = 'visit: contact ceased' "
        "WHERE id = $1::uuid",
        never,
    )

    page = (await collector.get("/")).text
    assert later_loan not in section(page, "open") and never_loan not in section(page, "open")
    held = section(page, "held")
    assert later_loan in held and "2099-01-02 08:00 (UTC, UTC+00:00)" in held
    assert "call: outside contact hours" in held
    assert never_loan in held and "Not while the restriction lasts" in held
    assert "/claim" not in held  # nothing to press

    refused = await post_form(collector, "/", f"/tasks/{later}/claim", {})
    assert refused.status_code == 409
    assert "not allowed now: call: outside contact hours" in refused.text
    assert "allowed from 2099-01-02 08:00 (UTC, UTC+00:00), the borrower&#39;s local time" in refused.text
    refused = await post_form(collector, "/", f"/tasks/{never}/claim", {})
    assert refused.status_code == 409 and "stays refused while this restriction lasts" in refused.text

    # Once the time has come the task is offered again (a review contacts nobody: claimed at once).
    await db_pool.execute(
        "UPDATE collector_tasks SET kind = 'review', not_before = now() WHERE id = $1::uuid", later
    )
    assert later_loan in section((await collector.get("/")).text, "open")
    claimed = await post_form(collector, "/", f"/tasks/{later}/claim", {})
    assert claimed.status_code == 303
    row = await db_pool.fetchrow(
        "SELECT not_before, not_before_reason FROM collector_tasks WHERE id = $1::uuid", later
    )
    assert row is not None and (row["not_before"], row["not_before_reason"]) == (None, None)
