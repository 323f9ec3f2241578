"""Performing one strategy step: the contact it makes, the task it opens, the child it starts.

The decision (domain.decision) chose the step; this module only carries it out and records the result.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.contact_plan import contact_channel
    from domain.schedule import Occurrence
    from workflows.children import ChildCases
    from workflows.contact import LETTER_MAY_GO, ContactDesk
    from workflows.runtime import CaseRuntime

WRITE_OFF = "write_off"


class StepRunner:
    def __init__(self, rt: CaseRuntime, desk: ContactDesk, children: ChildCases) -> None:
        self.rt = rt
        self.desk = desk
        self.children = children

    async def run(self, occurrence: Occurrence) -> str | None:
        """Run one due step. Returns WRITE_OFF when the case is to be written off, else None (the step was
        done, or deferred by the contact rules and stays due)."""
        rt, case = self.rt, self.rt.case
        step = occurrence.step
        rt.waiting_for = f"running {occurrence.key}"
        if step.action == "write_off":
            case.mark_done(occurrence.key)
            rt.record(occurrence, rt.now(), "written off")
            return WRITE_OFF
        channel = contact_channel(step)
        if channel is not None:
            result = await self.desk.contact_step(occurrence, channel)
            if result is None:
                return None  # deferred by the contact rules: the step stays due
            rt.enter_stage(step.stage)
            if result == LETTER_MAY_GO:
                result = await self.children.open_legal_case(occurrence)
        else:
            rt.enter_stage(step.stage)
            if step.action == "collector_task":
                assert step.task
                result = await self.desk.task_step(occurrence, step.task, step.summary)
            elif step.action == "place_with_agency" and case.contact.cease_all:
                result = "skipped: the borrower asked to cease contact; no agency may contact them"
            elif step.action == "place_with_agency":
                result = await self.children.place(occurrence)
            else:
                # refer_to_litigation: only the legal case files, after its letter and window
                # (domain.decision.letter_before_litigation); a step that reaches here ran no referral.
                result = "skipped: litigation is referred by the legal case after its letter"
        case.mark_done(occurrence.key)
        rt.record(occurrence, rt.now(), result)
        return None

    def skip(self, occurrence: Occurrence) -> None:
        self.rt.case.mark_done(occurrence.key)
        self.rt.record(
            occurrence, self.rt.now(), "skipped: superseded by a later step (joined late or resumed)"
        )
