"""CollectionsStarter and the CLI against the real dev server, with a stand-in for LoanCollectionWorkflow.

The stand-in has the real workflow's name, messages and handler names (from workflows.messages) but none of
its logic: it records what it receives, answers `status`, and its promise validator rejects amounts over 1000.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from authority import Actor
    from domain.loan import Loan, Payment
    from domain.promise import PromiseRequest, PromiseToPay
    from domain.strategy import default_strategy
    from starter.api import CollectionClosed, CollectionsStarter, PromiseRejected, UnknownLoan
    from tests.starter.samples import loan_record
    from workflows import search_attributes as sa
    from workflows.messages import (
        CLOSE_SIGNAL,
        PAYMENT_SIGNAL,
        PROMISE_UPDATE,
        STATUS_QUERY,
        WORKFLOW_NAME,
        CloseRequest,
        CollectionInput,
        CollectionStatus,
        PromiseAccepted,
        workflow_id,
    )

ROOT = Path(__file__).parents[2]
LI_NA = Actor("li.na", "collector")  # the admin UI would assert its logged-in collector


@workflow.defn(name=WORKFLOW_NAME)
class StandInCollection:
    @workflow.init
    def __init__(self, request: CollectionInput) -> None:
        # Input in __init__, so an update arriving in the first activation already sees the loan.
        self.input = request
        self.payments: list[Payment] = []
        self.promises: list[PromiseToPay] = []
        self.closed: CloseRequest | None = None

    @workflow.run
    async def run(self, request: CollectionInput) -> str:
        await workflow.wait_condition(lambda: self.closed is not None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.closed is not None
        return self.closed.reason

    @workflow.signal(name=PAYMENT_SIGNAL)
    def payment(self, payment: Payment, assertion: str | None = None) -> None:
        self.payments.append(payment)

    @workflow.signal(name=CLOSE_SIGNAL)
    def close(self, request: CloseRequest, assertion: str | None = None) -> None:
        self.closed = request

    @workflow.update(name=PROMISE_UPDATE)
    def promise(self, request: PromiseRequest, assertion: str | None = None) -> PromiseAccepted:
        deadline = datetime.combine(request.due_date + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
        promise = PromiseToPay(
            promise_id=f"ptp-{len(self.promises) + 1}",
            amount_minor=request.amount_minor,
            currency=self._loan.currency,
            due_date=request.due_date,
            deadline=deadline,
            collector=request.collector,
            note=request.note,
            made_at=workflow.now(),
        )
        self.promises.append(promise)
        return PromiseAccepted(promise_id=promise.promise_id, deadline=deadline)

    @promise.validator
    def _check_promise(self, request: PromiseRequest, assertion: str | None = None) -> None:
        if request.amount_minor > 1000:
            raise ApplicationError(
                f"amount_minor: {request.amount_minor} is more than the amount overdue (1000)",
                type="PromiseRejected",
            )

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CollectionStatus:
        loan = self._loan
        paid = sum(p.amount_minor for p in self.payments)
        return CollectionStatus(
            loan_id=loan.loan_id,
            stage="closed" if self.closed else "reminder",
            segment=self.input.strategy.segment_for(loan),
            strategy=self.input.strategy.name,
            dpd=0,
            currency=loan.currency,
            amount_overdue_minor=max(0, loan.amount_overdue_minor - paid),
            principal_outstanding_minor=loan.principal_outstanding_minor - paid,
            paid_total_minor=paid,
            overdue_since=loan.overdue_since,
            open_promise=self.promises[-1] if self.promises else None,
            promises=self.promises,
            broken_promises=0,
            last_step=None,
            next_step=None,
            waiting_for="a close signal",
            agency_placement_id=None,
            agency_name=None,
            documents=[p.payment_id for p in self.payments],
            outcome="closed_by_servicing" if self.closed else None,
            outcome_reason=self.closed.reason if self.closed else None,
            collections_now=workflow.now(),
            demo_speed=1.0,
        )

    @property
    def _loan(self) -> Loan:
        return self.input.loan


def new_loan(**changes: object) -> Loan:
    return Loan.model_validate(loan_record(f"T-{uuid.uuid4().hex[:12]}", **changes))


# The CLI encrypts payloads (privacy/): it, the worker and the starter here share a key ring and the database
# holding the loans' data keys (tests/starter/conftest.py).
pytestmark = pytest.mark.usefixtures("cli_encryption")


@pytest_asyncio.fixture
async def worker(product_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(product_client, task_queue=task_queue, workflows=[StandInCollection]) as running:
        yield running


@pytest.fixture
def starter(product_client: Client, task_queue: str) -> CollectionsStarter:
    return CollectionsStarter(product_client, task_queue=task_queue, strategy=default_strategy())


# -- starting ------------------------------------------------------------------------------------------------


async def test_start_then_start_again_is_already_running(starter: CollectionsStarter) -> None:
    loan = new_loan()

    assert await starter.start_loan(loan) == "started"
    assert await starter.start_loan(loan) == "already_running"

    description = await starter.handle(loan.loan_id).describe()
    assert description.id == workflow_id(loan.loan_id)
    assert description.workflow_type == WORKFLOW_NAME
    runs = [w async for w in starter.client.list_workflows(f"WorkflowId = '{description.id}'")]
    assert len(runs) == 1


async def test_start_sets_search_attributes_and_summary(starter: CollectionsStarter) -> None:
    loan = new_loan(risk_grade="D")

    await starter.start_loan(loan)

    description = await starter.handle(loan.loan_id).describe()
    attributes = description.typed_search_attributes
    assert attributes[sa.COLLECTION_STAGE] == "reminder"
    assert attributes[sa.SEGMENT] == "high_risk"
    assert attributes[sa.CURRENCY] == "CNY"
    assert attributes[sa.AMOUNT_OVERDUE] == 123450
    assert attributes[sa.OVERDUE_SINCE] == datetime(2026, 10, 1, tzinfo=UTC)
    assert attributes[sa.COLLECTION_OUTCOME] == "open"
    summary = await description.static_summary()
    assert summary == f"Loan {loan.loan_id} · CNY 1,234.50 overdue since 2026-10-01 · segment high_risk"
    assert "张伟" not in (summary or "") + (await description.static_details() or "")  # no PII


async def test_finished_collection_is_already_closed(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan()
    await starter.start_loan(loan)
    await starter.close(loan.loan_id, "settled")
    assert await starter.handle(loan.loan_id).result() == "settled"

    assert await starter.start_loan(loan) == "already_closed"


async def test_terminated_collection_may_be_started_again(
    starter: CollectionsStarter, worker: Worker
) -> None:
    loan = new_loan()
    await starter.start_loan(loan)
    await starter.handle(loan.loan_id).terminate("operator stopped a broken run")

    assert await starter.start_loan(loan) == "started"
    assert (await starter.handle(loan.loan_id).describe()).status == WorkflowExecutionStatus.RUNNING


async def test_start_many_concurrently_and_idempotently(starter: CollectionsStarter) -> None:
    # Starting needs no worker: the runs simply wait on their (unique) task queue.
    loans = [new_loan() for _ in range(20)]
    await starter.start_loan(loans[0])

    first = await starter.start_many(loans, concurrency=4, progress=False)
    second = await starter.start_many(loans, concurrency=4, progress=False)

    assert list(first) == [loan.loan_id for loan in loans]
    assert first[loans[0].loan_id] == "already_running"
    assert [first[loan.loan_id] for loan in loans[1:]] == ["started"] * 19
    assert set(second.values()) == {"already_running"}


# -- events --------------------------------------------------------------------------------------------------


async def test_pay_is_received_in_the_loans_currency(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan()
    await starter.start_loan(loan)

    payment = await starter.pay(loan.loan_id, 20000, payment_id="P-1")
    await starter.pay(loan.loan_id, 450, payment_id="P-2", currency="CNY", source="agency")

    assert payment.currency == "CNY"
    status = await starter.status(loan.loan_id)
    assert status.paid_total_minor == 20450
    assert status.documents == ["P-1", "P-2"]  # the stand-in lists received payment ids there


async def test_pay_unknown_loan(starter: CollectionsStarter, worker: Worker) -> None:
    with pytest.raises(UnknownLoan, match="no collection for loan NOPE-1"):
        await starter.pay("NOPE-1", 100, payment_id="P-1", currency="CNY")


async def test_signal_after_the_collection_ended(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan()
    await starter.start_loan(loan)
    await starter.close(loan.loan_id, "sold", note="sold to a debt buyer")
    await starter.handle(loan.loan_id).result()

    with pytest.raises(CollectionClosed, match="already ended"):
        await starter.pay(loan.loan_id, 100, payment_id="P-9", currency="CNY")


async def test_promise_accepted(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan()
    await starter.start_loan(loan)

    accepted = await starter.promise(
        loan.loan_id, 800, date(2026, 12, 1), collector="li.na", note="payday", actor=LI_NA
    )

    assert accepted.promise_id == "ptp-1"
    status = await starter.status(loan.loan_id)
    assert status.open_promise is not None
    assert status.open_promise.collector == "li.na"


async def test_promise_rejected_carries_the_reason(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan()
    await starter.start_loan(loan)

    with pytest.raises(PromiseRejected) as caught:
        await starter.promise(loan.loan_id, 5000, date(2026, 12, 1), collector="li.na", actor=LI_NA)

    assert caught.value.reason == "amount_minor: 5000 is more than the amount overdue (1000)"
    assert (await starter.status(loan.loan_id)).promises == []


async def test_promise_for_unknown_loan(starter: CollectionsStarter, worker: Worker) -> None:
    with pytest.raises(UnknownLoan):
        await starter.promise("NOPE-2", 100, date(2026, 12, 1), collector="li.na", actor=LI_NA)


async def test_status(starter: CollectionsStarter, worker: Worker) -> None:
    loan = new_loan(currency="USD")
    await starter.start_loan(loan)

    status = await starter.status(loan.loan_id)

    assert isinstance(status, CollectionStatus)
    assert (status.loan_id, status.currency, status.stage, status.segment) == (
        loan.loan_id,
        "USD",
        "reminder",
        "standard",
    )


async def test_status_of_unknown_loan(starter: CollectionsStarter) -> None:
    with pytest.raises(UnknownLoan):
        await starter.status("NOPE-3")


# -- the CLI against the server ------------------------------------------------------------------------------


async def run_cli(env: WorkflowEnvironment, task_queue: str, *args: str) -> tuple[int, str, str]:
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "OVERDUE_TASK_QUEUE": task_queue,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter", *args, cwd=ROOT, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_start_is_idempotent(
    local_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    ids = [f"C-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    path = tmp_path / "loans.jsonl"
    path.write_text("".join(json.dumps(loan_record(i)) + "\n" for i in ids), encoding="utf-8")

    first = await run_cli(local_env, task_queue, "start", "--file", str(path))
    second = await run_cli(local_env, task_queue, "start", "--file", str(path))

    assert first == (0, "3 loans: 3 started, 0 already running, 0 already closed\n", "")
    assert second == (0, "3 loans: 0 started, 3 already running, 0 already closed\n", "")


async def test_cli_file_with_one_bad_row_starts_no_loan(
    local_env: WorkflowEnvironment, local_client: Client, task_queue: str, tmp_path: Path
) -> None:
    good, bad = f"C-{uuid.uuid4().hex[:10]}", f"C-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "loans.jsonl"
    path.write_text(
        json.dumps(loan_record(good)) + "\n" + json.dumps(loan_record(bad, currency="RMB")) + "\n"
    )

    code, _, stderr = await run_cli(local_env, task_queue, "start", "--file", str(path))

    assert code == 2
    assert stderr.startswith(f"{path}:2 (loan_id={bad}): currency: unsupported currency 'RMB'")
    with pytest.raises(RPCError):
        await local_client.get_workflow_handle(workflow_id(good)).describe()


async def test_cli_pay_promise_close_status(
    local_env: WorkflowEnvironment, starter: CollectionsStarter, task_queue: str, worker: Worker
) -> None:
    loan = new_loan()
    await starter.start_loan(loan)
    loan_id = loan.loan_id

    paid = await run_cli(local_env, task_queue, "pay", loan_id, "--amount", "500", "--payment-id", "P-1")
    accepted = await run_cli(
        local_env, task_queue, "promise", loan_id, "--amount", "900", "--date", "2026-12-01"
    )
    rejected = await run_cli(
        local_env, task_queue, "promise", loan_id, "--amount", "1001", "--date", "2026-12-01"
    )
    table = await run_cli(local_env, task_queue, "status", loan_id)
    as_json = await run_cli(local_env, task_queue, "status", loan_id, "--json")
    closed = await run_cli(local_env, task_queue, "close", loan_id, "--reason", "restructured")
    unknown = await run_cli(local_env, task_queue, "status", "NOPE-4")

    assert paid == (0, f"payment P-1 of CNY 5.00 sent to loan {loan_id} (applied once per payment id)\n", "")
    assert accepted[0] == 0 and "promise ptp-1 accepted" in accepted[1]
    assert rejected == (
        3,
        "",
        "promise rejected: amount_minor: 1001 is more than the amount overdue (1000)\n",
    )
    assert table[0] == 0
    assert "Arrears          CNY 1,229.50 overdue" in table[1]
    assert "Open promise     CNY 9.00 by 2026-12-01" in table[1]
    assert CollectionStatus.model_validate_json(as_json[1]).paid_total_minor == 500
    assert closed == (0, f"close (restructured) sent to loan {loan_id}\n", "")
    assert await starter.handle(loan_id).result() == "restructured"
    assert unknown == (1, "", "error: no collection for loan NOPE-4 (workflow collection-NOPE-4 not found)\n")
