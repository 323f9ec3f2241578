"""The intake pipeline (start_batch) and a payment's currency lookup, which must not need a worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

from domain.loan import Loan
from domain.strategy import default_strategy
from starter.api import CollectionsStarter, InvalidRequest
from starter.starting import StartResult, start_batch
from tests.starter.samples import loan_record

pytestmark = pytest.mark.usefixtures("cli_encryption")


def loans(count: int, prefix: str = "L-") -> list[Loan]:
    return [Loan.model_validate(loan_record(f"{prefix}{i}")) for i in range(count)]


async def test_start_batch_keeps_every_slot_busy_and_starts_each_loan_once() -> None:
    in_flight: list[int] = [0]
    samples: list[int] = []
    started: list[str] = []

    async def start_one(loan: Loan) -> StartResult:
        in_flight[0] += 1
        samples.append(in_flight[0])
        await asyncio.sleep(0.002 * (int(loan.loan_id[2:]) % 3))  # uneven call times
        started.append(loan.loan_id)
        in_flight[0] -= 1
        return "started"

    batch = loans(60)
    tasks_before = len(asyncio.all_tasks())
    running = asyncio.create_task(start_batch(start_one, batch, concurrency=5, progress=False))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # one task per slot, not one per loan (the old start_many parked 60 tasks on a semaphore)
    assert len(asyncio.all_tasks()) - tasks_before <= 5 + 1
    results = await running

    assert sorted(started) == sorted(loan.loan_id for loan in batch)
    assert list(results) == [loan.loan_id for loan in batch]
    assert max(samples) == 5
    assert samples[:5] == [1, 2, 3, 4, 5]  # all slots filled at once


async def test_start_batch_refuses_a_bad_concurrency_before_starting() -> None:
    calls: list[str] = []

    async def start_one(loan: Loan) -> StartResult:
        calls.append(loan.loan_id)
        return "started"

    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        await start_batch(start_one, loans(3), concurrency=0)
    assert calls == []


async def test_pay_without_currency_needs_no_worker(product_client: Client) -> None:
    """The loan's currency comes from its Currency search attribute (the server answers), not a `status`
    query, which waits for a worker and replays the loan: here no worker polls the queue at all."""
    queue = f"no-worker-{uuid.uuid4().hex[:8]}"
    starter = CollectionsStarter(product_client, task_queue=queue, strategy=default_strategy())
    loan = loans(1, prefix=f"P{uuid.uuid4().hex[:6]}-")[0]
    await starter.start_loan(loan)

    payment = await asyncio.wait_for(starter.pay(loan.loan_id, 500, payment_id="P-1"), 10)

    assert payment.currency == loan.currency
    history = await starter.handle(loan.loan_id).fetch_history()
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 1


async def test_pay_in_another_currency_is_refused_without_a_worker(product_client: Client) -> None:
    queue = f"no-worker-{uuid.uuid4().hex[:8]}"
    starter = CollectionsStarter(product_client, task_queue=queue, strategy=default_strategy())
    loan = loans(1, prefix=f"P{uuid.uuid4().hex[:6]}-")[0]
    await starter.start_loan(loan)

    with pytest.raises(InvalidRequest, match="not USD") as refused:
        await asyncio.wait_for(starter.pay(loan.loan_id, 500, payment_id="P-1", currency="USD"), 10)

    assert [field for field, _ in refused.value.problems] == ["currency"]
    history = await starter.handle(loan.loan_id).fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
