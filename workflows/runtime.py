"""What every part of the loan's workflow shares: the case, its journal, the clock and a way to wake the loop.

The workflow class owns one `CaseRuntime`; the update handlers, the contact performer and the children manager
work through it, so no part reaches into another's fields and nothing keeps state outside the case (which is
what continue-as-new carries).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.case import CollectionCase, StepRecord
    from domain.schedule import Occurrence
    from domain.strategy import Stage, stage_rank
    from workflows.journal import CaseJournal
    from workflows.messages import NextStep

ACTIVITY_TIMEOUT = timedelta(seconds=30)


class ActivityFailed(Exception):
    """An activity failed for good; `kind` is its error type (the caller chooses the fallback)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class CaseRuntime:
    def __init__(
        self,
        case: CollectionCase,
        pending: list[contracts.JournalEntry],
        used_assertions: dict[str, datetime] | None = None,
        refused_signals: int = 0,
    ) -> None:
        self.case = case
        # Nonces of signed updates already applied, until their tokens expire (workflows.actors); and how
        # many signals were refused as unverified. Both travel on continue-as-new.
        self.used_assertions = dict(used_assertions or {})
        self.refused_signals = refused_signals
        self.journal = CaseJournal(case, pending)
        self.changed = False  # set by handlers: cuts the loop's current wait short
        self.waiting_for = "starting"
        self.next: NextStep | None = None  # the strategy's next step, for status (None while not waiting)

    def now(self) -> datetime:
        """Collections time (demo loans run a scaled clock)."""
        return self.case.clock.now(workflow.now())

    def wake(self, _: object = None) -> None:
        self.changed = True

    async def activity(
        self,
        name: str,
        request: object,
        result_type: type,
        summary: str,
        retry: RetryPolicy,
        start_to_close: timedelta = ACTIVITY_TIMEOUT,
        local: bool = False,
    ) -> Any:
        """Run an activity; raises ActivityFailed with the error type when it failed for good.

        `local`: in this worker, inside the workflow task that asked for it (one marker event, no activity
        task, no extra workflow task): for short idempotent writes to our own database, such as the journal.
        """
        run = workflow.execute_local_activity if local else workflow.execute_activity
        try:
            return await run(
                name,
                request,
                result_type=result_type,
                start_to_close_timeout=start_to_close,
                retry_policy=retry,
                summary=summary[:200],
            )
        except ActivityError as error:
            cause = error.cause
            kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
            workflow.logger.warning("activity %s failed for good: %s", name, kind)
            raise ActivityFailed(kind) from None

    async def try_activity(
        self, name: str, request: object, result_type: type, summary: str, retry: RetryPolicy
    ) -> Any:
        """Like `activity`, None when it failed for good."""
        try:
            return await self.activity(name, request, result_type, summary, retry)
        except ActivityFailed:
            return None

    def record(self, occurrence: Occurrence, at: datetime, result: str) -> None:
        self.case.record(
            StepRecord(
                key=occurrence.key,
                step_id=occurrence.step.id,
                action=occurrence.step.action,
                stage=occurrence.step.stage,
                at=at,
                result=result,
            )
        )

    def note(self, key: str, step_id: str, action: str, result: str) -> None:
        """A record of something the case did that is not a strategy step (recall, callback, legal case)."""
        case = self.case
        case.record(
            StepRecord(
                key=key, step_id=step_id, action=action, stage=case.stage, at=self.now(), result=result
            )
        )

    def enter_stage(self, stage: Stage, reason: str = "strategy step due") -> None:
        case = self.case
        if stage_rank(stage) <= stage_rank(case.stage):
            return
        before, case.stage = case.stage, stage
        now = self.now()
        self.journal.stage(now, before, stage, case.dpd(now), reason)
