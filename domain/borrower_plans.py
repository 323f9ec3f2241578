"""What a borrower may arrange alone: the strategy's `borrower_plans` bands applied to a promise, a repayment
plan or a settlement proposal the borrower makes (the borrower page, or any client acting as the borrower).

Pure rules. The workflow's validators run them when the asserted role is `borrower`, on top of the
collectors' rules (`domain.arrangements`, `domain.promise`), so a raw client cannot get past what the page
shows; a collector's request keeps the collectors' rules only. Each check returns field-level reasons, the
field first ("instalments: at most 6 for arrears up to CNY 5,000.00"); empty when within bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import Field

from domain.arrangements import (
    MIN_PLAN_INSTALMENTS,
    PlanInstalmentRequest,
    RepaymentPlanRequest,
    plan_rejection,
)
from domain.loan import format_money
from domain.strategy import BorrowerBand, BorrowerPlans

NO_PLAN = "instalments: the borrower cannot arrange a repayment plan for this loan alone; ask a collector"
NO_SETTLEMENT = "amount_minor: the borrower cannot propose a settlement for this loan; ask a collector"


class PlanBounds(BorrowerBand):
    """The band that applies to a loan, with the previous band's limit (what the arrears are above)."""

    above_minor: int | None = Field(default=None, description="the previous band's up_to_minor, if any")


def band_for(plans: BorrowerPlans | None, arrears_minor: int, currency: str) -> PlanBounds | None:
    """The first band of `currency` covering `arrears_minor`; None when the strategy offers none."""
    if plans is None:
        return None
    above: int | None = None
    for band in plans.bands:
        if band.currency != currency:
            continue
        if band.up_to_minor is None or arrears_minor <= band.up_to_minor:
            return PlanBounds(**band.model_dump(), above_minor=above)
        above = band.up_to_minor
    return None


def scope(bounds: PlanBounds) -> str:
    """'for arrears up to CNY 5,000.00', the words every reason ends with."""
    if bounds.up_to_minor is not None:
        return f"for arrears up to {format_money(bounds.up_to_minor, bounds.currency)}"
    if bounds.above_minor is not None:
        return f"for arrears above {format_money(bounds.above_minor, bounds.currency)}"
    return f"for arrears in {bounds.currency}"


def instalment_counts(bounds: PlanBounds | None, arrears_minor: int) -> list[int]:
    """The numbers of equal instalments a borrower may choose (none when even two would be too small)."""
    if bounds is None:
        return []
    most = min(bounds.max_instalments, arrears_minor // bounds.min_instalment_minor)
    return list(range(MIN_PLAN_INSTALMENTS, most + 1))


def equal_instalments(arrears_minor: int, dates: Sequence[date]) -> list[tuple[int, date]]:
    """The arrears split over `dates` in equal shares, the remainder on the last: they add up exactly."""
    count = len(dates)
    share, rest = divmod(arrears_minor, count)
    return [(share + (rest if n == count - 1 else 0), due) for n, due in enumerate(dates)]


def promise_problems(bounds: PlanBounds | None, due_date: date, *, today: date) -> list[str]:
    """A borrower's promise: its date within `promise_within_days` (no band: the collectors' rules only)."""
    if bounds is None:
        return []
    latest = today + timedelta(days=bounds.promise_within_days)
    if due_date > latest:
        return [f"due_date: at most {bounds.promise_within_days} days ahead (by {latest}) {scope(bounds)}"]
    return []


def plan_problems(
    bounds: PlanBounds | None, request: RepaymentPlanRequest, *, arrears_minor: int, today: date
) -> list[str]:
    """A borrower's plan: the collectors' rules, then the band's (count, smallest instalment, the whole
    arrears, first payment and last instalment within their days)."""
    if bounds is None:
        return [NO_PLAN]
    problems: list[str] = []
    collectors = plan_rejection(request, arrears_minor=arrears_minor, today=today)
    if collectors:
        problems.append(collectors)
    instalments: list[PlanInstalmentRequest] = list(request.instalments)
    where = scope(bounds)
    if len(instalments) > bounds.max_instalments:
        problems.append(f"instalments: at most {bounds.max_instalments} {where}")
    smallest = min(i.amount_minor for i in instalments)
    if smallest < bounds.min_instalment_minor:
        problems.append(
            f"instalments: each at least {format_money(bounds.min_instalment_minor, bounds.currency)} {where}"
        )
    total = sum(i.amount_minor for i in instalments)
    if total != arrears_minor:
        problems.append(
            f"instalments: they must add up to the amount overdue, "
            f"{format_money(arrears_minor, bounds.currency)} (not {format_money(total, bounds.currency)})"
        )
    first_by = today + timedelta(days=bounds.first_payment_within_days)
    if instalments[0].due_date > first_by:
        problems.append(
            f"instalments[0].due_date: the first payment within {bounds.first_payment_within_days} days "
            f"(by {first_by}) {where}"
        )
    last_by = today + timedelta(days=bounds.max_plan_days)
    if instalments[-1].due_date > last_by:
        problems.append(
            f"instalments[{len(instalments) - 1}].due_date: the plan may last at most "
            f"{bounds.max_plan_days} days (last instalment by {last_by}) {where}"
        )
    return problems


def settlement_floor_minor(bounds: PlanBounds, arrears_minor: int) -> int | None:
    """The least a borrower may propose to settle for (rounded up), or None when no settlement is allowed."""
    if bounds.settlement_floor_bp is None:
        return None
    return -(-arrears_minor * bounds.settlement_floor_bp // 10_000)


def settlement_problems(
    bounds: PlanBounds | None, amount_minor: int, due_date: date, *, arrears_minor: int, today: date
) -> list[str]:
    """A borrower's settlement proposal: allowed only with a floor; at least the floor and less than the
    arrears, paid within the band's first-payment days."""
    floor = settlement_floor_minor(bounds, arrears_minor) if bounds is not None else None
    if bounds is None or floor is None:
        return [NO_SETTLEMENT]
    problems: list[str] = []
    if amount_minor >= arrears_minor:
        problems.append("amount_minor: a settlement is for less than the amount overdue")
    elif amount_minor < floor:
        problems.append(
            f"amount_minor: at least {format_money(floor, bounds.currency)} "
            f"({(bounds.settlement_floor_bp or 0) / 100:g}% of the amount overdue) {scope(bounds)}"
        )
    latest = today + timedelta(days=bounds.first_payment_within_days)
    if due_date < today:
        problems.append(f"due_date: {due_date} is in the past (today is {today} in the borrower's timezone)")
    elif due_date > latest:
        problems.append(
            f"due_date: within {bounds.first_payment_within_days} days (by {latest}) {scope(bounds)}"
        )
    return problems


def first(problems: list[str]) -> str | None:
    """The reason a validator refuses with (the first problem), or None."""
    return problems[0] if problems else None
