"""Record a workflow history for the replay test: `python -m tests.workflows.record_history NAME`.

Run it when the workflow changes on purpose (behind `workflow.patched()`), commit the JSON, and the replay
test proves that loans already running would still replay on the new code.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contact_profiles import default_profiles
from domain.loan import Payment
from domain.promise import PromiseRequest
from domain.strategy import default_strategy
from tests.conftest import server_binary
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    PAYMENT_SIGNAL,
    PROMISE_UPDATE,
    WORKFLOW_NAME,
    CollectionInput,
    CollectionStatus,
    PromiseAccepted,
    workflow_id,
)
from workflows.registry import WORKFLOWS
from workflows.search_attributes import register

HISTORIES = Path(__file__).parent / "histories"


async def record(name: str, *, with_profile: bool) -> Path:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=server_binary("temporal-test-server"),
    )
    await register(env.client)
    fakes = FakeActivities()
    task_queue = f"record-{uuid.uuid4().hex}"
    try:
        async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
            now = await env.get_current_time()
            # The loan id is the file's name: child workflow ids derive from the workflow id, so the replay
            # test must use the same one (collection-{name}).
            loan = make_loan(now, dpd=40, amount=150_000).model_copy(update={"loan_id": name})
            handle = await env.client.start_workflow(
                WORKFLOW_NAME,
                CollectionInput(
                    loan=loan,
                    strategy=default_strategy(),
                    profile=default_profiles()[loan.jurisdiction] if with_profile else None,
                ),
                id=workflow_id(loan.loan_id),
                task_queue=task_queue,
                result_type=CollectionStatus,
            )
            await env.sleep(timedelta(hours=1))
            today = (await env.get_current_time()).astimezone(SHANGHAI).date()
            await handle.execute_update(
                PROMISE_UPDATE,
                PromiseRequest(amount_minor=50_000, due_date=today + timedelta(days=2), collector="c1"),
                result_type=PromiseAccepted,
            )
            await handle.signal(
                PAYMENT_SIGNAL,
                Payment(
                    payment_id="p1",
                    amount_minor=20_000,
                    currency="CNY",
                    received_at=await env.get_current_time(),
                ),
            )
            await handle.result()  # broken promise, agency, legal, write-off
            history = await handle.fetch_history()
    finally:
        await env.shutdown()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    # lifecycle_v1: a loan started before contact profiles (legacy path); lifecycle_v2: with its profile.
    name = sys.argv[1] if len(sys.argv) > 1 else "lifecycle_v2"
    print(asyncio.run(record(name, with_profile=name != "lifecycle_v1")))
