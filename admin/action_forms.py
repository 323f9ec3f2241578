"""The dossier's action forms read into request fields: dates and times in the borrower's zone, amounts in
the loan's currency, the repayment plan's rows, and which form input a workflow's reason about a request
field belongs to. Pure functions of the form (`Get`) and the loan's status; each raises `InvalidRequest` with
every problem of its fields at once, so the page shows them all beside their inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from admin.web import parse_amount
from starter.api import InvalidRequest
from workflows.messages import CollectionStatus

Get = Callable[[str], str]  # a form value of this action by field name ('' when absent), stripped

PLAN_ROWS = 6  # instalment rows of the repayment-plan form; empty rows are ignored


def borrower_zone(status: CollectionStatus) -> ZoneInfo:
    return ZoneInfo(status.loan.borrower.timezone if status.loan else "UTC")


def local_datetime(text: str, status: CollectionStatus, field_name: str) -> datetime:
    """A datetime-local input ('2026-11-25T14:30') as the borrower's wall-clock time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest([(field_name, "enter a date and time")]) from None
    return value if value.tzinfo else value.replace(tzinfo=borrower_zone(status))


def parse_date(text: str, field_name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest([(field_name, "enter a date as YYYY-MM-DD")]) from None


def outcome_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    outcome, when = get("outcome"), get("callback_at")
    if outcome == "callback_requested" and not when:
        raise InvalidRequest([("callback_at", "required when the borrower asked to be called back")])
    if when and outcome != "callback_requested":
        raise InvalidRequest([("callback_at", "only when the borrower asked to be called back")])
    callback_at = local_datetime(when, status, "callback_at") if when else None
    return {"channel": get("channel") or "call", "outcome": outcome, "callback_at": callback_at}


def opt_out_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    kind, _sep, target = get("target").partition(":")
    if kind == "address" and target in ("phone", "email") and status.loan is not None:  # the page masks them
        target = getattr(status.loan.borrower, target) or ""
    if kind not in ("channel", "address") or not target:
        raise InvalidRequest([("target", "choose a channel or an address")])
    return {kind: target}


def plan_rows(get: Get) -> list[int]:
    """The plan form's rows with anything typed in them (1-based); the others are ignored."""
    return [row for row in range(1, PLAN_ROWS + 1) if get(f"amount_{row}") or get(f"due_date_{row}")]


def plan_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    instalments: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for index, row in enumerate(plan_rows(get)):
        amount, due = get(f"amount_{row}"), get(f"due_date_{row}")
        instalment: dict[str, Any] = {}
        try:
            instalment["amount_minor"] = parse_amount(amount, status.currency) if amount else None
        except InvalidRequest as error:
            problems += [(f"instalments[{index}].amount_minor", message) for _f, message in error.problems]
        try:
            instalment["due_date"] = parse_date(due, "due_date") if due else None
        except InvalidRequest as error:
            problems += [(f"instalments[{index}].due_date", message) for _f, message in error.problems]
        for name in ("amount_minor", "due_date"):
            if name in instalment and instalment[name] is None:
                problems.append((f"instalments[{index}].{name}", "required"))
        instalments.append(instalment)
    if problems:
        raise InvalidRequest(problems)
    return {"instalments": instalments}


PLAN_FIELD = re.compile(r"^instalments\[(\d+)\]\.(amount_minor|due_date)")


def plan_input(request_field: str, get: Get) -> str | None:
    """'instalments[1].due_date' -> 'due_date_<row>' of the second row the collector filled in."""
    found = PLAN_FIELD.match(request_field)
    rows = plan_rows(get)
    if not found or int(found.group(1)) >= len(rows):
        return None
    name = "amount" if found.group(2) == "amount_minor" else "due_date"
    return f"{name}_{rows[int(found.group(1))]}"


def all_fields(*parsers: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fields every parser returns; InvalidRequest with the problems of all of them."""
    data: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for parse in parsers:
        try:
            data.update(parse())
        except InvalidRequest as error:
            problems += error.problems
    if problems:
        raise InvalidRequest(problems)
    return data


def amount_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return {"amount_minor": parse_amount(get("amount"), status.currency) if get("amount") else None}


def date_field(get: Get, name: str) -> dict[str, Any]:
    return {name: parse_date(get(name), name) if get(name) else None}


def settlement_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return all_fields(lambda: amount_fields(get, status), lambda: date_field(get, "due_date"))


def waiver_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return all_fields(lambda: amount_fields(get, status), lambda: {"reason": get("reason")})


def stage_hold_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return all_fields(lambda: date_field(get, "until"), lambda: {"reason": get("reason")})


def reason_fields(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return {"reason": get("reason")}
