"""The servicing API against the real LoanCollectionWorkflow on the dev server `make run` uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from authority import Actor
from domain.strategy import default_strategy
from starter.api import CollectionsStarter, PromiseRejected
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS

BOSS, LI_NA, C = Actor("boss", "supervisor"), Actor("li.na", "collector"), Actor("c", "collector")


async def test_start_promise_pay_status_round_trip(local_client: Client, task_queue: str) -> None:
    fakes = FakeActivities()
    starter = CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        assert await starter.start_loan(loan) == "started"
        assert await starter.start_loan(loan) == "already_running"

        with pytest.raises(PromiseRejected) as rejected:
            await starter.promise(
                loan.loan_id, 90_000, today + timedelta(days=3), collector="li.na", actor=LI_NA
            )
        assert "amount_minor: 90000 is more than the amount overdue (80000)" in str(rejected.value)

        accepted = await starter.promise(
            loan.loan_id, 30_000, today + timedelta(days=3), collector="li.na", actor=LI_NA
        )
        await starter.pay(loan.loan_id, 30_000, payment_id="P-1")
        await starter.pay(loan.loan_id, 30_000, payment_id="P-1")  # a retry by servicing: applied once
        status = await starter.status(loan.loan_id)

        assert status.paid_total_minor == 30_000 and status.amount_overdue_minor == 50_000
        assert [(p.promise_id, p.status) for p in status.promises] == [(accepted.promise_id, "kept")]
        assert status.dpd == 20 and status.contact_profile == "cn"

        await starter.pay(loan.loan_id, 50_000, payment_id="P-2")
        await starter.handle(loan.loan_id).result()
        final = await starter.status(loan.loan_id)  # a closed workflow still answers its status query

    assert final.outcome == "paid" and final.amount_overdue_minor == 0
    assert await starter.start_loan(loan) == "already_closed"


async def test_collector_actions_reach_the_workflow_and_refusals_change_nothing(
    local_client: Client, task_queue: str
) -> None:
    from domain.holds import HardshipHold, OptOut, ResolveDispute
    from starter.api import RequestRefused
    from workflows.messages import HARDSHIP_HOLD_UPDATE, OPT_OUT_UPDATE, RESOLVE_DISPUTE_UPDATE

    fakes = FakeActivities()
    starter = CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    loan = make_loan(datetime.now(UTC), dpd=5)
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        await starter.start_loan(loan)
        state = await starter.collector_action(
            loan.loan_id, HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c", days=30), actor=C
        )
        assert state.hardship_until is not None
        state = await starter.collector_action(
            loan.loan_id, OPT_OUT_UPDATE, OptOut(collector="c", channel="push"), actor=C
        )
        assert state.opted_out_channels == ["push"]

        with pytest.raises(RequestRefused) as refused:
            await starter.collector_action(
                loan.loan_id,
                RESOLVE_DISPUTE_UPDATE,
                ResolveDispute(collector="c", verification_sent=True),
                actor=C,
            )
        assert refused.value.reason == "dispute: no dispute is open"
        status = await starter.status(loan.loan_id)

    assert status.contact is not None and status.contact.dispute_open is False
    assert status.escalation_hold is not None and status.escalation_hold.startswith("hardship hold until")
    await starter.handle(loan.loan_id).terminate("test finished")
