"""Arrangements a collector or supervisor makes on a case: repayment plans, settlement offers, interest
waivers, stage holds, escalation and agency recall.

The request models are what the admin UI and the starter send (workflow updates). Each has a pure rule
function returning the reason it cannot be accepted — naming the field to fix, e.g. "amount_minor: ..." or
"loan: ..." for the case as a whole — or None. The workflow's validators call them on the current state and
its handlers apply the change, so what is validated is exactly what is applied.

One arrangement is open at a time: a promise to pay, a repayment plan or a settlement offer (like the usual
"one open promise per account"). Waivers, stage holds, escalation and recalls combine with any of them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.calendar import start_of_local_day
from domain.loan import Instalment, PositiveMinorUnits
from domain.promise import promise_deadline
from domain.schedule import Occurrence, next_stage_first
from domain.strategy import PromiseRules, Stage, stage_rank
from domain.text import CleanLine, CleanText, Identifier

MIN_PLAN_INSTALMENTS = 2
MAX_PLAN_INSTALMENTS = 12
MAX_PLAN_DAYS = 365  # a plan's last instalment is due at most 12 months ahead
MAX_SETTLEMENT_DAYS = 60
MAX_STAGE_HOLD_DAYS = 90

# -- requests ---------------------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SupervisorRequest(_Request):
    approver: Identifier = Field(min_length=1, max_length=64, description="the supervisor's username")


class _Reasoned(SupervisorRequest):
    reason: CleanLine = Field(min_length=1, max_length=500, description="why (shown in the loan's timeline)")


class PlanInstalmentRequest(_Request):
    amount_minor: PositiveMinorUnits
    due_date: date = Field(description="borrower-local date")


class RepaymentPlanRequest(_Request):
    """A collector agrees a schedule of instalments with the borrower (2 to 12, over at most 12 months)."""

    collector: Identifier = Field(min_length=1, max_length=64)
    instalments: list[PlanInstalmentRequest] = Field(
        min_length=MIN_PLAN_INSTALMENTS, max_length=MAX_PLAN_INSTALMENTS
    )
    note: CleanText | None = Field(default=None, max_length=500)


class SettlementApproval(SupervisorRequest):
    """The borrower may settle for less than the arrears if `amount_minor` is paid by `due_date`."""

    amount_minor: PositiveMinorUnits
    due_date: date = Field(description="borrower-local date, within 60 days")
    note: CleanText | None = Field(default=None, max_length=500)


class InterestWaiver(_Reasoned):
    """Interest (or fees) waived: the arrears fall by `amount_minor`."""

    amount_minor: PositiveMinorUnits


class StageHold(_Reasoned):
    """No stage advance before `until` (borrower-local date, at most 90 days ahead); contact within the
    current stage goes on."""

    until: date


class StageHoldRelease(_Reasoned):
    pass


class Escalate(_Reasoned):
    """Move the case to the next stage now."""


class AgencyRecall(_Reasoned):
    """Take the account back from the agency (no automatic re-placement)."""


# -- state --------------------------------------------------------------------------------------------------

PlanStatus = Literal["open", "kept", "broken", "cancelled"]
PlanInstalmentStatus = Literal["due", "paid", "missed", "cancelled"]
SettlementStatus = Literal["open", "paid", "lapsed", "cancelled"]


class PlanInstalment(BaseModel):
    number: int  # 1-based
    amount_minor: int
    due_date: date
    deadline: datetime  # end of due_date + the strategy's promise grace, borrower-local (collections clock)
    paid_minor: int = 0
    status: PlanInstalmentStatus = "due"


class RepaymentPlan(BaseModel):
    plan_id: str
    collector: str
    currency: str
    made_at: datetime
    note: str | None = None
    instalments: list[PlanInstalment]
    paid_toward_minor: int = 0
    status: PlanStatus = "open"
    settled_at: datetime | None = None

    @property
    def total_minor(self) -> int:
        return sum(i.amount_minor for i in self.instalments)

    @property
    def next_instalment(self) -> PlanInstalment | None:
        """The first instalment not yet paid in full (None once all are)."""
        return next((i for i in self.instalments if i.status == "due"), None)

    def credit(self, amount_minor: int, now: datetime, *, arrears_cleared: bool) -> None:
        """Payments count toward the instalments in order; the plan is kept once all are paid (or the
        arrears are gone)."""
        self.paid_toward_minor += amount_minor
        remaining = self.paid_toward_minor
        for instalment in self.instalments:
            instalment.paid_minor = min(instalment.amount_minor, remaining)
            remaining -= instalment.paid_minor
            if instalment.status == "due" and instalment.paid_minor >= instalment.amount_minor:
                instalment.status = "paid"
        if self.next_instalment is None or arrears_cleared:
            self.end("kept", now)

    def break_at(self, now: datetime) -> PlanInstalment:
        """The first unpaid instalment was missed: the plan is broken and the rest cancelled."""
        missed = self.next_instalment
        assert missed is not None, "a plan with every instalment paid is kept, not broken"
        missed.status = "missed"
        self.end("broken", now)
        return missed

    def end(self, status: PlanStatus, now: datetime) -> None:
        if self.status != "open":
            return
        self.status = status
        self.settled_at = now
        for instalment in self.instalments:
            if instalment.status == "due":
                instalment.status = "paid" if status == "kept" else "cancelled"


class SettlementOffer(BaseModel):
    offer_id: str
    approver: str
    amount_minor: int
    currency: str
    due_date: date
    deadline: datetime  # end of due_date, borrower-local (collections clock)
    approved_at: datetime
    arrears_at_approval_minor: int
    note: str | None = None
    paid_toward_minor: int = 0
    status: SettlementStatus = "open"
    settled_at: datetime | None = None

    def credit(self, amount_minor: int, now: datetime) -> None:
        """A payment received after approval and before the deadline counts toward the settlement."""
        if self.status != "open" or now >= self.deadline:
            return
        self.paid_toward_minor += amount_minor
        if self.paid_toward_minor >= self.amount_minor:
            self.status = "paid"
            self.settled_at = now

    def end(self, status: SettlementStatus, now: datetime) -> None:
        if self.status == "open":
            self.status = status
            self.settled_at = now


class Waiver(BaseModel):
    waiver_id: str
    approver: str
    amount_minor: int
    reason: str
    at: datetime


class StageHoldState(BaseModel):
    approver: str
    reason: str
    until: date  # borrower-local: stage advance resumes at the start of this day
    resumes_at: datetime
    since: datetime


# -- rules ---------------------------------------------------------------------------------------------------


def closed_rejection(closed: bool) -> str | None:
    return "loan: collection is closed" if closed else None


def arrangement_conflict(*, open_promise: bool, open_plan: bool, open_settlement: bool) -> str | None:
    """One open arrangement per loan: a promise, a plan or a settlement offer."""
    if open_promise:
        return "loan: a promise to pay is still open; one open arrangement per loan"
    if open_plan:
        return "loan: a repayment plan is still open; one open arrangement per loan"
    if open_settlement:
        return "loan: a settlement offer is still open; one open arrangement per loan"
    return None


def plan_rejection(request: RepaymentPlanRequest, *, arrears_minor: int, today: date) -> str | None:
    """Due dates strictly increasing, the first not in the past, the last within 12 months; each amount
    positive; the total no more than the arrears."""
    previous: date | None = None
    horizon = today + timedelta(days=MAX_PLAN_DAYS)
    for index, instalment in enumerate(request.instalments):
        field = f"instalments[{index}]"  # amounts are positive already (PositiveMinorUnits)
        if previous is None and instalment.due_date < today:
            return (
                f"{field}.due_date: {instalment.due_date} is in the past "
                f"(today is {today} in the borrower's timezone)"
            )
        if previous is not None and instalment.due_date <= previous:
            return (
                f"{field}.due_date: {instalment.due_date} is not after "
                f"instalments[{index - 1}].due_date ({previous})"
            )
        if instalment.due_date > horizon:
            return (
                f"{field}.due_date: {instalment.due_date} is more than 12 months ahead "
                f"(latest allowed {horizon})"
            )
        previous = instalment.due_date
    total = sum(i.amount_minor for i in request.instalments)
    if total > arrears_minor:
        return f"instalments: the total {total} is more than the amount overdue ({arrears_minor})"
    return None


def build_plan(
    request: RepaymentPlanRequest,
    *,
    plan_id: str,
    currency: str,
    now: datetime,
    rules: PromiseRules,
    zone: ZoneInfo,
) -> RepaymentPlan:
    return RepaymentPlan(
        plan_id=plan_id,
        collector=request.collector,
        currency=currency,
        made_at=now,
        note=request.note,
        instalments=[
            PlanInstalment(
                number=number,
                amount_minor=i.amount_minor,
                due_date=i.due_date,
                deadline=promise_deadline(i.due_date, rules, zone),
            )
            for number, i in enumerate(request.instalments, start=1)
        ],
    )


def settlement_rejection(request: SettlementApproval, *, arrears_minor: int, today: date) -> str | None:
    if request.amount_minor >= arrears_minor:
        return (
            f"amount_minor: {request.amount_minor} is not less than the amount overdue ({arrears_minor}); "
            "a settlement is for less than the arrears"
        )
    if request.due_date < today:
        return f"due_date: {request.due_date} is in the past (today is {today} in the borrower's timezone)"
    horizon = today + timedelta(days=MAX_SETTLEMENT_DAYS)
    if request.due_date > horizon:
        return (
            f"due_date: {request.due_date} is more than {MAX_SETTLEMENT_DAYS} days ahead "
            f"(latest allowed {horizon})"
        )
    return None


def settlement_deadline(due_date: date, zone: ZoneInfo) -> datetime:
    """Paid by the due date: before the borrower-local midnight that ends it."""
    return start_of_local_day(due_date + timedelta(days=1), zone)


def waiver_rejection(request: InterestWaiver, *, arrears_minor: int) -> str | None:
    if request.amount_minor > arrears_minor:
        return f"amount_minor: {request.amount_minor} is more than the amount overdue ({arrears_minor})"
    return None


def take_first(instalments: list[Instalment], amount_minor: int) -> list[Instalment]:
    """The instalments left once `amount_minor` is taken from them in order: the ones it covers go, the next
    one is reduced (a payment takes the oldest first; a waiver, given them newest first, the newest)."""
    remaining = amount_minor
    kept: list[Instalment] = []
    for instalment in instalments:
        if remaining >= instalment.amount_minor:
            remaining -= instalment.amount_minor
            continue
        if remaining > 0:
            kept.append(instalment.model_copy(update={"amount_minor": instalment.amount_minor - remaining}))
            remaining = 0
        else:
            kept.append(instalment)
    return kept


def waive(arrears: list[Instalment], amount_minor: int) -> list[Instalment]:
    """The arrears after a waiver of `amount_minor`, taken from the newest instalment first: a waiver lowers
    what is owed without making the loan look less overdue (DPD re-anchors only once everything is gone)."""
    return list(reversed(take_first(list(reversed(arrears)), amount_minor)))


def stage_hold_rejection(request: StageHold, *, today: date) -> str | None:
    if request.until <= today:
        return f"until: {request.until} is not after today ({today} in the borrower's timezone)"
    horizon = today + timedelta(days=MAX_STAGE_HOLD_DAYS)
    if request.until > horizon:
        return (
            f"until: {request.until} is more than {MAX_STAGE_HOLD_DAYS} days ahead (latest allowed {horizon})"
        )
    return None


def stage_hold_active(hold: StageHoldState | None, now: datetime) -> bool:
    return hold is not None and now < hold.resumes_at


def release_rejection(hold: StageHoldState | None, now: datetime) -> str | None:
    return None if stage_hold_active(hold, now) else "loan: the stage is not held"


def held_schedule(
    schedule: list[Occurrence], stage: str, hold: StageHoldState | None, now: datetime
) -> list[Occurrence]:
    """While the stage is held, the steps of later stages do not exist yet; the current stage's go on."""
    if not stage_hold_active(hold, now):
        return schedule
    return [o for o in schedule if stage_rank(o.step.stage) <= stage_rank(stage)]


def escalation_targets(schedule: list[Occurrence], done: set[str], stage: str) -> list[Occurrence]:
    """The first steps of the next stage with any left, never the write-off ("closed" is not escalated to:
    it ends the case)."""
    if stage == "closed":
        return []
    targets = next_stage_first(schedule, done, stage)
    return [t for t in targets if t.step.stage != "closed"]


def escalation_rejection(
    *, stage: str, targets: list[Occurrence], hold: StageHoldState | None, now: datetime
) -> str | None:
    if stage_hold_active(hold, now):
        assert hold is not None
        return f"loan: the stage is held until {hold.until}; release the hold first"
    if not targets:
        return f"loan: already in the last stage ({stage}); there is no stage to escalate to"
    return None


def escalation_stage(targets: list[Occurrence]) -> Stage:
    return targets[0].step.stage


def recall_rejection(*, placed: bool) -> str | None:
    return None if placed else "loan: not placed with an agency"
