"""A collector's promise to pay is accepted or rejected with a reason that names the field; a rejection
changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.promise import PromiseRequest
from tests.workflows.conftest import Harness, make_loan
from workflows.messages import (
    CLOSE_SIGNAL,
    PROMISE_UPDATE,
    STATUS_QUERY,
    CloseRequest,
    CollectionStatus,
    PromiseAccepted,
)


async def rejection(handle: WorkflowHandle, request: PromiseRequest) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(PROMISE_UPDATE, request, result_type=PromiseAccepted)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PromiseRejected"
    return cause.message


async def test_amount_above_arrears_is_rejected_and_nothing_changes(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5, amount=100_000)
    handle = await harness.start(loan)
    today = await harness.today()

    reason = await rejection(
        handle, PromiseRequest(amount_minor=100_001, due_date=today + timedelta(days=3), collector="c1")
    )

    assert reason == "amount_minor: 100001 is more than the amount overdue (100000)"
    after = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert after.promises == [] and after.open_promise is None


async def test_date_in_the_past_is_rejected(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    yesterday = await harness.today() - timedelta(days=1)

    reason = await rejection(handle, PromiseRequest(amount_minor=1_000, due_date=yesterday, collector="c1"))

    assert reason.startswith(f"due_date: {yesterday} is in the past")


async def test_date_beyond_the_strategy_horizon_is_rejected(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    far = await harness.today() + timedelta(days=31)

    reason = await rejection(handle, PromiseRequest(amount_minor=1_000, due_date=far, collector="c1"))

    assert reason.startswith(f"due_date: {far} is more than 30 days ahead")


async def test_second_open_promise_is_rejected(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    when = await harness.today() + timedelta(days=3)
    await handle.execute_update(
        PROMISE_UPDATE,
        PromiseRequest(amount_minor=1_000, due_date=when, collector="c1"),
        result_type=PromiseAccepted,
    )

    reason = await rejection(handle, PromiseRequest(amount_minor=2_000, due_date=when, collector="c2"))

    assert reason == "loan: another promise to pay is still open; one open promise per loan"
    after = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert [p.collector for p in after.promises] == ["c1"]


async def test_promise_on_a_closed_loan_is_rejected(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    await handle.signal(CLOSE_SIGNAL, CloseRequest(reason="sold"))
    await handle.result()

    # A completed workflow takes no update at all: the server refuses before any validator could run.
    with pytest.raises((RPCError, WorkflowUpdateFailedError)):
        await handle.execute_update(
            PROMISE_UPDATE,
            PromiseRequest(amount_minor=1_000, due_date=await harness.today(), collector="c1"),
            result_type=PromiseAccepted,
        )
    after = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert after.outcome == "closed_by_servicing" and after.promises == []


async def test_zero_amount_never_reaches_the_workflow() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as failure:
        PromiseRequest(amount_minor=0, due_date="2026-12-01", collector="c1")
    assert failure.value.errors()[0]["loc"] == ("amount_minor",)
