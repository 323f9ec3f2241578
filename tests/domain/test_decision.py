"""The collections decision (domain.decision.decide): unit tests per rule, properties over random cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.case import CloseRequest, CollectionCase
from domain.contact_profiles import default_profiles
from domain.decision import Children, decide, escalate_after_broken, letter_before_litigation
from domain.promise import PromiseToPay
from tests.domain.factories import loan, local, open_case, payment

OVERDUE = date(2026, 1, 5)


def case_at(dpd_amount: int = 1_500_000, **loan_fields: object) -> CollectionCase:
    case = open_case(
        loan(amount_overdue_minor=dpd_amount, principal_outstanding_minor=dpd_amount * 2, **loan_fields)
    )
    case.profile = default_profiles()["cn"]
    return case


def at_dpd(dpd: int, hour: int = 10) -> datetime:
    return local(OVERDUE + timedelta(days=dpd), hour)


def test_a_close_request_ends_the_case_before_anything_else() -> None:
    case = case_at()
    case.close_request = CloseRequest(reason="sold")
    case.contact = case.contact.model_copy(update={"dispute_open": True})
    decision = decide(case, at_dpd(10), Children())
    assert (decision.kind, decision.outcome) == ("finish", "closed_by_servicing")


def test_paid_arrears_end_the_case_as_paid() -> None:
    case = case_at(dpd_amount=100_000)
    case.apply_payment(payment(amount_minor=100_000), at_dpd(3))
    assert decide(case, at_dpd(3), Children()).outcome == "paid"


def test_a_hold_binds_the_children_and_the_tasks() -> None:
    case = case_at()
    case.contact = case.contact.model_copy(update={"hardship_until": at_dpd(60)})
    case.open_tasks = {"t-1": "collector_call"}
    decision = decide(case, at_dpd(50), Children(placement_running=True, legal_running=True))
    assert decision.kind == "hold"
    assert decision.recall_agency and decision.hold_legal and decision.cancel_tasks
    assert decision.until == at_dpd(60)


def test_a_cease_request_stands_the_agency_and_collectors_down_but_the_letter_goes_on() -> None:
    case = case_at()
    case.contact = case.contact.model_copy(update={"cease_all": True})
    case.open_tasks = {"t-1": "collector_call"}
    decision = decide(case, at_dpd(91), Children(placement_running=True))
    assert decision.kind == "stand_down" and decision.recall_agency and decision.cancel_tasks
    case.open_tasks = {}
    after = decide(case, at_dpd(91), Children())
    assert [o.step.action for o in after.run] == ["lawyer_letter"]


def test_after_the_hold_the_legal_case_is_released() -> None:
    case = case_at()
    case.legal_held = True
    assert decide(case, at_dpd(100), Children(legal_running=True)).kind == "release_legal"


def test_an_open_promise_waits_until_its_deadline_then_breaks() -> None:
    case = case_at()
    promise = PromiseToPay(
        promise_id="pr-1",
        amount_minor=10_000,
        currency="CNY",
        due_date=OVERDUE + timedelta(days=20),
        deadline=at_dpd(22, 0),
        collector="c1",
        made_at=at_dpd(15),
    )
    case.promises = [promise]
    waiting = decide(case, at_dpd(16), Children())
    assert (waiting.kind, waiting.until) == ("await_arrangement", at_dpd(22, 0))
    assert decide(case, at_dpd(22, 1), Children()).kind == "break_promise"


def test_a_late_joiner_at_dpd_130_runs_the_letter_not_the_referral() -> None:
    decision = decide(case_at(), at_dpd(130), Children())
    assert decision.kind == "run_steps"
    assert [o.step.action for o in decision.run] == ["lawyer_letter"]
    assert "litigation_referral" in {o.key for o in decision.skip} or all(
        o.step.action != "refer_to_litigation" for o in decision.run
    )


def test_a_litigation_step_due_while_the_legal_case_runs_is_left_to_it() -> None:
    case = case_at()
    case.mark_done("lawyer_letter")
    decision = decide(case, at_dpd(106), Children(legal_running=True))
    assert all(o.step.action != "refer_to_litigation" for o in decision.run)


def test_a_letter_that_could_not_go_means_no_referral() -> None:
    case = case_at()
    case.mark_done("lawyer_letter")
    case.mark_done("lawyer_letter~for~litigation_referral")
    decision = decide(case, at_dpd(106), Children())
    assert all(o.step.action not in ("refer_to_litigation", "lawyer_letter") for o in decision.run)


def test_repeated_broken_promises_force_the_next_stage() -> None:
    case = case_at()
    case.broken_promises = case.strategy.promise.escalate_after_broken
    forced = escalate_after_broken(case)
    assert forced and all(key in case.forced for key in forced)
    assert "sms_reminder" in case.done


def test_nothing_due_waits_for_the_next_step() -> None:
    case = case_at(dpd_amount=100_000)
    for key in ("sms_reminder",):
        case.mark_done(key)
    decision = decide(case, at_dpd(1, 12), Children())
    assert decision.kind == "wait" and decision.next is not None and decision.until is not None
    assert decision.until > at_dpd(1, 12)


@settings(max_examples=200, deadline=None)
@given(
    dpd=st.integers(min_value=0, max_value=200),
    hour=st.integers(min_value=0, max_value=23),
    done=st.sets(
        st.sampled_from(
            ["lawyer_letter", "agency_placement", "collector_call", "field_visit", "sms_reminder"]
        )
    ),
    legal_running=st.booleans(),
    dispute=st.booleans(),
    amount=st.sampled_from([100_000, 1_500_000, 6_000_000]),
)
def test_properties_no_referral_alone_no_step_during_a_hold_and_waits_lie_ahead(
    dpd: int, hour: int, done: set[str], legal_running: bool, dispute: bool, amount: int
) -> None:
    case = case_at(dpd_amount=amount)
    for key in done:
        case.mark_done(key)
    case.profile = default_profiles()["us"]  # a dispute stops collection under Reg F
    case.contact = case.contact.model_copy(update={"dispute_open": dispute})
    now = at_dpd(dpd, hour)
    decision = decide(case, now, Children(legal_running=legal_running))

    # A referral never runs by itself: only the legal case files, after its letter and window.
    assert all(o.step.action != "refer_to_litigation" for o in decision.run)
    # A dispute (which stops collection in the US profile) lets no step run and no escalation happen.
    if dispute:
        assert decision.kind == "hold"
    # A wait always lies in the future: the loop never spins.
    if decision.kind in ("wait", "await_arrangement") and decision.until is not None:
        assert decision.until > now
    # Every decision names why.
    assert decision.reason


@given(outcome_order=st.permutations(["close", "paid", "stopped"]))
def test_property_what_ends_the_case_comes_first(outcome_order: list[str]) -> None:
    case = case_at(dpd_amount=100_000)
    case.contact = case.contact.model_copy(update={"hardship_until": at_dpd(60)})
    for what in outcome_order[:1]:
        if what == "close":
            case.close_request = CloseRequest(reason="other")
        elif what == "paid":
            case.apply_payment(payment(amount_minor=100_000), at_dpd(3))
        else:
            case.contact = case.contact.model_copy(update={"collection_stopped": "deceased"})
    assert decide(case, at_dpd(10), Children()).kind == "finish"


def test_letter_before_litigation_keeps_other_steps() -> None:
    case = case_at()
    from domain.decision import schedule_of

    schedule = schedule_of(case)
    referral = next(o for o in schedule if o.step.action == "refer_to_litigation")
    call = next(o for o in schedule if o.key == "collector_call")
    run, _ = letter_before_litigation(case, schedule, [call, referral], [], Children())
    assert [o.step.action for o in run] == ["collector_task", "lawyer_letter"]
    assert referral not in run
