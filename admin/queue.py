"""The work queue (GET /): what a collector should work on now, and claiming and releasing tasks.

A collector sees the tasks they are working on (in progress, assigned to them) and the open tasks due now
(due_at <= now()) in their pools (users.pools; a task's pool is the loan's segment); a supervisor sees every
pool. Open tasks come most urgent first: priority, then days past due and arrears (from the portfolio read
model, when the loan has a row there), then loans with a broken promise. Follow-ups of broken promises and
callbacks the borrower asked for have sections of their own above the rest.

Claiming is one UPDATE that only matches an open, unassigned task due now in one of the user's pools: when two
collectors press Claim at once, PostgreSQL lets exactly one UPDATE match, and the other finds it taken.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin.i18n import Translate, translator
from admin.users import User
from admin.web import CurrentUser, checked_form, render, services_of

router = APIRouter()

QUEUE_LIMIT = 100  # rows per section

# The sections of the open tasks, in the order the page shows them.
SECTIONS = ("broken_promises", "callbacks", "open")

# Which section an open task belongs to: follow-ups of broken promises; callbacks the borrower asked for
# (the workflow's `_call_back` creates call tasks with step key 'callback:<when>' and the note
# 'callback requested'); everything else.
_SECTION_SQL = """
    CASE WHEN t.kind = 'promise_follow_up' THEN 'broken_promises'
         WHEN t.step_key LIKE 'callback:%' OR t.note ILIKE '%callback%' THEN 'callbacks'
         ELSE 'open' END
"""

# Most urgent first: priority, days past due, arrears, a broken promise on the loan, then the oldest due.
_ORDER_SQL = """
    t.priority DESC, p.dpd DESC NULLS LAST, p.amount_overdue_minor DESC NULLS LAST,
    (t.kind = 'promise_follow_up' OR coalesce(p.broken_promises, 0) > 0) DESC, t.due_at, t.id
"""

_OPEN_DUE_NOW = f"""
    SELECT * FROM (
        SELECT t.*, {_SECTION_SQL} AS section,
               p.dpd, p.amount_overdue_minor, p.currency, coalesce(p.broken_promises, 0) AS broken_promises,
               row_number() OVER (PARTITION BY {_SECTION_SQL} ORDER BY {_ORDER_SQL}) AS position
        FROM collector_tasks t
        LEFT JOIN portfolio_now p ON p.loan_id = t.loan_id
        WHERE t.status = 'open' AND t.assignee IS NULL AND t.due_at <= now()
          AND ($1::text[] IS NULL OR t.pool = ANY($1::text[]))
    ) ranked
    WHERE position <= $2
    ORDER BY section, position
"""

_MINE = f"""
    SELECT t.*, p.dpd, p.amount_overdue_minor, p.currency, coalesce(p.broken_promises, 0) AS broken_promises
    FROM collector_tasks t
    LEFT JOIN portfolio_now p ON p.loan_id = t.loan_id
    WHERE t.status = 'in_progress' AND t.assignee = $1
    ORDER BY {_ORDER_SQL}
    LIMIT $2
"""


def pools_of(user: User) -> list[str] | None:
    """The pools whose tasks `user` may see and claim; None: every pool (supervisors and admins)."""
    return None if user.has_role("supervisor") else list(user.pools)


async def queue_for(pool: asyncpg.Pool, user: User, limit: int = QUEUE_LIMIT) -> dict[str, Any]:
    """The rows of the page: `mine` (in progress, mine) and each section of the open tasks due now."""
    mine = await pool.fetch(_MINE, user.username, limit)
    rows = await pool.fetch(_OPEN_DUE_NOW, pools_of(user), limit)
    sections: dict[str, list[asyncpg.Record]] = {name: [] for name in SECTIONS}
    for row in rows:
        sections[row["section"]].append(row)
    return {"mine": mine, **sections}


@router.get("/", response_class=HTMLResponse)
async def work_queue(request: Request, user: CurrentUser) -> Response:
    rows = await queue_for(services_of(request).pool, user)
    context = {
        "user": user,
        "mine": rows["mine"],
        "broken_promises": rows["broken_promises"],
        "callbacks": rows["callbacks"],
        "open_tasks": rows["open"],
        "pools": pools_of(user),
        "error": None,
    }
    return render(request, "queue.html", context)


async def claim_task(pool: asyncpg.Pool, task_id: str, user: User) -> str | None:
    """Take an open task due now in one of `user`'s pools; its loan id, or None when it cannot be taken."""
    try:
        loan_id: str | None = await pool.fetchval(
            "UPDATE collector_tasks SET assignee = $2, status = 'in_progress' "
            "WHERE id = $1::uuid AND status = 'open' AND assignee IS NULL AND due_at <= now() "
            "AND ($3::text[] IS NULL OR pool = ANY($3::text[])) RETURNING loan_id",
            task_id,
            user.username,
            pools_of(user),
        )
    except asyncpg.DataError:  # not a uuid
        return None
    return loan_id


async def release_task(pool: asyncpg.Pool, task_id: str, user: User) -> bool:
    """Put a task in progress back in its pool, open and unassigned: the assignee's own task, or any task
    for a supervisor."""
    try:
        released = await pool.fetchval(
            "UPDATE collector_tasks SET assignee = NULL, status = 'open' "
            "WHERE id = $1::uuid AND status = 'in_progress' AND (assignee = $2 OR $3) RETURNING id",
            task_id,
            user.username,
            user.has_role("supervisor"),
        )
    except asyncpg.DataError:
        return False
    return released is not None


async def _why_not_claimed(pool: asyncpg.Pool, task_id: str, user: User, _: Translate) -> str:
    """Why a claim found nothing to take, in the user's language."""
    try:
        row = await pool.fetchrow(
            "SELECT status, pool, due_at > now() AS not_due FROM collector_tasks WHERE id = $1::uuid", task_id
        )
    except asyncpg.DataError:
        row = None
    if row is not None and row["status"] == "open":
        allowed = pools_of(user)
        if allowed is not None and row["pool"] not in allowed:
            return _("This task is in a pool you do not work: ask a supervisor.")
        if row["not_due"]:
            return _("This task is not due yet.")
    return _("This task was already claimed by someone else, or is no longer open.")


@router.post("/tasks/{task_id}/claim")
async def claim(request: Request, task_id: str, user: CurrentUser) -> Response:
    await checked_form(request)
    pool = services_of(request).pool
    loan_id = await claim_task(pool, task_id, user)
    if loan_id is None:
        message = await _why_not_claimed(pool, task_id, user, translator(user.locale))
        return render(request, "error.html", {"user": user, "message": message}, status_code=409)
    return RedirectResponse(f"/loans/{quote(loan_id)}", status_code=303)


@router.post("/tasks/{task_id}/release")
async def release(request: Request, task_id: str, user: CurrentUser) -> Response:
    await checked_form(request)
    if not await release_task(services_of(request).pool, task_id, user):
        _ = translator(user.locale)
        message = _("This task is not in progress with you, so there is nothing to release.")
        return render(request, "error.html", {"user": user, "message": message}, status_code=409)
    return RedirectResponse("/", status_code=303)
