"""What the borrower asks for, from a form to the loan's workflow: the same updates and validators as a
collector's, sent by `CollectionsStarter` as Actor("borrower", "borrower") so the journal says `borrower`.

Each action returns an `Outcome`: a confirmation, or field-level errors (the page's own checks before
anything is sent, or the workflow's reason for refusing, shown next to the field it names).
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

import asyncpg
from pydantic import BaseModel

from activities.collector_tasks import create_collector_task
from activities.contracts import CollectorTaskRequest
from authority import Actor
from domain.borrower_plans import equal_instalments, instalment_counts, settlement_floor_minor
from domain.holds import HardshipHold, OptOut, PreferredHours, RaiseDispute
from domain.loan import CURRENCIES, format_money
from starter.api import CollectionsStarter, PromiseRejected, RequestRefused
from starter.requests import InvalidRequest, validated
from workflows.messages import (
    HARDSHIP_HOLD_UPDATE,
    OPT_OUT_UPDATE,
    PREFERRED_HOURS_UPDATE,
    RAISE_DISPUTE_UPDATE,
    CollectionStatus,
)

Text = Callable[..., str]  # borrower.texts.texts_for(locale)
BORROWER = Actor("borrower", "borrower")
OPT_OUT_CHANNELS = ("sms", "email", "push")


@dataclass
class Outcome:
    ok: str | None = None  # text key of the confirmation
    values: dict[str, str] = field(default_factory=dict)  # filled into the confirmation
    errors: dict[str, str] = field(default_factory=dict)  # form field -> message (already translated)


def minor_units(text: str, currency: str) -> int | None:
    """'120.50' -> 12050 for a 2-digit currency; None when not a positive amount with at most its digits."""
    digits = CURRENCIES.get(currency, 2)
    try:
        amount = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    scaled = amount * (10**digits)
    if not amount.is_finite() or amount <= 0 or scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def _amount_or_zero(text: str, currency: str) -> int | None:
    return 0 if text.strip() in ("0", "0.0", "0.00") else minor_units(text, currency)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _time(text: str) -> time | None:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        return None


def _refused(reason: str, fields: Mapping[str, str], default: str, t: Text) -> Outcome:
    """The workflow's reason, next to the form field its leading name points at."""
    name = reason.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0].strip()
    return Outcome(errors={fields.get(name, default): t("refused", reason=reason)})


# The request fields of a promise or a settlement -> the form inputs a refusal is shown beside.
AMOUNT_AND_DATE = {"amount_minor": "amount", "due_date": "due_date"}


def _amount_and_date(
    form: Mapping[str, str], status: CollectionStatus, t: Text
) -> tuple[int, date] | Outcome:
    """The amount and date of a promise or settlement form, or the Outcome naming what is not one."""
    amount = minor_units(form.get("amount", ""), status.currency)
    due = _date(form.get("due_date", ""))
    errors = {}
    if amount is None:
        errors["amount"] = t("number")
    if due is None:
        errors["due_date"] = t("date")
    if errors or amount is None or due is None:
        return Outcome(errors=errors)
    return amount, due


async def _amount_by_date(
    status: CollectionStatus,
    form: Mapping[str, str],
    t: Text,
    send: Callable[[int, date], Awaitable[None]],
    done: str,
) -> Outcome:
    """A promise or a settlement: read amount and date, send them, map a refusal to the amount field."""
    read = _amount_and_date(form, status, t)
    if isinstance(read, Outcome):
        return read
    amount, due = read
    try:
        await send(amount, due)
    except (PromiseRejected, RequestRefused) as refused:
        return _refused(refused.reason, AMOUNT_AND_DATE, "amount", t)
    except InvalidRequest as invalid:
        return _refused(str(invalid), AMOUNT_AND_DATE, "amount", t)
    return Outcome(done, {"amount": format_money(amount, status.currency), "date": due.isoformat()})


class BorrowerActions:
    def __init__(self, starter: CollectionsStarter, pool: asyncpg.Pool) -> None:
        self.starter = starter
        self.pool = pool

    async def promise(
        self, loan_id: str, status: CollectionStatus, form: Mapping[str, str], t: Text
    ) -> Outcome:
        async def send(amount: int, due: date) -> None:
            await self.starter.promise(loan_id, amount, due, BORROWER.name, actor=BORROWER)

        return await _amount_by_date(status, form, t, send, "promise_ok")

    async def plan(self, loan_id: str, status: CollectionStatus, form: Mapping[str, str], t: Text) -> Outcome:
        first = _date(form.get("first", ""))
        count_text = form.get("count", "").strip()
        every = form.get("every", "month")
        errors = {}
        if not count_text.isdigit():
            errors["count"] = t("number")
        if first is None:
            errors["first"] = t("date")
        if errors or first is None:
            return Outcome(errors=errors)
        count = int(count_text)
        dates = plan_dates(first, count, every) if 1 <= count <= 60 else []
        # The workflow checks the count, sizes and dates against the strategy's band (the page offers only
        # the counts it allows, but a hand-made post is refused there with the same reason).
        instalments = equal_instalments(status.amount_overdue_minor, dates) if dates else []
        fields = {"instalments": "count", "loan": "count", "collector": "count"}
        try:
            await self.starter.arrange_plan(loan_id, instalments, BORROWER.name, actor=BORROWER)
        except RequestRefused as refused:
            field_name = "first" if "due_date" in refused.reason else "count"
            return Outcome(errors={field_name: t("refused", reason=refused.reason)})
        except InvalidRequest as invalid:
            return _refused(str(invalid), fields, "count", t)
        return Outcome("plan_ok")

    async def settle(
        self, loan_id: str, status: CollectionStatus, form: Mapping[str, str], t: Text
    ) -> Outcome:
        """A settlement the borrower proposes: the workflow accepts it only at or above the band's floor."""

        async def send(amount: int, due: date) -> None:
            await self.starter.approve_settlement(loan_id, amount, due, BORROWER.name, actor=BORROWER)

        return await _amount_by_date(status, form, t, send, "settle_ok")

    async def dispute(self, loan_id: str, form: Mapping[str, str], t: Text) -> Outcome:
        text = " ".join(form.get("text", "").split())
        if not 10 <= len(text) <= 1000:
            return Outcome(errors={"text": t("text_length")})
        # The note keeps the borrower's own words (journaled): the written dispute US rules ask for.
        request = validated(RaiseDispute, {"collector": BORROWER.name, "note": text[:500]})
        return await self._update(loan_id, RAISE_DISPUTE_UPDATE, request, "text", "dispute_ok", t)

    async def hardship(
        self, loan_id: str, status: CollectionStatus, form: Mapping[str, str], t: Text
    ) -> Outcome:
        income = _amount_or_zero(form.get("income", ""), status.currency)
        spending = _amount_or_zero(form.get("spending", ""), status.currency)
        dependants = form.get("dependants", "0").strip() or "0"
        errors = {}
        if income is None:
            errors["income"] = t("number")
        if spending is None:
            errors["spending"] = t("number")
        if not dependants.isdigit() or int(dependants) > 30:
            errors["dependants"] = t("number")
        if errors or income is None or spending is None:
            return Outcome(errors=errors)
        reason = " ".join(form.get("reason", "").split())[:200]
        note = (
            f"income {format_money(income, status.currency)}/month, essential spending "
            f"{format_money(spending, status.currency)}/month, dependants {int(dependants)}"
            + (f"; {reason}" if reason else "")
        )
        # The contact profile says whether the borrower's own request pauses collection, and for how long
        # (the workflow holds the borrower to it); otherwise it goes to a collector's review only.
        days = status.borrower_hardship_hold_days
        if days is None:
            await self._task(loan_id, status, "review", "hardship", f"borrower hardship request: {note}")
            return Outcome("hardship_review")
        request = validated(HardshipHold, {"collector": BORROWER.name, "days": days, "note": note})
        outcome = await self._update(loan_id, HARDSHIP_HOLD_UPDATE, request, "income", "hardship_ok", t)
        if outcome.ok:
            await self._task(loan_id, status, "review", "hardship", f"borrower hardship request: {note}")
            outcome.values["days"] = str(days)
        return outcome

    async def opt_out(self, loan_id: str, form: Mapping[str, str], t: Text) -> Outcome:
        channel = form.get("channel", "")
        if channel not in OPT_OUT_CHANNELS:
            return Outcome(errors={"channel": t("required")})
        request = validated(OptOut, {"collector": BORROWER.name, "channel": channel})
        outcome = await self._update(loan_id, OPT_OUT_UPDATE, request, "channel", "optout_ok", t)
        outcome.values = {"channel": t(channel)}
        return outcome

    async def hours(self, loan_id: str, form: Mapping[str, str], t: Text) -> Outcome:
        start, end = _time(form.get("start", "")), _time(form.get("end", ""))
        errors = {}
        if start is None:
            errors["start"] = t("time")
        if end is None:
            errors["end"] = t("time")
        if errors or start is None or end is None:
            return Outcome(errors=errors)
        try:
            request = validated(PreferredHours, {"collector": BORROWER.name, "start": start, "end": end})
        except InvalidRequest as invalid:
            return Outcome(errors={"end": t("refused", reason=str(invalid))})
        outcome = await self._update(loan_id, PREFERRED_HOURS_UPDATE, request, "end", "hours_ok", t)
        outcome.values = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
        return outcome

    async def callback(self, loan_id: str, status: CollectionStatus) -> Outcome:
        # A call task: the collector who takes it asks the contact rules first (claim_contact), so the call
        # happens only within the hours, caps and holds of the borrower's jurisdiction.
        await self._task(loan_id, status, "call", "callback", "the borrower asked to be called back")
        return Outcome("callback_ok")

    async def _update(
        self, loan_id: str, update: str, request: BaseModel, field_name: str, ok: str, t: Text
    ) -> Outcome:
        try:
            await self.starter.collector_action(loan_id, update, request, actor=BORROWER)
        except RequestRefused as refused:
            return Outcome(errors={field_name: t("refused", reason=refused.reason)})
        except InvalidRequest as invalid:
            return Outcome(errors={field_name: t("refused", reason=str(invalid))})
        return Outcome(ok)

    async def _task(self, loan_id: str, status: CollectionStatus, kind: str, what: str, note: str) -> None:
        now = datetime.now(UTC)
        await create_collector_task(
            self.pool,
            CollectorTaskRequest(
                # One a day per kind: a double click or a reload does not queue the request twice.
                idempotency_key=f"{loan_id}:borrower:{what}:{now.date().isoformat()}",
                loan_id=loan_id,
                step_key=f"borrower:{what}",
                kind=kind,
                due_at=now,
                priority=800,
                pool=status.segment,
                note=note,
            ),
        )


def plan_offer(status: CollectionStatus, t: Text) -> dict[str, object]:
    """What the page shows of the strategy's bounds for this loan's band: the counts to choose from and the
    bounds in plain words (`plan_offer` None: no plan alone, only promise and pay)."""
    bounds = status.borrower_plan
    counts = instalment_counts(bounds, status.amount_overdue_minor)
    if bounds is None:
        return {"plan_offer": None, "promise_bounds": None, "settle_offer": None}
    if bounds.up_to_minor is not None:
        scope = t("scope_up_to", amount=format_money(bounds.up_to_minor, bounds.currency))
    elif bounds.above_minor is not None:
        scope = t("scope_above", amount=format_money(bounds.above_minor, bounds.currency))
    else:
        scope = t("scope_any")
    shown: dict[str, object] = {"promise_bounds": t("promise_bounds", days=bounds.promise_within_days)}
    shown |= settle_offer(status, scope, t)
    if not counts:
        return shown | {"plan_offer": None}
    words = t(
        "plan_bounds",
        scope=scope,
        low=counts[0],
        high=counts[-1],
        minimum=format_money(bounds.min_instalment_minor, bounds.currency),
        first=bounds.first_payment_within_days,
        days=bounds.max_plan_days,
    )
    return shown | {"plan_offer": {"counts": counts, "bounds": words}}


def settle_offer(status: CollectionStatus, scope: str, t: Text) -> dict[str, object]:
    """The settlement form's words when the band has a floor (`settle_offer` None: no settlement alone)."""
    bounds = status.borrower_plan
    floor = settlement_floor_minor(bounds, status.amount_overdue_minor) if bounds is not None else None
    if bounds is None or floor is None:
        return {"settle_offer": None}
    words = t(
        "settle_bounds",
        scope=scope,
        floor=format_money(floor, bounds.currency),
        days=bounds.first_payment_within_days,
    )
    return {"settle_offer": {"bounds": words}}


def plan_dates(first: date, count: int, every: str) -> list[date]:
    if every == "week":
        return [first + timedelta(weeks=n) for n in range(count)]
    if every == "fortnight":
        return [first + timedelta(weeks=2 * n) for n in range(count)]
    dates = []
    for n in range(count):  # monthly on the same day, the month's last day when shorter
        month_index = first.month - 1 + n
        year, month = first.year + month_index // 12, month_index % 12 + 1
        dates.append(date(year, month, min(first.day, calendar.monthrange(year, month)[1])))
    return dates
