"""Collectors' commands: holds, preferences and call outcomes (`python -m starter dispute|hold|...`).

The admin UI is where collectors will work; these commands reach the same workflow updates for operators and
scripts, acting as the operator named by the CLI's signing key (the `collector` or `approver` of every
request; `starter.cli`). Each validates its input first (exit 2, one line per bad field) and prints the
workflow's refusal (exit 3) when the request cannot be applied.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from domain import arrangements, holds
from domain.contact_rules import ContactState
from domain.loan import format_money
from starter.problems import field_problems
from workflows import messages

# command -> (update name, help, request model, how to build the model's fields from the arguments)
Builder = Callable[[argparse.Namespace], dict[str, Any]]
ACTIONS: dict[str, tuple[str, str, type[BaseModel], Builder]] = {
    "dispute": (
        messages.RAISE_DISPUTE_UPDATE,
        "the borrower disputes the debt (US: collection stops until verification is sent)",
        holds.RaiseDispute,
        lambda a: {},
    ),
    "resolve-dispute": (
        messages.RESOLVE_DISPUTE_UPDATE,
        "verification was sent: collection resumes",
        holds.ResolveDispute,
        lambda a: {"verification_sent": a.verification_sent},
    ),
    "hardship": (
        messages.HARDSHIP_HOLD_UPDATE,
        "hold collection for N days of hardship (resumes by itself)",
        holds.HardshipHold,
        lambda a: {"days": a.days},
    ),
    "breathing-space": (
        messages.BREATHING_SPACE_UPDATE,
        "UK Breathing Space: 60 days of no contact or escalation (resumes by itself)",
        holds.StartBreathingSpace,
        lambda a: {"reference": a.reference},
    ),
    "cease": (
        messages.CEASE_CONTACT_UPDATE,
        "the borrower asked to stop all contact",
        holds.CeaseContact,
        lambda a: {},
    ),
    "opt-out": (
        messages.OPT_OUT_UPDATE,
        "opt the borrower out of one channel or one address",
        holds.OptOut,
        lambda a: {"channel": a.channel, "address": a.address},
    ),
    "contact-hours": (
        messages.PREFERRED_HOURS_UPDATE,
        "the borrower's preferred contact hours (local time)",
        holds.PreferredHours,
        lambda a: {"start": a.start, "end": a.end},
    ),
    "stop": (
        messages.STOP_COLLECTION_UPDATE,
        "bankruptcy or death: collection ends with that outcome",
        holds.StopCollection,
        lambda a: {"reason": a.reason},
    ),
    "outcome": (
        messages.CONTACT_OUTCOME_UPDATE,
        "record a call or visit outcome",
        holds.ContactOutcome,
        lambda a: {"channel": a.channel, "outcome": a.outcome, "callback_at": a.callback_at},
    ),
}


def add_parsers(commands: Any) -> None:
    for name, (_, help_text, _, _) in ACTIONS.items():
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("loan_id", metavar="LOAN_ID")
        parser.add_argument("--note")
        if name == "resolve-dispute":
            parser.add_argument("--verification-sent", action="store_true", help="verification was sent")
        if name == "hardship":
            parser.add_argument("--days", required=True, help="1 to 180")
        if name == "breathing-space":
            parser.add_argument("--reference", help="Debt Respite Scheme reference")
        if name == "opt-out":
            parser.add_argument("--channel", help="sms, email, push, call, visit or letter")
            parser.add_argument("--address", help="a phone number or e-mail address of this loan")
        if name == "contact-hours":
            parser.add_argument("--start", required=True, metavar="HH:MM")
            parser.add_argument("--end", required=True, metavar="HH:MM")
        if name == "stop":
            parser.add_argument("--reason", required=True, choices=["bankruptcy", "deceased"])
        if name == "outcome":
            parser.add_argument("--channel", default="call", choices=["call", "visit"])
            parser.add_argument("--outcome", required=True, choices=list(get_args(holds.CallOutcomeKind)))
            parser.add_argument("--callback-at", metavar="ISO", help="with offset, for callback_requested")


def build_request(args: argparse.Namespace) -> tuple[str, BaseModel] | list[str]:
    """The update name and its validated request, or one line per bad field."""
    update, _, model, fields = ACTIONS[args.command]
    return _validated(update, model, {"collector": args.collector, "note": args.note, **fields(args)})


def _validated(
    update: str, model: type[BaseModel], data: dict[str, Any]
) -> tuple[str, BaseModel] | list[str]:
    """The update name and the request built from the given arguments, or one line per bad field."""
    try:
        return update, model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as error:
        return [f"{field}: {message}" if field else message for field, message in field_problems(error)]


def describe(state: ContactState) -> str:
    parts = []
    if state.dispute_open:
        parts.append("dispute open")
    if state.hardship_until:
        parts.append(f"hardship hold until {state.hardship_until:%Y-%m-%d %H:%M %Z}")
    if state.breathing_space_until:
        parts.append(f"Breathing Space until {state.breathing_space_until:%Y-%m-%d}")
    if state.cease_all:
        parts.append("all contact ceased")
    if state.collection_stopped:
        parts.append(f"collection stopped: {state.collection_stopped}")
    if state.opted_out_channels:
        parts.append(f"opted out of {', '.join(state.opted_out_channels)}")
    if state.opted_out_addresses or state.unreachable_addresses:
        parts.append(
            f"{len(state.opted_out_addresses)} address(es) opted out, "
            f"{len(state.unreachable_addresses)} unreachable"
        )
    if state.preferred_hours:
        start, end = state.preferred_hours
        parts.append(f"preferred hours {start:%H:%M}-{end:%H:%M}")
    return "; ".join(parts) or "no holds"


# -- arrangements: repayment plans (collectors), settlements, waivers, stage holds, escalation, recall -------


def _instalments(values: list[str] | None) -> list[dict[str, str]] | None:
    """`--instalment AMOUNT@YYYY-MM-DD`, repeated: amounts in minor units, borrower-local dates."""
    if not values:
        return None
    parsed = []
    for value in values:
        amount, _, due = value.partition("@")
        parsed.append({"amount_minor": amount.strip(), "due_date": due.strip()})
    return parsed


# command -> (update name, help, request model, fields from the arguments, who: "collector" or "approver")
ARRANGEMENTS: dict[str, tuple[str, str, type[BaseModel], Builder, str]] = {
    "plan": (
        messages.REPAYMENT_PLAN_UPDATE,
        "a repayment plan of 2 to 12 instalments (escalation pauses while it is kept)",
        arrangements.RepaymentPlanRequest,
        lambda a: {"instalments": _instalments(a.instalment), "note": a.note},
        "collector",
    ),
    "settle": (
        messages.SETTLEMENT_UPDATE,
        "approve a settlement for less than the arrears, paid by a date within 60 days",
        arrangements.SettlementApproval,
        lambda a: {"amount_minor": a.amount, "due_date": a.due_date, "note": a.note},
        "approver",
    ),
    "waive": (
        messages.WAIVE_INTEREST_UPDATE,
        "waive interest: the arrears fall by the amount (to 0: the loan is cured)",
        arrangements.InterestWaiver,
        lambda a: {"amount_minor": a.amount, "reason": a.reason},
        "approver",
    ),
    "hold-stage": (
        messages.HOLD_STAGE_UPDATE,
        "no stage advance before a date (at most 90 days ahead)",
        arrangements.StageHold,
        lambda a: {"until": a.until, "reason": a.reason},
        "approver",
    ),
    "release-stage": (
        messages.RELEASE_STAGE_HOLD_UPDATE,
        "release a stage hold: escalation resumes",
        arrangements.StageHoldRelease,
        lambda a: {"reason": a.reason},
        "approver",
    ),
    "escalate": (
        messages.ESCALATE_STAGE_UPDATE,
        "move the loan to the next stage now",
        arrangements.Escalate,
        lambda a: {"reason": a.reason},
        "approver",
    ),
    "recall": (
        messages.RECALL_FROM_AGENCY_UPDATE,
        "take the account back from its agency (not placed again automatically)",
        arrangements.AgencyRecall,
        lambda a: {"reason": a.reason},
        "approver",
    ),
}


def add_arrangement_parsers(commands: Any) -> None:
    for name, (_, help_text, _, _, _who) in ARRANGEMENTS.items():
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("loan_id", metavar="LOAN_ID")
        if name == "plan":
            parser.add_argument(
                "--instalment",
                action="append",
                required=True,
                metavar="AMOUNT@YYYY-MM-DD",
                help="amount in minor units and due date; repeat 2 to 12 times",
            )
            parser.add_argument("--note")
        elif name == "settle":
            parser.add_argument("--amount", required=True, help="minor units, less than the arrears")
            parser.add_argument("--due-date", required=True, metavar="YYYY-MM-DD")
            parser.add_argument("--note")
        else:
            parser.add_argument("--reason", required=True)
        if name == "waive":
            parser.add_argument("--amount", required=True, help="minor units, at most the arrears")
        if name == "hold-stage":
            parser.add_argument("--until", required=True, metavar="YYYY-MM-DD")


def build_arrangement(args: argparse.Namespace) -> tuple[str, BaseModel] | list[str]:
    """The update name and its validated request, or one line per bad field."""
    update, _, model, fields, who = ARRANGEMENTS[args.command]
    return _validated(update, model, {who: getattr(args, who), **fields(args)})


def describe_arrangements(status: messages.CollectionStatus) -> str:
    """One line: stage, arrears and whatever arrangement stands."""
    money = partial(format_money, currency=status.currency)
    parts = [f"stage {status.stage}", f"overdue {money(status.amount_overdue_minor)}"]
    plan = status.repayment_plan
    if plan is not None:
        due = plan.next_instalment
        parts.append(
            f"plan {plan.status}"
            + (f", next {money(due.amount_minor - due.paid_minor)} by {due.due_date}" if due else "")
        )
    if status.settlement is not None:
        offer = status.settlement
        parts.append(f"settlement {offer.status}: {money(offer.amount_minor)} by {offer.due_date}")
    if status.waived_total_minor:
        parts.append(f"waived {money(status.waived_total_minor)}")
    if status.stage_hold is not None:
        parts.append(f"stage held until {status.stage_hold.until}")
    if status.agency_name:
        parts.append(f"with {status.agency_name}")
    if status.outcome:
        parts.append(f"outcome {status.outcome}")
    return "; ".join(parts)
