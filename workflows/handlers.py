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
    from domain import arrangements as rules
    from workflows import projection
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

    def _conflict(self) -> str | None:
        case = self._rt.case
        return rules.arrangement_conflict(
            open_promise=case.open_promise is not None,
            open_plan=case.open_plan is not None,
            open_settlement=case.open_settlement is not None,
        )

    def _accepted(self) -> CollectionStatus:
        self._rt.wake()
        rt = self._rt
        return projection.status(rt.case, rt.now(), rt.next, rt.waiting_for)

    def _action(self, key: str, who: str, action: str, outcome: str | None, detail: str | None) -> None:
        self._rt.journal.action(f"{key}:{workflow.uuid4()}", self._rt.now(), who, action, outcome, detail)
