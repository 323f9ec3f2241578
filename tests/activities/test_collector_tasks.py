from __future__ import annotations

from datetime import datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from tests.activities.builders import task_request


async def _rows(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM collector_tasks WHERE loan_id = $1", loan_id)


async def test_creates_one_open_unassigned_task(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.create_collector_task(task_request(loan_id, kind="visit", pool="field"))

    [row] = await _rows(db_pool, loan_id)
    assert str(row["id"]) == receipt.task_id
    assert (row["kind"], row["pool"], row["status"], row["assignee"], row["outcome"]) == (
        "visit",
        "field",
        "open",
        None,
        None,
    )
    assert receipt.duplicate is False


async def test_same_key_twice_stores_one_task_and_reports_duplicate(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.create_collector_task(task_request(loan_id))
    second = await activities.create_collector_task(task_request(loan_id))

    assert len(await _rows(db_pool, loan_id)) == 1
    assert (second.task_id, second.duplicate) == (first.task_id, True)


async def test_due_at_without_offset_is_non_retryable(activities: CollectionActivities, loan_id: str) -> None:
    with pytest.raises(ApplicationError) as error:
        await activities.create_collector_task(task_request(loan_id, due_at=datetime(2026, 1, 20, 9, 0)))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)
