"""The work queue (GET /): what a collector should work on now, and claiming and releasing tasks.

A collector sees the tasks they are working on (in progress, assigned to them) and the open tasks due now
(due_at <= now()) in their pools (users.pools; a task's pool is the loan's segment); a supervisor sees every
pool. Open tasks come most urgent first: priority, then days past due and arrears (from the portfolio read
model, when the loan has a row there), then loans with a broken promise. Follow-ups of broken promises and
callbacks the borrower asked for have sections of their own above the rest. Tasks the contact rules refused
(collector_tasks.not_before, migrations/0013) wait in a section of their own, with the time contact becomes
allowed and why, and are not offered before then. Cancelled and finished tasks never show.

Claiming takes the task's row lock (FOR UPDATE SKIP LOCKED: a second collector pressing Claim at the same time
finds it taken at once, never waits). A call or visit is human contact, so the loan's workflow is asked
first (`claim_contact`: the contact hours, caps, holds and opt-outs of that moment); only when it accepts is
the task marked claimed, and the accepted claim is the contact attempt. When it refuses, the task stays open
and keeps the time contact becomes allowed. Reviews, follow-ups and address tracing contact nobody: claimed
at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from temporalio.service import RPCError

from admin.access import AccessSettings, access_settings, visible_pools
from admin.i18n import Translate, translator
from admin.users import User
from admin.web import TEMPLATES, CurrentUser, checked_form, render, services_of
from starter.api import (
    Actor,
    CollectionClosed,
    CollectionsStarter,
    ContactNotAllowed,
    InvalidRequest,
    RequestRefused,
)

router = APIRouter()

QUEUE_LIMIT = 100  # rows per section
# Tasks that are human contact, and the contact channel the workflow's rules judge them by.
CONTACT_CHANNELS: dict[str, Literal["call", "visit"]] = {"call": "call", "visit": "visit"}
# How long a claim waits for the workflow's answer: the row stays locked meanwhile, and without a worker an
# update would wait for ever. An update delivered after the timeout may still be accepted (one attempt more
# on the caps, the task unclaimed): the safe side of the error, never a contact the rules did not allow.
CLAIM_TIMEOUT_SECONDS = 15.0
MAX_REASON = 500
# Refusals of the contact rules (English keys of admin/translations/queue.toml).
REFUSED_UNTIL_TEXT = (
    "Contact with this borrower is not allowed now: {reason}. It is allowed from {when}, the borrower's "
    "local time; until then the task waits in the queue."
)
REFUSED_FOR_NOW_TEXT = (
    "Contact with this borrower is not allowed: {reason}. It stays refused while this restriction lasts, "
    "so the task is not offered."
)

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
          AND (t.not_before IS NULL OR t.not_before <= now())
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


# Open tasks due now that the contact rules refused until later: shown with that time, not claimable.
# 'infinity': refused while a restriction lasts (cease, opt-out), with no end the rules can name.
_HELD_BACK = """
    SELECT t.*, CASE WHEN isfinite(t.not_before) THEN t.not_before END AS allowed_from, p.dpd,
           p.amount_overdue_minor, p.currency, coalesce(p.broken_promises, 0) AS broken_promises, p.timezone
    FROM collector_tasks t
    LEFT JOIN portfolio_now p ON p.loan_id = t.loan_id
    WHERE t.status = 'open' AND t.assignee IS NULL AND t.due_at <= now() AND t.not_before > now()
      AND ($1::text[] IS NULL OR t.pool = ANY($1::text[]))
    ORDER BY t.not_before, t.priority DESC, t.id
    LIMIT $2
"""

# The task a claim may take, locked; a task another claim holds is skipped (that claim decides it).
_CLAIMABLE = """
    SELECT t.loan_id, t.kind
    FROM collector_tasks t
    WHERE t.id = $1::uuid AND t.status = 'open' AND t.assignee IS NULL AND t.due_at <= now()
      AND (t.not_before IS NULL OR t.not_before <= now())
      AND ($2::text[] IS NULL OR t.pool = ANY($2::text[]))
    FOR UPDATE SKIP LOCKED
"""

# A refused contact: the task waits until the rules allow it. `allowed_at` is on the loan's collections
# clock (the demo runs faster than real time), so it becomes real time through the clock of the loan's
# portfolio row; without a row (or a clock running at real speed) it is taken as it is. NULL: no end
# ('infinity').
_HOLD_BACK = """
    UPDATE collector_tasks t SET
        not_before = coalesce(
            (SELECT p.clock_real_anchor + ($2::timestamptz - p.clock_collections_anchor) / p.clock_speed
             FROM portfolio_now p WHERE p.loan_id = t.loan_id),
            $2::timestamptz,
            'infinity'),
        not_before_reason = $3
    WHERE t.id = $1::uuid
"""


def plain_reason(reason: str) -> str:
    """The rules' reason without the machine-readable time the workflow appends ('; allowed from <ISO>'):
    the page says when, in the borrower's time with the zone spelt out."""
    for tail in ("; allowed from ", "; not allowed"):
        reason = reason.split(tail, 1)[0]
    return reason.strip()[:MAX_REASON]


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def borrower_time(instant: datetime, zone_name: str | None) -> str:
    """An instant as the borrower's wall-clock time with the zone spelt out, so that nobody reads it in their
    own zone: '2026-11-25 08:00 (Asia/Shanghai, UTC+08:00)'."""
    zone = zone_of(zone_name)
    local = (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).astimezone(zone)
    offset = local.strftime("%z")
    return f"{local.strftime('%Y-%m-%d %H:%M')} ({zone.key}, UTC{offset[:3]}:{offset[3:]})"


TEMPLATES.env.globals["borrower_time"] = borrower_time


def pools_of(user: User, settings: AccessSettings | None = None) -> list[str] | None:
    """The pools whose tasks `user` may see and claim; None: every pool (admins, and supervisors unless
    OVERDUE_SUPERVISORS_SEE_ALL_POOLS=false): admin/access.py visible_pools."""
    return visible_pools(user, settings or AccessSettings())


async def queue_for(
    pool: asyncpg.Pool, user: User, limit: int = QUEUE_LIMIT, *, settings: AccessSettings | None = None
) -> dict[str, Any]:
    """The rows of the page: `mine` (in progress, mine), each section of the open tasks due now, and `held`
    (due, but refused by the contact rules until `allowed_from`)."""
    pools = pools_of(user, settings)
    mine = await pool.fetch(_MINE, user.username, limit)
    rows = await pool.fetch(_OPEN_DUE_NOW, pools, limit)
    held = await pool.fetch(_HELD_BACK, pools, limit)
    sections: dict[str, list[asyncpg.Record]] = {name: [] for name in SECTIONS}
    for row in rows:
        sections[row["section"]].append(row)
    return {"mine": mine, **sections, "held": held}


@router.get("/", response_class=HTMLResponse)
async def work_queue(request: Request, user: CurrentUser) -> Response:
    settings = access_settings(request)
    rows = await queue_for(services_of(request).pool, user, settings=settings)
    context = {
        "user": user,
        "mine": rows["mine"],
        "broken_promises": rows["broken_promises"],
        "callbacks": rows["callbacks"],
        "open_tasks": rows["open"],
        "held": rows["held"],
        "pools": pools_of(user, settings),
        "error": None,
    }
    return render(request, "queue.html", context)


async def claim_task(
    pool: asyncpg.Pool,
    starter: CollectionsStarter,
    task_id: str,
    user: User,
    settings: AccessSettings | None = None,
) -> str | None:
    """Take an open task due now in one of `user`'s pools: its loan id, or None when it cannot be taken.

    A call or visit is claimed only once the loan's workflow accepts the contact; when the contact rules
    refuse, the task keeps the time it becomes allowed and `ContactNotAllowed` is raised. `UnknownLoan`,
    `CollectionClosed`, `RequestRefused`, TimeoutError and RPCError pass through: nothing changed."""
    refused: ContactNotAllowed | None = None
    try:
        async with pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_CLAIMABLE, task_id, pools_of(user, settings))
            if row is None:
                return None
            channel = CONTACT_CHANNELS.get(row["kind"])
            if channel is not None:
                try:
                    async with asyncio.timeout(CLAIM_TIMEOUT_SECONDS):
                        await starter.claim_contact(
                            row["loan_id"],
                            task_id,
                            channel,
                            user.username,
                            actor=Actor(user.username, user.role),
                        )
                except ContactNotAllowed as error:
                    refused = error
                    reason = plain_reason(error.reason)
                    await connection.execute(_HOLD_BACK, task_id, error.allowed_at, reason)
            if refused is None:
                await connection.execute(
                    "UPDATE collector_tasks SET assignee = $2, status = 'in_progress', not_before = NULL, "
                    "not_before_reason = NULL WHERE id = $1::uuid",
                    task_id,
                    user.username,
                )
    except asyncpg.DataError:  # not a uuid
        return None
    if refused is not None:
        raise refused
    loan_id: str = row["loan_id"]
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


async def _why_not_claimed(
    pool: asyncpg.Pool, task_id: str, user: User, _: Translate, settings: AccessSettings
) -> str:
    """Why a claim found nothing to take, in the user's language. A task of a pool the user does not work is
    answered word for word like one that does not exist: its existence is not theirs to know."""
    try:
        row = await pool.fetchrow(
            "SELECT t.status, t.pool, t.due_at > now() AS not_due, t.not_before > now() AS held_back, "
            "CASE WHEN isfinite(t.not_before) THEN t.not_before END AS allowed_from, t.not_before_reason, "
            "p.timezone FROM collector_tasks t LEFT JOIN portfolio_now p ON p.loan_id = t.loan_id "
            "WHERE t.id = $1::uuid",
            task_id,
        )
    except asyncpg.DataError:
        row = None
    allowed = pools_of(user, settings)
    if row is not None and row["status"] == "open" and (allowed is None or row["pool"] in allowed):
        if row["not_due"]:
            return _("This task is not due yet.")
        if row["held_back"]:
            return refusal_message(_, row["not_before_reason"] or "", row["allowed_from"], row["timezone"])
    return _("This task was already claimed by someone else, or is no longer open.")


async def borrower_zone(pool: asyncpg.Pool, starter: CollectionsStarter, loan_id: str) -> str | None:
    """The borrower's time zone: from the portfolio, else (a loan whose first snapshot is not written yet)
    from the workflow; None: unknown (times are then shown in UTC, still with the zone spelt out)."""
    zone: str | None = await pool.fetchval("SELECT timezone FROM portfolio_now WHERE loan_id = $1", loan_id)
    if zone is None:
        try:
            async with asyncio.timeout(CLAIM_TIMEOUT_SECONDS):
                status = await starter.status(loan_id)
        except (LookupError, CollectionClosed, InvalidRequest, RPCError, TimeoutError):
            return None  # UnknownLoan, NotALoan are LookupErrors
        zone = status.loan.borrower.timezone if status.loan is not None else None
    return zone


def refusal_message(_: Translate, reason: str, allowed_at: datetime | None, zone: str | None) -> str:
    """Why the contact rules refuse, and from when contact is allowed, in the borrower's time spelt out."""
    if allowed_at is None:
        return _(REFUSED_FOR_NOW_TEXT, reason=reason)
    return _(REFUSED_UNTIL_TEXT, reason=reason, when=borrower_time(allowed_at, zone))


@router.post("/tasks/{task_id}/claim")
async def claim(request: Request, task_id: str, user: CurrentUser) -> Response:
    await checked_form(request)
    services = services_of(request)
    _ = translator(user.locale)
    status_code = 409
    settings = access_settings(request)
    try:
        claimed = await claim_task(services.pool, services.starter, task_id, user, settings)
    except ContactNotAllowed as refused:
        zone = await borrower_zone(services.pool, services.starter, refused.loan_id)
        message = refusal_message(_, plain_reason(refused.reason), refused.allowed_at, zone)
    except (LookupError, CollectionClosed, InvalidRequest):  # UnknownLoan, NotALoan
        message = _("No collection is running for this task's loan, so the task cannot be worked.")
    except RequestRefused as refused:
        message = _("The loan's workflow refused the claim: {reason}", reason=refused.reason)
    except (TimeoutError, RPCError):
        message = _("The collections service did not answer, so the task was not claimed. Try again shortly.")
        status_code = 503
    else:
        if claimed is not None:
            return RedirectResponse(f"/loans/{quote(claimed)}", status_code=303)
        message = await _why_not_claimed(services.pool, task_id, user, _, settings)
    return render(request, "error.html", {"user": user, "message": message}, status_code=status_code)


@router.post("/tasks/{task_id}/release")
async def release(request: Request, task_id: str, user: CurrentUser) -> Response:
    await checked_form(request)
    if not await release_task(services_of(request).pool, task_id, user):
        _ = translator(user.locale)
        message = _("This task is not in progress with you, so there is nothing to release.")
        return render(request, "error.html", {"user": user, "message": message}, status_code=409)
    return RedirectResponse("/", status_code=303)
