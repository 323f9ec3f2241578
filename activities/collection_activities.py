"""The activities the collections workflow calls: one class holding the pool and the adapters.

Each method is an `@activity.defn` under the name the workflow uses (activities/contracts.py), takes the
request model and returns the receipt. All are idempotent on the request's `idempotency_key`: a retry
returns the first result with `duplicate=True` and sends, places or files nothing again. Permanent
problems raise non-retryable ApplicationErrors with a type from contracts.py; anything else (database
unreachable, a provider timing out) propagates and Temporal retries it under the workflow's RetryPolicy.

    activities = CollectionActivities(pool)
    Worker(client, task_queue=..., workflows=[...], activities=activities.all())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from activities import (
    collector_tasks,
    contracts,
    journal,
    legal,
    messaging,
    registered_mail,
    validation_notice,
)
from activities.agency import AgencyAdapter, DatabaseAgencyAdapter
from activities.channels import ChannelRouter
from activities.contracts import (
    CollectorTaskCancellation,
    CollectorTaskCancelReceipt,
    CollectorTaskReceipt,
    CollectorTaskRequest,
    LawyerLetterReceipt,
    LawyerLetterRequest,
    LitigationReferralReceipt,
    LitigationReferralRequest,
    MessageReceipt,
    MessageRequest,
    PlacementReceipt,
    PlacementRequest,
    RecallReceipt,
    RecallRequest,
    ValidationNoticeReceipt,
    ValidationNoticeRequest,
)
from activities.heartbeats import heartbeating
from activities.messaging import DEFAULT_PAY_URL, ChannelAdapter, OutboxAdapter, TemplateCatalogue
from observability import activity_metrics

log = structlog.get_logger("overdue.activities")


def _context(loan_id: str, step_key: str | None = None) -> dict[str, Any]:
    """Log fields: the loan and, inside an activity, where it runs. Never names, phones or e-mails."""
    fields: dict[str, Any] = {"loan_id": loan_id}
    if step_key is not None:
        fields["step_key"] = step_key
    if activity.in_activity():
        info = activity.info()
        fields.update(
            activity=info.activity_type,
            attempt=info.attempt,
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
        )
    return fields


class CollectionActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        channel: ChannelAdapter | ChannelRouter | None = None,
        agencies: AgencyAdapter | None = None,
        templates: TemplateCatalogue | None = None,
        pay_url: str = DEFAULT_PAY_URL,
    ) -> None:
        """`channel=None` leaves messages queued in the outbox; `agencies=None` uses PostgreSQL.

        `channel` is one adapter for every channel, or a ChannelRouter (activities/channels): then each
        channel uses its own provider and a channel without one leaves its messages queued.

        `pay_url` is the pattern of the borrower's payment link, `{loan_id}` filled in, used when the
        workflow sends no `pay_url` variable.
        """
        self._pool = pool
        self._outbox = OutboxAdapter(pool)
        self._channel = channel
        self._agencies = agencies if agencies is not None else DatabaseAgencyAdapter(pool)
        self._templates = templates if templates is not None else TemplateCatalogue.load()
        self._pay_url = pay_url

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for `Worker(activities=...)`."""
        return [
            self.send_message,
            self.create_collector_task,
            self.cancel_collector_tasks,
            self.place_with_agency,
            self.recall_from_agency,
            self.generate_lawyer_letter,
            self.generate_validation_notice,
            self.refer_to_litigation,
            journal.Journal(self._pool).record,
            registered_mail.RegisteredMail(self._pool).dispatch_registered_mail,
        ]

    def _channel_for(self, channel: str) -> ChannelAdapter | None:
        if isinstance(self._channel, ChannelRouter):
            return self._channel.adapter_for(channel)
        return self._channel

    @activity.defn(name=contracts.SEND_MESSAGE)
    async def send_message(self, request: MessageRequest) -> MessageReceipt:
        receipt = await messaging.send_message(
            request,
            catalogue=self._templates,
            outbox=self._outbox,
            channel=self._channel_for(request.channel),
            pay_url=self._pay_url,
        )
        log.info(
            "message_recorded",
            **_context(request.loan_id, request.step_key),
            message_id=receipt.message_id,
            channel=request.channel,
            template=request.template,
            status=receipt.status,
            duplicate=receipt.duplicate,
            superseded=len(receipt.superseded),
        )
        return receipt

    @activity.defn(name=contracts.CREATE_COLLECTOR_TASK)
    async def create_collector_task(self, request: CollectorTaskRequest) -> CollectorTaskReceipt:
        receipt = await collector_tasks.create_collector_task(self._pool, request)
        log.info(
            "collector_task_opened",
            **_context(request.loan_id, request.step_key),
            task_id=receipt.task_id,
            kind=request.kind,
            pool=request.pool,
            duplicate=receipt.duplicate,
        )
        return receipt

    @activity.defn(name=contracts.CANCEL_COLLECTOR_TASKS)
    async def cancel_collector_tasks(self, request: CollectorTaskCancellation) -> CollectorTaskCancelReceipt:
        receipt = await collector_tasks.cancel_collector_tasks(self._pool, request)
        log.info(
            "collector_tasks_cancelled",
            **_context(request.loan_id),
            reason=request.reason,
            step_keys=request.step_keys,
            cancelled=len(receipt.cancelled),
        )
        return receipt

    @activity.defn(name=contracts.PLACE_WITH_AGENCY)
    @heartbeating
    async def place_with_agency(self, request: PlacementRequest) -> PlacementReceipt:
        receipt = await self._agencies.place(request)
        log.info(
            "placed_with_agency",
            **_context(request.loan_id),
            placement_id=receipt.placement_id,
            agency_id=receipt.agency_id,
            segment=request.segment,
            duplicate=receipt.duplicate,
        )
        return receipt

    @activity.defn(name=contracts.RECALL_FROM_AGENCY)
    @heartbeating
    async def recall_from_agency(self, request: RecallRequest) -> RecallReceipt:
        receipt = await self._agencies.recall(request)
        log.info(
            "recalled_from_agency",
            **_context(request.loan_id),
            placement_id=receipt.placement_id,
            reason=request.reason,
            recalled=receipt.recalled,
        )
        return receipt

    @activity.defn(name=contracts.GENERATE_LAWYER_LETTER)
    @heartbeating
    async def generate_lawyer_letter(self, request: LawyerLetterRequest) -> LawyerLetterReceipt:
        receipt = await legal.generate_lawyer_letter(self._pool, request)
        activity_metrics.document_stored("lawyer_letter", first_time=not receipt.duplicate)
        log.info(
            "lawyer_letter_stored",
            **_context(request.loan_id),
            document_id=receipt.document_id,
            locale=request.locale,
            size_bytes=receipt.size_bytes,
            duplicate=receipt.duplicate,
        )
        return receipt

    @activity.defn(name=contracts.GENERATE_VALIDATION_NOTICE)
    async def generate_validation_notice(self, request: ValidationNoticeRequest) -> ValidationNoticeReceipt:
        receipt = await validation_notice.generate_validation_notice(self._pool, request)
        activity_metrics.document_stored("validation_notice", first_time=not receipt.duplicate)
        log.info(
            "validation_notice_stored",
            **_context(request.loan_id),
            document_id=receipt.document_id,
            locale=request.locale,
            size_bytes=receipt.size_bytes,
            duplicate=receipt.duplicate,
        )
        return receipt

    @activity.defn(name=contracts.REFER_TO_LITIGATION)
    @heartbeating
    async def refer_to_litigation(self, request: LitigationReferralRequest) -> LitigationReferralReceipt:
        receipt = await legal.refer_to_litigation(self._pool, request)
        activity_metrics.referred(request, first_time=not receipt.duplicate)
        log.info(
            "referred_to_litigation",
            **_context(request.loan_id),
            case_id=receipt.case_id,
            documents=len(request.document_ids),
            duplicate=receipt.duplicate,
        )
        return receipt
