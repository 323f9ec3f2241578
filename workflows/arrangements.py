"""Collectors' and supervisors' arrangements: the update handlers of LoanCollectionWorkflow.

A mixin like `workflows.collector_updates`. Each validator runs the pure rule of `domain.arrangements` on the
current state and raises `ApplicationError(type="ArrangementRejected")` with a reason naming the field (a
rejected request reaches no history and changes nothing). Each handler only changes the case, journals a
`collector_action` entry (who: the collector or approver of the request) and wakes the main loop, which does
every side effect (timers, recall, the escalated stage's first step). Every update returns the loan's
`CollectionStatus` as it is right after the change.

Replay: none of this changes the commands of an existing history. The main loop's new branches act only on
state these updates create (a plan, a settlement offer, a stage hold, a recall request), which no history
recorded before them can hold; so no `workflow.patched` marker is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain import arrangements as rules
    from domain.arrangements import (
        AgencyRecall,
        Escalate,
        InterestWaiver,
        RepaymentPlanRequest,
        SettlementApproval,
        SettlementOffer,
        StageHold,
        StageHoldRelease,
        StageHoldState,
        Waiver,
    )
    from domain.calendar import start_of_local_day
    from domain.case import CollectionCase
    from domain.loan import format_money
    from domain.schedule import Occurrence, occurrences
    from domain.strategy import stage_rank
    from workflows.messages import (
        ESCALATE_STAGE_UPDATE,
        HOLD_STAGE_UPDATE,
        RECALL_FROM_AGENCY_UPDATE,
        RELEASE_STAGE_HOLD_UPDATE,
        REPAYMENT_PLAN_UPDATE,
        SETTLEMENT_UPDATE,
        WAIVE_INTEREST_UPDATE,
        CloseRequest,
        CollectionStatus,
        NextStep,
    )

REJECTED = "ArrangementRejected"


class ArrangementUpdates:
    """Needs from the workflow: its case, close request, change flag, next step, placement child, journal,
    clock and status."""

    _case: CollectionCase
    _close_request: CloseRequest | None
    _changed: bool
    _next: NextStep | None
    _placement_child: Any
    _recall_request: AgencyRecall | None

    def _compliant(self) -> bool:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def _journal(self, entry_kind: contracts.JournalKind, key: str, **data: str | int | bool | None) -> None:
        raise NotImplementedError

    def _current_status(self) -> CollectionStatus:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------------

    def _refuse(self, *reasons: Callable[[], str | None]) -> None:
        """Raise the first reason that applies; the case-wide ones (legacy loan, closed) come first."""
        checks: list[Callable[[], str | None]] = [
            lambda: (
                None
                if self._compliant()
                else "loan: started before contact rules existed; arrangements cannot be recorded on it"
            ),
            lambda: rules.closed_rejection(self._case.closed or self._close_request is not None),
            *reasons,
        ]
        for check in checks:
            reason = check()
            if reason:
                raise ApplicationError(reason, type=REJECTED, non_retryable=True)

    def _conflict(self) -> str | None:
        case = self._case
        return rules.arrangement_conflict(
            open_promise=case.open_promise is not None,
            open_plan=case.open_plan is not None,
            open_settlement=case.open_settlement is not None,
        )

    def _today(self) -> date:
        return self._case.local_today(self._now())

    def _money(self, amount_minor: int) -> str:
        return format_money(amount_minor, self._case.loan.currency)

    def _action(self, key: str, who: str, action: str, outcome: str | None, detail: str | None) -> None:
        self._journal(
            "collector_action",
            f"{key}:{workflow.uuid4()}",
            collector=who,
            action=action,
            outcome=outcome,
            detail=detail,
        )

    def _accepted(self) -> CollectionStatus:
        self._changed = True
        return self._current_status()

    def _schedule(self) -> list[Occurrence]:
        case = self._case
        return occurrences(case.strategy.steps_for(case.segment), case.arrears_minor, case.loan.currency)

    # -- repayment plan --------------------------------------------------------------------------------------

    @workflow.update(name=REPAYMENT_PLAN_UPDATE)
    def arrange_repayment_plan(self, request: RepaymentPlanRequest) -> CollectionStatus:
        case = self._case
        plan = rules.build_plan(
            request,
            plan_id=str(workflow.uuid4()),
            currency=case.loan.currency,
            now=self._now(),
            rules=case.strategy.promise,
            zone=case.loan.zone,
        )
        case.plans = [*case.plans, plan]
        last = plan.instalments[-1]
        self._action(
            f"plan:{plan.plan_id}",
            request.collector,
            "repayment_plan_arranged",
            f"{len(plan.instalments)} instalments, {self._money(plan.total_minor)} by {last.due_date}",
            request.note,
        )
        return self._accepted()

    @arrange_repayment_plan.validator
    def _validate_repayment_plan(self, request: RepaymentPlanRequest) -> None:
        self._refuse(
            self._conflict,
            lambda: rules.plan_rejection(
                request, arrears_minor=self._case.arrears_minor, today=self._today()
            ),
        )

    # -- settlement ------------------------------------------------------------------------------------------

    @workflow.update(name=SETTLEMENT_UPDATE)
    def approve_settlement(self, request: SettlementApproval) -> CollectionStatus:
        case = self._case
        offer = SettlementOffer(
            offer_id=str(workflow.uuid4()),
            approver=request.approver,
            amount_minor=request.amount_minor,
            currency=case.loan.currency,
            due_date=request.due_date,
            deadline=rules.settlement_deadline(request.due_date, case.loan.zone),
            approved_at=self._now(),
            arrears_at_approval_minor=case.arrears_minor,
            note=request.note,
        )
        case.settlements = [*case.settlements, offer]
        self._action(
            f"settlement:{offer.offer_id}",
            request.approver,
            "settlement_approved",
            f"{self._money(offer.amount_minor)} by {offer.due_date} "
            f"(arrears {self._money(offer.arrears_at_approval_minor)})",
            request.note,
        )
        return self._accepted()

    @approve_settlement.validator
    def _validate_settlement(self, request: SettlementApproval) -> None:
        self._refuse(
            self._conflict,
            lambda: rules.settlement_rejection(
                request, arrears_minor=self._case.arrears_minor, today=self._today()
            ),
        )

    # -- interest waiver -------------------------------------------------------------------------------------

    @workflow.update(name=WAIVE_INTEREST_UPDATE)
    def waive_interest(self, request: InterestWaiver) -> CollectionStatus:
        case = self._case
        waiver = Waiver(
            waiver_id=str(workflow.uuid4()),
            approver=request.approver,
            amount_minor=request.amount_minor,
            reason=request.reason,
            at=self._now(),
        )
        case.apply_waiver(waiver)
        self._action(
            f"waiver:{waiver.waiver_id}",
            request.approver,
            "interest_waived",
            f"{self._money(waiver.amount_minor)} waived; arrears now {self._money(case.arrears_minor)}",
            request.reason,
        )
        return self._accepted()

    @waive_interest.validator
    def _validate_waiver(self, request: InterestWaiver) -> None:
        self._refuse(lambda: rules.waiver_rejection(request, arrears_minor=self._case.arrears_minor))

    # -- stage hold ------------------------------------------------------------------------------------------

    @workflow.update(name=HOLD_STAGE_UPDATE)
    def hold_stage(self, request: StageHold) -> CollectionStatus:
        case = self._case
        case.stage_hold = StageHoldState(
            approver=request.approver,
            reason=request.reason,
            until=request.until,
            resumes_at=start_of_local_day(request.until, case.loan.zone),
            since=self._now(),
        )
        self._action("stage_hold", request.approver, "stage_held", f"until {request.until}", request.reason)
        return self._accepted()

    @hold_stage.validator
    def _validate_hold_stage(self, request: StageHold) -> None:
        self._refuse(lambda: rules.stage_hold_rejection(request, today=self._today()))

    @workflow.update(name=RELEASE_STAGE_HOLD_UPDATE)
    def release_stage_hold(self, request: StageHoldRelease) -> CollectionStatus:
        self._case.stage_hold = None
        self._action("stage_hold", request.approver, "stage_hold_released", None, request.reason)
        return self._accepted()

    @release_stage_hold.validator
    def _validate_release_stage_hold(self, request: StageHoldRelease) -> None:
        self._refuse(lambda: rules.release_rejection(self._case.stage_hold, self._now()))

    # -- escalation ------------------------------------------------------------------------------------------

    @workflow.update(name=ESCALATE_STAGE_UPDATE)
    def escalate_stage(self, request: Escalate) -> CollectionStatus:
        """The case moves to the next stage now; that stage's first steps are due at once (the main loop runs
        them as soon as the contact rules, and any open arrangement or hold, allow)."""
        case = self._case
        now = self._now()
        schedule = self._schedule()
        targets = rules.escalation_targets(schedule, set(case.done), case.stage)
        stage = rules.escalation_stage(targets)
        for occurrence in schedule:
            if stage_rank(occurrence.step.stage) < stage_rank(stage):
                case.mark_done(occurrence.key)
        case.forced = [*case.forced, *(t.key for t in targets if t.key not in case.forced)]
        before = case.stage
        case.stage = stage
        self._next = None
        self._journal(
            "stage_transition",
            f"stage:{case.loan.overdue_since.isoformat()}:{stage}",
            from_stage=before,
            to_stage=stage,
            dpd=case.dpd(now),
            reason=f"escalated by {request.approver}: {request.reason}",
        )
        self._action(
            "escalation", request.approver, "stage_escalated", f"{before} -> {stage}", request.reason
        )
        return self._accepted()

    @escalate_stage.validator
    def _validate_escalate(self, request: Escalate) -> None:
        case = self._case
        self._refuse(
            lambda: rules.escalation_rejection(
                stage=case.stage,
                targets=rules.escalation_targets(self._schedule(), set(case.done), case.stage),
                hold=case.stage_hold,
                now=self._now(),
            )
        )

    # -- agency recall ---------------------------------------------------------------------------------------

    @workflow.update(name=RECALL_FROM_AGENCY_UPDATE)
    def recall_from_agency(self, request: AgencyRecall) -> CollectionStatus:
        """The main loop recalls the account through the placement child; it is not re-placed by itself."""
        self._recall_request = request
        placement = self._case.placement
        self._action(
            "recall",
            request.approver,
            "agency_recall_requested",
            placement.agency_name if placement else None,
            request.reason,
        )
        return self._accepted()

    @recall_from_agency.validator
    def _validate_recall(self, request: AgencyRecall) -> None:
        self._refuse(
            lambda: (
                "loan: a recall from the agency is already under way"
                if self._recall_request is not None
                else None
            ),
            lambda: rules.recall_rejection(
                placed=self._placement_child is not None or self._case.placement is not None
            ),
        )

    # -- ends the main loop acts on --------------------------------------------------------------------------

    def _expire_arrangements(self, now: datetime) -> bool:
        """A settlement offer past its due date lapses; a stage hold past its date ends. Both journaled."""
        case = self._case
        changed = False
        offer = case.open_settlement
        if offer is not None and now >= offer.deadline:
            offer.end("lapsed", now)
            self._action(
                f"settlement:{offer.offer_id}:lapsed",
                "system",
                "settlement_lapsed",
                f"{self._money(offer.paid_toward_minor)} of {self._money(offer.amount_minor)} "
                f"paid by {offer.due_date}",
                None,
            )
            changed = True
        hold = case.stage_hold
        if hold is not None and now >= hold.resumes_at:
            case.stage_hold = None
            self._action("stage_hold", "system", "stage_hold_expired", f"until {hold.until}", None)
            changed = True
        return changed

    def _stage_hold_label(self, now: datetime) -> str | None:
        hold = self._case.stage_hold
        if not rules.stage_hold_active(hold, now):
            return None
        assert hold is not None
        return f"stage held until {hold.until} by {hold.approver}: {hold.reason}"
