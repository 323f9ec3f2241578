"""Collector work queue: calls, field visits, supervisor reviews, promise follow-ups; stored once per key."""

from __future__ import annotations

import asyncpg

from activities.contracts import CollectorTaskReceipt, CollectorTaskRequest
from activities.db import insert_once
from activities.errors import invalid, rejected_data_is_permanent, require_same_loan


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
