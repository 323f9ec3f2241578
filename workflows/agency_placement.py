"""AgencyPlacementWorkflow: one placement of a loan with a collection agency, as its own story.

Started by LoanCollectionWorkflow as a child. It places the account, tells the parent where it went, waits
out the placement period on the collections clock, and recalls the account when the period ends or when the
parent asks (paid, closed, escalated to legal, written off).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.heartbeats import HEARTBEAT_TIMEOUT
    from domain.clock import CollectionsClock
    from workflows.retries import CASE_RETRY

AGENCY_PLACEMENT_WORKFLOW = "AgencyPlacementWorkflow"
RECALL_SIGNAL = "recall"
PLACED_SIGNAL = "agency_placed"  # sent to the parent once the agency has the account

RecallReason = Literal["paid", "closed", "expired", "escalated", "written_off", "disputed", "hold"]


class PlacementInput(BaseModel):
    request: contracts.PlacementRequest
    clock: CollectionsClock
    parent_workflow_id: str
    seal: str | None = None  # sent with every signal between parent and child (workflows.actors)


class RecallRequestSignal(BaseModel):
    reason: RecallReason


class PlacementOutcome(BaseModel):
    placement: contracts.PlacementReceipt | None  # None: no agency could take the account
    ended: RecallReason | Literal["not_placed"]


@workflow.defn(name=AGENCY_PLACEMENT_WORKFLOW)
class AgencyPlacementWorkflow:
    @workflow.init
    def __init__(self, input: PlacementInput) -> None:
        self._recall: RecallReason | None = None
        self._seal = input.seal

    @workflow.signal(name=RECALL_SIGNAL)
    def recall(self, request: RecallRequestSignal, seal: str | None = None) -> None:
        if seal is None or seal != self._seal:  # not from the parent: ignored, said in the log
            workflow.logger.warning("recall signal without the parent's seal ignored")
            return
        self._recall = self._recall or request.reason

    @workflow.run
    async def run(self, input: PlacementInput) -> PlacementOutcome:
        request = input.request
        try:
            placed = await workflow.execute_activity(
                contracts.PLACE_WITH_AGENCY,
                request,
                result_type=contracts.PlacementReceipt,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=CASE_RETRY,
                summary=f"place for {request.period_days} days",
            )
        except ActivityError:
            workflow.set_current_details(
                "No agency could take the account; it stays with in-house collectors."
            )
            return PlacementOutcome(placement=None, ended="not_placed")
        await workflow.get_external_workflow_handle(input.parent_workflow_id).signal(
            PLACED_SIGNAL, args=[placed, input.seal]
        )
        workflow.set_current_details(
            f"**Placed** with {placed.agency_name} until {placed.expires_at:%Y-%m-%d} ({placed.placement_id})"
        )
        remaining = placed.expires_at - input.clock.now(workflow.now())
        try:
            await workflow.wait_condition(
                lambda: self._recall is not None,
                timeout=input.clock.real_delay(remaining),
                timeout_summary=f"placement period ends {placed.expires_at:%Y-%m-%d}",
            )
        except TimeoutError:
            pass
        reason: RecallReason = self._recall or "expired"
        await workflow.execute_activity(
            contracts.RECALL_FROM_AGENCY,
            contracts.RecallRequest(
                idempotency_key=f"{placed.placement_id}:recall",
                loan_id=request.loan_id,
                placement_id=placed.placement_id,
                reason=reason,
            ),
            result_type=contracts.RecallReceipt,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=CASE_RETRY,
            summary=f"recall from {placed.agency_name}: {reason}",
        )
        workflow.set_current_details(f"**Recalled** from {placed.agency_name}: {reason}")
        return PlacementOutcome(placement=placed, ended=reason)
