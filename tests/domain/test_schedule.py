"""The schedule: steps expanded into dated occurrences, and what runs now, what is skipped, what is next."""

from __future__ import annotations

from datetime import time, timedelta

from domain.schedule import Occurrence, Plan, next_stage_first, occurrences, plan
from tests.domain.factories import DEFAULT, OVERDUE_SINCE, SHANGHAI, local

STANDARD_CNY = 500_000  # below the field visit (2,000,000) and litigation (1,000,000) thresholds
CONTACT = time(9, 0)


def schedule(
    segment: str = "standard", amount: int = STANDARD_CNY, currency: str = "CNY"
) -> list[Occurrence]:
    return occurrences(DEFAULT.steps_for(segment), amount, currency)


def keys(items: list[Occurrence]) -> list[str]:
    return [o.key for o in items]


def plan_at(
    dpd: int,
    *,
    hour: int = 10,
    done: set[str] | None = None,
    forced: set[str] | None = None,
    stage: str = "reminder",
    items: list[Occurrence] | None = None,
) -> Plan:
    return plan(
        schedule() if items is None else items,
        done=done or set(),
        forced=forced or set(),
        stage=stage,
        now=local(OVERDUE_SINCE + timedelta(days=dpd), hour),
        anchor=OVERDUE_SINCE,
        contact_time=CONTACT,
        zone=SHANGHAI,
    )


# -- occurrences -------------------------------------------------------------------------------------------


def test_collector_call_repeats_every_three_days_until_before_the_agency_stage() -> None:
    calls = [o for o in schedule() if o.step.id == "collector_call"]

    assert [(o.key, o.dpd) for o in calls] == [
        ("collector_call", 15),
        *[(f"collector_call@{d}", d) for d in range(18, 45, 3)],
    ]
    assert calls[-1].dpd == 42


def test_standard_schedule_for_a_small_balance() -> None:
    assert keys(schedule()) == [
        "sms_reminder",
        "email_statement",
        "push_second_reminder",
        "collector_call",
        "collector_call@18",
        "collector_call@21",
        "collector_call@24",
        "collector_call@27",
        "collector_call@30",
        "supervisor_review",
        "collector_call@33",
        "collector_call@36",
        "collector_call@39",
        "collector_call@42",
        "agency_placement",
        "lawyer_letter",
        "write_off",
    ]


def test_thresholded_steps_apply_from_their_threshold_in_the_loans_currency() -> None:
    below = keys(schedule(amount=999_999))
    at_litigation = keys(schedule(amount=1_000_000))
    at_field_visit = keys(schedule(amount=2_000_000))

    assert "litigation_referral" not in below and "field_visit" not in below
    assert "litigation_referral" in at_litigation and "field_visit" not in at_litigation
    assert "litigation_referral" in at_field_visit and "field_visit" in at_field_visit


def test_thresholds_are_per_currency() -> None:
    # USD thresholds: field visit 300,000, litigation 150,000.
    usd = keys(schedule(amount=300_000, currency="USD"))
    # HKD has no threshold at all, so thresholded steps never apply.
    hkd = keys(schedule(amount=10**12, currency="HKD"))

    assert "field_visit" in usd and "litigation_referral" in usd
    assert "field_visit" not in hkd and "litigation_referral" not in hkd


def test_disabled_step_has_no_occurrence() -> None:
    items = schedule("low_risk_small", amount=10**9)

    assert "field_visit" not in keys(items)


def test_low_risk_small_calls_every_four_days_until_agency_at_60() -> None:
    calls = [o.dpd for o in schedule("low_risk_small", amount=100_000) if o.step.id == "collector_call"]

    assert calls == list(range(21, 60, 4))


def test_schedule_is_in_dpd_order() -> None:
    items = schedule("high_balance", amount=6_000_000)
    dpds = [o.dpd for o in items]

    assert dpds == sorted(dpds)
    assert len(set(keys(items))) == len(items)


# -- plan ----------------------------------------------------------------------------------------------------


def test_at_dpd_0_nothing_is_due_and_next_is_the_sms_at_dpd_1_nine_local() -> None:
    result = plan_at(0, hour=12)

    assert result.run_now == [] and result.skip == []
    assert result.next is not None and result.next.key == "sms_reminder"
    assert result.next_due_at is not None
    assert result.next_due_at.isoformat() == "2026-01-06T09:00:00+08:00"


def test_a_step_becomes_due_exactly_at_contact_time() -> None:
    assert plan_at(1, hour=8).run_now == []
    assert keys(plan_at(1, hour=9).run_now) == ["sms_reminder"]


def test_joining_at_dpd_40_runs_supervisor_review_and_the_call_of_dpd_39_only() -> None:
    result = plan_at(40)

    assert keys(result.run_now) == ["supervisor_review", "collector_call@39"]
    assert keys(result.skip) == [
        "sms_reminder",
        "email_statement",
        "push_second_reminder",
        "collector_call",
        "collector_call@18",
        "collector_call@21",
        "collector_call@24",
        "collector_call@27",
        "collector_call@30",
        "collector_call@33",
        "collector_call@36",
    ]
    assert result.next is not None and result.next.key == "collector_call@42"


def test_joining_at_dpd_8_runs_only_the_push_and_does_not_replay_sms_or_email() -> None:
    result = plan_at(8)

    assert keys(result.run_now) == ["push_second_reminder"]
    assert keys(result.skip) == ["sms_reminder", "email_statement"]
    assert result.next is not None and result.next.key == "collector_call"


def test_done_steps_are_neither_run_nor_skipped_again() -> None:
    result = plan_at(8, done={"sms_reminder", "email_statement", "push_second_reminder"})

    assert result.run_now == [] and result.skip == []
    assert result.next is not None and result.next.key == "collector_call"


def test_forced_step_is_due_now_whatever_its_date() -> None:
    result = plan_at(2, done={"sms_reminder"}, forced={"collector_call"})

    assert keys(result.run_now) == ["collector_call"]
    assert result.skip == []
    assert result.next is not None and result.next.key == "email_statement"


def test_stages_never_go_backwards_in_agency_nothing_of_deep_contact_runs() -> None:
    result = plan_at(50, done={"sms_reminder"}, stage="agency")

    assert keys(result.run_now) == ["agency_placement"]
    assert result.skip == []
    assert all(o.step.stage not in ("reminder", "deep_contact") for o in [*result.run_now, *result.skip])
    assert result.next is not None and result.next.key == "lawyer_letter"


def test_a_lower_stage_step_is_never_next_once_in_a_later_stage() -> None:
    result = plan_at(10, stage="agency")

    assert result.run_now == []
    assert result.next is not None and result.next.key == "agency_placement"


def test_late_in_legal_runs_the_latest_legal_step_and_skips_everything_else() -> None:
    result = plan_at(120, items=schedule(amount=1_500_000))

    assert keys(result.run_now) == ["litigation_referral"]
    assert "lawyer_letter" in keys(result.skip) and "agency_placement" in keys(result.skip)
    assert result.next is not None and result.next.key == "write_off"


def test_nothing_left_means_no_next() -> None:
    items = schedule()
    result = plan_at(200, done=set(keys(items)), stage="closed", items=items)

    assert result.run_now == [] and result.skip == [] and result.next is None and result.next_due_at is None


# -- next_stage_first ----------------------------------------------------------------------------------------


def test_next_stage_first_from_reminder_is_the_first_call() -> None:
    assert keys(next_stage_first(schedule(), set(), "reminder")) == ["collector_call"]


def test_next_stage_first_returns_every_step_of_the_first_dpd() -> None:
    items = schedule("high_balance", amount=6_000_000)
    done = set(keys([o for o in items if o.step.stage == "deep_contact" and o.dpd < 20]))
    # Every deep-contact step before DPD 20 has run: escalation from reminder lands on DPD 20's steps.
    result = next_stage_first(items, done, "reminder")

    assert {o.key for o in result} == {"collector_call@20", "supervisor_review", "field_visit"}


def test_next_stage_first_from_deep_contact_is_the_agency_placement() -> None:
    assert keys(next_stage_first(schedule(), set(), "deep_contact")) == ["agency_placement"]


def test_next_stage_first_skips_a_stage_whose_steps_are_all_done() -> None:
    assert keys(next_stage_first(schedule(), {"agency_placement"}, "deep_contact")) == ["lawyer_letter"]


def test_next_stage_first_from_legal_is_write_off_and_from_closed_nothing() -> None:
    assert keys(next_stage_first(schedule(), set(), "legal")) == ["write_off"]
    assert next_stage_first(schedule(), set(), "closed") == []
