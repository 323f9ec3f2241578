"""LoanCollectionWorkflow: one long-lived workflow per overdue loan.

It plans the next step from the strategy and the collections clock, waits on a durable timer that any
payment, promise or close interrupts, runs the step's activity, and ends with an outcome. Rules live in
`domain`; this class only orchestrates: timers, activities, search attributes and what an operator reads in
the Web UI.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.arrangements import AgencyRecall, RepaymentPlan, held_schedule
    from domain.arrangements import stage_hold_active as _stage_hold_active
    from domain.case import CollectionCase, Outcome, Placement, StepRecord
    from domain.clock import CollectionsClock
    from domain.contact_plan import choose_channel, contact_channel, escalation_hold
    from domain.contact_profiles import ContactProfile
    from domain.contact_rules import ContactAttempt, ContactChannel
    from domain.loan import Payment, format_money
    from domain.promise import PromiseRequest, PromiseToPay, promise_deadline, promise_rejection
    from domain.schedule import Occurrence, next_stage_first, plan
    from domain.strategy import Stage, Step, stage_rank
    from workflows import search_attributes as sa
    from workflows import step_requests
    from workflows.agency_placement import (
        AGENCY_PLACEMENT_WORKFLOW,
        PLACED_SIGNAL,
        RECALL_SIGNAL,
        PlacementInput,
        PlacementOutcome,
        RecallRequestSignal,
    )
    from workflows.arrangements import ArrangementUpdates
    from workflows.collector_updates import CollectorUpdates
    from workflows.legal_case import (
        LEGAL_CASE_WORKFLOW,
        WITHDRAW_SIGNAL,
        LegalCaseInput,
        LegalOutcome,
        WithdrawRequest,
    )
    from workflows.messages import (
        CLOSE_SIGNAL,
        PAYMENT_SIGNAL,
        PROMISE_UPDATE,
        STATUS_QUERY,
        WORKFLOW_NAME,
        CloseRequest,
        CollectionInput,
        CollectionStatus,
        NextStep,
        PromiseAccepted,
    )
    from workflows.retries import CASE_RETRY, CONTACT_RETRY

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Loans started before contact rules and the journal existed replay without them (see _compliant).
CONTACT_RULES_PATCH = "contact-rules-and-journal"
# Broken-promise follow-ups ask the contact rules too (loans that broke a promise before replay as they ran).
BROKEN_PROMISE_RULES_PATCH = "broken-promise-follow-up-asks-contact-rules"
# A provider outage that outlasts the retries defers the message instead of closing the contact point.
PROVIDER_OUTAGE_PATCH = "provider-outage-defers-message"
PROVIDER_OUTAGE_RETRY = timedelta(hours=1)
# The portfolio read model is written even when nothing was journaled (a new case, a re-planned one): an
# extra record_journal call that histories from before it do not have.
PORTFOLIO_PATCH = "portfolio-snapshot"
# A loan is placed with at most this many agencies in turn (the second never the first's agency).
MAX_PLACEMENTS = 2
LETTER_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name=WORKFLOW_NAME)
class LoanCollectionWorkflow(CollectorUpdates, ArrangementUpdates):
    @workflow.init
    def __init__(self, input: CollectionInput) -> None:
        # @workflow.init: a payment sent with the start (signal-with-start) is applied to a ready case.
        now = workflow.now()
        if input.case is not None:
            self._case = input.case
        else:
            clock = (
                CollectionsClock.demo(now, input.demo_day_seconds)
                if input.demo_day_seconds
                else CollectionsClock.real_time(now)
            )
            self._case = CollectionCase.open(input.loan, input.strategy, clock)
            self._case.profile = input.profile
        self._demo_day_seconds = input.demo_day_seconds
        self._changed = False
        self._close_request: CloseRequest | None = None
        self._next: NextStep | None = None
        self._waiting_for = "starting"
        self._upserted: dict[str, object] = {}
        self._compliance: bool | None = None
        self._last_failure: str | None = None  # error type of the last activity that failed for good
        self._journal_pending: list[contracts.JournalEntry] = []
        # Decided here, before any handler runs: validators and queries are read-only and cannot patch.
        self._compliant()
        self._portfolio_always = workflow.patched(PORTFOLIO_PATCH)
        self._snapshot_sent: contracts.PortfolioSnapshot | None = None
        # Child workflows of this run (agency placement, legal case); no continue-as-new while one runs.
        self._placement_child: workflow.ChildWorkflowHandle[Any, PlacementOutcome] | None = None
        self._legal_child: workflow.ChildWorkflowHandle[Any, LegalOutcome] | None = None
        # A supervisor's recall (update recall_from_agency), carried out by the main loop.
        self._recall_request: AgencyRecall | None = None

    # -- messages ----------------------------------------------------------------------------------------
    # Handlers are synchronous: they only change the case and wake the main loop, which does every side
    # effect. No handler awaits, so no lock is needed and no two handlers interleave.

    @workflow.signal(name=PAYMENT_SIGNAL)
    def payment(self, payment: Payment) -> None:
        if self._case.closed:
            workflow.logger.info(
                "payment %s after close: recorded by servicing, not applied", payment.payment_id
            )
            return
        now = self._now()
        promise = self._case.open_promise
        plan = self._case.open_plan
        offer = self._case.open_settlement
        effect = self._case.apply_payment(payment, now)
        if self._compliant():
            self._journal(
                "payment",
                f"payment:{payment.payment_id}" + ("" if effect.applied else f":{workflow.uuid4()}"),
                payment_id=payment.payment_id,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                received_at=payment.received_at.isoformat(),
                source=payment.source,
                applied=effect.applied,
                reason=effect.reason,
            )
            if promise is not None and promise.status == "kept":
                self._journal_promise(promise, "kept", actor="servicing")
            if plan is not None and plan.status == "kept":
                self._journal_plan(plan, "repayment_plan_kept", "kept", None)
            if offer is not None and offer.status == "paid":
                self._journal(
                    "collector_action",
                    f"settlement:{offer.offer_id}:paid",
                    collector="servicing",
                    action="settlement_paid",
                    outcome=format_money(offer.paid_toward_minor, offer.currency),
                    detail=None,
                )
        workflow.logger.info(
            "payment %s: %s (arrears %d -> %d)",
            payment.payment_id,
            effect.reason,
            effect.arrears_before_minor,
            effect.arrears_after_minor,
        )
        if effect.applied:
            self._changed = True

    @workflow.signal(name=PLACED_SIGNAL)
    def agency_placed(self, receipt: contracts.PlacementReceipt) -> None:
        """From our AgencyPlacementWorkflow child: the agency has the account."""
        self._case.placement = Placement(
            placement_id=receipt.placement_id,
            agency_id=receipt.agency_id,
            agency_name=receipt.agency_name,
            placed_at=self._now(),
            expires_at=receipt.expires_at,
        )
        self._case.placed_with = [*self._case.placed_with, receipt.agency_id]
        self._changed = True

    @workflow.signal(name=CLOSE_SIGNAL)
    def close(self, request: CloseRequest) -> None:
        if self._close_request is None and not self._case.closed:
            self._close_request = request
            self._changed = True

    @workflow.update(name=PROMISE_UPDATE)
    def promise_to_pay(self, request: PromiseRequest) -> PromiseAccepted:
        case = self._case
        now = self._now()
        promise = PromiseToPay(
            promise_id=str(workflow.uuid4()),
            amount_minor=request.amount_minor,
            currency=case.loan.currency,
            due_date=request.due_date,
            deadline=promise_deadline(request.due_date, case.strategy.promise, case.loan.zone),
            collector=request.collector,
            note=request.note,
            made_at=now,
        )
        case.promises = [*case.promises, promise]
        self._changed = True
        if self._compliant():
            self._journal_promise(promise, "made", actor=request.collector)
        return PromiseAccepted(promise_id=promise.promise_id, deadline=promise.deadline)

    @promise_to_pay.validator
    def _validate_promise(self, request: PromiseRequest) -> None:
        # A validator rejects before anything reaches history: a rejected promise changes nothing.
        case = self._case
        reason = (
            promise_rejection(
                request,
                arrears_minor=case.arrears_minor,
                today=case.local_today(self._now()),
                rules=case.strategy.promise,
                has_open_promise=case.open_promise is not None,
                closed=case.closed or self._close_request is not None,
            )
            or self._conflict()
        )  # an open promise was refused above; a plan or settlement offer here
        if reason:
            raise ApplicationError(reason, type="PromiseRejected", non_retryable=True)

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CollectionStatus:
        case = self._case
        now = self._now()
        placement = case.placement
        return CollectionStatus(
            loan_id=case.loan.loan_id,
            stage=case.stage,
            segment=case.segment,
            strategy=f"{case.strategy.name} v{case.strategy.version}",
            dpd=case.dpd(now),
            currency=case.loan.currency,
            amount_overdue_minor=case.arrears_minor,
            principal_outstanding_minor=case.principal_outstanding_minor,
            paid_total_minor=case.paid_total_minor,
            overdue_since=case.anchor,
            open_promise=case.open_promise,
            promises=case.promises,
            broken_promises=case.broken_promises,
            last_step=case.history[-1] if case.history else None,
            next_step=None if case.closed else self._next,
            waiting_for="nothing: closed" if case.closed else self._waiting_for,
            agency_placement_id=placement.placement_id if placement else None,
            agency_name=placement.agency_name if placement else None,
            documents=case.documents,
            outcome=case.outcome,
            outcome_reason=case.outcome_reason,
            collections_now=now,
            demo_speed=case.clock.speed,
            contact_profile=case.profile.name if case.profile else None,
            contact=case.contact if case.profile else None,
            escalation_hold=hold[0] if (hold := escalation_hold(case, now)) else self._stage_hold_label(now),
            deferred=case.deferrals,
            callbacks=case.callbacks,
            loan=case.loan,
            repayment_plan=case.open_plan or (case.plans[-1] if case.plans else None),
            settlement=case.open_settlement or (case.settlements[-1] if case.settlements else None),
            waived_total_minor=case.waived_total_minor,
            waivers=case.waivers,
            stage_hold=case.stage_hold if _stage_hold_active(case.stage_hold, now) else None,
        )

    def _current_status(self) -> CollectionStatus:
        return self.status()

    # -- main loop ---------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CollectionInput) -> CollectionStatus:
        case = self._case
        self._publish()
        while not case.closed:
            if (
                workflow.info().is_continue_as_new_suggested()
                and not self._children_running()
                and self._recall_request is None
            ):
                await self._continue_as_new()
            if self._compliant():
                # Anything a handler changes from here on (even while an activity runs) cuts the next wait
                # short, so no payment or hold is missed.
                self._changed = False
            now = self._now()
            if self._close_request is not None:
                request = self._close_request
                await self._finish(
                    "closed_by_servicing", f"{request.reason}: {request.note or ''}".strip(": ")
                )
            elif case.arrears_minor == 0:
                await self._finish("paid", self._paid_reason())
            elif (offer := case.settlement_paid) is not None:
                await self._finish(
                    "settled",
                    f"settlement of {format_money(offer.amount_minor, offer.currency)} paid by "
                    f"{offer.due_date} (approved by {offer.approver}); "
                    f"{format_money(case.arrears_minor, case.loan.currency)} of arrears forgiven",
                )
            elif self._compliant() and case.contact.collection_stopped:
                stopped = case.contact.collection_stopped
                await self._finish(stopped, f"collection stopped: {stopped}")  # type: ignore[arg-type]
            elif self._recall_request is not None:
                await self._recall("closed")  # a supervisor took the account back: no re-placement
                # Cleared only once the child has ended: a second request meanwhile is refused as
                # "already under way", never accepted (and journaled) twice.
                self._recall_request = None
            elif self._compliant() and self._expire_holds(now):
                pass  # an expired hold was journaled; re-plan from here
            elif self._compliant() and self._expire_arrangements(now):
                pass  # a lapsed settlement offer or an ended stage hold was journaled; re-plan
            elif self._compliant() and (hold := escalation_hold(case, now)) is not None:
                self._next = None
                if case.contact.dispute_open and self._placement_child is not None:
                    # A dispute that stops collection stops the agency too: the account comes back.
                    await self._recall("disputed")
                await self._wait_until(hold[1], hold[0])
            elif self._compliant() and case.callbacks and case.callbacks[0] <= now:
                await self._call_back(case.callbacks[0], now)
            elif case.open_promise is not None and now >= case.open_promise.deadline:
                await self._promise_broken(case.open_promise)
            elif case.open_promise is not None:
                promise = case.open_promise
                self._next = None
                await self._wait_until(
                    promise.deadline,
                    f"promise: {format_money(promise.amount_minor, promise.currency)} by {promise.due_date}",
                )
            elif (plan := case.open_plan) is not None and (due := plan.next_instalment) is not None:
                if now >= due.deadline:
                    await self._plan_broken(plan)
                else:
                    self._next = None
                    await self._wait_until(
                        due.deadline,
                        f"repayment plan: instalment {due.number} of {len(plan.instalments)}, "
                        f"{format_money(due.amount_minor - due.paid_minor, plan.currency)} by {due.due_date}",
                    )
            elif (offer := case.open_settlement) is not None:
                self._next = None
                await self._wait_until(
                    offer.deadline,
                    f"settlement offer: {format_money(offer.amount_minor, offer.currency)} "
                    f"by {offer.due_date}",
                )
            elif self._placement_child is not None and self._placement_child.done():
                await self._placement_ended()
            elif self._legal_child is not None and self._legal_child.done():
                await self._legal_case_ended()
            elif not self._compliant() and case.placement is not None and now >= case.placement.expires_at:
                await self._recall("expired")
            else:
                await self._advance(now)
            self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_journal()
        return self.status()

    async def _advance(self, now: datetime) -> None:
        """Run what is due, or wait for the next step (or placement expiry), whichever comes first."""
        case = self._case
        strategy = case.strategy
        schedule = self._schedule()
        # A supervisor's stage hold: the next stage's steps wait (the current stage's go on).
        schedule = held_schedule(schedule, case.stage, case.stage_hold, now)
        decision = plan(
            schedule,
            done=set(case.done),
            forced=set(case.forced),
            stage=case.stage,
            now=now,
            anchor=case.anchor,
            contact_time=strategy.contact_time,
            zone=case.loan.zone,
        )
        for missed in decision.skip:
            case.mark_done(missed.key)
            self._record(missed, now, "skipped: superseded by a later step (joined late or resumed)")
        ready = [o for o in decision.run_now if case.deferrals.get(o.key, now) <= now]
        if ready:
            for occurrence in ready:
                if case.closed or self._close_request is not None or case.arrears_minor == 0:
                    return
                await self._run_step(occurrence)
            return
        following = decision.next
        self._next = (
            NextStep(
                key=following.key,
                action=following.step.action,
                stage=following.step.stage,
                due_at=decision.next_due_at,
                summary=following.step.summary or following.key,
            )
            if following is not None and decision.next_due_at is not None
            else None
        )
        due = decision.next_due_at
        label = f"next: {following.key} at DPD {following.dpd}" if following else "no further step"
        wakeups: list[tuple[datetime, str]] = []
        if case.placement is not None:
            wakeups.append(
                (case.placement.expires_at, f"agency placement {case.placement.placement_id} expires")
            )
        for occurrence in decision.run_now:  # due but deferred by the contact rules
            wakeups.append((case.deferrals[occurrence.key], f"deferred: {occurrence.key} (contact rules)"))
        if case.callbacks:
            wakeups.append((case.callbacks[0], "callback the borrower asked for"))
        if case.stage_hold is not None and _stage_hold_active(case.stage_hold, now):
            wakeups.append((case.stage_hold.resumes_at, f"stage hold ends {case.stage_hold.until}"))
        for when, why in wakeups:
            if due is None or when < due:
                due, label = when, why
        await self._wait_until(due, label)

    async def _wait_until(self, due: datetime | None, label: str) -> None:
        """A durable timer in collections time that any payment, promise or close cuts short."""
        if self._compliant():
            await self._flush_journal()
        else:
            self._changed = False  # loans started before the contact rules: replayed as they ran
        self._waiting_for = label
        self._publish()
        if due is None:
            await workflow.wait_condition(lambda: self._changed)
            return
        delay = self._case.clock.real_delay(due - self._now())
        if delay <= timedelta(0):
            return
        try:
            await workflow.wait_condition(lambda: self._changed, timeout=delay, timeout_summary=label)
        except TimeoutError:
            pass

    # -- steps -------------------------------------------------------------------------------------------

    async def _run_step(self, occurrence: Occurrence) -> None:
        case = self._case
        step = occurrence.step
        now = self._now()
        self._waiting_for = f"running {occurrence.key}"
        contact = contact_channel(step) if self._compliant() else None
        if contact is not None:
            outcome = await self._contact_step(occurrence, contact, now)
            if outcome is None:
                return  # deferred by the contact rules: the step stays due
            if outcome:
                self._enter_stage(step.stage, now)
                case.mark_done(occurrence.key)
                self._record(occurrence, now, outcome)
                return
        self._enter_stage(step.stage, now)
        result: str
        if step.action == "message":
            assert step.channel and step.template  # guaranteed by Step validation
            result = await self._send(
                occurrence.key, step.channel, step.template, step.summary or occurrence.key
            )
        elif step.action == "collector_task":
            assert step.task
            receipt = await self._activity(
                contracts.CREATE_COLLECTOR_TASK,
                step_requests.collector_task_request(
                    case, occurrence.key, step.task, workflow.now(), now, step.summary
                ),
                contracts.CollectorTaskReceipt,
                f"{step.task} task: {step.summary}",
                CONTACT_RETRY,
            )
            result = f"task {receipt.task_id}" if receipt else "failed: task not created"
        elif step.action == "place_with_agency" and self._compliant():
            result = await self._start_placement(occurrence, now)
        elif step.action == "place_with_agency":
            result = await self._place(occurrence, now)
        elif step.action == "lawyer_letter" and self._compliant():
            result = await self._open_legal_case(occurrence, now)
        elif step.action == "lawyer_letter":
            await self._recall("escalated")
            letter = await self._activity(
                contracts.GENERATE_LAWYER_LETTER,
                step_requests.lawyer_letter_request(case, occurrence, now),
                contracts.LawyerLetterReceipt,
                f"lawyer's letter ({case.loan.borrower.locale})",
                CASE_RETRY,
                LETTER_TIMEOUT,
            )
            if letter:
                case.documents = [*case.documents, letter.document_id]
            result = f"letter {letter.document_id} sha256 {letter.sha256[:12]}" if letter else "failed"
        elif step.action == "refer_to_litigation":
            await self._recall("escalated")
            referral = await self._activity(
                contracts.REFER_TO_LITIGATION,
                step_requests.litigation_request(case, occurrence, now),
                contracts.LitigationReferralReceipt,
                "refer to litigation",
                CASE_RETRY,
            )
            if referral:
                self._record(occurrence, now, f"litigation case {referral.case_id}")
                case.mark_done(occurrence.key)
                await self._finish("litigation", f"referred to litigation: case {referral.case_id}")
                return
            result = "failed: referral not filed"
        else:  # write_off
            case.mark_done(occurrence.key)
            self._record(occurrence, now, "written off")
            await self._finish("written_off", f"written off at DPD {case.dpd(now)}")
            return
        case.mark_done(occurrence.key)
        self._record(occurrence, now, result)

    async def _send(self, step_key: str, channel: str, template: str, summary: str) -> str:
        case = self._case
        now = self._now()
        request = step_requests.message_request(case, step_key, channel, template, now)
        receipt = await self._activity(
            contracts.SEND_MESSAGE,
            request,
            contracts.MessageReceipt,
            f"{request.channel}: {summary}",
            CONTACT_RETRY,
        )
        if receipt is None and request.channel != "sms":
            # The channel failed for good (bounced address, no app): the phone is the contact of last resort.
            fallback = step_requests.message_request(case, f"{step_key}:sms", "sms", template, now)
            receipt = await self._activity(
                contracts.SEND_MESSAGE,
                fallback,
                contracts.MessageReceipt,
                f"sms fallback: {summary}",
                CONTACT_RETRY,
            )
        if receipt is None:
            return "failed: no channel delivered"
        return f"{receipt.channel} {receipt.message_id} {receipt.status}"

    async def _place(self, occurrence: Occurrence, now: datetime) -> str:
        case = self._case
        if case.placement is not None:
            return f"already placed with {case.placement.agency_name}"
        assert occurrence.step.period_days
        receipt = await self._activity(
            contracts.PLACE_WITH_AGENCY,
            step_requests.placement_request(case, occurrence.key, occurrence.step.period_days, now),
            contracts.PlacementReceipt,
            f"place with agency for {occurrence.step.period_days} days",
            CASE_RETRY,
        )
        if receipt is None:
            return "not placed: no agency available; stays with in-house collectors"
        case.placement = Placement(
            placement_id=receipt.placement_id,
            agency_id=receipt.agency_id,
            agency_name=receipt.agency_name,
            placed_at=now,
            expires_at=receipt.expires_at,
        )
        return f"placed {receipt.placement_id} with {receipt.agency_name} until {receipt.expires_at:%Y-%m-%d}"

    async def _recall(self, reason: str) -> None:
        case = self._case
        if self._compliant():
            await self._recall_child(reason)
            return
        placement = case.placement
        if placement is None:
            return
        await self._activity(
            contracts.RECALL_FROM_AGENCY,
            contracts.RecallRequest(
                idempotency_key=f"{placement.placement_id}:recall",
                loan_id=case.loan.loan_id,
                placement_id=placement.placement_id,
                reason=reason,
            ),
            contracts.RecallReceipt,
            f"recall from {placement.agency_name}: {reason}",
            CASE_RETRY,
        )
        case.placement = None
        case.record(
            StepRecord(
                key=f"recall:{placement.placement_id}",
                step_id="agency_recall",
                action="recall_from_agency",
                stage=case.stage,
                at=self._now(),
                result=f"recalled from {placement.agency_name}: {reason}",
            )
        )

    async def _promise_broken(self, promise: PromiseToPay) -> None:
        case = self._case
        now = self._now()
        promise.status = "broken"
        promise.settled_at = now
        case.broken_promises += 1
        if self._compliant():
            self._journal_promise(promise, "broken", actor="system")
        await self._broken_arrangement(
            f"promise:{promise.promise_id}:broken", "broken_promise", "promise", now
        )

    async def _plan_broken(self, plan: RepaymentPlan) -> None:
        """A missed instalment breaks the plan: the rest is cancelled and escalation resumes, as after a
        broken promise (it counts as one)."""
        case = self._case
        now = self._now()
        missed = plan.break_at(now)
        case.broken_promises += 1
        self._journal_plan(
            plan,
            "repayment_plan_broken",
            "broken",
            f"instalment {missed.number} of {len(plan.instalments)} "
            f"({format_money(missed.amount_minor, plan.currency)} due {missed.due_date}) not paid; "
            f"{sum(1 for i in plan.instalments if i.status == 'cancelled')} later instalments cancelled",
        )
        await self._broken_arrangement(f"plan:{plan.plan_id}:broken", "broken_plan", "repayment plan", now)

    async def _broken_arrangement(self, key: str, step_id: str, what: str, now: datetime) -> None:
        """The follow-up of a broken promise or plan, and faster escalation after repeated ones."""
        case = self._case
        rules = case.strategy.promise
        if self._compliant() and workflow.patched(BROKEN_PROMISE_RULES_PATCH):
            result = await self._broken_promise_follow_up(key, now)
        else:
            result = await self._send(
                key, rules.broken_channel, rules.broken_template, "broken promise follow-up"
            )
        case.record(
            StepRecord(
                key=key,
                step_id=step_id,
                action="message",
                stage=case.stage,
                at=now,
                result=f"{what} broken ({case.broken_promises} so far); {result}",
            )
        )
        if case.broken_promises >= rules.escalate_after_broken:
            # Repeated broken promises escalate faster: the rest of this stage is skipped and the next stage's
            # first step is due now.
            schedule = self._schedule()
            targets = next_stage_first(schedule, set(case.done), case.stage)
            if targets:
                target_rank = stage_rank(targets[0].step.stage)
                for occurrence in schedule:
                    if stage_rank(occurrence.step.stage) < target_rank:
                        case.mark_done(occurrence.key)
                case.forced = [*case.forced, *(t.key for t in targets)]

    async def _broken_promise_follow_up(self, key: str, now: datetime) -> str:
        """The follow-up message, if the contact rules allow it now (a promise breaks at local midnight, so
        usually they do not); otherwise a follow-up task in the collectors' broken-promise queue, due when
        contact is allowed again."""
        case = self._case
        rules = case.strategy.promise
        step = Step(
            id="broken_promise",
            dpd=0,
            stage=case.stage,
            action="message",
            channel=rules.broken_channel,
            template=rules.broken_template,
            summary="broken promise follow-up",
        )
        result = await self._contact_step(Occurrence(key=key, dpd=0, step=step), rules.broken_channel, now)
        if result is not None:
            return result
        allowed_at = case.deferrals.pop(key)
        due = workflow.now() + case.clock.real_delay(allowed_at - now)
        task = await self._activity(
            contracts.CREATE_COLLECTOR_TASK,
            step_requests.collector_task_request(
                case, key, "promise_follow_up", due, now, "promise broken: follow up when contact is allowed"
            ),
            contracts.CollectorTaskReceipt,
            "broken-promise follow-up task",
            CONTACT_RETRY,
        )
        return f"message deferred by the contact rules; follow-up task {task.task_id if task else 'failed'}"

    async def _finish(self, outcome: Outcome, reason: str) -> None:
        case = self._case
        if self._legal_child is not None and not self._legal_child.done():
            withdraw = (
                "paid"
                if outcome in ("paid", "settled")
                else "written_off"
                if outcome == "written_off"
                else "closed"
            )
            await self._legal_child.signal(WITHDRAW_SIGNAL, WithdrawRequest(reason=withdraw))
            await self._legal_case_ended()
        if case.placement is not None or self._placement_child is not None:
            await self._recall(
                {"paid": "paid", "settled": "paid", "written_off": "written_off"}.get(outcome, "closed")
            )
        case.close(outcome, reason, self._now())
        self._next = None
        workflow.logger.info("collection closed: %s", outcome)

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_journal()
        workflow.continue_as_new(
            CollectionInput(
                loan=self._case.loan,
                strategy=self._case.strategy,
                demo_day_seconds=self._demo_day_seconds,
                case=self._case,
            )
        )

    # -- child workflows: agency placement and legal case -------------------------------------------------

    def _children_running(self) -> bool:
        return any(
            child is not None and not child.done() for child in (self._placement_child, self._legal_child)
        )

    def _wake(self, _: object) -> None:
        self._changed = True

    async def _start_placement(self, occurrence: Occurrence, now: datetime) -> str:
        case = self._case
        if self._placement_child is not None:
            return "already with an agency"
        assert occurrence.step.period_days
        case.placements += 1
        request = step_requests.placement_request(
            case,
            f"{occurrence.key}#{case.placements}",
            occurrence.step.period_days,
            now,
            exclude_agencies=case.placed_with,  # a re-placement never goes back to the same agency
        )
        info = workflow.info()
        child_id = f"{info.workflow_id}-placement-{case.placements}"
        self._placement_child = await workflow.start_child_workflow(
            AGENCY_PLACEMENT_WORKFLOW,
            PlacementInput(request=request, clock=case.clock, parent_workflow_id=info.workflow_id),
            id=child_id,
            task_queue=info.task_queue,
            result_type=PlacementOutcome,
            static_summary=f"Agency placement #{case.placements} of loan {case.loan.loan_id} "
            f"for {occurrence.step.period_days} days",
        )
        self._placement_child.add_done_callback(self._wake)
        return f"placement #{case.placements} started: {child_id}"

    async def _recall_child(self, reason: str) -> None:
        child = self._placement_child
        if child is None:
            return
        if not child.done():
            await child.signal(RECALL_SIGNAL, RecallRequestSignal(reason=reason))
        await self._placement_ended(replace=False)

    async def _placement_ended(self, replace: bool = True) -> None:
        """The placement child finished (period over, or recalled): record it, and re-place once if the
        period simply ran out while the loan is still at the agency stage."""
        case = self._case
        assert self._placement_child is not None
        outcome = await self._placement_child
        self._placement_child = None
        case.placement = None
        placed = outcome.placement
        case.record(
            StepRecord(
                key=f"placement:{case.placements}:{outcome.ended}",
                step_id="agency_recall" if placed else "agency_placement",
                action="recall_from_agency" if placed else "place_with_agency",
                stage=case.stage,
                at=self._now(),
                result=f"{placed.agency_name}: {outcome.ended}"
                if placed
                else "no agency could take the account",
            )
        )
        if (
            replace
            and outcome.ended == "expired"
            and case.stage == "agency"
            and case.placements < MAX_PLACEMENTS
        ):
            step = next(
                (s for s in case.strategy.steps_for(case.segment) if s.action == "place_with_agency"), None
            )
            if step is not None:
                await self._start_placement(Occurrence(key=step.id, dpd=step.dpd, step=step), self._now())

    async def _open_legal_case(self, occurrence: Occurrence, now: datetime) -> str:
        """The legal stage as a child: letter, registered mail, response window, and the litigation referral
        when the balance is worth it (that strategy step then belongs to the legal case)."""
        case = self._case
        await self._recall("escalated")
        schedule = self._schedule()
        litigation = next(
            (o for o in schedule if o.step.action == "refer_to_litigation" and o.key not in case.done), None
        )
        referral = None
        if litigation is not None:
            referral = step_requests.litigation_request(case, litigation, now)
            case.mark_done(litigation.key)
        info = workflow.info()
        self._legal_child = await workflow.start_child_workflow(
            LEGAL_CASE_WORKFLOW,
            LegalCaseInput(
                letter=step_requests.lawyer_letter_request(case, occurrence, now),
                timezone=case.loan.borrower.timezone,
                clock=case.clock,
                referral=referral,
            ),
            id=f"{info.workflow_id}-legal",
            task_queue=info.task_queue,
            result_type=LegalOutcome,
            static_summary=f"Legal case of loan {case.loan.loan_id}: lawyer's letter"
            + (", then litigation referral" if referral else ""),
        )
        self._legal_child.add_done_callback(self._wake)
        return f"legal case opened: {info.workflow_id}-legal"

    async def _legal_case_ended(self) -> None:
        case = self._case
        assert self._legal_child is not None
        outcome = await self._legal_child
        self._legal_child = None
        case.documents = [*case.documents, outcome.document_id]
        case.record(
            StepRecord(
                key=f"legal:{outcome.ended}",
                step_id="legal_case",
                action="lawyer_letter",
                stage=case.stage,
                at=self._now(),
                result=f"letter {outcome.document_id} ({outcome.tracking_reference}): {outcome.ended}",
            )
        )
        if outcome.case_id is not None and not case.closed:
            await self._finish("litigation", f"referred to litigation: case {outcome.case_id}")

    # -- contact rules ----------------------------------------------------------------------------------

    async def _contact_step(
        self, occurrence: Occurrence, wanted: ContactChannel, now: datetime
    ) -> str | None:
        """Ask the rules, then contact. Returns the step's result, None when deferred, "" when the step is a
        lawyer's letter that may go now (the caller runs it)."""
        case = self._case
        step = occurrence.step
        while True:
            choice = choose_channel(case, wanted, now)
            decision = choice.decision
            if choice.channel is None:
                self._journal_deferral(occurrence.key, wanted, decision.rule, decision.reason, None)
                return f"skipped: no allowed channel ({'; '.join(choice.closed) or decision.reason})"
            if not decision.allowed:
                assert decision.at is not None
                case.deferrals[occurrence.key] = decision.at
                self._journal_deferral(
                    occurrence.key, choice.channel, decision.rule, decision.reason, decision.at
                )
                return None
            case.deferrals.pop(occurrence.key, None)
            if choice.channel == "letter":
                return ""
            if choice.channel in ("call", "visit"):
                receipt = await self._activity(
                    contracts.CREATE_COLLECTOR_TASK,
                    step_requests.collector_task_request(
                        case, occurrence.key, choice.channel, workflow.now(), now, step.summary
                    ),
                    contracts.CollectorTaskReceipt,
                    f"{choice.channel} task: {step.summary}",
                    CONTACT_RETRY,
                )
                if receipt is None:
                    return "failed: task not created"
                self._journal(
                    "collector_action",
                    f"{occurrence.key}:task",
                    collector="system",
                    action=f"{choice.channel}_task_created",
                    outcome=None,
                    detail=receipt.task_id,
                )
                return f"{choice.channel} task {receipt.task_id}"
            assert step.template is not None
            key = occurrence.key if choice.channel == step.channel else f"{occurrence.key}:{choice.channel}"
            request = step_requests.message_request(case, key, choice.channel, step.template, now)
            if decision.requires_validation_notice:
                request = request.model_copy(
                    update={"variables": {**request.variables, "validation_notice": "included"}}
                )
            receipt = await self._activity(
                contracts.SEND_MESSAGE,
                request,
                contracts.MessageReceipt,
                f"{choice.channel}: {step.summary or occurrence.key}",
                CONTACT_RETRY,
            )
            if (
                receipt is None
                and self._last_failure != contracts.CONTACT_POINT_INVALID
                and workflow.patched(PROVIDER_OUTAGE_PATCH)
            ):
                # The provider stayed down through every retry: the borrower is not unreachable. The outbox
                # row is kept under the same key, so trying again later delivers it once, never twice.
                retry_at = now + PROVIDER_OUTAGE_RETRY
                case.deferrals[occurrence.key] = retry_at
                self._journal_deferral(
                    occurrence.key,
                    choice.channel,
                    "provider_unavailable",
                    "channel provider unavailable",
                    retry_at,
                )
                return None
            if receipt is None:
                # Permanent failure (invalid number, bounced address): that contact point is unreachable;
                # the next loop asks the rules again and falls back to the next channel.
                assert choice.address is not None
                case.contact = case.contact.model_copy(
                    update={"unreachable_addresses": [*case.contact.unreachable_addresses, choice.address]}
                )
                self._journal_attempt(key, choice.channel, step.template, None, "failed")
                continue
            case.add_attempt(
                ContactAttempt(channel=choice.channel, at=now, address=choice.address or ""), now
            )
            if decision.requires_validation_notice:
                case.contact = case.contact.model_copy(update={"validation_notice_sent_at": now})
            self._journal_attempt(key, choice.channel, step.template, receipt.message_id, receipt.status)
            return f"{receipt.channel} {receipt.message_id} {receipt.status}"

    async def _call_back(self, due: datetime, now: datetime) -> None:
        """A callback the borrower asked for becomes a call task, within the rules."""
        case = self._case
        choice = choose_channel(case, "call", now)
        key = f"callback:{due.isoformat()}"
        case.callbacks = case.callbacks[1:]
        if choice.channel is None:
            self._journal_deferral(key, "call", choice.decision.rule, choice.decision.reason, None)
            return
        if not choice.decision.allowed:
            assert choice.decision.at is not None
            case.callbacks = sorted([*case.callbacks, choice.decision.at])
            self._journal_deferral(
                key, "call", choice.decision.rule, choice.decision.reason, choice.decision.at
            )
            return
        receipt = await self._activity(
            contracts.CREATE_COLLECTOR_TASK,
            step_requests.collector_task_request(
                case, key, "call", workflow.now(), now, "callback requested"
            ),
            contracts.CollectorTaskReceipt,
            "call task: callback the borrower asked for",
            CONTACT_RETRY,
        )
        case.record(
            StepRecord(
                key=key,
                step_id="callback",
                action="collector_task",
                stage=case.stage,
                at=now,
                result=f"call task {receipt.task_id}" if receipt else "failed: task not created",
            )
        )

    def _expire_holds(self, now: datetime) -> bool:
        """Time-bounded holds end by themselves; the end is journaled like their start."""
        state = self._case.contact
        expired = [
            (kind, field)
            for kind, field, until in (
                ("hardship", "hardship_until", state.hardship_until),
                ("breathing_space", "breathing_space_until", state.breathing_space_until),
            )
            if until is not None and until <= now
        ]
        for kind, field in expired:
            until = getattr(self._case.contact, field)
            self._case.contact = self._case.contact.model_copy(update={field: None})
            self._journal(
                "hold",
                f"hold:{kind}:{until.isoformat()}:expired",
                kind=kind,
                action="expired",
                until=until.isoformat(),
                detail=None,
                actor="system",
            )
        return bool(expired)

    def _enter_stage(self, stage: Stage, now: datetime) -> None:
        case = self._case
        if stage_rank(stage) <= stage_rank(case.stage):
            return
        before = case.stage
        case.stage = stage
        if self._compliant():
            self._journal(
                "stage_transition",
                f"stage:{case.loan.overdue_since.isoformat()}:{stage}",
                from_stage=before,
                to_stage=stage,
                dpd=case.dpd(now),
                reason="strategy step due",
            )

    def _compliant(self) -> bool:
        """Contact rules and the journal apply to loans started with a contact profile. Loans started before
        (no profile in their input) keep their original behaviour, so their histories still replay."""
        if self._compliance is None:
            self._compliance = self._case.profile is not None and workflow.patched(CONTACT_RULES_PATCH)
        return self._compliance

    def _profile(self) -> ContactProfile:
        assert self._case.profile is not None  # _check() rejects requests on loans without one
        return self._case.profile

    # -- the journal --------------------------------------------------------------------------------------

    def _journal(self, entry_kind: contracts.JournalKind, key: str, **data: str | int | bool | None) -> None:
        case = self._case
        self._journal_pending.append(
            contracts.JournalEntry(
                kind=entry_kind,
                idempotency_key=f"{case.loan.loan_id}:{key}",
                loan_id=case.loan.loan_id,
                jurisdiction=case.loan.jurisdiction,
                at=self._now(),
                data=data,
            )
        )

    def _journal_attempt(
        self, key: str, channel: str, template: str | None, content_ref: str | None, status: str
    ) -> None:
        address_kind = {"sms": "phone", "call": "phone", "email": "email", "push": "app"}.get(channel, "none")
        self._journal(
            "contact_attempt",
            f"attempt:{key}:{status}",
            channel=channel,
            template=template,
            content_ref=content_ref,
            provider_id=content_ref,
            status=status,
            address_kind=address_kind,
            actor="system",
        )

    def _journal_deferral(
        self, step_key: str, channel: str, rule: str, reason: str, until: datetime | None
    ) -> None:
        self._journal(
            "deferral",
            f"deferral:{step_key}:{workflow.uuid4()}",
            step_key=step_key,
            channel=channel,
            rule=rule,
            reason=reason,
            deferred_from=self._now().isoformat(),
            deferred_until=until.isoformat() if until else None,
        )

    def _journal_promise(self, promise: PromiseToPay, fate: str, actor: str) -> None:
        self._journal(
            "promise",
            f"promise:{promise.promise_id}:{fate}",
            promise_id=promise.promise_id,
            amount_minor=promise.amount_minor,
            currency=promise.currency,
            due_date=promise.due_date.isoformat(),
            fate=fate,
            actor=actor,
        )

    def _journal_plan(self, plan: RepaymentPlan, action: str, outcome: str, detail: str | None) -> None:
        self._journal(
            "collector_action",
            f"plan:{plan.plan_id}:{outcome}",
            collector="system" if outcome == "broken" else "servicing",
            action=action,
            outcome=outcome,
            detail=detail,
        )

    def _paid_reason(self) -> str:
        reason = f"arrears paid in full ({len(self._case.applied_payment_ids)} payments)"
        if self._case.waived_total_minor:
            waived = format_money(self._case.waived_total_minor, self._case.loan.currency)
            reason += f"; {waived} waived"
        return reason

    def _snapshot(self) -> contracts.PortfolioSnapshot:
        case = self._case
        now = self._now()
        hold = escalation_hold(case, now) if case.profile is not None else None
        promise = case.open_promise
        return contracts.PortfolioSnapshot(
            loan_id=case.loan.loan_id,
            borrower_name=case.loan.borrower.name,
            jurisdiction=case.loan.jurisdiction,
            timezone=case.loan.borrower.timezone,
            locale=case.loan.borrower.locale,
            currency=case.loan.currency,
            segment=case.segment,
            strategy=case.strategy.name,
            stage=case.stage,
            outcome=case.outcome,
            overdue_since=case.anchor,
            amount_overdue_minor=case.arrears_minor,
            principal_outstanding_minor=case.principal_outstanding_minor,
            paid_total_minor=case.paid_total_minor,
            hold=hold[0] if hold else self._stage_hold_label(now),
            agency_id=case.placement.agency_id if case.placement else None,
            open_promise_due=promise.due_date if promise else None,
            broken_promises=case.broken_promises,
            clock_real_anchor=case.clock.real_anchor,
            clock_collections_anchor=case.clock.collections_anchor,
            clock_speed=case.clock.speed,
            as_of=now,
        )

    def _snapshot_changed(self, snapshot: contracts.PortfolioSnapshot) -> bool:
        sent = self._snapshot_sent
        return sent is None or sent.model_copy(update={"as_of": snapshot.as_of}) != snapshot

    async def _flush_journal(self) -> None:
        """Write what happened since the last flush, with the case's portfolio snapshot, in one idempotent
        activity. Histories from before the portfolio read model write only when something was journaled."""
        snapshot = self._snapshot()
        changed = self._snapshot_changed(snapshot)
        if not self._journal_pending and not (self._portfolio_always and changed):
            return
        batch, self._journal_pending = self._journal_pending, []
        self._snapshot_sent = snapshot
        await self._activity(
            contracts.RECORD_JOURNAL,
            contracts.JournalBatch(entries=batch, snapshot=snapshot),
            contracts.JournalReceipt,
            f"journal: {len(batch)} entries",
            CASE_RETRY,
        )

    # -- helpers -----------------------------------------------------------------------------------------

    async def _activity(
        self,
        name: str,
        request: object,
        result_type: type,
        summary: str,
        retry: RetryPolicy,
        start_to_close: timedelta = ACTIVITY_TIMEOUT,
    ) -> Any:
        """Run an activity; None when it failed for good (the caller chooses the fallback)."""
        try:
            return await workflow.execute_activity(
                name,
                request,
                result_type=result_type,
                start_to_close_timeout=start_to_close,
                retry_policy=retry,
                summary=summary[:200],
            )
        except ActivityError as error:
            cause = error.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            self._last_failure = kind
            workflow.logger.warning("activity %s failed for good: %s", name, kind)
            return None

    def _now(self) -> datetime:
        return self._case.clock.now(workflow.now())

    def _record(self, occurrence: Occurrence, now: datetime, result: str) -> None:
        self._case.record(
            StepRecord(
                key=occurrence.key,
                step_id=occurrence.step.id,
                action=occurrence.step.action,
                stage=occurrence.step.stage,
                at=now,
                result=result,
            )
        )

    def _publish(self) -> None:
        """Search attributes (on change only) and the details an operator reads on the workflow's page."""
        case = self._case
        anchor = datetime.combine(case.anchor, time(0), tzinfo=UTC)
        candidates: list[tuple[str, object, SearchAttributeUpdate]] = [
            (sa.COLLECTION_STAGE.name, case.stage, sa.COLLECTION_STAGE.value_set(case.stage)),
            (sa.OVERDUE_SINCE.name, anchor, sa.OVERDUE_SINCE.value_set(anchor)),
            (sa.AMOUNT_OVERDUE.name, case.arrears_minor, sa.AMOUNT_OVERDUE.value_set(case.arrears_minor)),
            (sa.CURRENCY.name, case.loan.currency, sa.CURRENCY.value_set(case.loan.currency)),
            (sa.SEGMENT.name, case.segment, sa.SEGMENT.value_set(case.segment)),
            (
                sa.COLLECTION_OUTCOME.name,
                case.outcome or "open",
                sa.COLLECTION_OUTCOME.value_set(case.outcome or "open"),
            ),
        ]
        changed = [
            (name, value, update) for name, value, update in candidates if self._upserted.get(name) != value
        ]
        if changed:
            workflow.upsert_search_attributes([update for _, _, update in changed])
            self._upserted.update({name: value for name, value, _ in changed})
        now = self._now()
        lines = [
            f"**Stage** {case.stage} · **DPD** {case.dpd(now)} · **segment** {case.segment}",
            f"**Overdue** {format_money(case.arrears_minor, case.loan.currency)}"
            f" · paid so far {format_money(case.paid_total_minor, case.loan.currency)}",
        ]
        if case.open_promise:
            p = case.open_promise
            lines.append(
                f"**Promise** {format_money(p.amount_minor, p.currency)} by {p.due_date} ({p.collector})"
            )
        if case.open_plan and (due := case.open_plan.next_instalment):
            lines.append(
                f"**Repayment plan** instalment {due.number} of {len(case.open_plan.instalments)}: "
                f"{format_money(due.amount_minor, case.loan.currency)} by {due.due_date}"
            )
        if case.open_settlement:
            offer = case.open_settlement
            lines.append(
                f"**Settlement offer** {format_money(offer.amount_minor, offer.currency)} by {offer.due_date}"
                f" ({offer.approver})"
            )
        if (held := self._stage_hold_label(now)) is not None:
            lines.append(f"**Stage hold** {held}")
        if case.placement:
            lines.append(
                f"**Agency** {case.placement.agency_name} until {case.placement.expires_at:%Y-%m-%d}"
            )
        if case.outcome:
            lines.append(f"**Outcome** {case.outcome}: {case.outcome_reason}")
        else:
            lines.append(f"**Waiting for** {self._waiting_for}")
        if case.clock.speed != 1.0:
            lines.append(f"_demo time scale ×{case.clock.speed:.0f}_")
        workflow.set_current_details("\n\n".join(lines))


__all__ = ["LoanCollectionWorkflow"]
