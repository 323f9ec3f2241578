"""Stand-in activities registered under the real names: they record what the workflow asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import contracts


@dataclass
class FakeActivities:
    calls: list[tuple[str, object]] = field(default_factory=list)
    failing_channels: set[str] = field(default_factory=set)
    no_agency: bool = False

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list:
        return [request for n, request in self.calls if n == name]

    @activity.defn(name=contracts.SEND_MESSAGE)
    async def send_message(self, request: contracts.MessageRequest) -> contracts.MessageReceipt:
        self.calls.append((contracts.SEND_MESSAGE, request))
        if request.channel in self.failing_channels:
            raise ApplicationError("bounced", type=contracts.CONTACT_POINT_INVALID, non_retryable=True)
        return contracts.MessageReceipt(
            message_id=f"m-{len(self.calls)}", channel=request.channel, status="queued", duplicate=False
        )

    @activity.defn(name=contracts.CREATE_COLLECTOR_TASK)
    async def create_collector_task(
        self, request: contracts.CollectorTaskRequest
    ) -> contracts.CollectorTaskReceipt:
        self.calls.append((contracts.CREATE_COLLECTOR_TASK, request))
        return contracts.CollectorTaskReceipt(task_id=f"t-{len(self.calls)}", duplicate=False)

    @activity.defn(name=contracts.PLACE_WITH_AGENCY)
    async def place_with_agency(self, request: contracts.PlacementRequest) -> contracts.PlacementReceipt:
        self.calls.append((contracts.PLACE_WITH_AGENCY, request))
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
        self.calls.append((contracts.RECALL_FROM_AGENCY, request))
        return contracts.RecallReceipt(placement_id=request.placement_id, recalled=True)

    @activity.defn(name=contracts.GENERATE_LAWYER_LETTER)
    async def generate_lawyer_letter(
        self, request: contracts.LawyerLetterRequest
    ) -> contracts.LawyerLetterReceipt:
        self.calls.append((contracts.GENERATE_LAWYER_LETTER, request))
        return contracts.LawyerLetterReceipt(
            document_id="doc-1", sha256="ab" * 32, size_bytes=1000, duplicate=False
        )

    @activity.defn(name=contracts.REFER_TO_LITIGATION)
    async def refer_to_litigation(
        self, request: contracts.LitigationReferralRequest
    ) -> contracts.LitigationReferralReceipt:
        self.calls.append((contracts.REFER_TO_LITIGATION, request))
        return contracts.LitigationReferralReceipt(case_id="case-1", duplicate=False)

    def all(self) -> list:
        return [
            self.send_message,
            self.create_collector_task,
            self.place_with_agency,
            self.recall_from_agency,
            self.generate_lawyer_letter,
            self.refer_to_litigation,
        ]
