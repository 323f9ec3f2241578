"""A loan lives for months: its history is rolled over with continue-as-new and nothing is lost.

Runs on the real dev server started with `limit.historyCount.suggestContinueAsNew=60` (tests/conftest.py),
so a few dozen payments are enough to make the server suggest it. The journal activity is slowed down so
signals land while the flush before the rollover runs: the race that once dropped payments' journal entries.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from domain.contact_profiles import default_profiles
from domain.loan import Loan, Payment
from domain.strategy import default_strategy
from tests.authority.keys import signed
from tests.workflows.conftest import make_loan, zone_at
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    CLOSE_SIGNAL,
    PAYMENT_SIGNAL,
    STATUS_QUERY,
    WORKFLOW_NAME,
    CloseRequest,
    CollectionInput,
    CollectionStatus,
    workflow_id,
)
from workflows.registry import WORKFLOWS


async def _start(client: Client, task_queue: str, loan: Loan) -> str:
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        CollectionInput(
            loan=loan, strategy=default_strategy(), profile=default_profiles()[loan.jurisdiction]
        ),
        id=workflow_id(loan.loan_id),
        task_queue=task_queue,
    )
    return (await handle.describe()).run_id


def _payment(n: int) -> Payment:
    return Payment(payment_id=f"p-{n}", amount_minor=1_000, currency="CNY", received_at=datetime.now(UTC))


async def test_continue_as_new_keeps_payments_journal_and_dedup(
    local_client: Client, task_queue: str
) -> None:
    fakes = FakeActivities(journal_delay=0.05)
    # The dev server's real clock: the borrower lives where it is 13:00, so the first step is due at once.
    loan = make_loan(datetime.now(UTC), dpd=4, amount=1_000_000, timezone=zone_at(13).key)
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        first_run = await _start(local_client, task_queue, loan)
        handle = signed(local_client).get_workflow_handle(
            workflow_id(loan.loan_id), result_type=CollectionStatus
        )
        # The step due at the start has run before the payments arrive (else they could decide it away).
        for _ in range(400):
            if fakes.of("send_message"):
                break
            await asyncio.sleep(0.025)
        for n in range(120):
            await handle.signal(PAYMENT_SIGNAL, _payment(n))
        # The first payment again, after the rollovers: still counted once.
        await handle.signal(PAYMENT_SIGNAL, _payment(0))
        await handle.signal(CLOSE_SIGNAL, CloseRequest(reason="sold", note="portfolio sale"))
        status = await handle.result()

    description = await handle.describe()
    assert description.run_id != first_run  # it did continue as new (more than once)
    assert status.paid_total_minor == 120_000
    assert status.outcome == "closed_by_servicing"  # the close was not lost in a rollover
    # The step already run before the rollover was not repeated after it.
    assert [m.step_key for m in fakes.of("send_message")] == ["email_statement"]
    # Every applied payment is journaled exactly once, the duplicate as not applied.
    journaled = [e for e in fakes.journal_of("payment") if e.data["applied"]]
    assert sorted(str(e.data["payment_id"]) for e in journaled) == sorted(f"p-{n}" for n in range(120))
    assert len([e for e in fakes.journal_of("payment") if not e.data["applied"]]) == 1


async def test_a_close_during_the_rollover_is_carried(local_client: Client, task_queue: str) -> None:
    """Payments and a close signalled in a burst (some land in the iteration that continues as new): the
    close still ends the loan and every payment before it is applied and journaled."""
    fakes = FakeActivities(journal_delay=0.2)
    loan = make_loan(datetime.now(UTC), dpd=4, amount=1_000_000)
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        await _start(local_client, task_queue, loan)
        handle = signed(local_client).get_workflow_handle(
            workflow_id(loan.loan_id), result_type=CollectionStatus
        )
        for n in range(70):
            await handle.signal(PAYMENT_SIGNAL, _payment(n))
        await handle.signal(CLOSE_SIGNAL, CloseRequest(reason="restructured"))
        status = await handle.result()
        latest = await handle.query(STATUS_QUERY, result_type=CollectionStatus)

    assert status.outcome == latest.outcome == "closed_by_servicing"
    assert status.paid_total_minor == 70_000
    assert len(fakes.journal_of("payment")) == 70
