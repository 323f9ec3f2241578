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
    from domain.case import CollectionCase, Outcome, Placement, StepRecord
    from domain.clock import CollectionsClock
    from domain.loan import Payment, format_money
    from domain.promise import PromiseRequest, PromiseToPay, promise_deadline, promise_rejection
    from domain.schedule import Occurrence, next_stage_first, occurrences, plan
    from domain.strategy import stage_rank
    from workflows import search_attributes as sa
    from workflows import step_requests
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

# Messages and tasks: transient provider/database trouble is retried for about an hour; past that the step
# is recorded as failed and the loan moves on rather than stalling (a payment must still be able to close it).
CONTACT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=15,
    non_retryable_error_types=[contracts.CONTACT_POINT_INVALID, "UnknownTemplate"],
)
# Placements, recalls and legal filings matter more than timeliness: retry longer.
CASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=30,
    non_retryable_error_types=[contracts.NO_AGENCY_AVAILABLE],
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
LETTER_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name=WORKFLOW_NAME)
class LoanCollectionWorkflow:
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
        self._demo_day_seconds = input.demo_day_seconds
        self._changed = False
        self._close_request: CloseRequest | None = None
        self._next: NextStep | None = None
        self._waiting_for = "starting"
        self._upserted: dict[str, object] = {}

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
        effect = self._case.apply_payment(payment, self._now())
        workflow.logger.info(
            "payment %s: %s (arrears %d -> %d)",
            payment.payment_id,
            effect.reason,
            effect.arrears_before_minor,
            effect.arrears_after_minor,
        )
        if effect.applied:
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
        return PromiseAccepted(promise_id=promise.promise_id, deadline=promise.deadline)

    @promise_to_pay.validator
    def _validate_promise(self, request: PromiseRequest) -> None:
        # A validator rejects before anything reaches history: a rejected promise changes nothing.
        case = self._case
        reason = promise_rejection(
            request,
            arrears_minor=case.arrears_minor,
            today=case.local_today(self._now()),
            rules=case.strategy.promise,
            has_open_promise=case.open_promise is not None,
            closed=case.closed or self._close_request is not None,
        )
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
        )

    # -- main loop ---------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CollectionInput) -> CollectionStatus:
        case = self._case
        self._publish()
        while not case.closed:
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new()
            now = self._now()
            if self._close_request is not None:
                request = self._close_request
                await self._finish(
                    "closed_by_servicing", f"{request.reason}: {request.note or ''}".strip(": ")
                )
            elif case.arrears_minor == 0:
                await self._finish("paid", f"arrears paid in full ({len(case.applied_payment_ids)} payments)")
            elif case.open_promise is not None and now >= case.open_promise.deadline:
                await self._promise_broken(case.open_promise)
            elif case.open_promise is not None:
                promise = case.open_promise
                self._next = None
                await self._wait_until(
                    promise.deadline,
                    f"promise: {format_money(promise.amount_minor, promise.currency)} by {promise.due_date}",
                )
            elif case.placement is not None and now >= case.placement.expires_at:
                await self._recall("expired")
            else:
                await self._advance(now)
            self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _advance(self, now: datetime) -> None:
        """Run what is due, or wait for the next step (or placement expiry), whichever comes first."""
        case = self._case
        strategy = case.strategy
        schedule = occurrences(strategy.steps_for(case.segment), case.arrears_minor, case.loan.currency)
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
        if decision.run_now:
            for occurrence in decision.run_now:
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
        if case.placement is not None and (due is None or case.placement.expires_at < due):
            due, label = case.placement.expires_at, f"agency placement {case.placement.placement_id} expires"
        await self._wait_until(due, label)

    async def _wait_until(self, due: datetime | None, label: str) -> None:
        """A durable timer in collections time that any payment, promise or close cuts short."""
        self._changed = False
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
        if stage_rank(step.stage) > stage_rank(case.stage):
            case.stage = step.stage
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
        elif step.action == "place_with_agency":
            result = await self._place(occurrence, now)
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
            contracts.PlacementRequest(
                idempotency_key=step_requests.idempotency_key(case, occurrence.key),
                loan_id=case.loan.loan_id,
                currency=case.loan.currency,
                amount_overdue_minor=case.arrears_minor,
                principal_outstanding_minor=case.principal_outstanding_minor,
                segment=case.segment,
                dpd=case.dpd(now),
                period_days=occurrence.step.period_days,
                placed_at=now,
            ),
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
        rules = case.strategy.promise
        key = f"promise:{promise.promise_id}:broken"
        result = await self._send(
            key, rules.broken_channel, rules.broken_template, "broken promise follow-up"
        )
        case.record(
            StepRecord(
                key=key,
                step_id="broken_promise",
                action="message",
                stage=case.stage,
                at=now,
                result=f"promise broken ({case.broken_promises} so far); {result}",
            )
        )
        if case.broken_promises >= rules.escalate_after_broken:
            # Repeated broken promises escalate faster: the rest of this stage is skipped and the next stage's
            # first step is due now.
            schedule = occurrences(
                case.strategy.steps_for(case.segment), case.arrears_minor, case.loan.currency
            )
            targets = next_stage_first(schedule, set(case.done), case.stage)
            if targets:
                target_rank = stage_rank(targets[0].step.stage)
                for occurrence in schedule:
                    if stage_rank(occurrence.step.stage) < target_rank:
                        case.mark_done(occurrence.key)
                case.forced = [*case.forced, *(t.key for t in targets)]

    async def _finish(self, outcome: Outcome, reason: str) -> None:
        case = self._case
        if case.placement is not None:
            await self._recall({"paid": "paid", "written_off": "written_off"}.get(outcome, "closed"))
        case.close(outcome, reason, self._now())
        self._next = None
        workflow.logger.info("collection closed: %s", outcome)

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            CollectionInput(
                loan=self._case.loan,
                strategy=self._case.strategy,
                demo_day_seconds=self._demo_day_seconds,
                case=self._case,
            )
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
