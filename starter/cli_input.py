"""How `python -m starter` checks its command-line input: every bad field of a command in one report, each
named by its option (`amount_minor (--amount): ...`), before anything connects to Temporal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.loan import parse_minor_units
from starter.requests import InvalidRequest, check_loan_id

OPTIONS = {
    "loan_id": "LOAN_ID",
    "amount_minor": "--amount",
    "payment_id": "--payment-id",
    "currency": "--currency",
    "source": "--source",
    "received_at": "--received-at",
    "due_date": "--date",
    "collector": "--collector",
    "note": "--note",
    "reason": "--reason",
    "concurrency": "--concurrency",
    "demo_day_seconds": "--demo-day-seconds",
}


class _Invalid(Exception):
    """Invalid command-line input: the lines to print, one per bad field."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def _lines(problems: Sequence[tuple[str, str]]) -> list[str]:
    lines = []
    for field, message in problems:
        option = OPTIONS.get(field)
        label = f"{field} ({option})" if option else field
        lines.append(f"{label}: {message}" if field else message)
    return lines


class _Problems:
    """Collects every bad field of a command before reporting, so one run shows all of them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def check(self, action: Callable[[], object]) -> None:
        try:
            action()
        except InvalidRequest as error:
            self.items += [p for p in error.problems if p not in self.items]

    def raise_if_any(self) -> None:
        if self.items:
            raise _Invalid(_lines(self.items))


def _minor_units(problems: _Problems, text: str) -> int:
    """ASCII digits only (no 1e3, no full-width digits, at most 16 digits); 1 stands in after a problem so
    the other fields are still checked."""
    try:
        amount = parse_minor_units(text)
    except ValueError as error:
        problems.add("amount_minor", str(error))
        return 1
    return amount if isinstance(amount, int) else 1


def _loan_id(problems: _Problems, loan_id: str) -> str:
    before = len(problems.items)
    problems.check(lambda: check_loan_id(loan_id))
    if len(problems.items) > before and ("/" in loan_id or loan_id.startswith("collection-")):
        problems.add("loan_id", "give the loan's own id (L-1), not a workflow id (collection-L-1/legal)")
    return loan_id


# -- commands ------------------------------------------------------------------------------------------------
