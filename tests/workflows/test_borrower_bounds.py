"""A client acting as the borrower stays within the strategy's `borrower_plans` band for the loan, whatever
it sends: the workflow's own validators refuse a plan or promise outside it (issue 11); a collector's request
keeps the collectors' rules."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from authority import Actor, Signer, SigningKey, TrustedKeys, trust
from domain.arrangements import RepaymentPlanRequest, SettlementApproval
from domain.borrower_plans import NO_SETTLEMENT
from domain.promise import PromiseRequest
from tests.authority.keys import COLLECTOR, KEYS
from tests.workflows.conftest import SHANGHAI, Harness, make_loan
from workflows.arrangements import REJECTED
from workflows.messages import (
    PROMISE_UPDATE,
    REPAYMENT_PLAN_UPDATE,
    SETTLEMENT_UPDATE,
    STATUS_QUERY,
    CollectionStatus,
)

BORROWER_KEY = SigningKey.generate("test-borrower-wf", "borrower", ("borrower",), "borrower", seed=b"w" * 32)
BORROWER = Actor("borrower", "borrower")
SIGNER = Signer([*KEYS, BORROWER_KEY])


@pytest.fixture(autouse=True)
def trust_the_borrower_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "_ring", TrustedKeys(key.public() for key in (*KEYS, BORROWER_KEY)))


async def started(harness: Harness) -> tuple[WorkflowHandle, date]:
    handle = await harness.start(make_loan(await harness.now(), dpd=10))  # CNY 1,500.00: the first CNY band
    raw = harness.env.client.get_workflow_handle(handle.id)  # no signing interceptor: tokens by hand
    return raw, (await harness.now()).astimezone(SHANGHAI).date()


def weekly_plan(today: date, collector: str, count: int) -> RepaymentPlanRequest:
    share = 150_000 // count
    amounts = [share] * (count - 1) + [150_000 - share * (count - 1)]
    return RepaymentPlanRequest.model_validate(
        {
            "collector": collector,
            "instalments": [
                {"amount_minor": a, "due_date": today + timedelta(days=1 + 7 * n)}
                for n, a in enumerate(amounts)
            ],
        }
    )


async def send(
    harness: Harness, handle: WorkflowHandle, name: str, request: Any, actor: Actor, result: type
) -> Any:
    token = SIGNER.mint(actor, handle.id, name, request, now=await harness.now())
    return await handle.execute_update(name, args=[request, token], result_type=result)


async def refusal(harness: Harness, handle: WorkflowHandle, name: str, request: Any, actor: Actor) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await send(harness, handle, name, request, actor, CollectionStatus)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type in (REJECTED, "PromiseRejected"), cause.type
    return cause.message


async def test_a_raw_borrower_plan_outside_the_band_is_refused_and_a_collectors_is_not(
    harness: Harness,
) -> None:
    handle, today = await started(harness)

    reason = await refusal(
        harness, handle, REPAYMENT_PLAN_UPDATE, weekly_plan(today, "borrower", 7), BORROWER
    )

    assert reason == "instalments: at most 6 for arrears up to CNY 5,000.00"
    status = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert status.repayment_plan is None
    assert status.borrower_plan is not None and status.borrower_plan.max_instalments == 6
    # The same seven instalments from a collector: the collectors' rules (up to 12) still apply.
    accepted = await send(
        harness,
        handle,
        REPAYMENT_PLAN_UPDATE,
        weekly_plan(today, COLLECTOR.name, 7),
        COLLECTOR,
        CollectionStatus,
    )
    assert accepted.repayment_plan is not None and len(accepted.repayment_plan.instalments) == 7


async def test_a_borrower_plan_inside_the_band_is_accepted(harness: Harness) -> None:
    handle, today = await started(harness)

    accepted = await send(
        harness, handle, REPAYMENT_PLAN_UPDATE, weekly_plan(today, "borrower", 6), BORROWER, CollectionStatus
    )

    assert accepted.repayment_plan is not None and accepted.repayment_plan.collector == "borrower"


async def test_a_raw_borrower_promise_beyond_the_bands_days_is_refused(harness: Harness) -> None:
    handle, today = await started(harness)
    late = PromiseRequest(amount_minor=50_000, due_date=today + timedelta(days=20), collector="borrower")

    reason = await refusal(harness, handle, PROMISE_UPDATE, late, BORROWER)

    assert reason.startswith("due_date: at most 14 days ahead")
    assert (await handle.query(STATUS_QUERY, result_type=CollectionStatus)).open_promise is None


async def test_a_borrower_settlement_needs_the_bands_floor(harness: Harness) -> None:
    handle, today = await started(harness)  # CNY 1,500.00: the first band has no settlement floor
    offer = SettlementApproval(approver="borrower", amount_minor=140_000, due_date=today + timedelta(days=5))

    reason = await refusal(harness, handle, SETTLEMENT_UPDATE, offer, BORROWER)

    assert reason == NO_SETTLEMENT
    assert (await handle.query(STATUS_QUERY, result_type=CollectionStatus)).settlement is None


async def test_a_borrower_settlement_at_or_above_the_floor_only(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=1_000_000)  # CNY 10,000.00: floor 80%
    handle = harness.env.client.get_workflow_handle((await harness.start(loan)).id)
    today = (await harness.now()).astimezone(SHANGHAI).date()
    due = today + timedelta(days=5)

    low = SettlementApproval(approver="borrower", amount_minor=799_999, due_date=due)
    reason = await refusal(harness, handle, SETTLEMENT_UPDATE, low, BORROWER)
    assert reason.startswith("amount_minor: at least CNY 8,000.00 (80% of the amount overdue)")

    fair = SettlementApproval(approver="borrower", amount_minor=800_000, due_date=due)
    accepted = await send(harness, handle, SETTLEMENT_UPDATE, fair, BORROWER, CollectionStatus)
    assert accepted.settlement is not None and accepted.settlement.approver == "borrower"
