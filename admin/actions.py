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
from typing import Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from admin.action_forms import (
    PLAN_ROWS,
    Get,
    all_fields,
    opt_out_fields,
    outcome_fields,
    parse_date,
    plan_fields,
    plan_input,
    reason_fields,
    settlement_fields,
    stage_hold_fields,
    waiver_fields,
)
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
    require,
    services_of,
)
from authority import Actor
from domain import arrangements, holds
from domain.contact_profiles import CONTACT_CHANNELS
from domain.promise import PromiseRequest
from starter.api import (
    CollectionClosed,
    CollectionsStarter,
    InvalidRequest,
    PromiseRejected,
    RequestRefused,
    UnknownLoan,
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

# What the forms (templates/loan_actions.html) show beside the dossier's context.
TEMPLATES.env.globals.update(
    outcome_labels=OUTCOME_LABELS,
    channel_labels=CHANNEL_LABELS,
    close_labels=CLOSE_LABELS,
    plan_rows=PLAN_ROWS,
)


# -- one action: form -> request model -> workflow update ----------------------------------------------------

Build = Callable[[Get, CollectionStatus], dict[str, Any]]


# The logged-in user is the actor: the admin UI's key signs an assertion of their name and role, which the
# workflow verifies (README "Who may act").
Send = Callable[[CollectionsStarter, str, str, BaseModel, Actor], Awaitable[object]]


def actor_of(user: User) -> Actor:
    return Actor(user.username, user.role)


async def _collector_update(
    starter: CollectionsStarter, loan_id: str, update: str, request: BaseModel, actor: Actor
) -> None:
    await starter.collector_action(loan_id, update, request, actor=actor)


async def _arrangement_update(
    starter: CollectionsStarter, loan_id: str, update: str, request: BaseModel, actor: Actor
) -> None:
    await starter.arrangement(loan_id, update, request, actor=actor)


async def _promise_update(
    starter: CollectionsStarter, loan_id: str, update: str, request: BaseModel, actor: Actor
) -> None:
    """The promise goes through `starter.promise` (PromiseRejected: the workflow's reason)."""
    await starter.promise(loan_id, **request.model_dump(), actor=actor)


REASON_FIELD = re.compile(r"^[A-Za-z_]\w*(\[\d+\])?(\.[A-Za-z_]\w*)*$")


def _split_reason(reason: str) -> tuple[str, str]:
    """('days', 'a hardship hold already runs until ...') from the workflow's 'days: a hardship hold ...';
    ('', reason) when it names no field."""
    head, sep, rest = reason.partition(":")
    if sep and REASON_FIELD.match(head.strip()) and rest.strip():
        return head.strip(), rest.strip()
    return "", reason


def _whole_reason(reason: str) -> tuple[str, str]:
    """The field the reason names, and the reason whole ('amount_minor: ...'): the promise form's way."""
    return field_of(reason), reason


@dataclass(frozen=True)
class Action:
    """One form of the dossier and the workflow update it sends."""

    key: str  # its error key for the whole form ('<key>_form') and, by default, prefix of its inputs (no '_')
    path: str  # POST /loans/{loan_id}/<path>
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
    prefix: str | None = None  # of its inputs' names and their error keys; None: '<key>_'
    # A workflow reason -> (the request field it names, the message shown next to that field's input).
    refusal: Callable[[str], tuple[str, str]] = _split_reason
    # On success: the outcome the collector's claimed call, visit and follow-up tasks on the loan end with.
    finishes: Callable[[Get], str] | None = None

    @property
    def input_prefix(self) -> str:
        return f"{self.key}_" if self.prefix is None else self.prefix

    def error_key(self, request_field: str, get: Get) -> str:
        located = self.locate(request_field, get) if self.locate else None
        if located:
            return f"{self.input_prefix}{located}"
        head = request_field.split(".")[0].split("[")[0]
        known = {"note": "note", **self.inputs}
        name = known.get(head) or known.get(request_field)
        return f"{self.input_prefix}{name}" if name else f"{self.key}_form"


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


async def _perform(request: Request, loan_id: str, user: User, action: Action) -> Response:
    form = await checked_form(request)  # first: without this session's token nothing is done
    values = {key: value for key, value in form.items() if isinstance(value, str) and key != CSRF_FIELD}

    def get(name: str) -> str:
        return values.get(f"{action.input_prefix}{name}", "").strip()

    starter = services_of(request).starter
    status: CollectionStatus | None = None  # the page shown on a rejection reuses it
    try:
        status = await starter.status(loan_id)  # InvalidRequest for an impossible loan id
        data = {action.actor: user.username, **action.build(get, status)}
        if "note" in action.model.model_fields:
            data.setdefault("note", get("note"))
        try:
            update = action.model.model_validate({k: v for k, v in data.items() if v not in (None, "")})
        except ValidationError as error:
            raise InvalidRequest(field_problems(error)) from None
        await action.send(starter, loan_id, action.update, update, actor_of(user))
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    except InvalidRequest as error:
        errors: dict[str, str] = {}
        for problem_field, message in error.problems:
            errors.setdefault(action.error_key(problem_field, get), message)
        return await render_dossier(
            request, user, loan_id, errors=errors, values=values, status=status, status_code=422
        )
    except (RequestRefused, PromiseRejected) as error:
        assert status is not None  # refused by the workflow: its status was read
        reason_field, message = action.refusal(amounts_in_money(error.reason, status.currency))
        errors = {action.error_key(reason_field, get): message}
        return await render_dossier(
            request, user, loan_id, errors=errors, values=values, status=status, status_code=422
        )
    if action.finishes:
        await _finish_my_tasks(request, loan_id, user, action.finishes(get))
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice={action.notice}", status_code=303)


# -- collectors' actions -------------------------------------------------------------------------------------


def _promise(get: Get, status: CollectionStatus) -> dict[str, Any]:
    return all_fields(
        lambda: {"amount_minor": parse_amount(get("amount"), status.currency)},
        lambda: {"due_date": parse_date(get("due_date"), "due_date")},
    )


# The promise form keeps its original input names (amount, due_date, note) and error keys (amount_minor,
# due_date, note; promise_form for the whole form), and shows the workflow's reason whole.
PROMISE = Action(
    "promise",
    "promise",
    messages.PROMISE_UPDATE,
    PromiseRequest,
    "promised",
    _promise,
    {"amount_minor": "amount_minor", "due_date": "due_date"},
    send=_promise_update,
    prefix="",
    refusal=_whole_reason,
    finishes=lambda get: "promise",
)
OUTCOME = Action(
    "outcome",
    "outcome",
    messages.CONTACT_OUTCOME_UPDATE,
    holds.ContactOutcome,
    "outcome",
    outcome_fields,
    {"channel": "channel", "outcome": "outcome", "callback_at": "callback_at", "address": "outcome"},
    finishes=lambda get: get("outcome"),
)
PLAN = Action(
    "plan",
    "plan",
    messages.REPAYMENT_PLAN_UPDATE,
    arrangements.RepaymentPlanRequest,
    "plan",
    plan_fields,
    {"instalments": "form"},
    send=_arrangement_update,
    locate=plan_input,
    finishes=lambda get: "repayment_plan",
)
RAISE_DISPUTE = Action("dispute", "dispute", messages.RAISE_DISPUTE_UPDATE, holds.RaiseDispute, "dispute")
RESOLVE_DISPUTE = Action(
    "resolve",
    "dispute/resolve",
    messages.RESOLVE_DISPUTE_UPDATE,
    holds.ResolveDispute,
    "dispute-resolved",
    lambda get, status: {"verification_sent": get("verification_sent") == "yes"},
    {"verification_sent": "verification_sent"},
)
HARDSHIP = Action(
    "hardship",
    "hardship",
    messages.HARDSHIP_HOLD_UPDATE,
    holds.HardshipHold,
    "hardship",
    lambda get, status: {"days": get("days")},
    {"days": "days"},
)
BREATHING_SPACE = Action(
    "breathing",
    "breathing-space",
    messages.BREATHING_SPACE_UPDATE,
    holds.StartBreathingSpace,
    "breathing-space",
    lambda get, status: {"reference": get("reference")},
    {"reference": "reference"},
)
CEASE = Action("cease", "cease", messages.CEASE_CONTACT_UPDATE, holds.CeaseContact, "cease")
OPT_OUT = Action(
    "optout",
    "opt-out",
    messages.OPT_OUT_UPDATE,
    holds.OptOut,
    "opt-out",
    opt_out_fields,
    {"channel": "target", "address": "target", "target": "target"},
)


# -- supervisors' actions ------------------------------------------------------------------------------------


def _supervisor(
    key: str, path: str, update: str, model: type[BaseModel], notice: str, build: Build, *inputs: str
) -> Action:
    fields = {"amount_minor": "amount", **{name: name for name in inputs}}
    return Action(key, path, update, model, notice, build, fields, actor="approver", send=_arrangement_update)


SETTLEMENT = _supervisor(
    "settlement",
    "settlement",
    messages.SETTLEMENT_UPDATE,
    arrangements.SettlementApproval,
    "settlement",
    settlement_fields,
    "due_date",
)
WAIVER = _supervisor(
    "waiver",
    "waiver",
    messages.WAIVE_INTEREST_UPDATE,
    arrangements.InterestWaiver,
    "waiver",
    waiver_fields,
    "reason",
)
STAGE_HOLD = _supervisor(
    "stagehold",
    "stage-hold",
    messages.HOLD_STAGE_UPDATE,
    arrangements.StageHold,
    "stage-hold",
    stage_hold_fields,
    "until",
    "reason",
)
STAGE_RELEASE = _supervisor(
    "release",
    "stage-hold/release",
    messages.RELEASE_STAGE_HOLD_UPDATE,
    arrangements.StageHoldRelease,
    "stage-release",
    reason_fields,
    "reason",
)
ESCALATE = _supervisor(
    "escalate",
    "escalate",
    messages.ESCALATE_STAGE_UPDATE,
    arrangements.Escalate,
    "escalated",
    reason_fields,
    "reason",
)
RECALL = _supervisor(
    "recall",
    "recall",
    messages.RECALL_FROM_AGENCY_UPDATE,
    arrangements.AgencyRecall,
    "recalled",
    reason_fields,
    "reason",
)

ACTIONS = (
    PROMISE,
    OUTCOME,
    PLAN,
    RAISE_DISPUTE,
    RESOLVE_DISPUTE,
    HARDSHIP,
    BREATHING_SPACE,
    CEASE,
    OPT_OUT,
    SETTLEMENT,
    WAIVER,
    STAGE_HOLD,
    STAGE_RELEASE,
    ESCALATE,
    RECALL,
)


def _route(action: Action) -> None:
    """POST /loans/{loan_id}/<path>: for any logged-in user, or for supervisors when a supervisor approves."""

    async def perform(request: Request, loan_id: str, user: CurrentUser) -> Response:
        return await _perform(request, loan_id, user, action)

    router.add_api_route(
        f"/loans/{{loan_id}}/{action.path}",
        perform,
        methods=["POST"],
        response_class=HTMLResponse,
        name=f"action_{action.key}",
        dependencies=[Depends(require("supervisor"))] if action.actor == "approver" else None,
    )


for _action in ACTIONS:
    _route(_action)


@router.post("/loans/{loan_id}/close")
async def close_loan(request: Request, loan_id: str, user: Supervisor) -> Response:
    form = await checked_form(request)
    try:
        await services_of(request).starter.close(
            loan_id,
            str(form.get("reason", "")),
            str(form.get("note", "")).strip() or None,
            actor=actor_of(user),
        )
    except InvalidRequest as error:
        errors = {"close_" + (field or "form"): message for field, message in error.problems}
        return await render_dossier(request, user, loan_id, errors=errors, status_code=422)
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice=closed", status_code=303)
