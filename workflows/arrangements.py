"""Collectors' and supervisors' arrangements: the update handlers of LoanCollectionWorkflow.

A mixin like `workflows.collector_updates`. Each validator runs the pure rule of `domain.arrangements` on the
current state and raises `ApplicationError(type="ArrangementRejected")` with a reason naming the field (a
rejected request reaches no history and changes nothing). Each handler only changes the case, journals a
`collector_action` entry (who: the collector or approver of the request) and wakes the main loop, which does
every side effect (timers, recall, the escalated stage's first step). Every update returns the loan's
`CollectionStatus` as it is right after the change.

"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import arrangements as rules
    from domain import borrower_plans
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
    from domain.decision import freezing_hold, schedule_of
    from domain.loan import format_money
    from domain.strategy import stage_rank
    from workflows.handlers import CaseHandlers
    from workflows.messages import (
        ESCALATE_STAGE_UPDATE,
        HOLD_STAGE_UPDATE,
        RECALL_FROM_AGENCY_UPDATE,
        RELEASE_STAGE_HOLD_UPDATE,
        REPAYMENT_PLAN_UPDATE,
        SETTLEMENT_UPDATE,
        WAIVE_INTEREST_UPDATE,
        CollectionStatus,
    )

REJECTED = "ArrangementRejected"


class ArrangementUpdates(CaseHandlers):
    def _refuse_arrangement(self, *reasons: Callable[[], str | None]) -> None:
        self._refuse(REJECTED, *reasons)

    def _today(self) -> date:
        return self._rt.case.local_today(self._rt.now())

    def _money(self, amount_minor: int) -> str:
        return format_money(amount_minor, self._rt.case.loan.currency)

    # -- repayment plan --------------------------------------------------------------------------------------

    @workflow.update(name=REPAYMENT_PLAN_UPDATE)
    def arrange_repayment_plan(
        self, request: RepaymentPlanRequest, assertion: str | None = None
    ) -> CollectionStatus:
        self._spend(assertion)
        case = self._rt.case
        plan = rules.build_plan(
            request,
            plan_id=str(workflow.uuid4()),
            currency=case.loan.currency,
            now=self._rt.now(),
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
    def _validate_repayment_plan(self, request: RepaymentPlanRequest, assertion: str | None = None) -> None:
        asserted = self._verify(REPAYMENT_PLAN_UPDATE, request, assertion)
        arrears = self._rt.case.arrears_minor
        self._refuse_arrangement(
            self._conflict,
            lambda: rules.plan_rejection(request, arrears_minor=arrears, today=self._today()),
            # The borrower (the page, or any client holding a borrower assertion) stays within the strategy's
            # bounds for the loan's band; a collector's plan keeps the collectors' rules above.
            lambda: (
                borrower_plans.first(
                    borrower_plans.plan_problems(
                        self._borrower_bounds(), request, arrears_minor=arrears, today=self._today()
                    )
                )
                if asserted.role == "borrower"
                else None
            ),
        )

    # -- settlement ------------------------------------------------------------------------------------------

    @workflow.update(name=SETTLEMENT_UPDATE)
    def approve_settlement(
        self, request: SettlementApproval, assertion: str | None = None
    ) -> CollectionStatus:
        self._spend(assertion)
        case = self._rt.case
        offer = SettlementOffer(
            offer_id=str(workflow.uuid4()),
            approver=request.approver,
            amount_minor=request.amount_minor,
            currency=case.loan.currency,
            due_date=request.due_date,
            deadline=rules.settlement_deadline(request.due_date, case.loan.zone),
            approved_at=self._rt.now(),
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
    def _validate_settlement(self, request: SettlementApproval, assertion: str | None = None) -> None:
        asserted = self._verify(SETTLEMENT_UPDATE, request, assertion)
        arrears = self._rt.case.arrears_minor
        self._refuse_arrangement(
            self._conflict,
            lambda: rules.settlement_rejection(request, arrears_minor=arrears, today=self._today()),
            # A borrower's own proposal needs the band's floor (none: refused) and stays at or above it.
            lambda: (
                borrower_plans.first(
                    borrower_plans.settlement_problems(
                        self._borrower_bounds(),
                        request.amount_minor,
                        request.due_date,
                        arrears_minor=arrears,
                        today=self._today(),
                    )
                )
                if asserted.role == "borrower"
                else None
            ),
        )

    # -- interest waiver -------------------------------------------------------------------------------------

    @workflow.update(name=WAIVE_INTEREST_UPDATE)
    def waive_interest(self, request: InterestWaiver, assertion: str | None = None) -> CollectionStatus:
        self._spend(assertion)
        case = self._rt.case
        waiver = Waiver(
            waiver_id=str(workflow.uuid4()),
            approver=request.approver,
            amount_minor=request.amount_minor,
            reason=request.reason,
            at=self._rt.now(),
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
    def _validate_waiver(self, request: InterestWaiver, assertion: str | None = None) -> None:
        self._verify(WAIVE_INTEREST_UPDATE, request, assertion)
        self._refuse_arrangement(
            lambda: rules.waiver_rejection(request, arrears_minor=self._rt.case.arrears_minor)
        )

    # -- stage hold ------------------------------------------------------------------------------------------

    @workflow.update(name=HOLD_STAGE_UPDATE)
    def hold_stage(self, request: StageHold, assertion: str | None = None) -> CollectionStatus:
        self._spend(assertion)
        case = self._rt.case
        case.stage_hold = StageHoldState(
            approver=request.approver,
            reason=request.reason,
            until=request.until,
            resumes_at=start_of_local_day(request.until, case.loan.zone),
            since=self._rt.now(),
        )
        self._action("stage_hold", request.approver, "stage_held", f"until {request.until}", request.reason)
        return self._accepted()

    @hold_stage.validator
    def _validate_hold_stage(self, request: StageHold, assertion: str | None = None) -> None:
        self._verify(HOLD_STAGE_UPDATE, request, assertion)
        self._refuse_arrangement(lambda: rules.stage_hold_rejection(request, today=self._today()))

    @workflow.update(name=RELEASE_STAGE_HOLD_UPDATE)
    def release_stage_hold(self, request: StageHoldRelease, assertion: str | None = None) -> CollectionStatus:
        self._spend(assertion)
        self._rt.case.stage_hold = None
        self._action("stage_hold", request.approver, "stage_hold_released", None, request.reason)
        return self._accepted()

    @release_stage_hold.validator
    def _validate_release_stage_hold(self, request: StageHoldRelease, assertion: str | None = None) -> None:
        self._verify(RELEASE_STAGE_HOLD_UPDATE, request, assertion)
        self._refuse_arrangement(lambda: rules.release_rejection(self._rt.case.stage_hold, self._rt.now()))

    # -- escalation ------------------------------------------------------------------------------------------

    @workflow.update(name=ESCALATE_STAGE_UPDATE)
    def escalate_stage(self, request: Escalate, assertion: str | None = None) -> CollectionStatus:
        """The case moves to the next stage now; that stage's first steps are due at once (the main loop runs
        them as soon as the contact rules, and any open arrangement or hold, allow)."""
        self._spend(assertion)
        case = self._rt.case
        schedule = schedule_of(case)
        targets = rules.escalation_targets(schedule, set(case.done), case.stage)
        stage = rules.escalation_stage(targets)
        for occurrence in schedule:
            if stage_rank(occurrence.step.stage) < stage_rank(stage):
                case.mark_done(occurrence.key)
        case.forced = [*case.forced, *(t.key for t in targets if t.key not in case.forced)]
        before = case.stage
        self._rt.enter_stage(stage, f"escalated by {request.approver}: {request.reason}")
        self._action(
            "escalation", request.approver, "stage_escalated", f"{before} -> {stage}", request.reason
        )
        return self._accepted()

    @escalate_stage.validator
    def _validate_escalate(self, request: Escalate, assertion: str | None = None) -> None:
        self._verify(ESCALATE_STAGE_UPDATE, request, assertion)
        case = self._rt.case
        self._refuse_arrangement(
            lambda: (  # a hold freezes escalation too: nobody escalates a disputed or protected debt
                f"loan: on hold ({hold[0]})" if (hold := freezing_hold(case, self._rt.now())) else None
            ),
            lambda: rules.escalation_rejection(
                stage=case.stage,
                targets=rules.escalation_targets(schedule_of(case), set(case.done), case.stage),
                hold=case.stage_hold,
                now=self._rt.now(),
            ),
        )

    # -- agency recall ---------------------------------------------------------------------------------------

    @workflow.update(name=RECALL_FROM_AGENCY_UPDATE)
    def recall_from_agency(self, request: AgencyRecall, assertion: str | None = None) -> CollectionStatus:
        """The main loop recalls the account through the placement child; it is not re-placed by itself."""
        self._spend(assertion)
        self._rt.case.recall_request = request
        placement = self._rt.case.placement
        self._action(
            "recall",
            request.approver,
            "agency_recall_requested",
            placement.agency_name if placement else None,
            request.reason,
        )
        return self._accepted()

    @recall_from_agency.validator
    def _validate_recall(self, request: AgencyRecall, assertion: str | None = None) -> None:
        self._verify(RECALL_FROM_AGENCY_UPDATE, request, assertion)
        self._refuse_arrangement(
            lambda: (
                "loan: a recall from the agency is already under way"
                if self._rt.case.recall_request is not None
                else None
            ),
            lambda: rules.recall_rejection(
                placed=self._children.placement is not None or self._rt.case.placement is not None
            ),
        )
