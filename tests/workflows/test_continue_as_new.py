"""A loan lives for months: its history is rolled over with continue-as-new and nothing is lost.

Runs on the real dev server started with `limit.historyCount.suggestContinueAsNew=60` (tests/conftest.py),
so a few dozen payments are enough to make the server suggest it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from domain.loan import Payment
from domain.strategy import default_strategy
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    PAYMENT_SIGNAL,
    STATUS_QUERY,
    WORKFLOW_NAME,
    CollectionInput,
    CollectionStatus,
    workflow_id,
)
from workflows.registry import WORKFLOWS


async def test_continue_as_new_keeps_payments_and_dedup(local_client: Client, task_queue: str) -> None:
    fakes = FakeActivities()
    loan = make_loan(datetime.now(UTC), dpd=4, amount=1_000_000)
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        handle = await local_client.start_workflow(
            WORKFLOW_NAME,
            CollectionInput(loan=loan, strategy=default_strategy()),
            id=workflow_id(loan.loan_id),
            task_queue=task_queue,
        )
        first_run = (await handle.describe()).run_id
        for n in range(40):
            await handle.signal(
                PAYMENT_SIGNAL,
                Payment(
                    payment_id=f"p-{n}", amount_minor=1_000, currency="CNY", received_at=datetime.now(UTC)
                ),
            )
        # The first payment again, after the rollover: still counted once.
        await handle.signal(
            PAYMENT_SIGNAL,
            Payment(payment_id="p-0", amount_minor=1_000, currency="CNY", received_at=datetime.now(UTC)),
        )
        latest = local_client.get_workflow_handle(workflow_id(loan.loan_id))
        status = await latest.query(STATUS_QUERY, result_type=CollectionStatus)
        description = await latest.describe()

    assert description.run_id != first_run
    assert status.paid_total_minor == 40_000
    assert status.amount_overdue_minor == 1_000_000 - 40_000
    assert status.last_step is not None and status.last_step.key == "email_statement"
    # The step already run before the rollover was not repeated after it.
    assert [m.step_key for m in fakes.of("send_message")] == ["email_statement"]
    await latest.terminate("test finished")
