"""The loan's child workflows: the agency placement and the legal case.

Each is its own history an operator can read. The parent starts them, tells them of holds and of the end of
the case, and records how they ended. Child ids carry the cycle and a "/" loan ids cannot contain, so they
never collide with another loan's workflow.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain.case import Outcome
    from domain.decision import Children, end_reason, litigation_for_letter, replacement_step
    from domain.schedule import Occurrence
    from workflows import step_requests
    from workflows.agency_placement import (
        AGENCY_PLACEMENT_WORKFLOW,
        RECALL_SIGNAL,
        PlacementInput,
        PlacementOutcome,
        RecallReason,
        RecallRequestSignal,
    )
    from workflows.legal_case import (
        HOLD_SIGNAL,
        LEGAL_CASE_WORKFLOW,
        RELEASE_SIGNAL,
        WITHDRAW_SIGNAL,
        HoldRequest,
        LegalCaseInput,
        LegalOutcome,
        WithdrawRequest,
    )
    from workflows.messages import child_workflow_id
    from workflows.runtime import CaseRuntime


class ChildCases:
    def __init__(self, rt: CaseRuntime) -> None:
        self.rt = rt
        self.placement: workflow.ChildWorkflowHandle[Any, PlacementOutcome] | None = None
        self.legal: workflow.ChildWorkflowHandle[Any, LegalOutcome] | None = None
        # Seals: random ids each child gets in its input and sends with its signals (and we with ours), so
        # nobody outside the pair can forge them (workflows.actors). Children never span continue-as-new.
        self.placement_seal: str | None = None
        self.legal_seal: str | None = None

    def sealed_by_placement(self, seal: str | None) -> bool:
        return seal is not None and seal == self.placement_seal

    def sealed_by_legal(self, seal: str | None) -> bool:
        return seal is not None and seal == self.legal_seal

    def view(self) -> Children:
        return Children(
            placement_running=self.placement is not None and not self.placement.done(),
            placement_ended=self.placement is not None and self.placement.done(),
            legal_running=self.legal is not None and not self.legal.done(),
            legal_ended=self.legal is not None and self.legal.done(),
        )

    def running(self) -> bool:
        view = self.view()
        return view.placement_running or view.legal_running

    def _id(self, child: str) -> str:
        return child_workflow_id(workflow.info().workflow_id, self.rt.case.cycle, child)

    # -- agency placement -------------------------------------------------------------------------------

    async def place(self, occurrence: Occurrence) -> str:
        rt, case = self.rt, self.rt.case
        if self.placement is not None:
            return "already with an agency"
        assert occurrence.step.period_days
        case.placements += 1
        request = step_requests.placement_request(
            case,
            f"{occurrence.key}#{case.placements}",
            occurrence.step.period_days,
            rt.now(),
            exclude_agencies=case.placed_with,  # a re-placement never goes back to the same agency
        )
        child_id = self._id(f"placement-{case.placements}")
        seal = self.placement_seal = str(workflow.uuid4())  # before the child can signal
        try:
            self.placement = await workflow.start_child_workflow(
                AGENCY_PLACEMENT_WORKFLOW,
                PlacementInput(
                    request=request,
                    clock=case.clock,
                    parent_workflow_id=workflow.info().workflow_id,
                    seal=seal,
                ),
                id=child_id,
                task_queue=workflow.info().task_queue,
                result_type=PlacementOutcome,
                static_summary=f"Agency placement #{case.placements} of loan {case.loan.loan_id} "
                f"for {occurrence.step.period_days} days",
            )
        except WorkflowAlreadyStartedError:
            return f"not placed: child id {child_id} is taken"
        self.placement.add_done_callback(rt.wake)
        return f"placement #{case.placements} started: {child_id}"

    async def recall(self, reason: RecallReason) -> None:
        """Take the account back from the agency (if it has it) and record the end of the placement."""
        child = self.placement
        if child is None:
            return
        if not child.done():
            await child.signal(RECALL_SIGNAL, args=[RecallRequestSignal(reason=reason), self.placement_seal])
        await self.placement_ended(replace=False)

    async def placement_ended(self, replace: bool = True) -> None:
        rt, case = self.rt, self.rt.case
        assert self.placement is not None
        outcome = await self.placement
        self.placement = None
        case.placement = None
        placed = outcome.placement
        rt.note(
            f"placement:{case.placements}:{outcome.ended}",
            "agency_recall" if placed else "agency_placement",
            "recall_from_agency" if placed else "place_with_agency",
            f"{placed.agency_name}: {outcome.ended}" if placed else "no agency could take the account",
        )
        step = replacement_step(case, outcome.ended) if replace else None
        if step is not None:
            await self.place(Occurrence(key=step.id, dpd=step.dpd, step=step))

    # -- legal case -------------------------------------------------------------------------------------

    async def open_legal_case(self, occurrence: Occurrence) -> str:
        """The legal stage as a child: letter, registered mail, the whole response window, and then the
        litigation referral when the balance is worth it (that strategy step then belongs to the legal
        case)."""
        rt, case = self.rt, self.rt.case
        if self.legal is not None:
            return "legal case already open"
        await self.recall("escalated")
        now = rt.now()
        litigation = litigation_for_letter(case)
        referral = None
        if litigation is not None:
            referral = step_requests.litigation_request(case, litigation, now)
            case.mark_done(litigation.key)
        child_id = self._id("legal")
        seal = self.legal_seal = str(workflow.uuid4())
        try:
            self.legal = await workflow.start_child_workflow(
                LEGAL_CASE_WORKFLOW,
                LegalCaseInput(
                    letter=step_requests.lawyer_letter_request(case, occurrence, now),
                    timezone=case.loan.borrower.timezone,
                    clock=case.clock,
                    referral=referral,
                    parent_workflow_id=workflow.info().workflow_id,
                    seal=seal,
                ),
                id=child_id,
                task_queue=workflow.info().task_queue,
                result_type=LegalOutcome,
                static_summary=f"Legal case of loan {case.loan.loan_id}: lawyer's letter"
                + (", then litigation referral" if referral else ""),
            )
        except WorkflowAlreadyStartedError:
            return f"legal case not opened: child id {child_id} is taken"
        self.legal.add_done_callback(rt.wake)
        return f"legal case opened: {child_id}"

    async def hold_legal(self, reason: str) -> None:
        if self.legal is not None and not self.legal.done():
            await self.legal.signal(HOLD_SIGNAL, args=[HoldRequest(reason=reason), self.legal_seal])
            self.rt.case.legal_held = True

    async def release_legal(self) -> None:
        if self.legal is not None and not self.legal.done():
            await self.legal.signal(RELEASE_SIGNAL, self.legal_seal)
        self.rt.case.legal_held = False

    async def legal_ended(self) -> LegalOutcome:
        rt, case = self.rt, self.rt.case
        assert self.legal is not None
        outcome = await self.legal
        self.legal = None
        case.legal_held = False
        case.documents = [*case.documents, outcome.document_id]
        sent = (
            f"letter {outcome.document_id} ({outcome.tracking_reference})"
            if outcome.tracking_reference
            else (f"letter {outcome.document_id} not sent")
        )
        rt.note(f"legal:{outcome.ended}", "legal_case", "lawyer_letter", f"{sent}: {outcome.ended}")
        return outcome

    async def end(self, outcome: Outcome) -> None:
        """The case closes: the legal case is withdrawn and the agency recalls the account."""
        if self.legal is not None and not self.legal.done():
            await self.legal.signal(
                WITHDRAW_SIGNAL, args=[WithdrawRequest(reason=end_reason(outcome)), self.legal_seal]
            )
            await self.legal_ended()
        await self.recall(end_reason(outcome))  # nothing to do when no agency has the account
