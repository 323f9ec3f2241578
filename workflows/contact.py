"""Contacting the borrower under the contact rules: messages, call and visit tasks, callbacks, claims.

Every contact asks `domain.contact_plan.choose_channel` first and does what it answers: send now on the step's
channel or the next one the borrower can be reached on, wait until the rules allow it (deferral, journaled),
or skip when no channel may ever be used. What went out is recorded as an attempt (the caps count it) and as a
contact made (letters and referrals cite only those).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.case import CollectionCase
    from domain.contact_plan import (
        POSTAL_CHANNELS,
        address_for,
        carries_validation_notice,
        choose_channel,
        claim_decision,
        outage_retry_at,
    )
    from domain.contact_rules import ContactAttempt, ContactChannel
    from domain.schedule import Occurrence
    from domain.strategy import Step
    from workflows import step_requests
    from workflows.retries import CONTACT_RETRY
    from workflows.runtime import ActivityFailed, CaseRuntime

# Tasks that reach the borrower the same way: a newer one replaces the open one (one call to make at a time,
# whether it came from the schedule, a callback or a broken promise).
TASK_FAMILY = {"call": "call", "promise_follow_up": "call", "visit": "visit"}
LETTER_MAY_GO = ""  # contact_step's answer for a letter the rules allow: the caller opens the legal case


class ContactDesk:
    def __init__(self, rt: CaseRuntime) -> None:
        self.rt = rt

    async def contact_step(self, occurrence: Occurrence, wanted: ContactChannel) -> str | None:
        """Ask the rules, then contact. The step's result; None when deferred (the step stays due);
        LETTER_MAY_GO for a lawyer's letter that may go now."""
        rt, case = self.rt, self.rt.case
        step = occurrence.step
        refused: set[str] = set()  # channels whose provider refused this step's message for good
        superseded: list[str] = []  # outbox keys of this step that never went out
        while True:
            now = rt.now()
            choice = choose_channel(case, wanted, now, exclude=frozenset(refused))
            decision = choice.decision
            if choice.channel is None:
                if wanted in POSTAL_CHANNELS and address_for(case, wanted) is None and not refused:
                    return await self.trace_address(occurrence, wanted)
                rt.journal.deferral(occurrence.key, now, wanted, decision.rule, decision.reason, None)
                return f"skipped: no allowed channel ({'; '.join(choice.closed) or decision.reason})"
            if not decision.allowed:
                assert decision.at is not None
                case.deferrals[occurrence.key] = decision.at
                rt.journal.deferral(
                    occurrence.key, now, choice.channel, decision.rule, decision.reason, decision.at
                )
                return None
            case.deferrals.pop(occurrence.key, None)
            if choice.channel == "letter":
                return LETTER_MAY_GO
            if choice.channel in ("call", "visit"):
                return await self.task_step(occurrence, choice.channel, step.summary)
            assert step.template is not None and choice.address is not None
            key = occurrence.key if choice.channel == step.channel else f"{occurrence.key}:{choice.channel}"
            notice = decision.requires_validation_notice and carries_validation_notice(choice.channel)
            request = step_requests.message_request(case, key, choice.channel, step.template, now)
            request = request.model_copy(
                update={
                    "supersedes": list(superseded),
                    "variables": {
                        **request.variables,
                        **({"validation_notice": "included"} if notice else {}),
                    },
                }
            )
            try:
                receipt = await rt.activity(
                    contracts.SEND_MESSAGE,
                    request,
                    contracts.MessageReceipt,
                    f"{choice.channel}: {step.summary or occurrence.key}",
                    CONTACT_RETRY,
                )
            except ActivityFailed as failed:
                now = rt.now()
                if failed.kind == contracts.CONTACT_POINT_INVALID:
                    self.unreachable(choice.address)  # fall back to the next channel
                elif failed.kind == contracts.MESSAGE_REJECTED:
                    refused.add(choice.channel)  # this message will never pass this provider: next channel
                else:
                    # The provider stayed down through every retry: the borrower is not unreachable. The
                    # outbox row keeps its key, so trying again later delivers it once, never twice.
                    retry_at = outage_retry_at(now)
                    case.deferrals[occurrence.key] = retry_at
                    rt.journal.deferral(
                        occurrence.key,
                        now,
                        choice.channel,
                        "provider_unavailable",
                        "channel provider unavailable",
                        retry_at,
                    )
                    return None
                rt.journal.attempt(key, now, choice.channel, step.template, None, "failed")
                superseded.append(request.idempotency_key)
                continue
            return self.sent(key, choice.channel, choice.address, step.template, receipt, notice)

    def sent(
        self,
        key: str,
        channel: ContactChannel,
        address: str,
        template: str,
        receipt: contracts.MessageReceipt,
        notice: bool,
    ) -> str:
        """A message went out: an attempt the caps count, a contact made, the notice if it carried it."""
        rt, case = self.rt, self.rt.case
        now = rt.now()
        case.add_attempt(ContactAttempt(channel=channel, at=now, address=address), now)
        case.contacted(channel, now)
        if notice:
            case.contact = case.contact.model_copy(update={"validation_notice_sent_at": now})
        rt.journal.attempt(key, now, channel, template, receipt.message_id, receipt.status)
        return f"{receipt.channel} {receipt.message_id} {receipt.status}"

    def unreachable(self, address: str) -> None:
        """Invalid number, bounced address: that contact point is closed for good."""
        case = self.rt.case
        case.contact = case.contact.model_copy(
            update={"unreachable_addresses": [*case.contact.unreachable_addresses, address]}
        )

    async def task_step(self, occurrence: Occurrence, kind: str, summary: str | None) -> str:
        """A call or visit (or review) task in the collectors' queue; the claim asks the rules again."""
        receipt = await self.open_task(occurrence.key, kind, summary or occurrence.key)
        return f"{kind} task {receipt.task_id}" if receipt else "failed: task not created"

    async def open_task(
        self, key: str, kind: str, note: str, due_at: datetime | None = None
    ) -> contracts.CollectorTaskReceipt | None:
        rt, case = self.rt, self.rt.case
        if kind in TASK_FAMILY:
            await self.supersede_tasks(kind)
        now = rt.now()
        receipt: contracts.CollectorTaskReceipt | None = await rt.try_activity(
            contracts.CREATE_COLLECTOR_TASK,
            step_requests.collector_task_request(case, key, kind, due_at or workflow.now(), now, note),
            contracts.CollectorTaskReceipt,
            f"{kind} task: {note}",
            CONTACT_RETRY,
        )
        if receipt is not None:
            case.open_tasks = {**case.open_tasks, receipt.task_id: key}
            case.task_kinds = {**case.task_kinds, receipt.task_id: kind}
            rt.journal.action(f"{key}:task", now, "system", f"{kind}_task_created", None, receipt.task_id)
        return receipt

    async def supersede_tasks(self, kind: str) -> None:
        """One open call (or visit) task per loan: a new one replaces those still open, so a collector never
        finds two calls to the same borrower in the queue (a callback beside a scheduled call, a repeat while
        the last one waits)."""
        case = self.rt.case
        family = TASK_FAMILY[kind]
        stale = [t for t in case.open_tasks if TASK_FAMILY.get(case.task_kinds.get(t, "")) == family]
        if stale:
            await self.cancel_tasks("superseded", stale)

    async def cancel_tasks(self, reason: str, task_ids: list[str] | None = None) -> list[str] | None:
        """Cancel open collector tasks (`task_ids`, or all of the loan's) with the reason, journaled. The step
        keys of the tasks cancelled; None when the activity failed (they stay open, tried again later)."""
        rt, case = self.rt, self.rt.case
        chosen = {t: key for t, key in case.open_tasks.items() if task_ids is None or t in task_ids}
        if not chosen:
            return []
        now = rt.now()
        receipt = await rt.try_activity(
            contracts.CANCEL_COLLECTOR_TASKS,
            contracts.CollectorTaskCancellation(
                idempotency_key=rt.journal.key(f"tasks:cancel:{reason}:{now.isoformat()}"),
                loan_id=case.loan.loan_id,
                reason=reason,
                step_keys=None if task_ids is None else sorted(set(chosen.values())),
            ),
            contracts.CollectorTaskCancelReceipt,
            f"cancel open collector tasks: {reason}",
            CONTACT_RETRY,
        )
        if receipt is None:
            return None
        forget(case, list(chosen) if task_ids is None else receipt.cancelled)
        if receipt.cancelled:
            rt.journal.action(
                f"tasks:cancelled:{now.isoformat()}",
                now,
                "system",
                "tasks_cancelled",
                reason,
                ", ".join(receipt.cancelled),
            )
        return [chosen[t] for t in receipt.cancelled if t in chosen]

    async def trace_address(self, occurrence: Occurrence, wanted: ContactChannel) -> str:
        """A visit or registered letter with no postal address on file: a collector traces the address."""
        receipt = await self.open_task(
            f"{occurrence.key}:trace", "trace_address", f"no postal address for the {wanted}: trace it"
        )
        task = receipt.task_id if receipt else "failed"
        return f"skipped: no postal address on file; trace-address task {task}"

    async def follow_up_broken(self, key: str) -> str:
        """The broken-promise follow-up message if the rules allow it now (a promise breaks at local midnight,
        so usually they do not); otherwise a follow-up task due when contact is allowed again."""
        rt, case = self.rt, self.rt.case
        rules = case.strategy.promise
        step = Step(
            id="broken_promise",
            dpd=0,
            stage=case.stage,
            action="message",
            channel=rules.broken_channel,
            template=rules.broken_template,
            summary="broken promise follow-up",
        )
        result = await self.contact_step(Occurrence(key=key, dpd=0, step=step), rules.broken_channel)
        if result is not None:
            return result
        allowed_at = case.deferrals.pop(key)
        # The follow-up is a call: due when the call rules allow it too (the US quiet period after a
        # conversation, the caps), not only when the message would have been allowed.
        call = claim_decision(case, "call", allowed_at)
        if not call.allowed and call.at is None:
            return f"message deferred by the contact rules; no follow-up call allowed ({call.reason})"
        allowed_at = allowed_at if call.allowed else max(allowed_at, call.at or allowed_at)
        due = workflow.now() + case.clock.real_delay(allowed_at - rt.now())
        task = await self.open_task(
            key, "promise_follow_up", "promise broken: follow up when contact is allowed", due
        )
        return f"message deferred by the contact rules; follow-up task {task.task_id if task else 'failed'}"

    async def call_back(self, due: datetime) -> None:
        """A callback the borrower asked for becomes a call task, within the rules."""
        rt, case = self.rt, self.rt.case
        now = rt.now()
        key = f"callback:{due.isoformat()}"
        case.callbacks = case.callbacks[1:]
        choice = choose_channel(case, "call", now)
        if choice.channel is None or not choice.decision.allowed:
            at = choice.decision.at if choice.channel is not None else None
            if at is not None:
                case.callbacks = sorted([*case.callbacks, at])
            rt.journal.deferral(key, now, "call", choice.decision.rule, choice.decision.reason, at)
            return
        receipt = await self.open_task(key, "call", "callback requested")
        rt.note(key, "callback", "collector_task", f"call task {receipt.task_id}" if receipt else "failed")


def forget(case: CollectionCase, task_ids: list[str]) -> None:
    """Tasks no longer open (cancelled): out of the case's list of open tasks."""
    gone = set(task_ids)
    case.open_tasks = {t: key for t, key in case.open_tasks.items() if t not in gone}
    case.task_kinds = {t: kind for t, kind in case.task_kinds.items() if t not in gone}
