"""What the case does next: one pure decision from the case and its clock.

This is the collections process in one function. The workflow asks `decide(case, now, children)` at the top of
every turn of its loop and performs the answer (activities, timers, children, journal); it computes nothing
of its own. The same function runs outside Temporal (tests, a strategy simulation over a whole portfolio).

The order of the checks is the policy, top to bottom:

1. what ends the case (a close from servicing, arrears paid, a settlement paid, collection stopped);
2. a supervisor's recall from the agency;
3. holds and arrangements whose time is over (they end by themselves, journaled);
4. a hold that freezes everything (dispute, Breathing Space, hardship): children are told and tasks
   cancelled, then the case waits for the hold to end; after a request to cease contact the agency and the
   collectors stand down (letters and the legal case go on);
5. US: the validation notice, before any other contact; a callback the borrower asked for;
6. an open promise, plan or settlement offer: wait for it, or break it when its deadline passed;
7. a child workflow that ended (agency placement, legal case);
8. collector tasks a hold cancelled, created again;
9. the strategy's due steps (late joiners skip what they missed; litigation only after a lawyer's letter);
   otherwise wait until the next step, deferral, callback, placement expiry or stage hold end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.arrangements import held_schedule, stage_hold_active
from domain.case import CollectionCase, Outcome
from domain.contact_plan import escalation_hold, validation_notice_owed
from domain.loan import format_money
from domain.schedule import Occurrence, next_stage_first, occurrences, plan
from domain.strategy import Step, stage_rank

NOTICE_KEY = "validation_notice"  # the notice's step key: deferrals, outbox and journal keys

# A loan is placed with at most this many agencies in turn (the second never the first's agency).
MAX_PLACEMENTS = 2

DecisionKind = Literal[
    "finish",
    "recall",
    "expire",
    "hold",
    "stand_down",
    "send_validation_notice",
    "call_back",
    "break_promise",
    "break_plan",
    "await_arrangement",
    "placement_ended",
    "legal_ended",
    "release_legal",
    "recreate_tasks",
    "run_steps",
    "wait",
]


class Children(BaseModel):
    """What the workflow knows of its child workflows (handles are not case state: no continue-as-new while
    one runs)."""

    model_config = ConfigDict(frozen=True)

    placement_running: bool = False
    placement_ended: bool = False
    legal_running: bool = False
    legal_ended: bool = False


class Decision(BaseModel):
    """The next thing to do, with a name and a reason an operator can read."""

    model_config = ConfigDict(frozen=True)

    kind: DecisionKind
    reason: str
    outcome: Outcome | None = None  # finish
    until: datetime | None = None  # hold, await_arrangement, wait: when to look again (None: until woken)
    run: list[Occurrence] = Field(default_factory=list)  # run_steps, recreate_tasks
    skip: list[Occurrence] = Field(default_factory=list)  # run_steps: superseded by a later step
    next: Occurrence | None = None  # wait: the strategy's next step, for status
    next_due_at: datetime | None = None
    # hold: what binds the children and tasks
    recall_agency: bool = False
    hold_legal: bool = False
    cancel_tasks: bool = False


def schedule_of(case: CollectionCase) -> list[Occurrence]:
    return occurrences(case.strategy.steps_for(case.segment), case.arrears_minor, case.loan.currency)


def ending(case: CollectionCase) -> tuple[Outcome, str] | None:
    """What ends the case now, if anything."""
    if case.close_request is not None:
        request = case.close_request
        return "closed_by_servicing", f"{request.reason}: {request.note or ''}".strip(": ")
    if case.arrears_minor == 0:
        reason = f"arrears paid in full ({len(case.applied_payment_ids)} payments)"
        if case.waived_total_minor:
            reason += f"; {format_money(case.waived_total_minor, case.loan.currency)} waived"
        return "paid", reason
    if (offer := case.settlement_paid) is not None:
        return "settled", (
            f"settlement of {format_money(offer.amount_minor, offer.currency)} paid by {offer.due_date} "
            f"(approved by {offer.approver}); "
            f"{format_money(case.arrears_minor, case.loan.currency)} of arrears forgiven"
        )
    if case.contact.collection_stopped:
        stopped = case.contact.collection_stopped
        return stopped, f"collection stopped: {stopped}"  # type: ignore[return-value]
    return None


def freezing_hold(case: CollectionCase, now: datetime) -> tuple[str, datetime | None] | None:
    """What freezes the whole process, and until when: a dispute that stops collection, Breathing Space,
    a hardship hold (the profile says which apply)."""
    return escalation_hold(case, now)


def must_stand_down(case: CollectionCase, children: Children) -> bool:
    """A borrower who asked to cease contact is contacted by nobody: the agency gives the account back and
    open call and visit tasks are cancelled. Escalation by letter and the courts goes on (a letter is the
    exception the rules allow), and later contact steps are refused by the contact rules."""
    return case.contact.cease_all and (children.placement_running or bool(case.open_tasks))


def expiries_due(case: CollectionCase, now: datetime) -> bool:
    state = case.contact
    offer = case.open_settlement
    return (
        any(
            until is not None and until <= now
            for until in (state.hardship_until, state.breathing_space_until)
        )
        or (offer is not None and now >= offer.deadline)
        or (case.stage_hold is not None and now >= case.stage_hold.resumes_at)
    )


def decide(case: CollectionCase, now: datetime, children: Children) -> Decision:
    if (end := ending(case)) is not None:
        return Decision(kind="finish", outcome=end[0], reason=end[1])
    if case.recall_request is not None:
        return Decision(kind="recall", reason=f"supervisor recall: {case.recall_request.reason}")
    if expiries_due(case, now):
        return Decision(kind="expire", reason="a hold or an arrangement reached its end")
    if (hold := freezing_hold(case, now)) is not None:
        label, until = hold
        return Decision(
            kind="hold",
            reason=label,
            until=until,
            recall_agency=children.placement_running,
            hold_legal=children.legal_running and not case.legal_held,
            cancel_tasks=bool(case.open_tasks),
        )
    if must_stand_down(case, children):
        return Decision(
            kind="stand_down",
            reason="borrower asked to cease contact: agency and collectors stand down",
            recall_agency=children.placement_running,
            cancel_tasks=bool(case.open_tasks),
        )
    if validation_notice_owed(case) and not case.notice_undeliverable:
        at = case.deferrals.get(NOTICE_KEY)
        if at is not None and at > now:
            return Decision(
                kind="wait", until=at, reason="the validation notice goes first, when the rules allow"
            )
        return Decision(
            kind="send_validation_notice", reason="US: the validation notice before any other contact"
        )
    if case.callbacks and case.callbacks[0] <= now:
        return Decision(kind="call_back", reason="a callback the borrower asked for is due")
    if (promise := case.open_promise) is not None:
        if now >= promise.deadline:
            return Decision(kind="break_promise", reason=f"promise not kept by {promise.due_date}")
        return Decision(
            kind="await_arrangement",
            until=promise.deadline,
            reason=f"promise: {format_money(promise.amount_minor, promise.currency)} by {promise.due_date}",
        )
    if (instalment_plan := case.open_plan) is not None and (
        due := instalment_plan.next_instalment
    ) is not None:
        if now >= due.deadline:
            return Decision(kind="break_plan", reason=f"instalment {due.number} not paid by {due.due_date}")
        return Decision(
            kind="await_arrangement",
            until=due.deadline,
            reason=f"repayment plan: instalment {due.number} of {len(instalment_plan.instalments)}, "
            f"{format_money(due.amount_minor - due.paid_minor, instalment_plan.currency)} by {due.due_date}",
        )
    if (offer := case.open_settlement) is not None:
        return Decision(
            kind="await_arrangement",
            until=offer.deadline,
            reason=f"settlement offer: {format_money(offer.amount_minor, offer.currency)} "
            f"by {offer.due_date}",
        )
    if children.placement_ended:
        return Decision(kind="placement_ended", reason="the agency placement ended")
    if children.legal_ended:
        return Decision(kind="legal_ended", reason="the legal case ended")
    if case.legal_held and children.legal_running:
        # No hold any more (checked above): the legal case may go on.
        return Decision(kind="release_legal", reason="hold ended: the legal case resumes")
    if case.tasks_after_hold:
        return Decision(
            kind="recreate_tasks",
            reason="collector tasks a hold cancelled are due again",
            run=tasks_to_recreate(case),
        )
    return due_steps(case, now, children)


def tasks_to_recreate(case: CollectionCase) -> list[Occurrence]:
    """One task per step a hold cancelled (a repeating call's many open occurrences come back as one)."""
    by_key = {o.key: o for o in schedule_of(case)}
    latest: dict[str, Occurrence] = {}
    for key in case.tasks_after_hold:
        if key in by_key:
            latest[by_key[key].step.id] = by_key[key]
    return list(latest.values())


def due_steps(case: CollectionCase, now: datetime, children: Children) -> Decision:
    """The strategy's steps that are due now, or the wait until the next thing that can happen."""
    schedule = held_schedule(schedule_of(case), case.stage, case.stage_hold, now)
    decision = plan(
        schedule,
        done=set(case.done),
        forced=set(case.forced),
        stage=case.stage,
        now=now,
        anchor=case.anchor,
        contact_time=case.contact_time,
        zone=case.loan.zone,
    )
    run, skip = letter_before_litigation(case, schedule, decision.run_now, decision.skip, children)
    ready = [o for o in run if case.deferrals.get(o.key, now) <= now]
    if ready or skip:
        return Decision(kind="run_steps", reason="strategy steps due", run=ready, skip=skip)
    until, label = (
        decision.next_due_at,
        (f"next: {decision.next.key} at DPD {decision.next.dpd}" if decision.next else "no further step"),
    )
    wakeups: list[tuple[datetime, str]] = [
        (case.deferrals[o.key], f"deferred: {o.key} (contact rules)") for o in run if o.key in case.deferrals
    ]
    if case.callbacks:
        wakeups.append((case.callbacks[0], "callback the borrower asked for"))
    if case.stage_hold is not None and stage_hold_active(case.stage_hold, now):
        wakeups.append((case.stage_hold.resumes_at, f"stage hold ends {case.stage_hold.until}"))
    for when, why in wakeups:
        if until is None or when < until:
            until, label = when, why
    return Decision(
        kind="wait", reason=label, until=until, next=decision.next, next_due_at=decision.next_due_at
    )


def letter_before_litigation(
    case: CollectionCase,
    schedule: list[Occurrence],
    run: list[Occurrence],
    skip: list[Occurrence],
    children: Children,
) -> tuple[list[Occurrence], list[Occurrence]]:
    """No litigation without a lawyer's letter and its whole response window.

    The referral belongs to the legal case, which sends the letter, waits out the window and only then
    refers. So a litigation step never runs by itself: when it is due (a loan joining at DPD 130, or resuming
    past the letter after a hold or a plan) and no legal case holds it, the letter step runs in its place
    and takes the referral with it. Everything else the plan skipped stays skipped.
    """
    litigation = [o for o in run if o.step.action == "refer_to_litigation"]
    if not litigation:
        return run, skip
    others = [o for o in run if o.step.action != "refer_to_litigation"]
    if children.legal_running or any(o.step.action == "lawyer_letter" for o in others):
        return others, skip  # the running (or starting) legal case carries the referral
    letter = next((o for o in schedule if o.step.action == "lawyer_letter"), None)
    if letter is None:
        return others, [*skip, *litigation]  # a strategy without a letter never litigates
    key = letter.key if letter.key not in case.done else f"{letter.key}~for~{litigation[0].key}"
    if key in case.done:
        return others, [*skip, *litigation]  # the letter could not go (no address, no channel): no referral
    letter = Occurrence(key=key, dpd=letter.dpd, step=letter.step)
    return [*others, letter], [o for o in skip if o.key != letter.key]


def litigation_for_letter(case: CollectionCase) -> Occurrence | None:
    """The litigation step the legal case opened now will carry (not yet run; applicable to this balance)."""
    return next(
        (o for o in schedule_of(case) if o.step.action == "refer_to_litigation" and o.key not in case.done),
        None,
    )


def escalate_after_broken(case: CollectionCase) -> list[str]:
    """Repeated broken promises (or plans) escalate faster: the rest of this stage is skipped and the next
    stage's first steps are due now. Changes `case.done` and `case.forced`; returns the forced keys."""
    if case.broken_promises < case.strategy.promise.escalate_after_broken:
        return []
    schedule = schedule_of(case)
    targets = next_stage_first(schedule, set(case.done), case.stage)
    if not targets:
        return []
    target_rank = stage_rank(targets[0].step.stage)
    for occurrence in schedule:
        if stage_rank(occurrence.step.stage) < target_rank:
            case.mark_done(occurrence.key)
    case.forced = [*case.forced, *(t.key for t in targets if t.key not in case.forced)]
    return [t.key for t in targets]


def replacement_step(case: CollectionCase, ended: str) -> Step | None:
    """A placement whose period simply ran out is placed once more (with another agency) while the loan is
    still at the agency stage; a recall for any other reason is final."""
    if ended != "expired" or case.stage != "agency" or case.placements >= MAX_PLACEMENTS:
        return None
    return next((s for s in case.strategy.steps_for(case.segment) if s.action == "place_with_agency"), None)


def end_reason(outcome: Outcome) -> Literal["paid", "written_off", "closed"]:
    """Why the legal case is withdrawn and the agency recalls the account when the loan closes."""
    if outcome in ("paid", "settled"):
        return "paid"
    return "written_off" if outcome == "written_off" else "closed"


def task_cancel_reason(outcome: Outcome) -> str:
    """Why open collector tasks are cancelled when the case ends with `outcome`."""
    if outcome in ("paid", "settled", "written_off", "litigation"):
        return outcome
    return "stopped" if outcome in ("bankruptcy", "deceased") else "closed"
