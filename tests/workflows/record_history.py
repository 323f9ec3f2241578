"""Record the workflow histories the replay test runs: `python -m tests.workflows.record_history`.

Two histories of the current product generation:
- `lifecycle`: a large loan joining at DPD 40 through a promise and a payment, a repayment plan that breaks, a
  hardship hold that recalls the agency and cancels tasks, the agency placement child, the legal case child
  (letter, registered mail, response window) and the litigation referral (time-skipping server);
- `rollover`: the first run of a loan that continues as new under a burst of payments and a hold (dev server
  with a tiny history limit), ending with the ContinueAsNew that carries the case and the pending journal.

Before the first production release: change the workflow, run this, commit the JSON. From that release on,
every change that running loans replay goes through `workflow.patched()` and a new recorded history is added
beside the old ones (README, "Changing workflow code").
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from authority import trust
from domain.arrangements import PlanInstalmentRequest, RepaymentPlanRequest
from domain.contact_profiles import default_profiles
from domain.contact_rules import ContactState
from domain.definitions import REGISTRY, canonical_json
from domain.holds import HardshipHold
from domain.loan import Loan, Payment
from domain.promise import PromiseRequest
from domain.strategy import default_strategy
from starter.starting import initial_search_attributes
from tests.authority.keys import TEST_RING, signed
from tests.conftest import server_binary
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    HARDSHIP_HOLD_UPDATE,
    PAYMENT_SIGNAL,
    PROMISE_UPDATE,
    REPAYMENT_PLAN_UPDATE,
    WORKFLOW_NAME,
    CollectionInput,
    CollectionStatus,
    PromiseAccepted,
    workflow_id,
)
from workflows.registry import WORKFLOWS
from workflows.search_attributes import ALL, register

HISTORIES = Path(__file__).parent / "histories"
DEFINITIONS = HISTORIES / "definitions.json"  # what loans started by reference resolve (domain.definitions)


async def _start(
    client: Client, task_queue: str, loan: Loan, *, by_reference: bool = False
) -> WorkflowHandle:
    """As the starter starts a loan: with its initial search attributes; by reference to the stored strategy
    and profile (their bodies saved beside the histories for the replay test), or with copies."""
    strategy, profile = default_strategy(), default_profiles()[loan.jurisdiction]
    if by_reference:
        refs = [REGISTRY.intern(strategy)[0], REGISTRY.intern(profile)[0]]
        stored = json.loads(DEFINITIONS.read_text()) if DEFINITIONS.exists() else {}
        for ref, definition in zip(refs, (strategy, profile), strict=True):
            stored[ref] = {
                "kind": "strategy" if definition is strategy else "profile",
                "body": canonical_json(definition),
            }
        DEFINITIONS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        start = CollectionInput(loan=loan, strategy_ref=refs[0], profile_ref=refs[1])
    else:
        start = CollectionInput(loan=loan, strategy=strategy, profile=profile)
    return await client.start_workflow(
        WORKFLOW_NAME,
        start,
        id=workflow_id(loan.loan_id),
        task_queue=task_queue,
        result_type=CollectionStatus,
        search_attributes=initial_search_attributes(loan, strategy.segment_for(loan)),
    )


def _payment(payment_id: str, amount: int, at: datetime) -> Payment:
    return Payment(payment_id=payment_id, amount_minor=amount, currency="CNY", received_at=at)


async def record_lifecycle(name: str = "lifecycle") -> Path:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=server_binary("temporal-test-server"),
    )
    await register(env.client)
    task_queue = f"record-{uuid.uuid4().hex}"
    try:
        async with Worker(
            env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
        ):
            now = await env.get_current_time()
            # The loan id is the file's name: child ids derive from the workflow id (collection-{name}).
            loan = make_loan(now, dpd=40, amount=1_500_000).model_copy(update={"loan_id": name})
            handle = await _start(signed(env.client, env.get_current_time), task_queue, loan)
            await env.sleep(timedelta(hours=1))
            today = (await env.get_current_time()).astimezone(SHANGHAI).date()
            await handle.execute_update(
                PROMISE_UPDATE,
                PromiseRequest(amount_minor=50_000, due_date=today + timedelta(days=2), collector="c1"),
                result_type=PromiseAccepted,
            )
            await handle.signal(PAYMENT_SIGNAL, _payment("p1", 50_000, await env.get_current_time()))
            await env.sleep(timedelta(days=1))
            today = (await env.get_current_time()).astimezone(SHANGHAI).date()
            await handle.execute_update(
                REPAYMENT_PLAN_UPDATE,
                RepaymentPlanRequest(
                    collector="c1",
                    instalments=[
                        PlanInstalmentRequest(due_date=today + timedelta(days=3), amount_minor=100_000),
                        PlanInstalmentRequest(due_date=today + timedelta(days=10), amount_minor=100_000),
                    ],
                ),
                result_type=CollectionStatus,
            )
            await env.sleep(timedelta(days=12))  # the plan breaks; DPD ~54: placed with an agency
            await handle.execute_update(
                HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=20), result_type=ContactState
            )
            await handle.result()  # hold ends, letter, window, litigation
            history = await handle.fetch_history()
    finally:
        await env.shutdown()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json())
    return path


async def record_rollover(name: str = "rollover") -> Path:
    env = await WorkflowEnvironment.start_local(
        namespace="default",
        data_converter=pydantic_data_converter,
        dev_server_existing_path=server_binary("temporal"),
        search_attributes=ALL,
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"],
        ui=False,
    )
    task_queue = f"record-{uuid.uuid4().hex}"
    try:
        async with Worker(
            env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
        ):
            loan = make_loan(datetime.now(UTC), dpd=4, amount=1_000_000).model_copy(update={"loan_id": name})
            handle = await _start(signed(env.client), task_queue, loan, by_reference=True)
            first_run = (await handle.describe()).run_id
            await handle.execute_update(
                HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=3), result_type=ContactState
            )
            for n in range(50):
                await handle.signal(PAYMENT_SIGNAL, _payment(f"p-{n}", 1_000, datetime.now(UTC)))
            while (await handle.describe()).run_id == first_run:  # noqa: ASYNC110  (polls the server)
                await asyncio.sleep(0.2)
            history = await env.client.get_workflow_handle(
                workflow_id(name), run_id=first_run
            ).fetch_history()
            await handle.terminate("recorded")
    finally:
        await env.shutdown()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    trust.install(TEST_RING)  # the replay test verifies the recorded signals against the same test keys
    for old in HISTORIES.glob("*.json"):
        # One product generation: histories of the code as it is now (definitions.json is written again).
        old.unlink()
    print(asyncio.run(record_lifecycle()))
    print(asyncio.run(record_rollover()))
