"""What the update handlers of LoanCollectionWorkflow share: the case runtime and a way to refuse.

The collectors' and supervisors' updates live in two modules by subject (`collector_updates`,
`arrangements`); both build on this class, which the workflow sets up in its `__init__` (`_rt`, `_children`).
Validators run the same pure rule as their handler on the current state: a refused request reaches no history
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from authority.tokens import Assertion, Refused, claims_of
    from domain import arrangements as rules
    from domain.borrower_plans import PlanBounds, band_for
    from workflows import actors, projection
    from workflows.children import ChildCases
    from workflows.messages import CollectionStatus
    from workflows.runtime import CaseRuntime


class CaseHandlers:
    _rt: CaseRuntime
    _children: ChildCases

    def _reject(self, reason: str, kind: str, *details: Any) -> NoReturn:
        raise ApplicationError(reason, *details, type=kind, non_retryable=True)

    def _refuse(self, kind: str, *reasons: Callable[[], str | None]) -> None:
        """Raise the first reason that applies; a closed (or closing) case refuses everything first."""
        for check in (lambda: rules.closed_rejection(self._rt.case.closing), *reasons):
            reason = check()
            if reason:
                self._reject(reason, kind)

    def _borrower_bounds(self) -> PlanBounds | None:
        """The strategy's band for this loan's arrears (None: the borrower may arrange no plan alone)."""
        case = self._rt.case
        return band_for(case.strategy.borrower_plans, case.arrears_minor, case.loan.currency)

    def _conflict(self) -> str | None:
        case = self._rt.case
        return rules.arrangement_conflict(
            open_promise=case.open_promise is not None,
            open_plan=case.open_plan is not None,
            open_settlement=case.open_settlement is not None,
        )

    def _accepted(self) -> CollectionStatus:
        self._rt.wake()
        return self._status()

    def _status(self) -> CollectionStatus:
        rt = self._rt
        status = projection.status(rt.case, rt.now(), rt.next, rt.waiting_for)
        return status.model_copy(update={"refused_signals": rt.refused_signals})

    # -- who acts (workflows.actors) ---------------------------------------------------------------------

    def _verify(self, action: str, request: object, assertion: str | None) -> Assertion:
        """In a validator: refuse (nothing changes) unless a verified actor may send this request; the
        verified assertion (its role decides whose rules apply, e.g. the borrower's bounds)."""
        try:
            return actors.check(action, request, assertion, self._rt.used_assertions)
        except Refused as refused:
            self._reject(str(refused), actors.ASSERTION_REFUSED)

    def _spend(self, assertion: str | None) -> None:
        """In an update handler: the token, verified by the validator, is good for this one request."""
        if assertion:
            actors.spend(self._rt.used_assertions, claims_of(assertion), workflow.now())

    def _signal_verified(self, action: str, request: object, assertion: str | None) -> bool:
        """In a signal handler: False (and the refusal journaled and counted) unless verified. Runs again on
        replay, on the same trust ring (authority.trust)."""
        try:
            actors.check(action, request, assertion, {})  # payment and close are idempotent: no nonce kept
        except Refused as refused:
            self._refused_signal(action, refused.reason)
            return False
        return True

    def _refused_signal(self, action: str, reason: str) -> None:
        rt = self._rt
        rt.refused_signals += 1
        rt.journal.action(
            f"refused:{workflow.uuid4()}", rt.now(), actors.UNVERIFIED, actors.SIGNAL_REFUSED, action, reason
        )
        workflow.logger.warning("signal %s refused: %s", action, reason)
        rt.wake()  # nothing changed, but the loop's next wait writes the journal entry now

    def _action(self, key: str, who: str, action: str, outcome: str | None, detail: str | None) -> None:
        self._rt.journal.action(f"{key}:{workflow.uuid4()}", self._rt.now(), who, action, outcome, detail)
