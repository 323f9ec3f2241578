"""Collection cycles and ids that are not loans, against the real dev server with the stand-in workflow.

A cured loan that goes overdue again starts a new cycle under the same workflow id; the same start file sent
again starts nothing twice. An id that names another kind of workflow is a clear error, never a traceback.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from domain.loan import Loan
    from domain.strategy import default_strategy
    from starter.api import (
        CollectionsStarter,
        InvalidRequest,
        NotALoan,
        WorkflowIdTaken,
        initial_search_attributes,
    )
    from starter.starting import CYCLE_MEMO
    from tests.starter.samples import loan_record
    from tests.starter.test_api_server import StandInCollection, run_cli
    from workflows import search_attributes as sa
    from workflows.messages import WORKFLOW_NAME, CollectionInput, workflow_id

# The CLI subprocesses encrypt (connect()): the worker and starter here use the same key ring and database.
pytestmark = pytest.mark.usefixtures("cli_encryption")


@workflow.defn(name="LegalCaseStandIn")
class OtherWorkflow:
    """Any workflow that is not a loan's collection, e.g. a child whose id looks like a loan's."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@pytest_asyncio.fixture
async def worker(product_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        product_client, task_queue=task_queue, workflows=[StandInCollection, OtherWorkflow]
    ) as running:
        yield running


@pytest.fixture
def starter(product_client: Client, task_queue: str) -> CollectionsStarter:
    return CollectionsStarter(product_client, task_queue=task_queue, strategy=default_strategy())


def cycle_of(loan_id: str, overdue_since: str) -> Loan:
    return Loan.model_validate(loan_record(loan_id, overdue_since=overdue_since))


async def runs_of(client: Client, loan_id: str) -> list[tuple[WorkflowExecutionStatus | None, str]]:
    """(status, memo cycle) of every run of the loan's workflow id, oldest first."""
    found = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id(loan_id)}'")]
    found.sort(key=lambda w: w.start_time)
    return [(w.status, (await w.memo()).get(CYCLE_MEMO, "")) for w in found]


async def close_and_wait(starter: CollectionsStarter, loan_id: str) -> None:
    await starter.close(loan_id, "settled")
    await starter.handle(loan_id).result()


async def test_a_cured_loan_overdue_again_starts_a_new_cycle_once(
    starter: CollectionsStarter, worker: Worker
) -> None:
    loan_id = f"RE-{uuid.uuid4().hex[:10]}"
    first, again = cycle_of(loan_id, "2026-10-01"), cycle_of(loan_id, "2026-11-20")
    assert await starter.start_loan(first) == "started"
    await close_and_wait(starter, loan_id)

    assert await starter.start_loan(first) == "already_closed"  # the same cycle is never restarted
    assert await starter.start_loan(again) == "new_cycle"
    assert await starter.start_loan(again) == "already_running"
    status = await starter.status(loan_id)  # the loan id reaches the new cycle's run
    assert status.overdue_since == date(2026, 11, 20) and status.outcome is None

    await close_and_wait(starter, loan_id)
    assert await starter.start_loan(again) == "already_closed"
    assert await starter.start_loan(first) == "already_closed"  # an older cycle comes back: stale, refused
    assert await runs_of(starter.client, loan_id) == [
        (WorkflowExecutionStatus.COMPLETED, "2026-10-01"),
        (WorkflowExecutionStatus.COMPLETED, "2026-11-20"),
    ]


async def test_a_run_without_a_cycle_memo_is_dated_by_its_overdue_since_attribute(
    starter: CollectionsStarter, worker: Worker, task_queue: str
) -> None:
    """Runs started before the memo existed: their OverdueSince search attribute names the cycle."""
    loan_id = f"RE-{uuid.uuid4().hex[:10]}"
    old = cycle_of(loan_id, "2026-10-01")
    await starter.client.start_workflow(
        WORKFLOW_NAME,
        CollectionInput(loan=old, strategy=default_strategy(), profile=starter.profiles["cn"]),
        id=workflow_id(loan_id),
        task_queue=task_queue,
        search_attributes=initial_search_attributes(old, "standard"),
    )
    await close_and_wait(starter, loan_id)

    assert await starter.start_loan(old) == "already_closed"
    assert await starter.start_loan(cycle_of(loan_id, "2026-11-02")) == "new_cycle"
    description = await starter.handle(loan_id).describe()
    assert description.typed_search_attributes[sa.OVERDUE_SINCE] == datetime(2026, 11, 2, tzinfo=UTC)


async def test_the_nightly_file_starts_a_new_cycle_and_is_idempotent(
    local_env: WorkflowEnvironment,
    starter: CollectionsStarter,
    worker: Worker,
    task_queue: str,
    tmp_path: Path,
) -> None:
    cured, other = f"RE-{uuid.uuid4().hex[:10]}", f"RE-{uuid.uuid4().hex[:10]}"
    await starter.start_loan(cycle_of(cured, "2026-09-01"))
    await close_and_wait(starter, cured)
    path = tmp_path / "loans.jsonl"
    records = [loan_record(cured, overdue_since="2026-11-01"), loan_record(other)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    first = await run_cli(local_env, task_queue, "start", "--file", str(path))
    second = await run_cli(local_env, task_queue, "start", "--file", str(path))

    assert first == (0, "2 loans: 1 started, 1 new cycle, 0 already running, 0 already closed\n", "")
    assert second == (0, "2 loans: 0 started, 2 already running, 0 already closed\n", "")


async def test_start_refuses_an_overdue_date_in_1900_before_anything_starts(
    starter: CollectionsStarter,
) -> None:
    loan = cycle_of(f"OLD-{uuid.uuid4().hex[:10]}", "1900-01-01")

    with pytest.raises(InvalidRequest) as caught:
        await starter.start_loan(loan)

    [(field, message)] = caught.value.problems
    assert field == "overdue_since" and message.startswith("1900-01-01 is more than 10 years ago")
    assert [
        w async for w in starter.client.list_workflows(f"WorkflowId = '{workflow_id(loan.loan_id)}'")
    ] == []


# -- ids that are not a loan's -------------------------------------------------------------------------------


async def test_an_id_taken_by_another_workflow_is_a_clear_error_everywhere(
    local_env: WorkflowEnvironment, starter: CollectionsStarter, worker: Worker, task_queue: str
) -> None:
    """Loan `X-legal` whose id `collection-X-legal` is held by a workflow of another kind."""
    loan_id = f"X{uuid.uuid4().hex[:8]}-legal"
    await starter.client.start_workflow(OtherWorkflow.run, id=workflow_id(loan_id), task_queue=task_queue)

    with pytest.raises(
        WorkflowIdTaken, match=f"workflow id collection-{loan_id} is taken by a LegalCaseStandIn"
    ):
        await starter.start_loan(cycle_of(loan_id, "2026-10-01"))
    with pytest.raises(NotALoan):
        await starter.status(loan_id)
    with pytest.raises(NotALoan):
        await starter.pay(loan_id, 100, payment_id="P-1")
    with pytest.raises(NotALoan):
        await starter.close(loan_id, "sold")

    status = await run_cli(local_env, task_queue, "status", loan_id)
    pay = await run_cli(local_env, task_queue, "pay", loan_id, "--amount", "100", "--payment-id", "P-1")

    expected = (
        f"error: {loan_id} is not a loan id: workflow collection-{loan_id} is a LegalCaseStandIn, not a "
        "loan's collection (give the loan's own id)\n"
    )
    assert status == (1, "", expected)
    assert pay == (1, "", expected)
    await starter.client.get_workflow_handle(workflow_id(loan_id)).terminate("test finished")


async def test_pay_in_another_currency_than_the_loans_is_refused_by_the_cli(
    local_env: WorkflowEnvironment, starter: CollectionsStarter, worker: Worker, task_queue: str
) -> None:
    loan = cycle_of(f"FX-{uuid.uuid4().hex[:10]}", "2026-10-01")  # a CNY loan
    await starter.start_loan(loan)

    result = await run_cli(
        local_env,
        task_queue,
        "pay",
        loan.loan_id,
        "--amount",
        "500",
        "--payment-id",
        "P-1",
        "--currency",
        "USD",
    )

    assert result == (2, "", f"currency (--currency): loan {loan.loan_id} is collected in CNY, not USD\n")
    assert (await starter.status(loan.loan_id)).paid_total_minor == 0
    await close_and_wait(starter, loan.loan_id)
