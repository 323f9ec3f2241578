"""Requests to a loan's collection, validated before anything is sent: each bad field becomes one
(field, message) problem of `InvalidRequest`, so the CLI, the admin UI and servicing integrations report every
problem at once and change nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from domain.arrangements import RepaymentPlanRequest
from domain.clock import DAY
from domain.loan import Loan, Payment
from domain.promise import PromiseRequest
from starter.problems import field_problems
from workflows.messages import CloseRequest

# Bounds of CollectionsClock.speed (1 to 864000 collections seconds per real second), as seconds per day.
MIN_DEMO_DAY_SECONDS = DAY.total_seconds() / 864_000
MAX_DEMO_DAY_SECONDS = DAY.total_seconds()

M = TypeVar("M", bound=BaseModel)


class InvalidRequest(ValueError):
    """Bad input, found before anything was sent. `problems`: (field, message) per bad field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{field}: {message}" if field else message for field, message in problems)
        )


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise InvalidRequest(field_problems(error)) from None


def check_loan_id(loan_id: str) -> str:
    """The loan id as the workflow id is built from it; raises InvalidRequest for an impossible id."""
    problems = []
    try:
        Loan.model_validate({"loan_id": loan_id})
    except ValidationError as error:
        problems = [p for p in field_problems(error) if p[0] == "loan_id"]
    if problems:
        raise InvalidRequest(problems)
    return loan_id


def check_demo_day_seconds(seconds: float | None) -> float | None:
    """DEMO ONLY clock speed: a collections day may last 0.1 s (the clock's top speed) up to a real day."""
    if seconds is not None and not (MIN_DEMO_DAY_SECONDS <= seconds <= MAX_DEMO_DAY_SECONDS):
        bounds = f"{MIN_DEMO_DAY_SECONDS:g} and {MAX_DEMO_DAY_SECONDS:g}"
        raise InvalidRequest([("demo_day_seconds", f"must be between {bounds} seconds (got {seconds:g})")])
    return seconds


def build_payment(
    amount_minor: int,
    payment_id: str,
    currency: str,
    received_at: datetime | None = None,
    source: str = "servicing",
) -> Payment:
    """A validated Payment (received now unless given). Raises InvalidRequest naming each bad field."""
    return validated(
        Payment,
        {
            "payment_id": payment_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "received_at": received_at or datetime.now(UTC),
            "source": source,
        },
    )


def check_payment(
    amount_minor: int,
    payment_id: str,
    currency: str | None = None,
    received_at: datetime | None = None,
    source: str = "servicing",
) -> None:
    """Validate a payment whose currency may not be known yet (it defaults to the loan's)."""
    try:
        build_payment(amount_minor, payment_id, currency or "USD", received_at, source)
    except InvalidRequest as error:
        problems = [p for p in error.problems if currency is not None or p[0] != "currency"]
        if problems:
            raise InvalidRequest(problems) from None


def build_promise(
    amount_minor: int, due_date: date, collector: str, note: str | None = None
) -> PromiseRequest:
    return validated(
        PromiseRequest,
        {"amount_minor": amount_minor, "due_date": due_date, "collector": collector, "note": note},
    )


def build_plan_request(
    instalments: Sequence[tuple[int, date]], collector: str, note: str | None = None
) -> RepaymentPlanRequest:
    """A validated repayment plan: (amount_minor, due_date) per instalment, 2 to 12 of them."""
    return validated(
        RepaymentPlanRequest,
        {
            "collector": collector,
            "instalments": [{"amount_minor": a, "due_date": d} for a, d in instalments],
            "note": note,
        },
    )


def build_close(reason: str, note: str | None = None) -> CloseRequest:
    return validated(CloseRequest, {"reason": reason, "note": note})
