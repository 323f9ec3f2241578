"""CollectionCase: payments applied once, oldest instalment first; promises kept; closing is final."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.case import CollectionCase
from domain.promise import PromiseToPay
from tests.domain.factories import instalments, loan, local, open_case, payment

NOW = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
JAN, FEB, MAR = date(2026, 1, 5), date(2026, 2, 5), date(2026, 3, 5)


def three_instalments() -> CollectionCase:
    """Arrears of 600,000: 100,000 due 5 Jan, 200,000 due 5 Feb, 300,000 due 5 Mar."""
    return open_case(
        loan(
            amount_overdue_minor=600_000,
            principal_outstanding_minor=2_000_000,
            overdue_since=JAN,
            overdue_instalments=instalments((300_000, MAR), (100_000, JAN), (200_000, FEB)),
        )
    )


def arrears(case: CollectionCase) -> list[tuple[date, int]]:
    return [(i.due_date, i.amount_minor) for i in case.arrears]


def with_open_promise(case: CollectionCase, amount_minor: int) -> PromiseToPay:
    promise = PromiseToPay(
        promise_id="PTP-1",
        amount_minor=amount_minor,
        currency="CNY",
        due_date=date(2026, 3, 25),
        deadline=local(date(2026, 3, 28), 0),
        collector="c-17",
        made_at=NOW - timedelta(days=1),
    )
    case.promises = [promise]
    return promise


def test_open_case_takes_arrears_oldest_first_and_derives_the_segment() -> None:
    case = three_instalments()

    assert arrears(case) == [(JAN, 100_000), (FEB, 200_000), (MAR, 300_000)]
    assert (case.arrears_minor, case.anchor, case.segment, case.stage) == (
        600_000,
        JAN,
        "standard",
        "reminder",
    )


def test_payment_is_applied_and_reported_with_arrears_before_and_after() -> None:
    case = three_instalments()

    effect = case.apply_payment(payment("P-1", 50_000), NOW)

    assert (effect.applied, effect.reason) == (True, "applied")
    assert (effect.arrears_before_minor, effect.arrears_after_minor) == (600_000, 550_000)
    assert case.paid_total_minor == 50_000
    assert case.principal_outstanding_minor == 1_950_000


def test_duplicate_payment_id_is_not_applied_twice() -> None:
    case = three_instalments()
    case.apply_payment(payment("P-1", 50_000), NOW)

    effect = case.apply_payment(payment("P-1", 50_000), NOW)

    assert (effect.applied, effect.reason) == (False, "duplicate payment_id")
    assert (effect.arrears_before_minor, effect.arrears_after_minor) == (550_000, 550_000)
    assert case.arrears_minor == 550_000
    assert case.paid_total_minor == 50_000
    assert case.principal_outstanding_minor == 1_950_000


def test_payment_in_another_currency_is_not_applied() -> None:
    case = three_instalments()

    effect = case.apply_payment(payment("P-1", 50_000, currency="USD"), NOW)

    assert (effect.applied, effect.reason) == (False, "currency USD does not match the loan's CNY")
    assert case.arrears_minor == 600_000
    assert case.paid_total_minor == 0
    assert case.applied_payment_ids == []


def test_partial_payment_clears_the_oldest_instalment_and_re_anchors() -> None:
    case = three_instalments()

    case.apply_payment(payment("P-1", 150_000), NOW)

    assert arrears(case) == [(FEB, 150_000), (MAR, 300_000)]
    assert case.anchor == FEB
    assert case.dpd(local(date(2026, 3, 20))) == 43  # 5 Feb -> 20 Mar, instead of 74 days from 5 Jan


def test_payment_inside_the_oldest_instalment_keeps_the_anchor() -> None:
    case = three_instalments()

    case.apply_payment(payment("P-1", 99_999), NOW)

    assert arrears(case) == [(JAN, 1), (FEB, 200_000), (MAR, 300_000)]
    assert case.anchor == JAN


def test_payment_of_exactly_the_oldest_instalment_moves_the_anchor_to_the_next() -> None:
    case = three_instalments()

    case.apply_payment(payment("P-1", 100_000), NOW)

    assert arrears(case) == [(FEB, 200_000), (MAR, 300_000)]
    assert case.anchor == FEB


def test_overpayment_leaves_no_arrears_and_principal_never_negative() -> None:
    case = three_instalments()

    effect = case.apply_payment(payment("P-1", 5_000_000), NOW)

    assert (effect.arrears_before_minor, effect.arrears_after_minor) == (600_000, 0)
    assert case.arrears == [] and case.arrears_minor == 0
    assert case.principal_outstanding_minor == 0
    assert case.paid_total_minor == 5_000_000
    assert case.anchor == JAN  # nothing unpaid: falls back to the loan's overdue_since


def test_payment_clearing_arrears_exactly_reduces_principal_by_the_payment() -> None:
    case = three_instalments()

    case.apply_payment(payment("P-1", 600_000), NOW)

    assert case.arrears_minor == 0
    assert case.principal_outstanding_minor == 1_400_000


def test_open_promise_stays_open_until_paid_toward_reaches_its_amount_then_is_kept() -> None:
    case = three_instalments()
    promise = with_open_promise(case, 200_000)

    case.apply_payment(payment("P-1", 150_000), NOW)
    assert (promise.status, promise.paid_toward_minor, promise.settled_at) == ("open", 150_000, None)

    later = NOW + timedelta(hours=3)
    case.apply_payment(payment("P-2", 50_000), later)
    assert (promise.status, promise.paid_toward_minor, promise.settled_at) == ("kept", 200_000, later)
    assert case.open_promise is None


def test_duplicate_payment_does_not_count_toward_the_promise() -> None:
    case = three_instalments()
    promise = with_open_promise(case, 200_000)

    case.apply_payment(payment("P-1", 150_000), NOW)
    case.apply_payment(payment("P-1", 150_000), NOW)

    assert (promise.status, promise.paid_toward_minor) == ("open", 150_000)


def test_segment_is_re_derived_when_the_balance_drops_below_high_balance() -> None:
    case = open_case(loan(amount_overdue_minor=6_000_000, principal_outstanding_minor=9_000_000))
    assert case.segment == "high_balance"

    case.apply_payment(payment("P-1", 1_000_000), NOW)
    assert case.segment == "high_balance"  # 5,000,000 is still high balance

    case.apply_payment(payment("P-2", 1), NOW)
    assert case.segment == "standard"


def test_low_risk_loan_paid_down_becomes_low_risk_small() -> None:
    case = open_case(loan(risk_grade="A", amount_overdue_minor=500_000))
    assert case.segment == "standard"

    case.apply_payment(payment("P-1", 200_000), NOW)

    assert case.segment == "low_risk_small"


def test_explicit_segment_is_kept_when_the_balance_drops() -> None:
    case = open_case(
        loan(amount_overdue_minor=6_000_000, principal_outstanding_minor=9_000_000, segment="high_balance")
    )

    case.apply_payment(payment("P-1", 5_000_000), NOW)

    assert case.segment == "high_balance"


def test_close_sets_the_outcome_stage_and_time() -> None:
    case = three_instalments()

    case.close("paid", "arrears cleared", NOW)

    assert (case.outcome, case.outcome_reason, case.closed_at, case.stage) == (
        "paid",
        "arrears cleared",
        NOW,
        "closed",
    )
    assert case.closed


def test_second_close_does_not_overwrite_the_first() -> None:
    case = three_instalments()
    case.close("litigation", "referred", NOW)

    case.close("paid", "arrears cleared", NOW + timedelta(days=1))

    assert (case.outcome, case.outcome_reason, case.closed_at) == ("litigation", "referred", NOW)


def test_close_as_paid_keeps_the_open_promise() -> None:
    case = three_instalments()
    promise = with_open_promise(case, 200_000)

    case.close("paid", "arrears cleared", NOW)

    assert (promise.status, promise.settled_at) == ("kept", NOW)


def test_close_otherwise_cancels_the_open_promise() -> None:
    case = three_instalments()
    promise = with_open_promise(case, 200_000)

    case.close("closed_by_servicing", "restructured", NOW)

    assert (promise.status, promise.settled_at) == ("cancelled", NOW)


def test_mark_done_records_once_and_clears_forced() -> None:
    case = three_instalments()
    case.forced = ["collector_call"]

    case.mark_done("collector_call")
    case.mark_done("collector_call")

    assert case.done == ["collector_call"]
    assert case.forced == []


def test_local_today_is_the_borrowers_date() -> None:
    case = three_instalments()

    assert case.local_today(datetime(2026, 3, 20, 17, 0, tzinfo=UTC)) == date(2026, 3, 21)
