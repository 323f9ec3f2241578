"""pydantic validation errors as the field-level lines an operator reads: `field: what is wrong (got ...)`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


def field_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message) per error, e.g. ('borrower.phone', "must be E.164: ... (got '123')")."""
    problems = []
    for detail in error.errors():
        field = dotted(detail["loc"])
        problems.append((field, message(field, detail)))
    return problems


def dotted(loc: Iterable[int | str]) -> str:
    """('overdue_instalments', 1, 'amount_minor') -> 'overdue_instalments[1].amount_minor'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def message(field: str, detail: Any) -> str:
    kind: str = detail["type"]
    text = str(detail["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = detail.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "string_pattern_mismatch" and field.endswith("loan_id"):
        text = "letters, digits, '_', '.' and '-' only, starting with a letter or digit"
    if kind.startswith("datetime_"):
        text += " (use ISO 8601 with an offset, e.g. 2026-11-25T10:00:00+08:00)"
    elif kind.startswith("date_"):
        text += " (use YYYY-MM-DD)"
    if (
        isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and repr(value) not in text
        and "got " not in text  # the validator already said what it got (e.g. "a number of 5000 digits")
        and "contact data" not in text  # never echo a phone number or e-mail into output that may be logged
    ):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "...'"
        text += f" (got {shown})"
    return text
