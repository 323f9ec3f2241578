"""LoanCollectionWorkflow: one long-lived workflow per overdue loan (per collection cycle of it).

The case decides, the workflow performs. Each turn of the loop asks `domain.decision.decide` what the case
does next and carries it out: activities, durable timers that any message cuts short, child workflows, search
attributes and the journal. Handlers only change the case and wake the loop; none awaits. Everything that
must survive continue-as-new (requests not yet acted on, journal entries not yet written) lives in the case
or the carried journal, never in a workflow field.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.case import CollectionCase, Outcome
    from domain.clock import CollectionsClock
    from domain.decision import Decision, decide, escalate_after_broken, task_cancel_reason
    from domain.expiry import expire
    from domain.loan import format_money
    from workflows import projection
    from workflows.arrangements import ArrangementUpdates
    from workflows.case_messages import CaseMessages
    from workflows.children import ChildCases
    from workflows.collector_updates import CollectorUpdates
    from workflows.contact import ContactDesk
    from workflows.messages import (
        STATUS_QUERY,
        WORKFLOW_NAME,
        CollectionInput,
        CollectionStatus,
        NextStep,
    )
    from workflows.retries import CASE_RETRY
    from workflows.runtime import ActivityFailed, CaseRuntime
    from workflows.steps import WRITE_OFF, StepRunner
    from workflows.validation_notice import NoticeDesk

JOURNAL_BATCH = 500  # the record_journal contract's largest batch


@workflow.defn(name=WORKFLOW_NAME)
class LoanCollectionWorkflow(CaseMessages, CollectorUpdates, ArrangementUpdates):
    @workflow.init
    def __init__(self, input: CollectionInput) -> None:
        # @workflow.init: a payment sent with the start (signal-with-start) is applied to a ready case.
        case = input.case
        if case is None:
            now = workflow.now()
            clock = (
                CollectionsClock.demo(now, input.demo_day_seconds)
                if input.demo_day_seconds
                else CollectionsClock.real_time(now)
            )
            case = CollectionCase.open(input.loan, input.strategy, clock)
            case.profile = input.profile
        self._input = input
        self._rt = CaseRuntime(case, input.journal_pending, input.used_assertions, input.refused_signals)
        self._children = ChildCases(self._rt)
        self._desk = ContactDesk(self._rt)
        self._steps = StepRunner(self._rt, self._desk, self._children)
        self._notices = NoticeDesk(self._desk)
        # What the start (or the previous run) already set: the first publish upserts only what differs.
        self._upserted: dict[str, object] = {
            pair.key.name: pair.value for pair in workflow.info().typed_search_attributes
        }
        self._details = ""
        self._snapshot_sent: contracts.PortfolioSnapshot | None = None
        self._wake_at: datetime | None = None  # the next wait's timer, in the snapshot (stuck-loans gauge)

    # -- the collections story -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CollectionInput) -> CollectionStatus:
        rt, case = self._rt, self._rt.case
        self._publish()
        while not case.closed:
            if self._may_continue_as_new():
                await self._continue_as_new()
            rt.changed = False  # anything a handler changes from here on cuts the next wait short
            decision = decide(case, rt.now(), self._children.view())
            rt.next = None
            match decision.kind:
                case "finish":
                    assert decision.outcome is not None
                    await self._finish(decision.outcome, decision.reason)
                case "recall":
                    await self._children.recall("closed")  # a supervisor's recall: no re-placement
                    case.recall_request = None  # cleared once done: a second request meanwhile is refused
                case "expire":
                    self._expire()
                case "hold":
                    await self._hold(decision)
                case "stand_down":
                    await self._stand_down(decision)
                case "release_legal":
                    await self._children.release_legal()
                case "send_validation_notice":
                    await self._notices.send()
                case "call_back":
                    await self._desk.call_back(case.callbacks[0])
                case "break_promise":
                    await self._promise_broken()
                case "break_plan":
                    await self._plan_broken()
                case "await_arrangement":
                    await self._wait_until(decision.until, decision.reason)
                case "placement_ended":
                    await self._children.placement_ended()
                case "legal_ended":
                    outcome = await self._children.legal_ended()
                    if outcome.case_id is not None:
                        await self._finish("litigation", f"referred to litigation: case {outcome.case_id}")
                case "recreate_tasks":
                    await self._recreate_tasks(decision)
                case "run_steps":
                    await self._run_steps(decision)
                case "wait":
                    rt.next = self._next_step(decision)
                    await self._wait_until(decision.until, decision.reason)
            self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_journal(all_of_it=True)
        return self.status()

    # -- performing decisions ------------------------------------------------------------------------------

    async def _finish(self, outcome: Outcome, reason: str) -> None:
        """Every child and task follows the loan: the legal case is withdrawn, the agency recalls the
        account, open collector tasks are cancelled with the reason, then the case closes."""
        rt, case = self._rt, self._rt.case
        await self._children.end(outcome)
        await self._cancel_tasks(task_cancel_reason(outcome), remember=False)
        case.close(outcome, reason, rt.now())
        rt.journal.action("case:closed", rt.now(), "system", "collection_closed", outcome, reason)
        workflow.logger.info("collection closed: %s", outcome)

    async def _hold(self, decision: Decision) -> None:
        """A hold binds everything: the agency gives the account back, the legal case waits, open tasks are
        cancelled (and created again when the hold ends); then the case waits for the hold to end."""
        case = self._rt.case
        if decision.recall_agency:
            await self._children.recall("disputed" if case.contact.dispute_open else "hold")
        if decision.hold_legal:
            await self._children.hold_legal(decision.reason)
        if decision.cancel_tasks:
            await self._cancel_tasks("hold", remember=True)
        await self._wait_until(decision.until, decision.reason)

    async def _stand_down(self, decision: Decision) -> None:
        if decision.recall_agency:
            await self._children.recall("hold")
        if decision.cancel_tasks:
            await self._cancel_tasks("hold", remember=False)

    async def _cancel_tasks(self, reason: str, *, remember: bool) -> None:
        """Every open task of the loan; `remember`: created again when the hold ends."""
        case = self._rt.case
        keys = await self._desk.cancel_tasks(reason)
        if remember and keys:
            case.tasks_after_hold = [
                *case.tasks_after_hold,
                *(k for k in keys if k not in case.tasks_after_hold),
            ]

    def _expire(self) -> None:
        rt = self._rt
        now = rt.now()
        for ended in expire(rt.case, now):
            if ended.what == "hold":
                rt.journal.hold(ended.key, now, ended.kind, "expired", ended.until, None, "system")
            else:
                rt.journal.action(ended.key, now, "system", ended.kind, None, ended.detail)

    async def _promise_broken(self) -> None:
        rt, case = self._rt, self._rt.case
        promise = case.open_promise
        assert promise is not None
        now = rt.now()
        promise.status, promise.settled_at = "broken", now
        case.broken_promises += 1
        rt.journal.promise(promise, "broken", "system", now)
        await self._broken_arrangement(f"promise:{promise.promise_id}:broken", "broken_promise", "promise")

    async def _plan_broken(self) -> None:
        """A missed instalment breaks the plan: the rest is cancelled and escalation resumes, as after a
        broken promise (it counts as one)."""
        rt, case = self._rt, self._rt.case
        plan = case.open_plan
        assert plan is not None
        now = rt.now()
        missed = plan.break_at(now)
        case.broken_promises += 1
        cancelled = sum(1 for i in plan.instalments if i.status == "cancelled")
        rt.journal.action(
            f"plan:{plan.plan_id}:broken",
            now,
            "system",
            "repayment_plan_broken",
            "broken",
            f"instalment {missed.number} of {len(plan.instalments)} "
            f"({format_money(missed.amount_minor, plan.currency)} due {missed.due_date}) not paid; "
            f"{cancelled} later instalments cancelled",
        )
        await self._broken_arrangement(f"plan:{plan.plan_id}:broken", "broken_plan", "repayment plan")

    async def _broken_arrangement(self, key: str, step_id: str, what: str) -> None:
        rt, case = self._rt, self._rt.case
        result = await self._desk.follow_up_broken(key)
        rt.note(key, step_id, "message", f"{what} broken ({case.broken_promises} so far); {result}")
        escalate_after_broken(case)

    async def _recreate_tasks(self, decision: Decision) -> None:
        rt, case = self._rt, self._rt.case
        case.tasks_after_hold = []
        stamp = rt.now().strftime("%Y%m%dT%H%M")
        for occurrence in decision.run:
            again = occurrence.model_copy(update={"key": f"{occurrence.key}~after-hold-{stamp}"})
            await self._steps.run(again)

    async def _run_steps(self, decision: Decision) -> None:
        case = self._rt.case
        for missed in decision.skip:
            self._steps.skip(missed)
        for occurrence in decision.run:
            if case.closing or case.arrears_minor == 0 or self._rt.changed:
                return  # a payment, close or hold arrived: decide again before the next step
            if await self._steps.run(occurrence) == WRITE_OFF:
                await self._finish("written_off", f"written off at DPD {case.dpd(self._rt.now())}")
                return

    async def _wait_until(self, due: datetime | None, label: str) -> None:
        """A durable timer in collections time that any payment, promise, hold or close cuts short."""
        rt = self._rt
        self._wake_at = due
        await self._flush_journal()
        rt.waiting_for = label
        self._publish()
        if due is None:
            await workflow.wait_condition(lambda: rt.changed)
            return
        if due <= rt.now() or rt.changed:
            return
        # At least a millisecond: a demo clock can scale a tiny remainder to zero, and a zero wait would let
        # the loop spin on the same decision without yielding.
        delay = max(rt.case.clock.real_delay(due - rt.now()), timedelta(milliseconds=1))
        try:
            await workflow.wait_condition(lambda: rt.changed, timeout=delay, timeout_summary=label[:200])
        except TimeoutError:
            pass

    def _next_step(self, decision: Decision) -> NextStep | None:
        following = decision.next
        if following is None or decision.next_due_at is None:
            return None
        return NextStep(
            key=following.key,
            action=following.step.action,
            stage=following.step.stage,
            due_at=decision.next_due_at,
            summary=following.step.summary or following.key,
        )

    # -- continue-as-new and the journal -------------------------------------------------------------------

    def _may_continue_as_new(self) -> bool:
        # A new current build (Worker Versioning, README "Production") also ends the run here, so a long-lived
        # loan moves to it at its next continue-as-new; always false when versioning is off.
        info = workflow.info()
        return (
            (info.is_continue_as_new_suggested() or info.is_target_worker_deployment_version_changed())
            and not self._children.running()
            and self._rt.case.recall_request is None
        )

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_journal(all_of_it=True)
        # No await between here and the call: whatever a handler journaled during the flush is still pending
        # and travels in the next run's input; requests not yet acted on travel in the case.
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "case": self._rt.case,
                    "journal_pending": list(self._rt.journal.pending),
                    "used_assertions": dict(self._rt.used_assertions),
                    "refused_signals": self._rt.refused_signals,
                }
            ),
            memo=dict(workflow.memo()),  # the cycle the starter recorded (starter.starting) stays on the run
            # The next run starts on the deployment's current build, not pinned to this run's.
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

    async def _flush_journal(self, all_of_it: bool = False) -> None:
        """Write what happened since the last flush, with the portfolio snapshot, in idempotent batches.
        Entries leave `pending` only once written; a batch that fails for good stays for the next flush."""
        rt = self._rt
        while True:
            snapshot = projection.snapshot(rt.case, rt.now()).model_copy(update={"wake_at": self._wake_at})
            sent = self._snapshot_sent
            # A new wake time alone writes nothing: runs recorded before wake_at existed must replay alike.
            same = {"as_of": snapshot.as_of, "wake_at": snapshot.wake_at}
            changed = sent is None or sent.model_copy(update=same) != snapshot
            pending = rt.journal.pending
            if not pending and not changed:
                return
            batch = pending[:JOURNAL_BATCH]
            try:
                await rt.activity(
                    contracts.RECORD_JOURNAL,
                    contracts.JournalBatch(entries=batch, snapshot=snapshot),
                    contracts.JournalReceipt,
                    f"journal: {len(batch)} entries",
                    CASE_RETRY,
                    # A local activity: the step's own workflow task writes its journal (issue 12: one
                    # activity and two workflow tasks per step instead of two and three). Idempotent by entry
                    # key, so a task retried after a worker crash writes nothing twice.
                    local=True,
                )
            except ActivityFailed:
                return  # the batch stays pending for the next flush
            del pending[: len(batch)]  # only what was written; handlers may have appended meanwhile
            self._snapshot_sent = snapshot
            if not all_of_it and len(pending) < JOURNAL_BATCH:
                return

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CollectionStatus:
        return self._status()

    # -- projections ---------------------------------------------------------------------------------------

    def _publish(self) -> None:
        """Search attributes (on change only) and the details an operator reads on the workflow's page."""
        changed = [
            (name, value, update)
            for name, value, update in projection.search_attribute_updates(self._rt.case)
            if self._upserted.get(name) != value
        ]
        if changed:
            workflow.upsert_search_attributes([update for _, _, update in changed])
            self._upserted.update({name: value for name, value, _ in changed})
        details = projection.details(self._rt.case, self._rt.now(), self._rt.waiting_for)
        if details != self._details:
            workflow.set_current_details(details)
            self._details = details


__all__ = ["LoanCollectionWorkflow"]
