"""The actions a collector (or a supervisor) takes on a loan from its dossier.

Every action is a POST form of the dossier (admin/templates/loan_actions.html), CSRF-checked, sent to the
loan's workflow as an update with the logged-in user as the collector (or approver), so the workflow
journals who did it and when. A rejection, by the form or by the workflow's validator, re-renders the dossier
with the reason next to the field (422) and nothing saved; success redirects to the dossier with a notice.

Form inputs are named `<action>_<field>` (e.g. `hardship_days`) so the forms of one page never share an id;
the errors and values handed to `render_dossier` use the same keys, `<action>_form` for a reason that names
no field of the form. The promise and close forms keep their original names.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, get_args
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from admin.dossier import NOTICES as DOSSIER_NOTICES
from admin.dossier import render_dossier
from admin.users import User
from admin.web import (
    CSRF_FIELD,
    TEMPLATES,
    CurrentUser,
    Supervisor,
    amounts_in_money,
    checked_form,
    field_of,
    parse_amount,
    render,
    services_of,
)
from domain import arrangements, holds
from domain.contact_profiles import CONTACT_CHANNELS, ContactProfile
from starter.api import (
    CollectionClosed,
    CollectionsStarter,
    InvalidRequest,
    PromiseRejected,
    RequestRefused,
    UnknownLoan,
    check_loan_id,
)
from starter.problems import field_problems
from workflows import messages
from workflows.messages import CollectionStatus

router = APIRouter()


def _(text: str) -> str:
    """Marks English shown to users; the template translates it (tests/admin/test_i18n.py checks it)."""
    return text


# Success notices by the dossier's `notice` query parameter (shown translated at the top of the dossier).
NOTICES: dict[str, str] = {
    "outcome": _("Call outcome recorded."),
    "plan": _("Repayment plan arranged."),
    "dispute": _("Dispute raised."),
    "dispute-resolved": _("Dispute resolved."),
    "hardship": _("Hardship hold recorded."),
    "breathing-space": _("Breathing Space started."),
    "cease": _("All contact ceased."),
    "opt-out": _("Opt-out recorded."),
    "settlement": _("Settlement approved."),
    "waiver": _("Interest waiver approved."),
    "stage-hold": _("Stage held."),
    "stage-release": _("Stage hold released."),
    "escalated": _("Escalation requested."),
    "recalled": _("Recall from the agency requested."),
}
DOSSIER_NOTICES.update(NOTICES)

OUTCOME_LABELS: dict[str, str] = {
    "no_answer": _("No answer"),
    "right_party": _("Spoke to the borrower"),
    "wrong_number": _("Wrong number"),
    "refused": _("Refused to pay"),
    "promise_given": _("Promised to pay"),
    "dispute_raised": _("Disputes the debt"),
    "callback_requested": _("Asked to be called back"),
}
assert set(OUTCOME_LABELS) == set(get_args(holds.CallOutcomeKind)), "a call outcome without a label"

CHANNEL_LABELS: dict[str, str] = {
    "sms": _("SMS"),
    "email": _("E-mail"),
    "push": _("Push notification"),
    "call": _("Phone call"),
    "visit": _("Visit"),
    "letter": _("Letter"),
}
assert set(CHANNEL_LABELS) == set(CONTACT_CHANNELS), "a contact channel without a label"

CLOSE_LABELS: dict[str, str] = {
    "restructured": _("Restructured"),
    "sold": _("Sold"),
    "cancelled": _("Cancelled"),
    "settled": _("Settled"),
    "other": _("Other"),
}

PLAN_ROWS = 6  # instalment rows of the repayment-plan form; empty rows are ignored


# -- what the template needs beyond the dossier's context ----------------------------------------------------


@jinja2.pass_context
def loan_profile(context: jinja2.runtime.Context) -> ContactProfile | None:
    """The contact profile of the dossier's loan (which holds exist for it, e.g. Breathing Space: uk only)."""
    status, request = context.get("status"), context.get("request")
    if not isinstance(status, CollectionStatus) or request is None or not status.contact_profile:
        return None
    return services_of(request).starter.profiles.get(status.contact_profile)


TEMPLATES.env.globals.update(
    loan_profile=loan_profile,
    outcome_labels=OUTCOME_LABELS,
    channel_labels=CHANNEL_LABELS,
    close_labels=CLOSE_LABELS,
    plan_rows=PLAN_ROWS,
)


# -- one action: form -> request model -> workflow update ----------------------------------------------------

Get = Callable[[str], str]  # a form value of this action by field name ('' when absent), stripped
Build = Callable[[Get, CollectionStatus], dict[str, Any]]


Send = Callable[[CollectionsStarter, str, str, BaseModel], Awaitable[object]]


async def _collector_update(
    starter: CollectionsStarter, loan_id: str, update: str, request: BaseModel
) -> None:
    await starter.collector_action(loan_id, update, request)


async def _arrangement_update(
    starter: CollectionsStarter, loan_id: str, update: str, request: BaseModel
) -> None:
    await starter.arrangement(loan_id, update, request)


@dataclass(frozen=True)
class Action:
    """One form of the dossier and the workflow update it sends."""

    key: str  # prefix of its inputs, ids and error keys (no '_')
    update: str  # the workflow's update name (workflows.messages)
    model: type[BaseModel]  # the update's request model
    notice: str  # key of NOTICES shown after success
    build: Build = field(default=lambda get, status: {})  # the request's fields from the form
    # Where a reason about a request field is shown: request field -> form input (both without prefix).
    inputs: Mapping[str, str] = field(default_factory=dict)
    actor: str = "collector"  # the request field that names the logged-in user ("approver": supervisors)
    send: Send = _collector_update
    # A request field path (e.g. 'instalments[1].due_date') -> form input, for forms with repeated rows.
    locate: Callable[[str, Get], str | None] | None = None

    def error_key(self, request_field: str, get: Get) -> str:
        located = self.locate(request_field, get) if self.locate else None
        if located:
            return f"{self.key}_{located}"
        head = request_field.split(".")[0].split("[")[0]
        known = {"note": "note", **self.inputs}
        return f"{self.key}_{known.get(head) or known.get(request_field) or 'form'}"


def _borrower_zone(status: CollectionStatus) -> ZoneInfo:
    return ZoneInfo(status.loan.borrower.timezone if status.loan else "UTC")


def _local_datetime(text: str, status: CollectionStatus, field_name: str) -> datetime:
    """A datetime-local input ('2026-11-25T14:30') as the borrower's wall-clock time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest([(field_name, "enter a date and time")]) from None
    return value if value.tzinfo else value.replace(tzinfo=_borrower_zone(status))


def _date(text: str, field_name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest([(field_name, "enter a date as YYYY-MM-DD")]) from None


def _outcome(get: Get, status: CollectionStatus) -> dict[str, Any]:
    outcome, when = get("outcome"), get("callback_at")
    if outcome == "callback_requested" and not when:
        raise InvalidRequest([("callback_at", "required when the borrower asked to be called back")])
    if when and outcome != "callback_requested":
        raise InvalidRequest([("callback_at", "only when the borrower asked to be called back")])
    callback_at = _local_datetime(when, status, "callback_at") if when else None
    return {"channel": get("channel") or "call", "outcome": outcome, "callback_at": callback_at}


def _opt_out(get: Get, status: CollectionStatus) -> dict[str, Any]:
    kind, _sep, target = get("target").partition(":")
    if kind not in ("channel", "address") or not target:
        raise InvalidRequest([("target", "choose a channel or an address")])
    return {kind: target}


def _plan_rows(get: Get) -> list[int]:
    """The plan form's rows with anything typed in them (1-based); the others are ignored."""
    return [row for row in range(1, PLAN_ROWS + 1) if get(f"amount_{row}") or get(f"due_date_{row}")]


def _plan(get: Get, status: CollectionStatus) -> dict[str, Any]:
    instalments: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for index, row in enumerate(_plan_rows(get)):
        amount, due = get(f"amount_{row}"), get(f"due_date_{row}")
        instalment: dict[str, Any] = {}
        try:
            instalment["amount_minor"] = parse_amount(amount, status.currency) if amount else None
        except InvalidRequest as error:
            problems += [(f"instalments[{index}].amount_minor", message) for _f, message in error.problems]
        try:
            instalment["due_date"] = _date(due, "due_date") if due else None
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


def _plan_input(request_field: str, get: Get) -> str | None:
    """'instalments[1].due_date' -> 'due_date_<row>' of the second row the collector filled in."""
    found = PLAN_FIELD.match(request_field)
    rows = _plan_rows(get)
    if not found or int(found.group(1)) >= len(rows):
        return None
    name = "amount" if found.group(2) == "amount_minor" else "due_date"
    return f"{name}_{rows[int(found.group(1))]}"


def _fields(*parsers: Callable[[], dict[str, Any]]) -> dict[str, Any]:
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


def _amount(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return {"amount_minor": parse_amount(get("amount"), status.currency) if get("amount") else None}


def _date_field(get: Get, name: str) -> dict[str, Any]:
    return {name: _date(get(name), name) if get(name) else None}


def _settlement(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return _fields(lambda: _amount(get, status), lambda: _date_field(get, "due_date"))


def _waiver(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return _fields(lambda: _amount(get, status), lambda: {"reason": get("reason")})


def _stage_hold(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return _fields(lambda: _date_field(get, "until"), lambda: {"reason": get("reason")})


def _reason(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return {"reason": get("reason")}


REASON_FIELD = re.compile(r"^[A-Za-z_]\w*(\[\d+\])?(\.[A-Za-z_]\w*)*$")


def _split_reason(reason: str) -> tuple[str, str]:
    """('days', 'a hardship hold already runs until ...') from the workflow's 'days: a hardship hold ...';
    ('', reason) when it names no field."""
    head, sep, rest = reason.partition(":")
    if sep and REASON_FIELD.match(head.strip()) and rest.strip():
        return head.strip(), rest.strip()
    return "", reason


async def _perform(request: Request, loan_id: str, user: User, action: Action) -> Response:
    form = await checked_form(request)  # first: without this session's token nothing is done
    values = {key: value for key, value in form.items() if isinstance(value, str) and key != CSRF_FIELD}

    def get(name: str) -> str:
        return values.get(f"{action.key}_{name}", "").strip()

    starter = services_of(request).starter
    try:
        check_loan_id(loan_id)
        status = await starter.status(loan_id)
        data = {action.actor: user.username, **action.build(get, status)}
        if "note" in action.model.model_fields:
            data.setdefault("note", get("note"))
        try:
            update = action.model.model_validate({k: v for k, v in data.items() if v not in (None, "")})
        except ValidationError as error:
            raise InvalidRequest(field_problems(error)) from None
        await action.send(starter, loan_id, action.update, update)
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    except InvalidRequest as error:
        errors: dict[str, str] = {}
        for problem_field, message in error.problems:
            errors.setdefault(action.error_key(problem_field, get), message)
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    except RequestRefused as error:
        reason_field, message = _split_reason(amounts_in_money(error.reason, status.currency))
        errors = {action.error_key(reason_field, get): message}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice={action.notice}", status_code=303)


# -- collectors' actions -------------------------------------------------------------------------------------

OUTCOME = Action(
    "outcome",
    messages.CONTACT_OUTCOME_UPDATE,
    holds.ContactOutcome,
    "outcome",
    _outcome,
    {"channel": "channel", "outcome": "outcome", "callback_at": "callback_at", "address": "outcome"},
)
RAISE_DISPUTE = Action("dispute", messages.RAISE_DISPUTE_UPDATE, holds.RaiseDispute, "dispute")
RESOLVE_DISPUTE = Action(
    "resolve",
    messages.RESOLVE_DISPUTE_UPDATE,
    holds.ResolveDispute,
    "dispute-resolved",
    lambda get, status: {"verification_sent": get("verification_sent") == "yes"},
    {"verification_sent": "verification_sent"},
)
HARDSHIP = Action(
    "hardship",
    messages.HARDSHIP_HOLD_UPDATE,
    holds.HardshipHold,
    "hardship",
    lambda get, status: {"days": get("days")},
    {"days": "days"},
)
BREATHING_SPACE = Action(
    "breathing",
    messages.BREATHING_SPACE_UPDATE,
    holds.StartBreathingSpace,
    "breathing-space",
    lambda get, status: {"reference": get("reference")},
    {"reference": "reference"},
)
CEASE = Action("cease", messages.CEASE_CONTACT_UPDATE, holds.CeaseContact, "cease")
OPT_OUT = Action(
    "optout",
    messages.OPT_OUT_UPDATE,
    holds.OptOut,
    "opt-out",
    _opt_out,
    {"channel": "target", "address": "target", "target": "target"},
)


PLAN = Action(
    "plan",
    messages.REPAYMENT_PLAN_UPDATE,
    arrangements.RepaymentPlanRequest,
    "plan",
    _plan,
    {"instalments": "form"},
    send=_arrangement_update,
    locate=_plan_input,
)


async def _finish_my_tasks(request: Request, loan_id: str, user: User, outcome: str) -> None:
    """The call, visit or follow-up tasks this collector claimed on the loan are done: the outcome (or the
    promise, or the plan) was recorded, so they leave the work queue."""
    await services_of(request).pool.execute(
        "UPDATE collector_tasks SET status = 'done', outcome = $3 "
        "WHERE loan_id = $1 AND assignee = $2 AND status = 'in_progress' "
        "AND kind IN ('call', 'visit', 'promise_follow_up')",
        loan_id,
        user.username,
        outcome[:100],
    )


@router.post("/loans/{loan_id}/outcome", response_class=HTMLResponse)
async def record_outcome(request: Request, loan_id: str, user: CurrentUser) -> Response:
    response = await _perform(request, loan_id, user, OUTCOME)
    if response.status_code == 303:
        form = await request.form()  # parsed once already: starlette caches it
        await _finish_my_tasks(request, loan_id, user, str(form.get("outcome_outcome", "outcome")))
    return response


@router.post("/loans/{loan_id}/dispute", response_class=HTMLResponse)
async def raise_dispute(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, RAISE_DISPUTE)


@router.post("/loans/{loan_id}/dispute/resolve", response_class=HTMLResponse)
async def resolve_dispute(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, RESOLVE_DISPUTE)


@router.post("/loans/{loan_id}/hardship", response_class=HTMLResponse)
async def hardship_hold(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, HARDSHIP)


@router.post("/loans/{loan_id}/breathing-space", response_class=HTMLResponse)
async def breathing_space(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, BREATHING_SPACE)


@router.post("/loans/{loan_id}/cease", response_class=HTMLResponse)
async def cease_contact(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, CEASE)


@router.post("/loans/{loan_id}/opt-out", response_class=HTMLResponse)
async def opt_out(request: Request, loan_id: str, user: CurrentUser) -> Response:
    return await _perform(request, loan_id, user, OPT_OUT)


@router.post("/loans/{loan_id}/plan", response_class=HTMLResponse)
async def arrange_plan(request: Request, loan_id: str, user: CurrentUser) -> Response:
    response = await _perform(request, loan_id, user, PLAN)
    if response.status_code == 303:
        await _finish_my_tasks(request, loan_id, user, "repayment_plan")
    return response


def _promise_key(request_field: str) -> str:
    """The promise form's inputs keep their names (amount, due_date, note); other reasons go to the form."""
    return request_field if request_field in ("amount_minor", "due_date", "note") else "promise_form"


@router.post("/loans/{loan_id}/promise", response_class=HTMLResponse)
async def record_promise(request: Request, loan_id: str, user: CurrentUser) -> Response:
    form = await checked_form(request)
    values = {key: str(form.get(key, "")) for key in ("amount", "due_date", "note")}
    starter = services_of(request).starter
    try:
        check_loan_id(loan_id)
        status = await starter.status(loan_id)
        problems: list[tuple[str, str]] = []
        try:
            amount_minor = parse_amount(values["amount"], status.currency)
        except InvalidRequest as error:
            problems += error.problems
        try:
            due_date = date.fromisoformat(values["due_date"])
        except ValueError:
            problems.append(("due_date", "enter a date as YYYY-MM-DD"))
        if problems:
            raise InvalidRequest(problems)
        await starter.promise(
            loan_id, amount_minor, due_date, collector=user.username, note=values["note"].strip() or None
        )
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    except InvalidRequest as error:
        errors = {_promise_key(field): message for field, message in error.problems}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    except PromiseRejected as error:
        errors = {_promise_key(field_of(error.reason)): amounts_in_money(error.reason, status.currency)}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    await _finish_my_tasks(request, loan_id, user, "promise")
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice=promised", status_code=303)


# -- supervisors' actions ------------------------------------------------------------------------------------


def _supervisor(
    key: str, update: str, model: type[BaseModel], notice: str, build: Build, *inputs: str
) -> Action:
    fields = {"amount_minor": "amount", **{name: name for name in inputs}}
    return Action(key, update, model, notice, build, fields, actor="approver", send=_arrangement_update)


SETTLEMENT = _supervisor(
    "settlement",
    messages.SETTLEMENT_UPDATE,
    arrangements.SettlementApproval,
    "settlement",
    _settlement,
    "due_date",
)
WAIVER = _supervisor(
    "waiver", messages.WAIVE_INTEREST_UPDATE, arrangements.InterestWaiver, "waiver", _waiver, "reason"
)
STAGE_HOLD = _supervisor(
    "stagehold",
    messages.HOLD_STAGE_UPDATE,
    arrangements.StageHold,
    "stage-hold",
    _stage_hold,
    "until",
    "reason",
)
STAGE_RELEASE = _supervisor(
    "release",
    messages.RELEASE_STAGE_HOLD_UPDATE,
    arrangements.StageHoldRelease,
    "stage-release",
    _reason,
    "reason",
)
ESCALATE = _supervisor(
    "escalate", messages.ESCALATE_STAGE_UPDATE, arrangements.Escalate, "escalated", _reason, "reason"
)
RECALL = _supervisor(
    "recall", messages.RECALL_FROM_AGENCY_UPDATE, arrangements.AgencyRecall, "recalled", _reason, "reason"
)


@router.post("/loans/{loan_id}/settlement", response_class=HTMLResponse)
async def approve_settlement(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, SETTLEMENT)


@router.post("/loans/{loan_id}/waiver", response_class=HTMLResponse)
async def waive_interest(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, WAIVER)


@router.post("/loans/{loan_id}/stage-hold", response_class=HTMLResponse)
async def hold_stage(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, STAGE_HOLD)


@router.post("/loans/{loan_id}/stage-hold/release", response_class=HTMLResponse)
async def release_stage_hold(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, STAGE_RELEASE)


@router.post("/loans/{loan_id}/escalate", response_class=HTMLResponse)
async def escalate_stage(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, ESCALATE)


@router.post("/loans/{loan_id}/recall", response_class=HTMLResponse)
async def recall_from_agency(request: Request, loan_id: str, user: Supervisor) -> Response:
    return await _perform(request, loan_id, user, RECALL)


@router.post("/loans/{loan_id}/close")
async def close_loan(request: Request, loan_id: str, user: Supervisor) -> Response:
    form = await checked_form(request)
    try:
        await services_of(request).starter.close(
            loan_id, str(form.get("reason", "")), str(form.get("note", "")).strip() or None
        )
    except InvalidRequest as error:
        errors = {"close_" + (field or "form"): message for field, message in error.problems}
        return await render_dossier(request, user, loan_id, errors=errors, status_code=422)
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice=closed", status_code=303)
