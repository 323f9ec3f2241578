"""Promise to pay: each rejection reason, the boundary days, and the deadline."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from domain.promise import PromiseRequest, promise_deadline, promise_rejection
from domain.strategy import PromiseRules
from tests.domain.factories import DEFAULT, NEW_YORK, SHANGHAI

TODAY = date(2026, 11, 25)
RULES = DEFAULT.promise  # max_days_ahead 30, grace_days 2


def request(amount_minor: int = 100_000, due_date: date = TODAY + timedelta(days=7)) -> PromiseRequest:
    return PromiseRequest(amount_minor=amount_minor, due_date=due_date, collector="c-17")


def rejection(
    req: PromiseRequest,
    *,
    arrears_minor: int = 500_000,
    has_open_promise: bool = False,
    closed: bool = False,
    rules: PromiseRules = RULES,
) -> str | None:
    return promise_rejection(
        req,
        arrears_minor=arrears_minor,
        today=TODAY,
        rules=rules,
        has_open_promise=has_open_promise,
        closed=closed,
    )


def test_valid_promise_is_accepted() -> None:
    assert rejection(request()) is None


def test_closed_loan_rejects_any_promise() -> None:
    assert rejection(request(), closed=True) == "loan: collection is closed; no promise can be recorded"


def test_second_open_promise_is_rejected() -> None:
    assert rejection(request(), has_open_promise=True) == (
        "loan: another promise to pay is still open; one open promise per loan"
    )


def test_closed_is_reported_before_an_open_promise() -> None:
    reason = rejection(request(), closed=True, has_open_promise=True)

    assert reason is not None and reason.startswith("loan: collection is closed")


def test_amount_above_arrears_is_rejected() -> None:
    assert rejection(request(amount_minor=500_001), arrears_minor=500_000) == (
        "amount_minor: 500001 is more than the amount overdue (500000)"
    )


def test_amount_equal_to_arrears_is_accepted() -> None:
    assert rejection(request(amount_minor=500_000), arrears_minor=500_000) is None


def test_date_in_the_past_is_rejected() -> None:
    assert rejection(request(due_date=TODAY - timedelta(days=1))) == (
        "due_date: 2026-11-24 is in the past (today is 2026-11-25 in the borrower's timezone)"
    )


def test_today_is_allowed() -> None:
    assert rejection(request(due_date=TODAY)) is None


def test_last_day_of_the_horizon_is_allowed() -> None:
    assert rejection(request(due_date=TODAY + timedelta(days=30))) is None


def test_one_day_beyond_the_horizon_is_rejected() -> None:
    assert rejection(request(due_date=TODAY + timedelta(days=31))) == (
        "due_date: 2026-12-26 is more than 30 days ahead (latest allowed 2026-12-25)"
    )


def test_horizon_follows_the_strategy_rules() -> None:
    rules = PromiseRules(max_days_ahead=7)

    assert rejection(request(due_date=TODAY + timedelta(days=7)), rules=rules) is None
    assert rejection(request(due_date=TODAY + timedelta(days=8)), rules=rules) is not None


def test_zero_amount_request_is_invalid() -> None:
    with pytest.raises(ValidationError):
        request(amount_minor=0)


def test_deadline_is_local_midnight_after_due_date_plus_grace() -> None:
    deadline = promise_deadline(date(2026, 12, 1), RULES, SHANGHAI)

    assert deadline.isoformat() == "2026-12-04T00:00:00+08:00"


def test_deadline_without_grace_is_the_midnight_ending_the_due_date() -> None:
    deadline = promise_deadline(date(2026, 12, 1), PromiseRules(grace_days=0), NEW_YORK)

    assert deadline.isoformat() == "2026-12-02T00:00:00-05:00"


def test_deadline_across_a_dst_change_is_local_midnight_in_the_new_offset() -> None:
    # New York springs forward on 2026-03-08.
    deadline = promise_deadline(date(2026, 3, 6), RULES, NEW_YORK)

    assert deadline.isoformat() == "2026-03-09T00:00:00-04:00"
