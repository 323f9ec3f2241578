"""The channel errors as Temporal sees them: a retryable outage is retried to one SMS, a bad number is not."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import MessageReceipt, MessageRequest
from stack.sandbox import SmsGatewaySandbox
from tests.channels.conftest import BAD_PHONE, sms_request


@workflow.defn(sandboxed=False)
class SendOneMessage:
    """Just the activity call, with a retry policy like the collections workflow's."""

    @workflow.run
    async def run(self, request: MessageRequest) -> MessageReceipt:
        return await workflow.execute_activity(
            contracts.SEND_MESSAGE,
            request,
            result_type=MessageReceipt,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_attempts=5,
                non_retryable_error_types=[contracts.CONTACT_POINT_INVALID],
            ),
        )


async def _run(env: WorkflowEnvironment, activities: CollectionActivities, request: MessageRequest) -> object:
    task_queue = f"channels-{uuid.uuid4().hex}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[SendOneMessage], activities=activities.all()
    ):
        return await env.client.execute_workflow(
            SendOneMessage.run, request, id=f"send-{uuid.uuid4().hex}", task_queue=task_queue
        )


async def test_two_503s_then_success_send_one_sms(
    time_skipping_env: WorkflowEnvironment,
    activities: CollectionActivities,
    sms_gateway: SmsGatewaySandbox,
    loan_id: str,
) -> None:
    sms_gateway.fail_next(2, status=503)

    receipt = await _run(time_skipping_env, activities, sms_request(loan_id))

    assert isinstance(receipt, MessageReceipt) and receipt.status == "sent"
    assert sms_gateway.requests == 3
    assert len(sms_gateway.entries()) == 1


async def test_invalid_number_fails_after_one_attempt(
    time_skipping_env: WorkflowEnvironment,
    activities: CollectionActivities,
    sms_gateway: SmsGatewaySandbox,
    loan_id: str,
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(time_skipping_env, activities, sms_request(loan_id, recipient=BAD_PHONE))

    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == contracts.CONTACT_POINT_INVALID
    assert sms_gateway.requests == 1


async def test_a_rejected_message_fails_after_one_attempt(
    time_skipping_env: WorkflowEnvironment,
    activities: CollectionActivities,
    sms_gateway: SmsGatewaySandbox,
    loan_id: str,
) -> None:
    # The workflow's retry policy does not list MessageRejected: the error itself is non-retryable.
    sms_gateway.fail_next(1, status=422)

    with pytest.raises(WorkflowFailureError) as failure:
        await _run(time_skipping_env, activities, sms_request(loan_id))

    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == contracts.MESSAGE_REJECTED
    assert sms_gateway.requests == 1
