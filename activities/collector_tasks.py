"""Collector work queue: calls, field visits, supervisor reviews, promise follow-ups, address tracing.

Tasks are stored once per key. When the loan no longer needs them (paid, settled, closed, stopped, on hold,
...) the workflow cancels the open and claimed ones: they leave the queue (admin/queue.py shows only 'open'
and 'in_progress' tasks) with the reason and the time.
"""

from __future__ import annotations

import asyncpg

from activities import contracts
from activities.contracts import (
    CollectorTaskCancellation,
    CollectorTaskCancelReceipt,
    CollectorTaskReceipt,
    CollectorTaskRequest,
)
from activities.db import insert_once
from activities.errors import invalid, permanent, rejected_data_is_permanent, require_same_loan


async def create_collector_task(pool: asyncpg.Pool, request: CollectorTaskRequest) -> CollectorTaskReceipt:
    """Open a task in the collectors' queue (status 'open', unassigned); a repeated key returns the first."""
    if request.due_at.tzinfo is None or request.due_at.utcoffset() is None:
        raise invalid("due_at: must carry a timezone offset")
    async with pool.acquire() as connection:
        with rejected_data_is_permanent("collector task"):
            row, duplicate = await insert_once(
                connection,
                "collector_tasks",
                {
                    "idempotency_key": request.idempotency_key,
                    "loan_id": request.loan_id,
                    "step_key": request.step_key,
                    "kind": request.kind,
                    "due_at": request.due_at,
                    "priority": request.priority,
                    "pool": request.pool,
                    "note": request.note,
                },
            )
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "collector task")
    return CollectorTaskReceipt(task_id=str(row["id"]), duplicate=duplicate)


# Step keys of the tasks the borrower's own page opens (borrower/actions.py).
BORROWER_STEP_PREFIX = "borrower:"


async def cancel_collector_tasks(
    pool: asyncpg.Pool, request: CollectorTaskCancellation
) -> CollectorTaskCancelReceipt:
    """Cancel the loan's open and in-progress tasks (of `step_keys`, or all): status 'cancelled', the reason
    and `cancelled_at`; done and already cancelled tasks are left as they are.

    Idempotent on the key: each cancelled task records the key that cancelled it, and the receipt lists every
    task this key cancelled, so a retry after a lost answer returns the same ids (and cancels nothing new
    that the first attempt did not see, unless a task was opened in between; it is then cancelled too).
    """
    async with pool.acquire() as connection, connection.transaction():
        other_loan = await connection.fetchval(
            "SELECT loan_id FROM collector_tasks WHERE cancel_key = $1 AND loan_id <> $2 LIMIT 1",
            request.idempotency_key,
            request.loan_id,
        )
        if other_loan is not None:
            raise permanent(
                contracts.IDEMPOTENCY_KEY_CONFLICT,
                f"idempotency_key {request.idempotency_key!r} already cancelled another loan's tasks",
            )
        await connection.execute(
            "UPDATE collector_tasks SET status = 'cancelled', cancel_reason = $2, cancelled_at = now(), "
            "cancel_key = $3 "
            "WHERE loan_id = $1 AND status IN ('open', 'in_progress') "
            "AND ($4::text[] IS NULL OR step_key = ANY($4::text[])) "
            # A review the borrower asked for from their page (hardship: borrower/actions.py) outlives the
            # hold it came with: it is the follow-up of that hold, and no contact.
            f"AND NOT (kind = 'review' AND step_key LIKE '{BORROWER_STEP_PREFIX}%')",
            request.loan_id,
            request.reason,
            request.idempotency_key,
            request.step_keys,
        )
        rows = await connection.fetch(
            "SELECT id FROM collector_tasks WHERE cancel_key = $1 AND loan_id = $2 ORDER BY created_at, id",
            request.idempotency_key,
            request.loan_id,
        )
    return CollectorTaskCancelReceipt(cancelled=[str(row["id"]) for row in rows])
