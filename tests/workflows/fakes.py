"""Stand-in activities registered under the real names: they record what the workflow asked for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import contracts


@dataclass
class FakeActivities:
    calls: list[tuple[str, object]] = field(default_factory=list)
    failing_channels: set[str] = field(default_factory=set)
    no_agency: bool = False
    outage_failures: int = 0  # the next N send_message attempts fail as a provider outage would
    times: list[datetime] = field(default_factory=list)
    journal: list[contracts.JournalEntry] = field(default_factory=list)
    journal_keys: set[str] = field(default_factory=set)
    journal_errors: list[str] = field(default_factory=list)
    snapshots: list[contracts.PortfolioSnapshot] = field(default_factory=list)
    journal_delay: float = 0.0  # real seconds: lets a test land a signal while the journal is written
    recall_delay: float = 0.0  # real seconds: lets a test land an update while an agency recall runs
    rejecting_channels: set[str] = field(default_factory=set)  # the provider refuses the message for good
    open_tasks: dict[str, str] = field(default_factory=dict)  # task id -> loan id, as the queue holds them
    cancelled: list[contracts.CollectorTaskCancellation] = field(default_factory=list)

    def _log(self, name: str, request: object) -> None:
        self.calls.append((name, request))
        self.times.append(activity.info().current_attempt_scheduled_time)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list:
        return [request for n, request in self.calls if n == name]

    @activity.defn(name=contracts.SEND_MESSAGE)
    async def send_message(self, request: contracts.MessageRequest) -> contracts.MessageReceipt:
        self._log(contracts.SEND_MESSAGE, request)
        if self.outage_failures > 0:
            self.outage_failures -= 1
            raise RuntimeError("provider down")  # retryable, like a 503 from a gateway
        if request.channel in self.failing_channels:
            raise ApplicationError("bounced", type=contracts.CONTACT_POINT_INVALID, non_retryable=True)
        if request.channel in self.rejecting_channels:
            raise ApplicationError("HTTP 422", type=contracts.MESSAGE_REJECTED, non_retryable=True)
        return contracts.MessageReceipt(
            message_id=f"m-{len(self.calls)}", channel=request.channel, status="queued", duplicate=False
        )

    @activity.defn(name=contracts.CREATE_COLLECTOR_TASK)
    async def create_collector_task(
        self, request: contracts.CollectorTaskRequest
    ) -> contracts.CollectorTaskReceipt:
        self._log(contracts.CREATE_COLLECTOR_TASK, request)
        task_id = f"t-{len(self.calls)}"
        self.open_tasks[task_id] = request.loan_id
        return contracts.CollectorTaskReceipt(task_id=task_id, duplicate=False)

    @activity.defn(name=contracts.CANCEL_COLLECTOR_TASKS)
    async def cancel_collector_tasks(
        self, request: contracts.CollectorTaskCancellation
    ) -> contracts.CollectorTaskCancelReceipt:
        self._log(contracts.CANCEL_COLLECTOR_TASKS, request)
        self.cancelled.append(request)
        ids = [t for t, loan in self.open_tasks.items() if loan == request.loan_id]
        for task_id in ids:
            del self.open_tasks[task_id]
        return contracts.CollectorTaskCancelReceipt(cancelled=ids)

    @activity.defn(name=contracts.PLACE_WITH_AGENCY)
    async def place_with_agency(self, request: contracts.PlacementRequest) -> contracts.PlacementReceipt:
        self._log(contracts.PLACE_WITH_AGENCY, request)
        if self.no_agency:
            raise ApplicationError("none", type=contracts.NO_AGENCY_AVAILABLE, non_retryable=True)
        return contracts.PlacementReceipt(
            placement_id=f"p-{len(self.calls)}",
            agency_id="acme",
            agency_name="Acme Recoveries",
            expires_at=request.placed_at + timedelta(days=request.period_days),
            duplicate=False,
        )

    @activity.defn(name=contracts.RECALL_FROM_AGENCY)
    async def recall_from_agency(self, request: contracts.RecallRequest) -> contracts.RecallReceipt:
        self._log(contracts.RECALL_FROM_AGENCY, request)
        if self.recall_delay:
            await asyncio.sleep(self.recall_delay)
        return contracts.RecallReceipt(placement_id=request.placement_id, recalled=True)

    @activity.defn(name=contracts.GENERATE_LAWYER_LETTER)
    async def generate_lawyer_letter(
        self, request: contracts.LawyerLetterRequest
    ) -> contracts.LawyerLetterReceipt:
        self._log(contracts.GENERATE_LAWYER_LETTER, request)
        return contracts.LawyerLetterReceipt(
            document_id="doc-1", sha256="ab" * 32, size_bytes=1000, duplicate=False
        )

    @activity.defn(name=contracts.GENERATE_VALIDATION_NOTICE)
    async def generate_validation_notice(
        self, request: contracts.ValidationNoticeRequest
    ) -> contracts.ValidationNoticeReceipt:
        self._log(contracts.GENERATE_VALIDATION_NOTICE, request)
        return contracts.ValidationNoticeReceipt(
            document_id="notice-1", sha256="cd" * 32, size_bytes=1000, duplicate=False
        )

    @activity.defn(name=contracts.REFER_TO_LITIGATION)
    async def refer_to_litigation(
        self, request: contracts.LitigationReferralRequest
    ) -> contracts.LitigationReferralReceipt:
        self._log(contracts.REFER_TO_LITIGATION, request)
        return contracts.LitigationReferralReceipt(case_id="case-1", duplicate=False)

    @activity.defn(name=contracts.RECORD_JOURNAL)
    async def record_journal(self, batch: contracts.JournalBatch) -> contracts.JournalReceipt:
        self._log(contracts.RECORD_JOURNAL, batch)
        if self.journal_delay:
            await asyncio.sleep(self.journal_delay)
        for index, entry in enumerate(batch.entries):  # the same check the real activity makes
            try:
                contracts.JOURNAL_DATA[entry.kind].model_validate(entry.data)
            except ValueError as error:
                self.journal_errors.append(f"entries[{index}] {entry.kind}: {error}")
                raise ApplicationError(
                    str(error), type=contracts.INVALID_REQUEST, non_retryable=True
                ) from None
        if batch.snapshot is not None:
            self.snapshots.append(batch.snapshot)
        fresh = [e for e in batch.entries if e.idempotency_key not in self.journal_keys]
        self.journal.extend(fresh)
        self.journal_keys.update(e.idempotency_key for e in fresh)
        return contracts.JournalReceipt(written=len(fresh), duplicates=len(batch.entries) - len(fresh))

    @activity.defn(name=contracts.DISPATCH_REGISTERED_MAIL)
    async def dispatch_registered_mail(
        self, request: contracts.RegisteredMailRequest
    ) -> contracts.RegisteredMailReceipt:
        self._log(contracts.DISPATCH_REGISTERED_MAIL, request)
        return contracts.RegisteredMailReceipt(tracking_reference="RR000000000CN", duplicate=False)

    def journal_of(self, kind: str) -> list[contracts.JournalEntry]:
        return [e for e in self.journal if e.kind == kind]

    def all(self) -> list:
        return [
            self.send_message,
            self.create_collector_task,
            self.cancel_collector_tasks,
            self.place_with_agency,
            self.recall_from_agency,
            self.generate_lawyer_letter,
            self.generate_validation_notice,
            self.refer_to_litigation,
            self.record_journal,
            self.dispatch_registered_mail,
        ]
