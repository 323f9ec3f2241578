"""Collector tasks follow the loan: the cancel activity closes open and claimed tasks with the reason, once
per key, and the work queue no longer shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import CollectorTaskCancellation
from admin.queue import queue_for
from admin.users import User
from tests.activities.builders import key, task_request

DUE = datetime.now(UTC) - timedelta(hours=1)  # due now: the queue would show them


def _cancel(loan_id: str, **overrides: object) -> CollectorTaskCancellation:
    fields: dict[str, object] = {
        "idempotency_key": key(loan_id, "cancel_tasks:paid"),
        "loan_id": loan_id,
        "reason": "paid",
    }
    return CollectorTaskCancellation.model_validate(fields | overrides)


async def _open(activities: CollectionActivities, loan_id: str, step_key: str, **fields: object) -> str:
    request = task_request(
        loan_id, idempotency_key=key(loan_id, step_key), step_key=step_key, due_at=DUE, **fields
    )
    return (await activities.create_collector_task(request)).task_id


async def _statuses(pool: asyncpg.Pool, loan_id: str) -> dict[str, tuple[str, str | None, bool]]:
    rows = await pool.fetch(
        "SELECT step_key, status, cancel_reason, cancelled_at IS NOT NULL AS stamped "
        "FROM collector_tasks WHERE loan_id = $1",
        loan_id,
    )
    return {r["step_key"]: (r["status"], r["cancel_reason"], r["stamped"]) for r in rows}


async def test_open_and_claimed_tasks_are_cancelled_with_the_reason_done_ones_kept(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    call = await _open(activities, loan_id, "d10-call")
    visit = await _open(activities, loan_id, "d20-visit", kind="visit")
    await _open(activities, loan_id, "d5-call")
    await db_pool.execute(
        "UPDATE collector_tasks SET status = 'in_progress', assignee = 'c-1' WHERE id = $1::uuid", visit
    )
    await db_pool.execute(
        "UPDATE collector_tasks SET status = 'done', outcome = 'no_answer' "
        "WHERE loan_id = $1 AND step_key = 'd5-call'",
        loan_id,
    )
    await _open(activities, f"{loan_id}-other", "d10-call")

    receipt = await activities.cancel_collector_tasks(_cancel(loan_id))

    assert sorted(receipt.cancelled) == sorted([call, visit])
    assert await _statuses(db_pool, loan_id) == {
        "d10-call": ("cancelled", "paid", True),
        "d20-visit": ("cancelled", "paid", True),
        "d5-call": ("done", None, False),
    }
    assert (await _statuses(db_pool, f"{loan_id}-other"))["d10-call"][0] == "open"


async def test_a_retry_returns_the_same_ids_and_cancels_nothing_twice(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    task = await _open(activities, loan_id, "d10-call")
    first = await activities.cancel_collector_tasks(_cancel(loan_id))
    stamped = await db_pool.fetchval("SELECT cancelled_at FROM collector_tasks WHERE id = $1::uuid", task)

    again = await activities.cancel_collector_tasks(_cancel(loan_id))

    assert first.cancelled == again.cancelled == [task]
    assert (
        await db_pool.fetchval("SELECT cancelled_at FROM collector_tasks WHERE id = $1::uuid", task)
        == stamped
    )
    # Another key (a later hold) finds nothing left to cancel.
    later = await activities.cancel_collector_tasks(
        _cancel(loan_id, idempotency_key=key(loan_id, "cancel_tasks:hold"), reason="hold")
    )
    assert later.cancelled == []
    assert (await _statuses(db_pool, loan_id))["d10-call"] == ("cancelled", "paid", True)


async def test_only_the_named_steps_are_cancelled(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await _open(activities, loan_id, "d10-call")
    visit = await _open(activities, loan_id, "d20-visit", kind="visit")

    receipt = await activities.cancel_collector_tasks(
        _cancel(loan_id, reason="superseded", step_keys=["d20-visit", "no-such-step"])
    )

    assert receipt.cancelled == [visit]
    statuses = await _statuses(db_pool, loan_id)
    assert (statuses["d10-call"][0], statuses["d20-visit"]) == ("open", ("cancelled", "superseded", True))


async def test_a_key_that_cancelled_another_loans_tasks_is_a_conflict(
    activities: CollectionActivities, loan_id: str
) -> None:
    await _open(activities, loan_id, "d10-call")
    await activities.cancel_collector_tasks(_cancel(loan_id))

    with pytest.raises(ApplicationError) as error:
        await activities.cancel_collector_tasks(
            _cancel(f"{loan_id}-other", idempotency_key=key(loan_id, "cancel_tasks:paid"))
        )

    assert (error.value.type, error.value.non_retryable) == (contracts.IDEMPOTENCY_KEY_CONFLICT, True)


def test_an_unknown_reason_is_refused_by_the_contract(loan_id: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        _cancel(loan_id, reason="bored")


async def test_the_work_queue_no_longer_shows_cancelled_tasks(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    supervisor = User(id=1, username="sup-1", role="supervisor", display_name="S", locale="en", active=True)
    collector = User(id=2, username="c-1", role="collector", display_name="C", locale="en", active=True)
    await _open(activities, loan_id, "d10-call")
    claimed = await _open(activities, loan_id, "d20-visit", kind="visit")
    await db_pool.execute(
        "UPDATE collector_tasks SET status = 'in_progress', assignee = 'c-1' WHERE id = $1::uuid", claimed
    )

    def of_loan(rows: dict[str, list[asyncpg.Record]]) -> list[str]:
        return sorted(r["step_key"] for section in rows.values() for r in section if r["loan_id"] == loan_id)

    assert of_loan(await queue_for(db_pool, supervisor, limit=10_000)) == ["d10-call"]
    # The collector works the default pool: the open call, and the visit they claimed.
    assert of_loan(await queue_for(db_pool, collector, limit=10_000)) == ["d10-call", "d20-visit"]

    await activities.cancel_collector_tasks(_cancel(loan_id, reason="hold"))

    assert of_loan(await queue_for(db_pool, supervisor, limit=10_000)) == []
    assert of_loan(await queue_for(db_pool, collector, limit=10_000)) == []


async def test_trace_address_tasks_can_be_opened(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await _open(activities, loan_id, "d60-letter:trace", kind="trace_address")

    assert await db_pool.fetchval("SELECT kind FROM collector_tasks WHERE loan_id = $1", loan_id) == (
        "trace_address"
    )


def test_cancel_collector_tasks_is_registered_with_the_worker(db_pool: asyncpg.Pool) -> None:
    names = [activity._Definition.must_from_callable(fn).name for fn in CollectionActivities(db_pool).all()]

    assert names.count(contracts.CANCEL_COLLECTOR_TASKS) == 1


async def test_a_review_the_borrower_asked_for_outlives_the_hold_that_cancels_the_rest(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await _open(activities, loan_id, "d10-call")
    await _open(activities, loan_id, "borrower:hardship", kind="review")
    await _open(activities, loan_id, "borrower:callback", kind="call")

    await activities.cancel_collector_tasks(_cancel(loan_id, reason="hold"))

    statuses = await _statuses(db_pool, loan_id)
    assert statuses["borrower:hardship"] == ("open", None, False)
    assert statuses["d10-call"][0] == statuses["borrower:callback"][0] == "cancelled"
