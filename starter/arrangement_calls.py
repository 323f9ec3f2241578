"""The arrangement calls of `CollectionsStarter` (collectors and supervisors), each one update.

Every call returns the loan's CollectionStatus right after the change, or raises `RequestRefused` with the
workflow's reason (nothing changed) or `InvalidRequest` before sending anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel

from authority import Actor
from domain.arrangements import (
    AgencyRecall,
    Escalate,
    InterestWaiver,
    SettlementApproval,
    StageHold,
    StageHoldRelease,
)
from starter.requests import build_plan_request, check_loan_id
from starter.requests import validated as _validated
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


class ArrangementCalls:
    """Mixed into `CollectionsStarter`, which sends each request through its `arrangement` update."""

    async def arrangement(
        self, loan_id: str, update: str, request: BaseModel, *, actor: Actor | None = None
    ) -> CollectionStatus:
        raise NotImplementedError

    async def arrange_plan(
        self,
        loan_id: str,
        instalments: Sequence[tuple[int, date]],
        collector: str,
        note: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> CollectionStatus:
        """A repayment plan agreed with the borrower: (amount_minor, borrower-local due date) each."""
        check_loan_id(loan_id)
        request = build_plan_request(instalments, collector, note)
        return await self.arrangement(loan_id, REPAYMENT_PLAN_UPDATE, request, actor=actor)

    async def approve_settlement(
        self,
        loan_id: str,
        amount_minor: int,
        due_date: date,
        approver: str,
        note: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> CollectionStatus:
        """A settlement for less than the arrears; paid by `due_date`, the case ends as "settled"."""
        request = _validated(
            SettlementApproval,
            {"approver": approver, "amount_minor": amount_minor, "due_date": due_date, "note": note},
        )
        return await self.arrangement(loan_id, SETTLEMENT_UPDATE, request, actor=actor)

    async def waive_interest(
        self, loan_id: str, amount_minor: int, approver: str, reason: str, *, actor: Actor | None = None
    ) -> CollectionStatus:
        """Lower the arrears by `amount_minor`; a waiver that clears them closes the case as paid."""
        request = _validated(
            InterestWaiver, {"approver": approver, "amount_minor": amount_minor, "reason": reason}
        )
        return await self.arrangement(loan_id, WAIVE_INTEREST_UPDATE, request, actor=actor)

    async def hold_stage(
        self, loan_id: str, until: date, approver: str, reason: str, *, actor: Actor | None = None
    ) -> CollectionStatus:
        """No stage advance before `until` (borrower-local date, at most 90 days ahead)."""
        request = _validated(StageHold, {"approver": approver, "until": until, "reason": reason})
        return await self.arrangement(loan_id, HOLD_STAGE_UPDATE, request, actor=actor)

    async def release_stage_hold(
        self, loan_id: str, approver: str, reason: str, *, actor: Actor | None = None
    ) -> CollectionStatus:
        request = _validated(StageHoldRelease, {"approver": approver, "reason": reason})
        return await self.arrangement(loan_id, RELEASE_STAGE_HOLD_UPDATE, request, actor=actor)

    async def escalate_stage(
        self, loan_id: str, approver: str, reason: str, *, actor: Actor | None = None
    ) -> CollectionStatus:
        """Move the case to the next stage now; its first step runs as soon as the contact rules allow."""
        request = _validated(Escalate, {"approver": approver, "reason": reason})
        return await self.arrangement(loan_id, ESCALATE_STAGE_UPDATE, request, actor=actor)

    async def recall_from_agency(
        self, loan_id: str, approver: str, reason: str, *, actor: Actor | None = None
    ) -> CollectionStatus:
        """Take the account back from its agency (not re-placed automatically)."""
        request = _validated(AgencyRecall, {"approver": approver, "reason": reason})
        return await self.arrangement(loan_id, RECALL_FROM_AGENCY_UPDATE, request, actor=actor)
