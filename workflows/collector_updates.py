"""Collectors' holds, preferences, call outcomes and claims: update handlers of LoanCollectionWorkflow.

Each update's validator runs the same pure rule (`domain.holds`, `domain.contact_plan`) as its handler on the
current state and discards the result: a rejected request reaches no history and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import holds
    from domain.contact_plan import address_for, claim_decision
    from domain.contact_profiles import ContactProfile
    from domain.contact_rules import ContactAttempt, ContactState
    from domain.holds import (
        CeaseContact,
        CollectorRequest,
        ContactOutcome,
        ContactPointUnreachable,
        HardshipHold,
        HoldRejected,
        OptOut,
        PreferredHours,
        RaiseDispute,
        ResolveDispute,
        StartBreathingSpace,
        StopCollection,
    )
    from workflows.handlers import CaseHandlers
    from workflows.messages import (
        BREATHING_SPACE_UPDATE,
        CEASE_CONTACT_UPDATE,
        CLAIM_CONTACT_UPDATE,
        CONTACT_NOT_ALLOWED,
        CONTACT_OUTCOME_UPDATE,
        CONTACT_POINT_UNREACHABLE_UPDATE,
        HARDSHIP_HOLD_UPDATE,
        OPT_OUT_UPDATE,
        PREFERRED_HOURS_UPDATE,
        RAISE_DISPUTE_UPDATE,
        RESOLVE_DISPUTE_UPDATE,
        STOP_COLLECTION_UPDATE,
        ContactClaim,
        ContactClaimAccepted,
    )

HOLD_REJECTED = "HoldRejected"


class CollectorUpdates(CaseHandlers):
    def _check(self, change: Callable[[], object]) -> None:
        self._refuse(HOLD_REJECTED)
        try:
            change()
        except HoldRejected as rejected:
            self._reject(str(rejected), HOLD_REJECTED)

    def _hold_changed(
        self,
        state: ContactState,
        kind: str,
        action: str,
        request: CollectorRequest,
        until: datetime | None = None,
    ) -> ContactState:
        rt = self._rt
        rt.case.contact = state
        rt.wake()
        rt.journal.hold(
            f"hold:{workflow.uuid4()}", rt.now(), kind, action, until, request.note, request.collector
        )
        return state

    @workflow.update(name=RAISE_DISPUTE_UPDATE)
    def raise_dispute(self, request: RaiseDispute, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        return self._hold_changed(
            holds.raise_dispute(self._rt.case.contact, request), "dispute", "raised", request
        )

    @raise_dispute.validator
    def _validate_raise_dispute(self, request: RaiseDispute, assertion: str | None = None) -> None:
        self._verify(RAISE_DISPUTE_UPDATE, request, assertion)
        self._check(lambda: holds.raise_dispute(self._rt.case.contact, request))

    @workflow.update(name=RESOLVE_DISPUTE_UPDATE)
    def resolve_dispute(self, request: ResolveDispute, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        state = holds.resolve_dispute(self._rt.case.contact, request, self._profile())
        return self._hold_changed(state, "dispute", "resolved", request)

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, request: ResolveDispute, assertion: str | None = None) -> None:
        self._verify(RESOLVE_DISPUTE_UPDATE, request, assertion)
        self._check(lambda: holds.resolve_dispute(self._rt.case.contact, request, self._profile()))

    @workflow.update(name=HARDSHIP_HOLD_UPDATE)
    def hardship_hold(self, request: HardshipHold, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        state = holds.hardship_hold(self._rt.case.contact, request, self._rt.now())
        return self._hold_changed(state, "hardship", "raised", request, state.hardship_until)

    @hardship_hold.validator
    def _validate_hardship_hold(self, request: HardshipHold, assertion: str | None = None) -> None:
        asserted = self._verify(HARDSHIP_HOLD_UPDATE, request, assertion)
        if asserted.role == "borrower":
            self._check(lambda: holds.borrower_hardship(self._profile(), request))
        self._check(lambda: holds.hardship_hold(self._rt.case.contact, request, self._rt.now()))

    @workflow.update(name=BREATHING_SPACE_UPDATE)
    def breathing_space(self, request: StartBreathingSpace, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        state = holds.breathing_space(self._rt.case.contact, request, self._profile(), self._rt.now())
        return self._hold_changed(state, "breathing_space", "raised", request, state.breathing_space_until)

    @breathing_space.validator
    def _validate_breathing_space(self, request: StartBreathingSpace, assertion: str | None = None) -> None:
        self._verify(BREATHING_SPACE_UPDATE, request, assertion)
        self._check(
            lambda: holds.breathing_space(self._rt.case.contact, request, self._profile(), self._rt.now())
        )

    @workflow.update(name=CEASE_CONTACT_UPDATE)
    def cease_contact(self, request: CeaseContact, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        return self._hold_changed(
            holds.cease_contact(self._rt.case.contact, request), "cease_all", "raised", request
        )

    @cease_contact.validator
    def _validate_cease_contact(self, request: CeaseContact, assertion: str | None = None) -> None:
        self._verify(CEASE_CONTACT_UPDATE, request, assertion)
        self._check(lambda: holds.cease_contact(self._rt.case.contact, request))

    @workflow.update(name=OPT_OUT_UPDATE)
    def opt_out(self, request: OptOut, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        case = self._rt.case
        state = holds.opt_out(case.contact, request, case.contact_points())
        kind = "opt_out_channel" if request.channel else "opt_out_address"
        return self._hold_changed(state, kind, "raised", request)

    @opt_out.validator
    def _validate_opt_out(self, request: OptOut, assertion: str | None = None) -> None:
        self._verify(OPT_OUT_UPDATE, request, assertion)
        case = self._rt.case
        self._check(lambda: holds.opt_out(case.contact, request, case.contact_points()))

    @workflow.update(name=CONTACT_POINT_UNREACHABLE_UPDATE)
    def contact_point_unreachable(
        self, request: ContactPointUnreachable, assertion: str | None = None
    ) -> ContactState:
        """A provider's receipt: the number or address is closed for good; the next step falls back."""
        self._spend(assertion)
        case = self._rt.case
        state = holds.contact_point_unreachable(case.contact, request, case.contact_points())
        if state is not case.contact:
            case.contact = state
            # The provider's code as detail; the address itself stays out of the journal.
            self._action(
                "unreachable", "provider", "contact_point_unreachable", request.channel, request.reason
            )
            self._rt.wake()
        return state

    @contact_point_unreachable.validator
    def _validate_contact_point_unreachable(
        self, request: ContactPointUnreachable, assertion: str | None = None
    ) -> None:
        self._verify(CONTACT_POINT_UNREACHABLE_UPDATE, request, assertion)
        case = self._rt.case
        self._check(lambda: holds.contact_point_unreachable(case.contact, request, case.contact_points()))

    @workflow.update(name=PREFERRED_HOURS_UPDATE)
    def preferred_hours(self, request: PreferredHours, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        state = holds.preferred_hours(self._rt.case.contact, request)
        return self._hold_changed(state, "preferred_hours", "raised", request)

    @preferred_hours.validator
    def _validate_preferred_hours(self, request: PreferredHours, assertion: str | None = None) -> None:
        self._verify(PREFERRED_HOURS_UPDATE, request, assertion)
        self._check(lambda: holds.preferred_hours(self._rt.case.contact, request))

    @workflow.update(name=STOP_COLLECTION_UPDATE)
    def stop_collection(self, request: StopCollection, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        state = holds.stop_collection(self._rt.case.contact, request)
        return self._hold_changed(state, request.reason, "raised", request)

    @stop_collection.validator
    def _validate_stop_collection(self, request: StopCollection, assertion: str | None = None) -> None:
        self._verify(STOP_COLLECTION_UPDATE, request, assertion)
        self._check(lambda: holds.stop_collection(self._rt.case.contact, request))

    # -- human contact --------------------------------------------------------------------------------------

    @workflow.update(name=CLAIM_CONTACT_UPDATE)
    def claim_contact(self, claim: ContactClaim, assertion: str | None = None) -> ContactClaimAccepted:
        """A collector takes a call or visit task: that is an attempt (the caps count it) from this moment."""
        self._spend(assertion)
        rt, case = self._rt, self._rt.case
        now = rt.now()
        address = address_for(case, claim.channel) or ""
        case.add_attempt(ContactAttempt(channel=claim.channel, at=now, address=address, claim=True), now)
        case.contacted(claim.channel, now)
        rt.journal.attempt(
            f"claim:{claim.task_id}", now, claim.channel, None, claim.task_id, "claimed", claim.collector
        )
        rt.wake()
        return ContactClaimAccepted(task_id=claim.task_id, attempt_at=now)

    @claim_contact.validator
    def _validate_claim(self, claim: ContactClaim, assertion: str | None = None) -> None:
        self._verify(CLAIM_CONTACT_UPDATE, claim, assertion)
        self._refuse(CONTACT_NOT_ALLOWED)
        decision = claim_decision(self._rt.case, claim.channel, self._rt.now())
        if not decision.allowed:
            when = decision.at.isoformat() if decision.at else None
            self._reject(
                f"{claim.channel}: {decision.reason}"
                + (f"; allowed from {when}" if when else "; not allowed"),
                CONTACT_NOT_ALLOWED,
                when,
            )

    @workflow.update(name=CONTACT_OUTCOME_UPDATE)
    def record_contact_outcome(self, request: ContactOutcome, assertion: str | None = None) -> ContactState:
        self._spend(assertion)
        rt, case = self._rt, self._rt.case
        now = rt.now()
        effect = holds.contact_outcome(
            case.contact,
            request,
            now=now,
            default_address=case.loan.borrower.phone,
            contact_points=case.contact_points(),
        )
        case.contact = effect.state
        case.add_outcome_attempt(effect.attempt, now)
        if effect.callback_at is not None:
            case.callbacks = sorted([*case.callbacks, effect.callback_at])
        rt.wake()
        rt.journal.action(
            f"outcome:{workflow.uuid4()}",
            now,
            request.collector,
            f"{request.channel}_outcome",
            request.outcome,
            request.note,
        )
        rt.journal.attempt(
            f"outcome:{workflow.uuid4()}",
            now,
            request.channel,
            None,
            None,
            request.outcome,
            request.collector,
        )
        if request.outcome == "dispute_raised":
            rt.journal.hold(
                f"hold:{workflow.uuid4()}", now, "dispute", "raised", None, request.note, request.collector
            )
        return case.contact

    @record_contact_outcome.validator
    def _validate_record_contact_outcome(self, request: ContactOutcome, assertion: str | None = None) -> None:
        self._verify(CONTACT_OUTCOME_UPDATE, request, assertion)
        case = self._rt.case
        self._check(
            lambda: holds.contact_outcome(
                case.contact,
                request,
                now=self._rt.now(),
                default_address=case.loan.borrower.phone,
                contact_points=case.contact_points(),
            )
        )

    def _profile(self) -> ContactProfile:
        assert self._rt.case.profile is not None
        return self._rt.case.profile
