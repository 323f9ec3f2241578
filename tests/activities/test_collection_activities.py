from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities import contracts
from activities.collection_activities import CollectionActivities
from tests.activities.builders import task_request


def test_all_registers_one_activity_per_contract_name(activities: CollectionActivities) -> None:
    names = {activity._Definition.must_from_callable(fn).name for fn in activities.all()}

    assert names == {
        contracts.SEND_MESSAGE,
        contracts.CREATE_COLLECTOR_TASK,
        contracts.CANCEL_COLLECTOR_TASKS,
        contracts.PLACE_WITH_AGENCY,
        contracts.RECALL_FROM_AGENCY,
        contracts.GENERATE_LAWYER_LETTER,
        contracts.GENERATE_VALIDATION_NOTICE,
        contracts.REFER_TO_LITIGATION,
        contracts.RECORD_JOURNAL,
        contracts.DISPATCH_REGISTERED_MAIL,
    }


async def test_runs_inside_an_activity_context(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await ActivityEnvironment().run(activities.create_collector_task, task_request(loan_id))

    stored = await db_pool.fetchval(
        "SELECT loan_id FROM collector_tasks WHERE id = $1::uuid", receipt.task_id
    )
    assert stored == loan_id
