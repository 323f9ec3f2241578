"""The starter's arrangement methods and CLI commands: validation before any call, and a round trip against
the real workflow on the dev server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import cast

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from authority import Actor
from domain.strategy import default_strategy
from starter.api import CollectionsStarter, InvalidRequest, RequestRefused, build_plan_request
from tests.starter.test_cli import assert_invalid, run_cli
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS

BOSS, LI_NA, C = Actor("boss", "supervisor"), Actor("li.na", "collector"), Actor("c", "collector")


class NoClient:
    """Any call on it fails: proves a request was refused before anything was sent."""


def offline() -> CollectionsStarter:
    return CollectionsStarter(cast(Client, NoClient()), strategy=default_strategy())


def test_plan_request_names_the_bad_instalment() -> None:
    with pytest.raises(InvalidRequest) as invalid:
        build_plan_request([(1_000, date(2026, 12, 1)), (0, date(2026, 12, 2))], collector="li.na")
    assert [field for field, _ in invalid.value.problems] == ["instalments[1].amount_minor"]
    with pytest.raises(InvalidRequest, match="instalments: List should have at least 2 items"):
        build_plan_request([(1_000, date(2026, 12, 1))], collector="li.na")


async def test_invalid_arrangements_are_refused_before_any_call() -> None:
    starter = offline()
    with pytest.raises(InvalidRequest, match="loan_id"):
        await starter.escalate_stage("bad id", approver="boss", actor=BOSS, reason="x")
    with pytest.raises(InvalidRequest, match="amount_minor"):
        await starter.approve_settlement("L-1", 0, date(2026, 12, 1), approver="boss", actor=BOSS)
    with pytest.raises(InvalidRequest, match="reason"):
        await starter.waive_interest("L-1", 1_000, approver="boss", actor=BOSS, reason="")
    with pytest.raises(InvalidRequest, match="approver"):
        await starter.hold_stage("L-1", date(2026, 12, 1), approver="", reason="x")
    with pytest.raises(InvalidRequest, match="approver"):
        await starter.release_stage_hold("L-1", approver="", reason="x")
    with pytest.raises(InvalidRequest, match="reason"):
        await starter.recall_from_agency("L-1", approver="boss", actor=BOSS, reason="")


def test_cli_plan_with_bad_instalments_exits_2() -> None:
    result = run_cli("plan", "L-1", "--instalment", "100@2026-12-01")
    assert_invalid(result, ["instalments: List should have at least 2 items after validation, not 1"])


def test_cli_waive_with_bad_amount_exits_2() -> None:
    result = run_cli("waive", "L-1", "--amount", "0", "--reason", "goodwill")
    assert_invalid(result, ["amount_minor: Input should be greater than 0 (got '0')"])


async def test_arrangements_round_trip(local_client: Client, task_queue: str) -> None:
    fakes = FakeActivities()
    starter = CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    loan = make_loan(datetime.now(UTC), dpd=5, amount=80_000)
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        await starter.start_loan(loan)

        with pytest.raises(RequestRefused) as refused:
            await starter.recall_from_agency(loan.loan_id, approver="boss", actor=BOSS, reason="complaint")
        assert refused.value.reason == "loan: not placed with an agency"

        waived = await starter.waive_interest(
            loan.loan_id, 10_000, approver="boss", actor=BOSS, reason="goodwill"
        )
        assert waived.amount_overdue_minor == 70_000 and waived.waived_total_minor == 10_000

        planned = await starter.arrange_plan(
            loan.loan_id,
            [(30_000, today + timedelta(days=7)), (40_000, today + timedelta(days=37))],
            collector="li.na",
            actor=LI_NA,
        )
        assert planned.repayment_plan is not None and planned.repayment_plan.status == "open"

        with pytest.raises(RequestRefused) as conflict:
            await starter.approve_settlement(
                loan.loan_id, 50_000, today + timedelta(days=10), approver="boss", actor=BOSS
            )
        assert conflict.value.reason == "loan: a repayment plan is still open; one open arrangement per loan"

        held = await starter.hold_stage(
            loan.loan_id, today + timedelta(days=20), approver="boss", actor=BOSS, reason="r"
        )
        assert held.stage_hold is not None
        released = await starter.release_stage_hold(loan.loan_id, approver="boss", actor=BOSS, reason="done")
        assert released.stage_hold is None
        escalated = await starter.escalate_stage(
            loan.loan_id, approver="boss", actor=BOSS, reason="no contact"
        )
        assert escalated.stage == "deep_contact"

    await starter.handle(loan.loan_id).terminate("test finished")
