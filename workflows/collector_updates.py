"""Collectors' holds, preferences and call outcomes: the update handlers of LoanCollectionWorkflow.

A mixin so the loan's workflow module keeps to its main loop. Each update's validator runs the same pure rule
(`domain.holds`) as its handler on the current state and discards the result: a rejected request reaches no
history and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain import holds
    from domain.case import CollectionCase
    from domain.contact_profiles import ContactProfile
    from domain.contact_rules import ContactState
    from domain.holds import (
        CeaseContact,
        CollectorRequest,
        ContactOutcome,
        HardshipHold,
        HoldRejected,
        OptOut,
        PreferredHours,
        RaiseDispute,
        ResolveDispute,
        StartBreathingSpace,
        StopCollection,
    )
    from workflows.messages import (
        BREATHING_SPACE_UPDATE,
        CEASE_CONTACT_UPDATE,
        CONTACT_OUTCOME_UPDATE,
        HARDSHIP_HOLD_UPDATE,
        OPT_OUT_UPDATE,
        PREFERRED_HOURS_UPDATE,
        RAISE_DISPUTE_UPDATE,
        RESOLVE_DISPUTE_UPDATE,
        STOP_COLLECTION_UPDATE,
        CloseRequest,
    )


class CollectorUpdates:
    """Needs from the workflow: its case, close request, change flag, journal and clock."""

    _case: CollectionCase
    _close_request: CloseRequest | None
    _changed: bool

    def _compliant(self) -> bool:
        raise NotImplementedError

    def _profile(self) -> ContactProfile:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def _journal(self, entry_kind: contracts.JournalKind, key: str, **data: str | int | bool | None) -> None:
        raise NotImplementedError

    def _check(self, change: Callable[[], object]) -> None:
        if not self._compliant():
            raise ApplicationError(
                "loan: started before contact rules existed; holds cannot be recorded on it",
                type="HoldRejected",
                non_retryable=True,
            )
        if self._case.closed or self._close_request is not None:
            raise ApplicationError("loan: collection is closed", type="HoldRejected", non_retryable=True)
        try:
            change()
        except HoldRejected as rejected:
            raise ApplicationError(str(rejected), type="HoldRejected", non_retryable=True) from None

    def _hold_changed(
        self,
        state: ContactState,
        kind: str,
        action: str,
        request: CollectorRequest,
        until: datetime | None = None,
    ) -> ContactState:
        self._case.contact = state
        self._changed = True
        self._journal(
            "hold",
            f"hold:{workflow.uuid4()}",
            kind=kind,
            action=action,
            until=until.isoformat() if until else None,
            detail=request.note,
            actor=request.collector,
        )
        return state

    @workflow.update(name=RAISE_DISPUTE_UPDATE)
    def raise_dispute(self, request: RaiseDispute) -> ContactState:
        return self._hold_changed(
            holds.raise_dispute(self._case.contact, request), "dispute", "raised", request
        )

    @raise_dispute.validator
    def _validate_raise_dispute(self, request: RaiseDispute) -> None:
        self._check(lambda: holds.raise_dispute(self._case.contact, request))

    @workflow.update(name=RESOLVE_DISPUTE_UPDATE)
    def resolve_dispute(self, request: ResolveDispute) -> ContactState:
        state = holds.resolve_dispute(self._case.contact, request, self._profile())
        return self._hold_changed(state, "dispute", "resolved", request)

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, request: ResolveDispute) -> None:
        self._check(lambda: holds.resolve_dispute(self._case.contact, request, self._profile()))

    @workflow.update(name=HARDSHIP_HOLD_UPDATE)
    def hardship_hold(self, request: HardshipHold) -> ContactState:
        state = holds.hardship_hold(self._case.contact, request, self._now())
        return self._hold_changed(state, "hardship", "raised", request, state.hardship_until)

    @hardship_hold.validator
    def _validate_hardship_hold(self, request: HardshipHold) -> None:
        self._check(lambda: holds.hardship_hold(self._case.contact, request, self._now()))

    @workflow.update(name=BREATHING_SPACE_UPDATE)
    def breathing_space(self, request: StartBreathingSpace) -> ContactState:
        state = holds.breathing_space(self._case.contact, request, self._profile(), self._now())
        return self._hold_changed(state, "breathing_space", "raised", request, state.breathing_space_until)

    @breathing_space.validator
    def _validate_breathing_space(self, request: StartBreathingSpace) -> None:
        self._check(lambda: holds.breathing_space(self._case.contact, request, self._profile(), self._now()))

    @workflow.update(name=CEASE_CONTACT_UPDATE)
    def cease_contact(self, request: CeaseContact) -> ContactState:
        return self._hold_changed(
            holds.cease_contact(self._case.contact, request), "cease_all", "raised", request
        )

    @cease_contact.validator
    def _validate_cease_contact(self, request: CeaseContact) -> None:
        self._check(lambda: holds.cease_contact(self._case.contact, request))

    @workflow.update(name=OPT_OUT_UPDATE)
    def opt_out(self, request: OptOut) -> ContactState:
        state = holds.opt_out(self._case.contact, request, self._case.contact_points())
        kind = "opt_out_channel" if request.channel else "opt_out_address"
        return self._hold_changed(state, kind, "raised", request)

    @opt_out.validator
    def _validate_opt_out(self, request: OptOut) -> None:
        self._check(lambda: holds.opt_out(self._case.contact, request, self._case.contact_points()))

    @workflow.update(name=PREFERRED_HOURS_UPDATE)
    def preferred_hours(self, request: PreferredHours) -> ContactState:
        state = holds.preferred_hours(self._case.contact, request)
        return self._hold_changed(state, "preferred_hours", "raised", request)

    @preferred_hours.validator
    def _validate_preferred_hours(self, request: PreferredHours) -> None:
        self._check(lambda: holds.preferred_hours(self._case.contact, request))

    @workflow.update(name=STOP_COLLECTION_UPDATE)
    def stop_collection(self, request: StopCollection) -> ContactState:
        state = holds.stop_collection(self._case.contact, request)
        return self._hold_changed(state, request.reason, "raised", request)

    @stop_collection.validator
    def _validate_stop_collection(self, request: StopCollection) -> None:
        self._check(lambda: holds.stop_collection(self._case.contact, request))

    @workflow.update(name=CONTACT_OUTCOME_UPDATE)
    def record_contact_outcome(self, request: ContactOutcome) -> ContactState:
        case = self._case
        now = self._now()
        effect = holds.contact_outcome(
            case.contact,
            request,
            now=now,
            default_address=case.loan.borrower.phone,
            contact_points=case.contact_points(),
        )
        case.contact = effect.state
        case.add_attempt(effect.attempt, now)
        if effect.callback_at is not None:
            case.callbacks = sorted([*case.callbacks, effect.callback_at])
        self._changed = True
        self._journal(
            "collector_action",
            f"outcome:{workflow.uuid4()}",
            collector=request.collector,
            action=f"{request.channel}_outcome",
            outcome=request.outcome,
            detail=request.note,
        )
        self._journal(
            "contact_attempt",
            f"attempt:{workflow.uuid4()}",
            channel=request.channel,
            template=None,
            content_ref=None,
            provider_id=None,
            status=request.outcome,
            address_kind="phone" if request.channel == "call" else "postal",
            actor=request.collector,
        )
        if request.outcome == "dispute_raised":
            self._journal(
                "hold",
                f"hold:{workflow.uuid4()}",
                kind="dispute",
                action="raised",
                until=None,
                detail=request.note,
                actor=request.collector,
            )
        return case.contact

    @record_contact_outcome.validator
    def _validate_record_contact_outcome(self, request: ContactOutcome) -> None:
        case = self._case
        self._check(
            lambda: holds.contact_outcome(
                case.contact,
                request,
                now=self._now(),
                default_address=case.loan.borrower.phone,
                contact_points=case.contact_points(),
            )
        )
