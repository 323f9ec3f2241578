"""Valid domain objects for the domain tests; each test overrides only the fields it is about."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import local_instant
from domain.case import CollectionCase
from domain.clock import CollectionsClock
from domain.loan import Borrower, Instalment, Loan, Payment
from domain.strategy import Strategy, default_strategy

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

OVERDUE_SINCE = date(2026, 1, 5)

# Loaded once: a Strategy is frozen, so sharing it between tests is safe.
DEFAULT: Strategy = default_strategy()


def borrower(**overrides: Any) -> Borrower:
    fields: dict[str, Any] = {
        "name": "Li Na",
        "phone": "+8613800138000",
        "email": "li.na@example.com",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
    }
    return Borrower(**(fields | overrides))


def borrower_fields(**overrides: Any) -> dict[str, Any]:
    return borrower().model_dump() | overrides


def loan_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "loan_id": "LN-1",
        "borrower": borrower_fields(),
        "currency": "CNY",
        "amount_overdue_minor": 500_000,
        "principal_outstanding_minor": 2_000_000,
        "overdue_since": OVERDUE_SINCE,
        "risk_grade": "C",
    }
    return fields | overrides


def loan(**overrides: Any) -> Loan:
    return Loan(**loan_fields(**overrides))


def instalments(*amounts_and_dates: tuple[int, date]) -> list[Instalment]:
    return [Instalment(due_date=d, amount_minor=a) for a, d in amounts_and_dates]


def payment(payment_id: str = "P-1", amount_minor: int = 100_000, **overrides: Any) -> Payment:
    fields: dict[str, Any] = {
        "payment_id": payment_id,
        "amount_minor": amount_minor,
        "currency": "CNY",
        "received_at": datetime(2026, 1, 20, 2, 0, tzinfo=UTC),
    }
    return Payment(**(fields | overrides))


def local(day: date, hour: int = 10, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return local_instant(day, time(hour, minute), zone)


def open_case(the_loan: Loan | None = None, strategy: Strategy = DEFAULT) -> CollectionCase:
    the_loan = the_loan or loan()
    return CollectionCase.open(
        the_loan, strategy, CollectionsClock.real_time(datetime(2026, 1, 20, 2, 0, tzinfo=UTC))
    )
