"""The borrower's own promise, plan and settlement against the strategy's bands (domain.borrower_plans)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.arrangements import RepaymentPlanRequest, plan_rejection
from domain.borrower_plans import (
    NO_PLAN,
    NO_SETTLEMENT,
    PlanBounds,
    band_for,
    equal_instalments,
    instalment_counts,
    plan_problems,
    promise_problems,
    settlement_floor_minor,
    settlement_problems,
)
from domain.definitions import canonical_json, definition_ref, text_ref
from domain.strategy import BorrowerPlans, Strategy, StrategyError, parse_strategy
from tests.domain.factories import DEFAULT

TODAY = date(2026, 11, 25)
PLANS = DEFAULT.borrower_plans
assert PLANS is not None


def bounds(arrears_minor: int = 300_000, currency: str = "CNY") -> PlanBounds:
    found = band_for(PLANS, arrears_minor, currency)
    assert found is not None
    return found


def plan(*amounts_and_days: tuple[int, int]) -> RepaymentPlanRequest:
    return RepaymentPlanRequest.model_validate(
        {
            "collector": "borrower",
            "instalments": [
                {"amount_minor": a, "due_date": TODAY + timedelta(days=d)} for a, d in amounts_and_days
            ],
        }
    )


def monthly(arrears_minor: int, count: int, first_in_days: int = 7) -> RepaymentPlanRequest:
    dates = [TODAY + timedelta(days=first_in_days + 30 * n) for n in range(count)]
    return plan(*((a, (d - TODAY).days) for a, d in equal_instalments(arrears_minor, dates)))


def test_band_by_arrears_and_currency() -> None:
    assert bounds(500_000).up_to_minor == 500_000  # the limit itself is in the band
    assert bounds(500_001).up_to_minor == 2_000_000
    top = bounds(5_000_000)
    assert top.up_to_minor is None and top.above_minor == 2_000_000
    assert bounds(10_000, "USD").max_instalments == 6
    assert band_for(PLANS, 10_000, "JPY") is None  # no band for the currency: no plan
    assert band_for(None, 10_000, "CNY") is None  # no section: no plan


def test_a_plan_inside_the_band_has_no_problems() -> None:
    assert plan_problems(bounds(), monthly(300_000, 6), arrears_minor=300_000, today=TODAY) == []


def test_too_many_instalments_names_the_field_and_the_band() -> None:
    weekly = [TODAY + timedelta(days=7 * n + 1) for n in range(7)]
    seven = plan(*((a, (d - TODAY).days) for a, d in equal_instalments(300_000, weekly)))
    problems = plan_problems(bounds(), seven, arrears_minor=300_000, today=TODAY)
    assert problems == ["instalments: at most 6 for arrears up to CNY 5,000.00"]


def test_small_instalments_late_first_payment_long_plan_and_wrong_total() -> None:
    assert plan_problems(bounds(), plan((10_000, 3), (290_000, 30)), arrears_minor=300_000, today=TODAY) == [
        "instalments: each at least CNY 200.00 for arrears up to CNY 5,000.00"
    ]
    late = plan_problems(bounds(), monthly(300_000, 3, first_in_days=15), arrears_minor=300_000, today=TODAY)
    assert late == [
        "instalments[0].due_date: the first payment within 14 days (by 2026-12-09) "
        "for arrears up to CNY 5,000.00"
    ]
    long = plan_problems(bounds(), plan((150_000, 10), (150_000, 181)), arrears_minor=300_000, today=TODAY)
    assert long[0].startswith("instalments[1].due_date: the plan may last at most 180 days")
    short = plan_problems(bounds(), plan((100_000, 3), (100_000, 30)), arrears_minor=300_000, today=TODAY)
    assert short == ["instalments: they must add up to the amount overdue, CNY 3,000.00 (not CNY 2,000.00)"]


def test_the_collectors_rules_still_apply_and_no_band_means_no_plan() -> None:
    past = plan_problems(bounds(), plan((150_000, -1), (150_000, 20)), arrears_minor=300_000, today=TODAY)
    assert past[0].startswith("instalments[0].due_date: 2026-11-24 is in the past")
    assert plan_problems(None, monthly(300_000, 2), arrears_minor=300_000, today=TODAY) == [NO_PLAN]


def test_promise_within_the_bands_days() -> None:
    assert promise_problems(bounds(), TODAY + timedelta(days=14), today=TODAY) == []
    assert promise_problems(bounds(), TODAY + timedelta(days=15), today=TODAY) == [
        "due_date: at most 14 days ahead (by 2026-12-09) for arrears up to CNY 5,000.00"
    ]
    assert promise_problems(None, TODAY + timedelta(days=29), today=TODAY) == []  # collectors' rules only


def test_settlement_needs_a_floor_and_stays_above_it() -> None:
    assert settlement_problems(bounds(), 200_000, TODAY, arrears_minor=300_000, today=TODAY) == [
        NO_SETTLEMENT
    ]
    band = bounds(1_000_001)  # floor 80%
    assert settlement_floor_minor(band, 1_000_001) == 800_001  # rounded up: never below the share
    assert settlement_problems(band, 800_001, TODAY, arrears_minor=1_000_001, today=TODAY) == []
    assert settlement_problems(band, 800_000, TODAY, arrears_minor=1_000_001, today=TODAY) == [
        "amount_minor: at least CNY 8,000.01 (80% of the amount overdue) for arrears up to CNY 20,000.00"
    ]
    assert settlement_problems(band, 1_000_001, TODAY, arrears_minor=1_000_001, today=TODAY)[0].startswith(
        "amount_minor: a settlement is for less"
    )


def test_instalment_choices_respect_the_smallest_instalment() -> None:
    assert instalment_counts(bounds(300_000), 300_000) == [2, 3, 4, 5, 6]
    assert instalment_counts(bounds(50_000), 50_000) == [2]  # CNY 500 / CNY 200 each: two at most
    assert instalment_counts(bounds(30_000), 30_000) == []
    assert instalment_counts(None, 300_000) == []


def test_bands_are_checked_at_load() -> None:
    with pytest.raises(ValueError, match="only the last band"):
        BorrowerPlans.model_validate({"bands": [_band(None), _band(100)]})
    with pytest.raises(ValueError, match="must increase"):
        BorrowerPlans.model_validate({"bands": [_band(200), _band(100)]})
    with pytest.raises(ValueError, match="unknown currency"):
        BorrowerPlans.model_validate({"bands": [_band(100) | {"currency": "RMB"}]})


def test_a_strategy_without_the_section_keeps_its_reference() -> None:
    # What an earlier release stored: the same canonical JSON, no borrower_plans key at all.
    data = json.loads(canonical_json(DEFAULT))
    del data["borrower_plans"]
    stored = json.dumps(data, sort_keys=True, separators=(",", ":"))
    again = Strategy.model_validate_json(stored)
    assert again.borrower_plans is None
    assert canonical_json(again) == stored and definition_ref(again) == text_ref(stored)


def test_a_bad_band_in_a_strategy_file_names_the_field() -> None:
    toml = (
        'name = "x"\nversion = 1\n[[steps]]\nid = "s"\ndpd = 1\nstage = "reminder"\n'
        'action = "collector_task"\ntask = "call"\n'
        '[[borrower_plans.bands]]\ncurrency = "CNY"\nmax_instalments = 40\n'
        "min_instalment_minor = 1\nmax_plan_days = 30\nfirst_payment_within_days = 3\n"
        "promise_within_days = 3\n"
    )
    with pytest.raises(StrategyError, match="max_instalments"):
        parse_strategy(toml)


def _band(up_to: int | None) -> dict[str, object]:
    return {
        "currency": "CNY",
        "up_to_minor": up_to,
        "max_instalments": 3,
        "min_instalment_minor": 1,
        "max_plan_days": 90,
        "first_payment_within_days": 7,
        "promise_within_days": 7,
    }


@settings(max_examples=200, deadline=None)
@given(
    arrears=st.integers(min_value=1, max_value=50_000_000),
    count=st.integers(min_value=2, max_value=12),
    first_in=st.integers(min_value=0, max_value=20),
    gap=st.integers(min_value=1, max_value=60),
)
def test_property_accepted_plans_pass_the_collectors_rules_and_add_up(
    arrears: int, count: int, first_in: int, gap: int
) -> None:
    band = bounds(arrears)
    dates = [TODAY + timedelta(days=first_in + gap * n) for n in range(count)]
    split = equal_instalments(arrears, dates)
    assert sum(a for a, _ in split) == arrears
    if min(a for a, _ in split) < 1:
        return  # more instalments than minor units: not a plan anybody can send
    request = plan(*((a, (d - TODAY).days) for a, d in split))
    if not plan_problems(band, request, arrears_minor=arrears, today=TODAY):
        assert plan_rejection(request, arrears_minor=arrears, today=TODAY) is None
        assert len(request.instalments) <= band.max_instalments
        assert min(i.amount_minor for i in request.instalments) >= band.min_instalment_minor
        assert (request.instalments[-1].due_date - TODAY).days <= band.max_plan_days


@settings(max_examples=200, deadline=None)
@given(arrears=st.integers(min_value=1, max_value=50_000_000))
def test_property_every_offered_count_is_accepted_with_a_timely_first_payment(arrears: int) -> None:
    band = bounds(arrears)
    for count in instalment_counts(band, arrears):
        step = max(1, band.max_plan_days // count)
        dates = [TODAY + timedelta(days=1 + step * n) for n in range(count)]
        request = plan(*((a, (d - TODAY).days) for a, d in equal_instalments(arrears, dates)))
        if (dates[-1] - TODAY).days <= band.max_plan_days:
            assert plan_problems(band, request, arrears_minor=arrears, today=TODAY) == []
