"""The calls collectors and supervisors make through `CollectionsStarter`, each one workflow update.

Promises, holds and call outcomes, contact claims, and arrangements; an arrangement call returns the loan's
CollectionStatus right after the change, or raises `RequestRefused` with the workflow's reason (nothing
changed) or `InvalidRequest` before sending anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError

from authority import Actor
from domain.arrangements import (
    AgencyRecall,
    Escalate,
    InterestWaiver,
    SettlementApproval,
    StageHold,
    StageHoldRelease,
)
from domain.contact_rules import ContactState
from starter.errors import ContactNotAllowed, PromiseRejected, RequestRefused
from starter.requests import M, build_plan_request, build_promise, check_loan_id
from starter.requests import validated as _validated
from workflows.messages import (
    CLAIM_CONTACT_UPDATE,
    CONTACT_NOT_ALLOWED,
    ESCALATE_STAGE_UPDATE,
    HOLD_STAGE_UPDATE,
    PROMISE_UPDATE,
    RECALL_FROM_AGENCY_UPDATE,
    RELEASE_STAGE_HOLD_UPDATE,
    REPAYMENT_PLAN_UPDATE,
    SETTLEMENT_UPDATE,
    WAIVE_INTEREST_UPDATE,
    CollectionStatus,
    ContactClaim,
    ContactClaimAccepted,
    PromiseAccepted,
)


class ArrangementCalls:
    """Mixed into `CollectionsStarter`, which provides how a request is signed and sent."""

    def handle(self, loan_id: str) -> WorkflowHandle[Any, Any]:
        raise NotImplementedError

    def _assertion(self, loan_id: str, action: str, request: BaseModel, actor: Actor | None) -> str:
        raise NotImplementedError

    async def _explain(self, loan_id: str, error: RPCError) -> Exception:
        raise NotImplementedError

    async def _update(
        self,
        loan_id: str,
        update: str,
        request: BaseModel,
        result_type: type[M],
        actor: Actor | None = None,
        refused: Callable[[str, str], Exception] = RequestRefused,
        fallback: str = "refused",
    ) -> M:
        raise NotImplementedError

    async def arrangement(
        self, loan_id: str, update: str, request: BaseModel, *, actor: Actor | None = None
    ) -> CollectionStatus:
        """Any arrangement update (`workflows.messages.ARRANGEMENT_UPDATES`) with its `domain.arrangements`
        request model."""
        check_loan_id(loan_id)
        return await self._update(loan_id, update, request, CollectionStatus, actor)

    async def promise(
        self,
        loan_id: str,
        amount_minor: int,
        due_date: date,
        collector: str,
        note: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> PromiseAccepted:
        """Record a promise to pay (an update: the collector needs to know at once whether it stands).

        Raises `PromiseRejected` with the workflow's reason (e.g. amount above the arrears, date too far out).
        """
        check_loan_id(loan_id)
        request = build_promise(amount_minor, due_date, collector, note)
        return await self._update(
            loan_id, PROMISE_UPDATE, request, PromiseAccepted, actor, PromiseRejected, "rejected"
        )

    async def collector_action(
        self, loan_id: str, update: str, request: BaseModel, *, actor: Actor | None = None
    ) -> ContactState:
        """A hold, preference or call outcome (`workflows.messages.*_UPDATE` with its `domain.holds` model).

        An update, so the collector learns at once: raises `RequestRefused` with the workflow's reason
        (e.g. "verification_sent: ..."), and nothing changes.
        """
        check_loan_id(loan_id)
        return await self._update(loan_id, update, request, ContactState, actor)

    async def claim_contact(
        self,
        loan_id: str,
        task_id: str,
        channel: Literal["call", "visit"],
        collector: str,
        *,
        actor: Actor | None = None,
    ) -> ContactClaimAccepted:
        """Ask the contact rules, at the moment a collector takes a call or visit task, whether the borrower
        may be contacted now; accepted, the claim is the attempt (it counts toward the caps).

        Raises `ContactNotAllowed` (reason, allowed_at) when the rules refuse, `RequestRefused` for any other
        refusal, `UnknownLoan` / `CollectionClosed` when no collection is running for the loan.
        """
        check_loan_id(loan_id)
        request = _validated(ContactClaim, {"task_id": task_id, "channel": channel, "collector": collector})
        token = self._assertion(loan_id, CLAIM_CONTACT_UPDATE, request, actor)
        try:
            return await self.handle(loan_id).execute_update(
                CLAIM_CONTACT_UPDATE, args=[request, token], result_type=ContactClaimAccepted
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == CONTACT_NOT_ALLOWED:
                first = cause.details[0] if cause.details else None
                allowed_at = datetime.fromisoformat(first) if isinstance(first, str) else None
                raise ContactNotAllowed(loan_id, cause.message, allowed_at) from None
            reason = cause.message if isinstance(cause, ApplicationError | FailureError) else str(cause)
            raise RequestRefused(loan_id, reason or "refused") from None
        except RPCError as error:
            raise await self._explain(loan_id, error) from None

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
