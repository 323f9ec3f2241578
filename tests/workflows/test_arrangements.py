"""Arrangements by collectors and supervisors (updates with validators), against the real workflow with
time skipping: each accepted one changes the status and journals a collector_action by its author; each
rejected one names the field and changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import BaseModel
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities import contracts
from domain.arrangements import (
    AgencyRecall,
    Escalate,
    InterestWaiver,
    PlanInstalmentRequest,
    RepaymentPlanRequest,
    SettlementApproval,
    StageHold,
    StageHoldRelease,
)
from domain.loan import Payment
from domain.promise import PromiseRequest
from tests.workflows.conftest import Harness, make_loan
from workflows.messages import (
    ESCALATE_STAGE_UPDATE,
    HOLD_STAGE_UPDATE,
    PAYMENT_SIGNAL,
    PROMISE_UPDATE,
    RECALL_FROM_AGENCY_UPDATE,
    RELEASE_STAGE_HOLD_UPDATE,
    REPAYMENT_PLAN_UPDATE,
    SETTLEMENT_UPDATE,
    STATUS_QUERY,
    WAIVE_INTEREST_UPDATE,
    CollectionStatus,
    PromiseAccepted,
)


async def status(handle: WorkflowHandle) -> CollectionStatus:
    return await handle.query(STATUS_QUERY, result_type=CollectionStatus)


async def update(handle: WorkflowHandle, name: str, request: BaseModel) -> CollectionStatus:
    return await handle.execute_update(name, request, result_type=CollectionStatus)


async def refusal(handle: WorkflowHandle, name: str, request: BaseModel) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await update(handle, name, request)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ArrangementRejected"
    return cause.message


async def pay(handle: WorkflowHandle, payment_id: str, amount_minor: int, at: datetime) -> None:
    await handle.signal(
        PAYMENT_SIGNAL,
        Payment(payment_id=payment_id, amount_minor=amount_minor, currency="CNY", received_at=at),
    )


def actions(harness: Harness) -> list[tuple[str, str, object]]:
    """collector_action entries written by people (and servicing), not the workflow's own."""
    return [
        (str(e.data["collector"]), str(e.data["action"]), e.data["outcome"])
        for e in harness.fakes.journal_of("collector_action")
        if e.data["collector"] != "system"
    ]


def plan_request(today: object, *parts: tuple[int, int]) -> RepaymentPlanRequest:
    return RepaymentPlanRequest(
        collector="li.na",
        instalments=[
            PlanInstalmentRequest(amount_minor=amount, due_date=today + timedelta(days=days))  # type: ignore[operator]
            for amount, days in parts
        ],
        note="agreed on the phone",
    )


# -- repayment plan ------------------------------------------------------------------------------------------


async def test_plan_kept_pauses_escalation_then_collection_resumes(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=150_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(minutes=5))
    today = await harness.today()

    accepted = await update(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (40_000, 3), (60_000, 10)))

    plan = accepted.repayment_plan
    assert plan is not None and plan.status == "open" and plan.collector == "li.na"
    assert [(i.number, i.amount_minor, i.status) for i in plan.instalments] == [
        (1, 40_000, "due"),
        (2, 60_000, "due"),
    ]

    await pay(handle, "P-1", 50_000, await harness.now())  # instalment 1, and 10 000 toward instalment 2
    await harness.env.sleep(timedelta(days=8))  # past DPD 15: the collector call waits for the plan
    during = await status(handle)
    assert during.repayment_plan is not None
    assert [(i.paid_minor, i.status) for i in during.repayment_plan.instalments] == [
        (40_000, "paid"),
        (10_000, "due"),
    ]
    assert during.stage == "reminder" and contracts.CREATE_COLLECTOR_TASK not in harness.fakes.names()
    assert during.waiting_for.startswith("repayment plan: instalment 2 of 2")

    await pay(handle, "P-2", 50_000, await harness.now())
    await harness.env.sleep(timedelta(hours=1))
    after = await status(handle)

    assert after.repayment_plan is not None and after.repayment_plan.status == "kept"
    assert after.outcome is None and after.amount_overdue_minor == 50_000
    assert after.stage == "deep_contact"  # collection resumed with the step now due
    assert contracts.CREATE_COLLECTOR_TASK in harness.fakes.names()
    assert actions(harness)[:1] == [
        ("li.na", "repayment_plan_arranged", f"2 instalments, CNY 1,000.00 by {today + timedelta(days=10)}")
    ]
    assert ("servicing", "repayment_plan_kept", "kept") in actions(harness)
    arranged = harness.fakes.journal_of("collector_action")[0]
    assert arranged.data["detail"] == "agreed on the phone"


async def test_missed_instalment_breaks_the_plan_and_escalation_resumes(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=150_000)
    handle = await harness.start(loan)
    today = await harness.today()
    await update(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (40_000, 1), (60_000, 20), (20_000, 40)))

    await harness.env.sleep(timedelta(days=6))  # instalment 1 due tomorrow + 2 days' grace, never paid
    after = await status(handle)

    plan = after.repayment_plan
    assert plan is not None and plan.status == "broken"
    assert [i.status for i in plan.instalments] == ["missed", "cancelled", "cancelled"]
    assert after.broken_promises == 1
    broken = [
        e for e in harness.fakes.journal_of("collector_action") if e.data["action"] == "repayment_plan_broken"
    ]
    assert len(broken) == 1 and broken[0].data["collector"] == "system"
    assert "instalment 1 of 3" in str(broken[0].data["detail"])
    # Escalation resumed: the collector call of DPD 15 ran once the plan was broken.
    assert after.stage == "deep_contact"


async def test_plan_rejections_name_the_field_and_change_nothing(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=100_000)
    handle = await harness.start(loan)
    today = await harness.today()

    unordered = await refusal(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (10_000, 5), (10_000, 5)))
    too_much = await refusal(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (60_000, 5), (50_000, 9)))
    past = await refusal(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (10_000, -1), (10_000, 9)))
    too_long = await refusal(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (10_000, 5), (10_000, 400)))
    await handle.execute_update(
        PROMISE_UPDATE,
        PromiseRequest(amount_minor=1_000, due_date=today + timedelta(days=2), collector="c1"),
        result_type=PromiseAccepted,
    )
    with_promise = await refusal(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (10_000, 5), (10_000, 9)))

    assert (
        unordered.startswith("instalments[1].due_date: ")
        and "is not after instalments[0].due_date" in unordered
    )
    assert too_much == "instalments: the total 110000 is more than the amount overdue (100000)"
    assert past.startswith(f"instalments[0].due_date: {today - timedelta(days=1)} is in the past")
    assert too_long.startswith("instalments[1].due_date: ") and "more than 12 months ahead" in too_long
    assert with_promise == "loan: a promise to pay is still open; one open arrangement per loan"
    after = await status(handle)
    assert after.repayment_plan is None
    assert not [e for e in harness.fakes.journal_of("collector_action") if e.data["collector"] == "li.na"]


# -- settlement --------------------------------------------------------------------------------------------


async def test_settlement_paid_by_its_date_settles_the_case(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=100_000)
    handle = await harness.start(loan)
    today = await harness.today()

    too_much = await refusal(
        handle, SETTLEMENT_UPDATE, SettlementApproval(approver="boss", amount_minor=100_000, due_date=today)
    )
    too_late = await refusal(
        handle,
        SETTLEMENT_UPDATE,
        SettlementApproval(approver="boss", amount_minor=60_000, due_date=today + timedelta(days=61)),
    )
    assert too_much.startswith("amount_minor: 100000 is not less than the amount overdue (100000)")
    assert too_late.startswith(f"due_date: {today + timedelta(days=61)} is more than 60 days ahead")
    assert (await status(handle)).settlement is None

    accepted = await update(
        handle,
        SETTLEMENT_UPDATE,
        SettlementApproval(
            approver="boss", amount_minor=60_000, due_date=today + timedelta(days=10), note="ok"
        ),
    )
    assert accepted.settlement is not None and accepted.settlement.status == "open"
    await pay(handle, "P-1", 30_000, await harness.now())
    await harness.env.sleep(timedelta(days=6))  # past DPD 15
    await pay(handle, "P-2", 30_000, await harness.now())
    result = await handle.result()

    assert (
        result.outcome == "settled" and result.settlement is not None and result.settlement.status == "paid"
    )
    assert result.amount_overdue_minor == 40_000
    assert ("boss", "settlement_approved") in [(c, a) for c, a, _ in actions(harness)]
    assert ("servicing", "settlement_paid", "CNY 600.00") in actions(harness)
    # While the offer is open the case waits for it: no collector call although DPD 15 has passed.
    assert contracts.CREATE_COLLECTOR_TASK not in harness.fakes.names()


async def test_unpaid_settlement_lapses_and_collection_continues(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=100_000)
    handle = await harness.start(loan)
    today = await harness.today()
    await update(
        handle,
        SETTLEMENT_UPDATE,
        SettlementApproval(approver="boss", amount_minor=60_000, due_date=today + timedelta(days=2)),
    )

    await harness.env.sleep(timedelta(days=6))
    after = await status(handle)

    assert after.settlement is not None and after.settlement.status == "lapsed"
    assert after.outcome is None and after.stage == "deep_contact"
    lapsed = [
        e for e in harness.fakes.journal_of("collector_action") if e.data["action"] == "settlement_lapsed"
    ]
    assert len(lapsed) == 1


# -- interest waiver -----------------------------------------------------------------------------------------


async def test_waiver_lowers_arrears_and_a_waiver_to_zero_cures(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10, amount=100_000)
    handle = await harness.start(loan)

    refused = await refusal(
        handle, WAIVE_INTEREST_UPDATE, InterestWaiver(approver="boss", amount_minor=100_001, reason="x")
    )
    assert refused == "amount_minor: 100001 is more than the amount overdue (100000)"

    first = await update(
        handle, WAIVE_INTEREST_UPDATE, InterestWaiver(approver="boss", amount_minor=30_000, reason="hardship")
    )
    assert first.amount_overdue_minor == 70_000 and first.waived_total_minor == 30_000
    assert first.paid_total_minor == 0 and [w.approver for w in first.waivers] == ["boss"]

    await update(
        handle, WAIVE_INTEREST_UPDATE, InterestWaiver(approver="boss2", amount_minor=70_000, reason="rest")
    )
    result = await handle.result()

    assert (
        result.outcome == "paid" and result.amount_overdue_minor == 0 and result.waived_total_minor == 100_000
    )
    assert result.outcome_reason == "arrears paid in full (0 payments); CNY 1,000.00 waived"
    waivers = [
        e for e in harness.fakes.journal_of("collector_action") if e.data["action"] == "interest_waived"
    ]
    assert [(e.data["collector"], e.data["detail"]) for e in waivers] == [
        ("boss", "hardship"),
        ("boss2", "rest"),
    ]


# -- stage hold ----------------------------------------------------------------------------------------------


async def test_stage_hold_blocks_escalation_until_released(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=12)
    handle = await harness.start(loan)
    today = await harness.today()

    refused = await refusal(
        handle, HOLD_STAGE_UPDATE, StageHold(approver="boss", until=today + timedelta(days=91), reason="x")
    )
    assert refused.startswith(f"until: {today + timedelta(days=91)} is more than 90 days ahead")
    not_held = await refusal(handle, RELEASE_STAGE_HOLD_UPDATE, StageHoldRelease(approver="boss", reason="x"))
    assert not_held == "loan: the stage is not held"

    held = await update(
        handle,
        HOLD_STAGE_UPDATE,
        StageHold(approver="boss", until=today + timedelta(days=30), reason="review"),
    )
    assert held.stage_hold is not None and held.stage_hold.approver == "boss"
    assert held.escalation_hold == f"stage held until {today + timedelta(days=30)} by boss: review"

    await harness.env.sleep(timedelta(days=6))  # DPD 18: the DPD 15 call would have run
    during = await status(handle)
    assert during.stage == "reminder" and contracts.CREATE_COLLECTOR_TASK not in harness.fakes.names()
    refused_escalation = await refusal(handle, ESCALATE_STAGE_UPDATE, Escalate(approver="boss", reason="x"))
    assert refused_escalation.startswith("loan: the stage is held until")

    released = await update(
        handle, RELEASE_STAGE_HOLD_UPDATE, StageHoldRelease(approver="boss2", reason="done")
    )
    assert released.stage_hold is None
    await harness.env.sleep(timedelta(hours=1))
    after = await status(handle)

    assert after.stage == "deep_contact" and contracts.CREATE_COLLECTOR_TASK in harness.fakes.names()
    assert [(c, a) for c, a, _ in actions(harness)] == [
        ("boss", "stage_held"),
        ("boss2", "stage_hold_released"),
    ]


async def test_stage_hold_ends_by_itself(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=12)
    handle = await harness.start(loan)
    today = await harness.today()
    await update(
        handle, HOLD_STAGE_UPDATE, StageHold(approver="boss", until=today + timedelta(days=5), reason="r")
    )

    await harness.env.sleep(timedelta(days=4))
    assert contracts.CREATE_COLLECTOR_TASK not in harness.fakes.names()
    await harness.env.sleep(timedelta(days=2))
    after = await status(handle)

    assert after.stage == "deep_contact" and after.stage_hold is None
    expired = [
        e for e in harness.fakes.journal_of("collector_action") if e.data["action"] == "stage_hold_expired"
    ]
    assert len(expired) == 1


# -- escalation and recall ----------------------------------------------------------------------------------


async def test_escalate_moves_to_the_next_stage_now(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(minutes=5))

    escalated = await update(handle, ESCALATE_STAGE_UPDATE, Escalate(approver="boss", reason="no answer"))
    assert escalated.stage == "deep_contact"
    await harness.env.sleep(timedelta(hours=1))

    tasks = harness.fakes.of(contracts.CREATE_COLLECTOR_TASK)
    assert [t.kind for t in tasks] == ["call"]
    transitions = harness.fakes.journal_of("stage_transition")
    assert [(e.data["to_stage"], e.data["reason"]) for e in transitions] == [
        ("deep_contact", "escalated by boss: no answer")
    ]
    assert ("boss", "stage_escalated", "reminder -> deep_contact") in actions(harness)


async def test_recall_from_agency_on_request_and_not_placed_again(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=46)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    assert (await status(handle)).agency_name == "Acme Recoveries"

    await update(handle, RECALL_FROM_AGENCY_UPDATE, AgencyRecall(approver="boss", reason="complaint"))
    await harness.env.sleep(timedelta(days=3))
    after = await status(handle)

    assert after.agency_placement_id is None and after.outcome is None and after.stage == "agency"
    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["closed"]
    assert len(harness.fakes.of(contracts.PLACE_WITH_AGENCY)) == 1
    assert ("boss", "agency_recall_requested", "Acme Recoveries") in actions(harness)
    again = await refusal(handle, RECALL_FROM_AGENCY_UPDATE, AgencyRecall(approver="boss", reason="x"))
    assert again == "loan: not placed with an agency"


async def test_a_second_recall_while_the_first_runs_is_refused_not_journaled_twice(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=46)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    harness.fakes.recall_delay = 1.0  # the agency takes a (real) second to answer the recall

    await update(handle, RECALL_FROM_AGENCY_UPDATE, AgencyRecall(approver="boss", reason="complaint"))
    again = await refusal(handle, RECALL_FROM_AGENCY_UPDATE, AgencyRecall(approver="boss2", reason="x"))

    assert again == "loan: a recall from the agency is already under way"
    await harness.env.sleep(timedelta(days=1))
    assert [a for a in actions(harness) if a[1] == "agency_recall_requested"] == [
        ("boss", "agency_recall_requested", "Acme Recoveries")
    ]
    assert (await status(handle)).agency_placement_id is None


async def test_a_history_with_every_arrangement_replays(harness: Harness) -> None:
    """The handlers and the main loop's new branches are deterministic: their own history replays."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from workflows.registry import WORKFLOWS

    loan = make_loan(await harness.now(), dpd=46, amount=200_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    today = await harness.today()
    await update(
        handle, WAIVE_INTEREST_UPDATE, InterestWaiver(approver="boss", amount_minor=10_000, reason="r")
    )
    await update(
        handle, HOLD_STAGE_UPDATE, StageHold(approver="boss", until=today + timedelta(days=3), reason="r")
    )
    await update(handle, RECALL_FROM_AGENCY_UPDATE, AgencyRecall(approver="boss", reason="r"))
    await update(handle, REPAYMENT_PLAN_UPDATE, plan_request(today, (10_000, 1), (10_000, 30)))
    await pay(handle, "P-1", 20_000, await harness.now())  # the plan is kept
    await harness.env.sleep(timedelta(days=5))
    await update(
        handle,
        SETTLEMENT_UPDATE,
        SettlementApproval(approver="boss", amount_minor=50_000, due_date=today + timedelta(days=15)),
    )
    await harness.env.sleep(timedelta(days=2))
    await update(handle, ESCALATE_STAGE_UPDATE, Escalate(approver="boss", reason="r"))
    await harness.env.sleep(timedelta(hours=2))
    assert (await status(handle)).stage == "legal"
    await pay(handle, "P-2", 50_000, await harness.now())
    result = await handle.result()
    assert result.outcome == "settled"

    history = await handle.fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
