"""Promises to pay: validation of a collector's request, and whether a promise was kept."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.calendar import start_of_local_day
from domain.loan import PositiveMinorUnits
from domain.strategy import PromiseRules
from domain.text import CleanText, Identifier

PromiseStatus = Literal["open", "kept", "broken", "cancelled"]


class PromiseRequest(BaseModel):
    """What a collector records: the borrower promises `amount_minor` by `due_date` (borrower-local)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    amount_minor: PositiveMinorUnits
    due_date: date
    collector: Identifier = Field(min_length=1, max_length=64)
    note: CleanText | None = Field(default=None, max_length=500)


class PromiseToPay(BaseModel):
    promise_id: str
    amount_minor: int
    currency: str
    due_date: date
    deadline: datetime  # end of due_date + grace, borrower-local, as an instant (collections clock)
    collector: str
    note: str | None = None
    made_at: datetime
    paid_toward_minor: int = 0
    status: PromiseStatus = "open"
    settled_at: datetime | None = None


def promise_rejection(
    request: PromiseRequest,
    *,
    arrears_minor: int,
    today: date,
    rules: PromiseRules,
    has_open_promise: bool,
    closed: bool,
) -> str | None:
    """The reason a promise cannot be accepted, or None. Reasons name the field a collector must fix."""
    if closed:
        return "loan: collection is closed; no promise can be recorded"
    if has_open_promise:
        return "loan: another promise to pay is still open; one open promise per loan"
    if request.amount_minor > arrears_minor:
        return f"amount_minor: {request.amount_minor} is more than the amount overdue ({arrears_minor})"
    if request.due_date < today:
        return f"due_date: {request.due_date} is in the past (today is {today} in the borrower's timezone)"
    horizon = today + timedelta(days=rules.max_days_ahead)
    if request.due_date > horizon:
        return (
            f"due_date: {request.due_date} is more than {rules.max_days_ahead} days ahead "
            f"(latest allowed {horizon})"
        )
    return None


def promise_deadline(due_date: date, rules: PromiseRules, zone: ZoneInfo) -> datetime:
    """Kept if paid before the borrower-local midnight ending the grace period."""
    return start_of_local_day(due_date + timedelta(days=rules.grace_days + 1), zone)
