"""Arrangements: each rejection reason and boundary, the plan's bookkeeping, waivers, stage holds and
escalation targets; with property tests (hypothesis) over plans, payments and waivers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.arrangements import (
    InterestWaiver,
    PlanInstalmentRequest,
    RepaymentPlan,
    RepaymentPlanRequest,
    SettlementApproval,
    SettlementOffer,
    StageHold,
    StageHoldState,
    Waiver,
    arrangement_conflict,
    build_plan,
    escalation_rejection,
    escalation_targets,
    held_schedule,
    plan_rejection,
    recall_rejection,
    release_rejection,
    settlement_deadline,
    settlement_rejection,
    stage_hold_active,
    stage_hold_rejection,
    waive,
    waiver_rejection,
)
from domain.calendar import start_of_local_day
from domain.loan import Instalment
from domain.schedule import occurrences
from tests.domain.factories import DEFAULT, SHANGHAI, instalments, loan, open_case, payment

TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
PROPERTY = settings(max_examples=200, deadline=None)


def plan(*parts: tuple[int, int]) -> RepaymentPlanRequest:
    return RepaymentPlanRequest(
        collector="li.na",
        instalments=[
            PlanInstalmentRequest(amount_minor=a, due_date=TODAY + timedelta(days=d)) for a, d in parts
        ],
    )


def built(*parts: tuple[int, int]) -> RepaymentPlan:
    return build_plan(
        plan(*parts), plan_id="plan-1", currency="CNY", now=NOW, rules=DEFAULT.promise, zone=SHANGHAI
    )


# -- repayment plan -----------------------------------------------------------------------------------------


def test_valid_plan_is_accepted() -> None:
    assert plan_rejection(plan((10_000, 0), (20_000, 30)), arrears_minor=30_000, today=TODAY) is None


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (((10_000, -1), (10_000, 5)), "instalments[0].due_date: 2026-11-24 is in the past"),
        (((10_000, 5), (10_000, 5)), "instalments[1].due_date: 2026-11-30 is not after instalments[0]"),
        (((10_000, 5), (10_000, 3)), "instalments[1].due_date: 2026-11-28 is not after instalments[0]"),
        (((10_000, 5), (10_000, 366)), "instalments[1].due_date: 2027-11-26 is more than 12 months ahead"),
        (((20_000, 5), (20_000, 9)), "instalments: the total 40000 is more than the amount overdue (30000)"),
    ],
)
def test_plan_rejections_name_the_field(parts: tuple[tuple[int, int], ...], reason: str) -> None:
    found = plan_rejection(plan(*parts), arrears_minor=30_000, today=TODAY)
    assert found is not None and found.startswith(reason)


def test_plan_of_365_days_is_the_limit() -> None:
    assert plan_rejection(plan((10_000, 5), (10_000, 365)), arrears_minor=30_000, today=TODAY) is None


@pytest.mark.parametrize("count", [1, 13])
def test_plan_length_is_checked_before_the_workflow(count: int) -> None:
    with pytest.raises(ValidationError) as failure:
        plan(*[(1_000, d) for d in range(count)])
    assert failure.value.errors()[0]["loc"] == ("instalments",)


def test_zero_instalment_never_reaches_the_workflow() -> None:
    with pytest.raises(ValidationError) as failure:
        RepaymentPlanRequest.model_validate(
            {
                "collector": "li.na",
                "instalments": [
                    {"amount_minor": 0, "due_date": "2026-12-01"},
                    {"amount_minor": 1_000, "due_date": "2026-12-02"},
                ],
            }
        )
    assert failure.value.errors()[0]["loc"] == ("instalments", 0, "amount_minor")


def test_plan_deadlines_are_due_date_plus_grace() -> None:
    the_plan = built((10_000, 1), (10_000, 8))
    grace = DEFAULT.promise.grace_days
    assert [i.deadline for i in the_plan.instalments] == [
        start_of_local_day(TODAY + timedelta(days=1 + grace + 1), SHANGHAI),
        start_of_local_day(TODAY + timedelta(days=8 + grace + 1), SHANGHAI),
    ]
    assert [i.number for i in the_plan.instalments] == [1, 2]


def test_payments_count_toward_instalments_in_order() -> None:
    the_plan = built((10_000, 1), (20_000, 8), (5_000, 15))
    the_plan.credit(25_000, NOW, arrears_cleared=False)
    assert [(i.paid_minor, i.status) for i in the_plan.instalments] == [
        (10_000, "paid"),
        (15_000, "due"),
        (0, "due"),
    ]
    assert the_plan.next_instalment is not None and the_plan.next_instalment.number == 2
    the_plan.credit(10_000, NOW, arrears_cleared=False)
    assert the_plan.status == "kept" and the_plan.settled_at == NOW


def test_broken_plan_cancels_the_rest() -> None:
    the_plan = built((10_000, 1), (20_000, 8), (5_000, 15))
    the_plan.credit(10_000, NOW, arrears_cleared=False)
    missed = the_plan.break_at(NOW)
    assert missed.number == 2 and the_plan.status == "broken"
    assert [i.status for i in the_plan.instalments] == ["paid", "missed", "cancelled"]


def test_one_open_arrangement_per_loan() -> None:
    assert arrangement_conflict(open_promise=False, open_plan=False, open_settlement=False) is None
    assert arrangement_conflict(open_promise=True, open_plan=False, open_settlement=False) == (
        "loan: a promise to pay is still open; one open arrangement per loan"
    )
    assert arrangement_conflict(open_promise=False, open_plan=True, open_settlement=False) == (
        "loan: a repayment plan is still open; one open arrangement per loan"
    )
    assert arrangement_conflict(open_promise=False, open_plan=False, open_settlement=True) == (
        "loan: a settlement offer is still open; one open arrangement per loan"
    )


# -- settlement ----------------------------------------------------------------------------------------------


def settlement(amount_minor: int = 60_000, days: int = 10) -> SettlementApproval:
    return SettlementApproval(
        approver="boss", amount_minor=amount_minor, due_date=TODAY + timedelta(days=days)
    )


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (
            settlement(amount_minor=100_000),
            "amount_minor: 100000 is not less than the amount overdue (100000)",
        ),
        (settlement(days=-1), "due_date: 2026-11-24 is in the past"),
        (settlement(days=61), "due_date: 2027-01-25 is more than 60 days ahead"),
    ],
)
def test_settlement_rejections(request_: SettlementApproval, reason: str) -> None:
    found = settlement_rejection(request_, arrears_minor=100_000, today=TODAY)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    "request_", [settlement(amount_minor=99_999), settlement(days=0), settlement(days=60)]
)
def test_settlement_boundaries_are_accepted(request_: SettlementApproval) -> None:
    assert settlement_rejection(request_, arrears_minor=100_000, today=TODAY) is None


def test_settlement_counts_payments_until_its_deadline_only() -> None:
    case = open_case(loan(amount_overdue_minor=100_000))
    deadline = settlement_deadline(TODAY, SHANGHAI)
    offer = SettlementOffer(
        offer_id="s-1",
        approver="boss",
        amount_minor=60_000,
        currency="CNY",
        due_date=TODAY,
        deadline=deadline,
        approved_at=NOW,
        arrears_at_approval_minor=100_000,
    )
    case.settlements = [offer]
    case.apply_payment(payment("P-1", 30_000), NOW)
    case.apply_payment(payment("P-2", 30_000), deadline)  # too late: not toward the settlement
    assert offer.paid_toward_minor == 30_000 and case.settlement_paid is None
    case.apply_payment(payment("P-3", 30_000), NOW)
    assert case.settlement_paid is offer and offer.status == "paid"


# -- waiver --------------------------------------------------------------------------------------------------


def test_waiver_above_arrears_is_rejected() -> None:
    request = InterestWaiver(approver="boss", amount_minor=100_001, reason="goodwill")
    assert waiver_rejection(request, arrears_minor=100_000) == (
        "amount_minor: 100001 is more than the amount overdue (100000)"
    )
    assert waiver_rejection(request, arrears_minor=100_001) is None


def test_waiver_takes_the_newest_instalment_first_and_keeps_the_anchor() -> None:
    first, second = date(2026, 1, 5), date(2026, 2, 5)
    case = open_case(
        loan(amount_overdue_minor=100_000, overdue_instalments=instalments((50_000, first), (50_000, second)))
    )
    case.apply_waiver(Waiver(waiver_id="w", approver="boss", amount_minor=60_000, reason="r", at=NOW))
    assert case.arrears == [Instalment(due_date=first, amount_minor=40_000)]
    assert case.anchor == first and case.waived_total_minor == 60_000 and case.paid_total_minor == 0


def test_close_ends_open_arrangements() -> None:
    case = open_case()
    case.plans = [built((10_000, 1), (10_000, 8))]
    case.close("paid", "paid", NOW)
    assert case.plans[0].status == "kept"
    other = open_case()
    other.plans = [built((10_000, 1), (10_000, 8))]
    other.close("written_off", "w", NOW)
    assert other.plans[0].status == "cancelled"


# -- stage hold, escalation, recall --------------------------------------------------------------------------


def hold(until: date = TODAY + timedelta(days=10)) -> StageHoldState:
    return StageHoldState(
        approver="boss", reason="r", until=until, resumes_at=start_of_local_day(until, SHANGHAI), since=NOW
    )


@pytest.mark.parametrize(("days", "accepted"), [(0, False), (1, True), (90, True), (91, False)])
def test_stage_hold_dates(days: int, accepted: bool) -> None:
    request = StageHold(approver="boss", until=TODAY + timedelta(days=days), reason="r")
    assert (stage_hold_rejection(request, today=TODAY) is None) is accepted


def test_held_schedule_drops_later_stages_while_the_hold_lasts() -> None:
    schedule = occurrences(DEFAULT.steps, 500_000, "CNY")
    held = held_schedule(schedule, "reminder", hold(), NOW)
    assert {o.step.stage for o in held} == {"reminder"}
    after = hold().resumes_at
    assert held_schedule(schedule, "reminder", hold(), after) == schedule
    assert held_schedule(schedule, "reminder", None, NOW) == schedule
    assert release_rejection(hold(), after) == "loan: the stage is not held"
    assert release_rejection(hold(), NOW) is None
    assert stage_hold_active(hold(), NOW) and not stage_hold_active(hold(), after)


def test_escalation_targets_the_next_stage_never_write_off() -> None:
    schedule = occurrences(DEFAULT.steps, 5_000_000, "CNY")
    assert [t.key for t in escalation_targets(schedule, set(), "reminder")] == ["collector_call"]
    assert [t.key for t in escalation_targets(schedule, set(), "agency")] == ["lawyer_letter"]
    assert escalation_targets(schedule, set(), "legal") == []
    assert escalation_targets(schedule, set(), "closed") == []
    assert escalation_rejection(stage="legal", targets=[], hold=None, now=NOW) == (
        "loan: already in the last stage (legal); there is no stage to escalate to"
    )
    targets = escalation_targets(schedule, set(), "reminder")
    assert escalation_rejection(stage="reminder", targets=targets, hold=None, now=NOW) is None
    assert escalation_rejection(stage="reminder", targets=targets, hold=hold(), now=NOW) == (
        f"loan: the stage is held until {TODAY + timedelta(days=10)}; release the hold first"
    )


def test_recall_needs_a_placement() -> None:
    assert recall_rejection(placed=False) == "loan: not placed with an agency"
    assert recall_rejection(placed=True) is None


# -- properties ----------------------------------------------------------------------------------------------


@st.composite
def valid_plans(draw: st.DrawFn) -> tuple[RepaymentPlanRequest, int]:
    count = draw(st.integers(min_value=2, max_value=12))
    days = sorted(draw(st.sets(st.integers(min_value=0, max_value=365), min_size=count, max_size=count)))
    amounts = draw(st.lists(st.integers(min_value=1, max_value=10**7), min_size=count, max_size=count))
    arrears = sum(amounts) + draw(st.integers(min_value=0, max_value=10**6))
    return plan(*zip(amounts, days, strict=True)), arrears


@PROPERTY
@given(valid_plans())
def test_any_plan_within_the_rules_is_accepted(generated: tuple[RepaymentPlanRequest, int]) -> None:
    request, arrears = generated
    assert plan_rejection(request, arrears_minor=arrears, today=TODAY) is None


@PROPERTY
@given(valid_plans(), st.data())
def test_a_plan_with_a_repeated_date_is_rejected_on_that_instalment(
    generated: tuple[RepaymentPlanRequest, int], data: st.DataObject
) -> None:
    request, arrears = generated
    index = data.draw(st.integers(min_value=1, max_value=len(request.instalments) - 1))
    items = list(request.instalments)
    items[index] = items[index].model_copy(update={"due_date": items[index - 1].due_date})
    broken = request.model_copy(update={"instalments": items})
    reason = plan_rejection(broken, arrears_minor=arrears, today=TODAY)
    assert reason is not None and reason.startswith(f"instalments[{index}].due_date: ")


@PROPERTY
@given(valid_plans(), st.lists(st.integers(min_value=1, max_value=10**7), max_size=8))
def test_payments_fill_instalments_as_a_prefix(
    generated: tuple[RepaymentPlanRequest, int], payments: list[int]
) -> None:
    request, _ = generated
    the_plan = build_plan(request, plan_id="p", currency="CNY", now=NOW, rules=DEFAULT.promise, zone=SHANGHAI)
    for amount in payments:
        the_plan.credit(amount, NOW, arrears_cleared=False)
    paid = sum(payments)
    assert sum(i.paid_minor for i in the_plan.instalments) == min(paid, the_plan.total_minor)
    statuses = [i.status for i in the_plan.instalments]
    assert statuses == sorted(statuses, key=lambda s: s != "paid")  # paid ones first, in order
    assert (the_plan.status == "kept") == (paid >= the_plan.total_minor)
    partly = [i for i in the_plan.instalments if 0 < i.paid_minor < i.amount_minor]
    assert len(partly) <= 1


@PROPERTY
@given(
    st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=7 * 10**6),
)
def test_waive_lowers_arrears_by_exactly_the_amount(amounts: list[int], waived: int) -> None:
    arrears = [
        Instalment(due_date=date(2026, 1, 5) + timedelta(days=30 * i), amount_minor=a)
        for i, a in enumerate(amounts)
    ]
    after = waive(arrears, waived)
    assert sum(i.amount_minor for i in after) == max(0, sum(amounts) - waived)
    assert all(i.amount_minor > 0 for i in after)
    if after:
        assert after[0].due_date == arrears[0].due_date  # DPD keeps its anchor
    assert [i.due_date for i in after] == [i.due_date for i in arrears[: len(after)]]
