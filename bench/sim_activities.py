"""Recording stand-ins for every activity, registered under the real names, with per-loan faults.

Each records what the workflow asked for into `Facts` (bench/sim_facts.py) at the attempt's scheduled time,
and answers as the real activity would. Faults come from the loan's scenario: a provider outage raises a
retryable error for a time window; a rejecting channel raises a non-retryable one of the scenario's type.
The journal stand-in refuses, entry by entry, what the real tables would refuse (the model validation and the
deferral CHECK) and writes the rest, so a bad entry shows up as `rejected` instead of taking its batch down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import contracts
from bench.sim_facts import (
    Facts,
    JournalRecord,
    Letter,
    Litigation,
    Mail,
    Message,
    Placement,
    Recall,
    Task,
    TaskCancel,
)
from bench.sim_scenario import LoanScenario

RECIPIENT_KIND = {"sms": "phone", "email": "email", "push": "app"}


def _now() -> datetime:
    return activity.info().current_attempt_scheduled_time


def _journal_problem(entry: contracts.JournalEntry) -> str | None:
    """Why the real journal would refuse this entry (the activity's validation, the tables' CHECKs)."""
    try:
        contracts.JOURNAL_DATA[entry.kind].model_validate(entry.data)
    except ValueError as error:
        return f"invalid {entry.kind}: {str(error).splitlines()[0]}"
    if any(isinstance(v, str) and "\x00" in v for v in entry.data.values()):
        return "NUL character in a text column"
    if entry.kind == "deferral" and entry.data.get("deferred_until") is not None:
        start = datetime.fromisoformat(str(entry.data["deferred_from"]))
        until = datetime.fromisoformat(str(entry.data["deferred_until"]))
        if until < start:
            return "deferral: deferred_until before deferred_from (CHECK journal_deferrals)"
    return None


class RecordingActivities:
    def __init__(self, facts: Facts, scenarios: dict[str, LoanScenario]) -> None:
        self.facts = facts
        self.scenarios = scenarios
        self._ids = 0
        self.open_tasks: dict[str, dict[str, str]] = {}  # loan id -> open task id -> step key
        # Validation notices generated for the post: (when, request, document id). Kept here, not in Facts,
        # so the letter invariants (a lawyer's letter before litigation) never count a notice as a letter.
        self.validation_notices: list[tuple[datetime, contracts.ValidationNoticeRequest, str]] = []

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    @activity.defn(name=contracts.SEND_MESSAGE)
    async def send_message(self, request: contracts.MessageRequest) -> contracts.MessageReceipt:
        self.facts.activity_calls += 1
        now = _now()
        scenario = self.scenarios.get(request.loan_id)
        error: ApplicationError | None = None
        if scenario is not None and any(o.start <= now < o.end for o in scenario.outages):
            error = ApplicationError("provider unavailable (simulated outage)", type="ProviderUnavailable")
        elif scenario is not None and request.channel in scenario.rejecting:
            kind = scenario.rejecting[request.channel]
            error = ApplicationError(f"{request.channel} rejected (simulated)", type=kind, non_retryable=True)
        message_id = None if error else self._id("m")
        self.facts.messages.append(
            Message(
                loan_id=request.loan_id,
                at=now,
                channel=request.channel,
                recipient_kind=RECIPIENT_KIND.get(request.channel, "none"),
                template=request.template,
                idempotency_key=request.idempotency_key,
                step_key=request.step_key,
                validation_notice="validation_notice" in request.variables,
                delivered=error is None,
                error=error.type if error else None,
                message_id=message_id,
            )
        )
        if error is not None:
            raise error
        assert message_id is not None
        return contracts.MessageReceipt(
            message_id=message_id, channel=request.channel, status="queued", duplicate=False
        )

    @activity.defn(name=contracts.CREATE_COLLECTOR_TASK)
    async def create_collector_task(
        self, request: contracts.CollectorTaskRequest
    ) -> contracts.CollectorTaskReceipt:
        self.facts.activity_calls += 1
        task_id = self._id("t")
        self.open_tasks.setdefault(request.loan_id, {})[task_id] = request.step_key
        self.facts.tasks.append(
            Task(
                loan_id=request.loan_id,
                at=_now(),
                due_at=request.due_at,
                kind=request.kind,
                step_key=request.step_key,
                idempotency_key=request.idempotency_key,
                task_id=task_id,
            )
        )
        return contracts.CollectorTaskReceipt(task_id=task_id, duplicate=False)

    @activity.defn(name=contracts.CANCEL_COLLECTOR_TASKS)
    async def cancel_collector_tasks(
        self, request: contracts.CollectorTaskCancellation
    ) -> contracts.CollectorTaskCancelReceipt:
        self.facts.activity_calls += 1
        keys = request.step_keys
        open_tasks = self.open_tasks.get(request.loan_id, {})
        cancelled = [t for t, key in open_tasks.items() if keys is None or key in keys]
        for task_id in cancelled:
            del open_tasks[task_id]
        self.facts.cancels.append(
            TaskCancel(
                loan_id=request.loan_id,
                at=_now(),
                reason=request.reason,
                step_keys=tuple(keys) if keys is not None else None,
                cancelled=tuple(cancelled),
            )
        )
        return contracts.CollectorTaskCancelReceipt(cancelled=cancelled)

    def worked(self, loan_id: str, task_id: str) -> None:
        """A collector finished the task (the driver recorded its outcome): it leaves the queue."""
        self.open_tasks.get(loan_id, {}).pop(task_id, None)

    @activity.defn(name=contracts.PLACE_WITH_AGENCY)
    async def place_with_agency(self, request: contracts.PlacementRequest) -> contracts.PlacementReceipt:
        self.facts.activity_calls += 1
        placement_id = self._id("pl")
        expires_at = request.placed_at + timedelta(days=request.period_days)
        self.facts.placements.append(
            Placement(
                loan_id=request.loan_id,
                at=_now(),
                idempotency_key=request.idempotency_key,
                placement_id=placement_id,
                expires_at=expires_at,
            )
        )
        return contracts.PlacementReceipt(
            placement_id=placement_id,
            agency_id=f"agency-{len(request.exclude_agencies) + 1}",
            agency_name="Simulated Agency",
            expires_at=expires_at,
            duplicate=False,
        )

    @activity.defn(name=contracts.RECALL_FROM_AGENCY)
    async def recall_from_agency(self, request: contracts.RecallRequest) -> contracts.RecallReceipt:
        self.facts.activity_calls += 1
        self.facts.recalls.append(
            Recall(request.loan_id, at=_now(), placement_id=request.placement_id, reason=request.reason)
        )
        return contracts.RecallReceipt(placement_id=request.placement_id, recalled=True)

    @activity.defn(name=contracts.GENERATE_LAWYER_LETTER)
    async def generate_lawyer_letter(
        self, request: contracts.LawyerLetterRequest
    ) -> contracts.LawyerLetterReceipt:
        self.facts.activity_calls += 1
        document_id = self._id("doc")
        self.facts.letters.append(
            Letter(
                loan_id=request.loan_id,
                at=_now(),
                idempotency_key=request.idempotency_key,
                document_id=document_id,
                issued_on=request.issued_on,
                respond_by=request.respond_by,
            )
        )
        return contracts.LawyerLetterReceipt(
            document_id=document_id, sha256="ab" * 32, size_bytes=1000, duplicate=False
        )

    @activity.defn(name=contracts.GENERATE_VALIDATION_NOTICE)
    async def generate_validation_notice(
        self, request: contracts.ValidationNoticeRequest
    ) -> contracts.ValidationNoticeReceipt:
        self.facts.activity_calls += 1
        document_id = self._id("notice")
        self.validation_notices.append((_now(), request, document_id))
        return contracts.ValidationNoticeReceipt(
            document_id=document_id, sha256="cd" * 32, size_bytes=1000, duplicate=False
        )

    @activity.defn(name=contracts.DISPATCH_REGISTERED_MAIL)
    async def dispatch_registered_mail(
        self, request: contracts.RegisteredMailRequest
    ) -> contracts.RegisteredMailReceipt:
        self.facts.activity_calls += 1
        self.facts.mails.append(Mail(loan_id=request.loan_id, at=_now(), document_id=request.document_id))
        return contracts.RegisteredMailReceipt(tracking_reference="RR000000000GB", duplicate=False)

    @activity.defn(name=contracts.REFER_TO_LITIGATION)
    async def refer_to_litigation(
        self, request: contracts.LitigationReferralRequest
    ) -> contracts.LitigationReferralReceipt:
        self.facts.activity_calls += 1
        self.facts.litigations.append(
            Litigation(
                loan_id=request.loan_id,
                at=_now(),
                idempotency_key=request.idempotency_key,
                document_ids=tuple(request.document_ids),
            )
        )
        return contracts.LitigationReferralReceipt(case_id=self._id("case"), duplicate=False)

    @activity.defn(name=contracts.RECORD_JOURNAL)
    async def record_journal(self, batch: contracts.JournalBatch) -> contracts.JournalReceipt:
        self.facts.activity_calls += 1
        now = _now()
        written = 0
        for entry in batch.entries:
            problem = _journal_problem(entry)
            written += problem is None
            self.facts.journal.append(
                JournalRecord(
                    loan_id=entry.loan_id,
                    at=now,
                    kind=entry.kind,
                    key=entry.idempotency_key,
                    entry_at=entry.at,
                    data=dict(entry.data),
                    rejected=problem,
                )
            )
        return contracts.JournalReceipt(written=written, duplicates=0)

    def all(self) -> list[Any]:
        return [
            self.send_message,
            self.create_collector_task,
            self.cancel_collector_tasks,
            self.place_with_agency,
            self.recall_from_agency,
            self.generate_lawyer_letter,
            self.generate_validation_notice,
            self.dispatch_registered_mail,
            self.refer_to_litigation,
            self.record_journal,
        ]
