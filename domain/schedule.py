"""Which step runs now and which comes next, from the strategy and the loan's state.

The rule that keeps a late joiner (or a loan resuming after a promise) from flooding the borrower: of all
the steps whose time has passed and that have not run, only those of the latest stage run: its one-off steps
of the latest DPD, and each repeating step once (its latest occurrence); everything earlier is recorded as
skipped. A loan entering collections at DPD 40 therefore joins deep contact (the supervisor review of DPD 30
and the call due at DPD 39) and never replays the DPD 1-7 reminders. Stages never go backwards.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from domain.calendar import due_instant
from domain.strategy import STAGE_ORDER, Step, stage_rank

# A repeating step (collector calls every few days) stops at the next stage, or after this many days if the
# strategy has no later stage: a safety net against an endless series in a hand-written strategy.
MAX_REPEAT_SPAN_DAYS = 120


class Occurrence(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # step id, plus @DPD for repeats: unique within the loan, part of idempotency keys
    dpd: int
    step: Step


def occurrences(steps: list[Step], amount_overdue_minor: int, currency: str) -> list[Occurrence]:
    """Expand the (segment's) steps into dated occurrences that apply to this balance, in DPD order."""
    applicable = [s for s in steps if s.applies_to(amount_overdue_minor, currency)]
    result: list[Occurrence] = []
    for step in applicable:
        result.append(Occurrence(key=step.id, dpd=step.dpd, step=step))
        if step.repeat_every_days:
            later_stage_dpds = [s.dpd for s in applicable if stage_rank(s.stage) > stage_rank(step.stage)]
            stop = min(later_stage_dpds, default=step.dpd + MAX_REPEAT_SPAN_DAYS)
            dpd = step.dpd + step.repeat_every_days
            while dpd < stop:
                result.append(Occurrence(key=f"{step.id}@{dpd}", dpd=dpd, step=step))
                dpd += step.repeat_every_days
    return sorted(result, key=lambda o: (o.dpd, stage_rank(o.step.stage), o.key))


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_now: list[Occurrence]
    skip: list[Occurrence]
    next: Occurrence | None
    next_due_at: datetime | None


def plan(
    schedule: list[Occurrence],
    *,
    done: set[str],
    forced: set[str],
    stage: str,
    now: datetime,
    anchor: date,
    contact_time: time,
    zone: ZoneInfo,
) -> Plan:
    """Decide what to run now, what to skip and what comes next.

    `done` holds keys already run or skipped; `forced` keys are due now whatever their date (escalation after
    repeated broken promises).
    """
    pending = [o for o in schedule if o.key not in done and stage_rank(o.step.stage) >= stage_rank(stage)]
    due = [o for o in pending if o.key in forced or due_instant(anchor, o.dpd, contact_time, zone) <= now]
    run_now: list[Occurrence] = []
    skip: list[Occurrence] = []
    if due:
        top_rank = max(stage_rank(o.step.stage) for o in due)
        top = [o for o in due if stage_rank(o.step.stage) == top_rank]
        # One-off steps of the latest stage: only those of the latest DPD run (no replayed reminders).
        one_off = [o for o in top if not o.step.repeat_every_days]
        latest_dpd = max((o.dpd for o in one_off), default=None)
        run_now = [o for o in one_off if o.dpd == latest_dpd]
        # A repeating step (collector calls) runs once, at its latest occurrence, beside them.
        latest_repeat: dict[str, Occurrence] = {}
        for occurrence in top:
            if occurrence.step.repeat_every_days:
                latest_repeat[occurrence.step.id] = occurrence  # `due` is in DPD order: the last one wins
        run_now = sorted([*run_now, *latest_repeat.values()], key=lambda o: (o.dpd, o.key))
        skip = [o for o in due if o not in run_now]
    upcoming = [o for o in pending if o not in due]
    following = upcoming[0] if upcoming else None
    return Plan(
        run_now=run_now,
        skip=skip,
        next=following,
        next_due_at=due_instant(anchor, following.dpd, contact_time, zone) if following else None,
    )


def next_stage_first(schedule: list[Occurrence], done: set[str], stage: str) -> list[Occurrence]:
    """The first occurrences of the next stage that has any: where repeated broken promises escalate to."""
    rank = stage_rank(stage)
    for later in STAGE_ORDER[rank + 1 :]:
        pending = [o for o in schedule if o.step.stage == later and o.key not in done]
        if pending:
            first = pending[0].dpd
            return [o for o in pending if o.dpd == first]
    return []
