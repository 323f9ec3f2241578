"""Property tests over payments, the plan and promise validation (hypothesis, ~200 examples each)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import days_past_due, due_instant, local_instant
from domain.case import CollectionCase
from domain.loan import Instalment, Loan, Payment
from domain.promise import PromiseRequest, promise_rejection
from domain.schedule import Occurrence, occurrences, plan
from domain.strategy import STAGE_ORDER, PromiseRules, stage_rank
from tests.domain.factories import DEFAULT, LONDON, NEW_YORK, SHANGHAI, borrower_fields, open_case

PROPERTY = settings(max_examples=200, deadline=None)

ZONES = [SHANGHAI, NEW_YORK, LONDON, ZoneInfo("Australia/Sydney")]
SEGMENTS = ["standard", *(s.name for s in DEFAULT.segments)]
AMOUNTS = [
    ("CNY", 100_000),
    ("CNY", 1_500_000),
    ("CNY", 6_000_000),
    ("USD", 40_000),
    ("USD", 800_000),
    ("JPY", 5_000_000),
    ("HKD", 10**9),
]


# -- payments ------------------------------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> CollectionCase:
    currency = draw(st.sampled_from(["CNY", "USD", "JPY"]))
    amounts = draw(st.lists(st.integers(1, 10**7), min_size=1, max_size=5))
    offsets = sorted(draw(st.sets(st.integers(0, 400), min_size=len(amounts), max_size=len(amounts))))
    due = [date(2025, 1, 1) + timedelta(days=o) for o in offsets]
    total = sum(amounts)
    loan = Loan(
        loan_id="LN-P",
        borrower=borrower_fields(),
        currency=currency,
        amount_overdue_minor=total,
        principal_outstanding_minor=total + draw(st.integers(0, 10**7)),
        overdue_since=due[0],
        risk_grade=draw(st.sampled_from(["A", "B", "C", "D", "E"])),
        overdue_instalments=[
            Instalment(due_date=d, amount_minor=a) for d, a in zip(due, amounts, strict=True)
        ],
    )
    return open_case(loan)


payments = st.lists(
    st.tuples(
        st.sampled_from(["P-1", "P-2", "P-3", "P-4", "P-5", "P-6"]),
        st.integers(1, 2 * 10**7),
        st.sampled_from(["CNY", "USD", "JPY", "EUR"]),
    ),
    max_size=12,
)

RECEIVED = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


@PROPERTY
@given(case=cases(), sequence=payments)
def test_payments_never_overpay_arrears_and_conserve_the_original_arrears(
    case: CollectionCase, sequence: list[tuple[str, int, str]]
) -> None:
    original_arrears = case.arrears_minor
    original_principal = case.principal_outstanding_minor
    instalment_dates = [i.due_date for i in case.arrears]
    applied: dict[str, int] = {}  # the model: first payment per id in the loan's currency

    for payment_id, amount, currency in sequence:
        effect = case.apply_payment(
            Payment(payment_id=payment_id, amount_minor=amount, currency=currency, received_at=RECEIVED),
            RECEIVED,
        )
        expect_applied = payment_id not in applied and currency == case.loan.currency
        if expect_applied:
            applied[payment_id] = amount

        assert effect.applied == expect_applied
        assert case.arrears_minor >= 0
        assert all(i.amount_minor > 0 for i in case.arrears)
        assert effect.arrears_after_minor == case.arrears_minor
        reduction = effect.arrears_before_minor - effect.arrears_after_minor
        assert 0 <= reduction <= amount
        assert reduction == (min(amount, effect.arrears_before_minor) if expect_applied else 0)

        paid = sum(applied.values())
        assert case.paid_total_minor == paid
        assert original_arrears == case.arrears_minor + min(paid, original_arrears)
        assert case.principal_outstanding_minor == max(0, original_principal - paid)
        # Oldest first: what is left are the latest instalments, and DPD anchors on the oldest of them.
        assert [i.due_date for i in case.arrears] == instalment_dates[
            len(instalment_dates) - len(case.arrears) :
        ]
        assert case.anchor == (case.arrears[0].due_date if case.arrears else case.loan.overdue_since)


# -- plan ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInput:
    schedule: list[Occurrence]
    done: set[str]
    forced: set[str]
    stage: str
    now: datetime
    anchor: date
    zone: ZoneInfo


@st.composite
def plan_inputs(draw: st.DrawFn) -> PlanInput:
    segment = draw(st.sampled_from(SEGMENTS))
    currency, amount = draw(st.sampled_from(AMOUNTS))
    schedule = occurrences(DEFAULT.steps_for(segment), amount, currency)
    done_count = draw(st.integers(0, len(schedule)))
    pending_keys = [o.key for o in schedule[done_count:]]
    zone = draw(st.sampled_from(ZONES))
    anchor = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 365)))
    dpd = draw(st.integers(0, 200))
    at = time(draw(st.integers(0, 23)), draw(st.integers(0, 59)))
    return PlanInput(
        schedule=schedule,
        done={o.key for o in schedule[:done_count]},
        forced=draw(st.sets(st.sampled_from(pending_keys), max_size=2)) if pending_keys else set(),
        stage=draw(st.sampled_from(STAGE_ORDER)),
        now=local_instant(anchor + timedelta(days=dpd), at, zone),
        anchor=anchor,
        zone=zone,
    )


@PROPERTY
@given(given_=plan_inputs())
def test_plan_runs_only_due_steps_of_the_stage_or_later_once_each(given_: PlanInput) -> None:
    contact = DEFAULT.contact_time

    result = plan(
        given_.schedule,
        done=given_.done,
        forced=given_.forced,
        stage=given_.stage,
        now=given_.now,
        anchor=given_.anchor,
        contact_time=contact,
        zone=given_.zone,
    )

    run_keys = {o.key for o in result.run_now}
    skip_keys = {o.key for o in result.skip}
    for occurrence in [*result.run_now, *result.skip]:
        assert stage_rank(occurrence.step.stage) >= stage_rank(given_.stage)
        assert occurrence.key not in given_.done
    for occurrence in result.run_now:
        assert (
            occurrence.key in given_.forced
            or due_instant(given_.anchor, occurrence.dpd, contact, given_.zone) <= given_.now
        )
    assert not run_keys & skip_keys
    run_step_ids = [o.step.id for o in result.run_now]
    assert len(run_step_ids) == len(set(run_step_ids))
    # Every forced occurrence of this stage or later is decided now (run or skipped), never left for later.
    by_key = {o.key: o for o in given_.schedule}
    forced_here = {k for k in given_.forced if stage_rank(by_key[k].step.stage) >= stage_rank(given_.stage)}
    assert forced_here <= run_keys | skip_keys
    if result.next is not None:
        assert result.next_due_at is not None and result.next_due_at > given_.now
        assert result.next.key not in given_.done | run_keys | skip_keys
        assert stage_rank(result.next.step.stage) >= stage_rank(given_.stage)
    else:
        assert result.next_due_at is None


# -- promises -----------------------------------------------------------------------------------------------


@PROPERTY
@given(
    amount=st.integers(1, 2_000_000),
    arrears=st.integers(0, 2_000_000),
    offset=st.integers(-400, 400),
    today=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    max_days_ahead=st.integers(1, 365),
    has_open_promise=st.booleans(),
    closed=st.booleans(),
)
def test_promise_is_rejected_exactly_when_a_rule_is_broken(
    amount: int,
    arrears: int,
    offset: int,
    today: date,
    max_days_ahead: int,
    has_open_promise: bool,
    closed: bool,
) -> None:
    due_date = today + timedelta(days=offset)
    request = PromiseRequest(amount_minor=amount, due_date=due_date, collector="c-1")

    reason = promise_rejection(
        request,
        arrears_minor=arrears,
        today=today,
        rules=PromiseRules(max_days_ahead=max_days_ahead),
        has_open_promise=has_open_promise,
        closed=closed,
    )

    broken = [
        ("loan: collection is closed", closed),
        ("loan: another promise", has_open_promise),
        ("amount_minor:", amount > arrears),
        ("due_date:", due_date < today),
        ("due_date:", (due_date - today).days > max_days_ahead),
    ]
    first_broken = next((prefix for prefix, is_broken in broken if is_broken), None)
    if first_broken is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(first_broken)


# -- calendar -----------------------------------------------------------------------------------------------


@PROPERTY
@given(
    anchor=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    dpd=st.integers(0, 400),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(ZONES),
)
def test_a_step_of_dpd_n_is_due_on_local_day_n_no_earlier_than_its_wall_time(
    anchor: date, dpd: int, hour: int, minute: int, zone: ZoneInfo
) -> None:
    at = time(hour, minute)

    due = due_instant(anchor, dpd, at, zone)

    assert days_past_due(anchor, due, zone) == dpd
    local = due.astimezone(zone)
    wall = datetime.combine(local.date(), local.time())
    expected = datetime.combine(anchor + timedelta(days=dpd), at)
    assert timedelta(0) <= wall - expected <= timedelta(hours=1)  # moved forward only across a DST gap
