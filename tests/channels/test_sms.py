"""SMS over HTTP to the sandbox gateway: delivery, idempotency, and how each answer maps to an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.channels import ChannelRouter, HttpSmsAdapter, errors
from activities.collection_activities import CollectionActivities
from activities.messaging import TemplateCatalogue
from stack.sandbox import SmsGatewaySandbox
from tests.channels.conftest import API_KEY, BAD_PHONE, PHONE, outbox_row, sms_adapter, sms_request

CATALOGUE = TemplateCatalogue.load()


async def test_sms_is_logged_once_with_the_provider_id_in_the_outbox(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = sms_request(loan_id)

    receipt = await activities.send_message(request)

    [sms] = sms_gateway.entries()
    assert (sms["to"], sms["sender"], sms["idempotency_key"]) == (PHONE, "Overdue", request.idempotency_key)
    assert "CNY 1,234.50" in sms["text"]
    row = await outbox_row(db_pool, request.idempotency_key)
    assert (receipt.status, row["status"], row["provider_id"]) == ("sent", "sent", sms["id"])


async def test_same_key_twice_sends_one_sms_and_asks_the_gateway_once(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, loan_id: str
) -> None:
    await activities.send_message(sms_request(loan_id))
    second = await activities.send_message(sms_request(loan_id))

    assert second.duplicate is True
    assert len(sms_gateway.entries()) == 1
    assert sms_gateway.requests == 1  # the outbox said 'sent': the gateway was not asked again


async def test_crash_after_delivery_before_marking_sent_does_not_send_twice(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = sms_request(loan_id)
    adapter = sms_adapter(sms_gateway)
    # The first attempt got as far as the gateway, then the worker died: the row is stored but still queued.
    first_id = await adapter.deliver(CATALOGUE.render(request))
    await adapter.aclose()
    await db_pool.execute(
        "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, recipient, "
        "body) VALUES ($1, $2, 'sms_reminder', 'sms', 'reminder_polite', 'en', $3, 'x')",
        request.idempotency_key,
        loan_id,
        PHONE,
    )

    retried = await activities.send_message(request)

    assert retried.status == "sent"
    assert len(sms_gateway.entries()) == 1  # the Idempotency-Key made the gateway replay its first answer
    assert (await outbox_row(db_pool, request.idempotency_key))["provider_id"] == first_id


async def test_503_then_200_sends_one_sms(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = sms_request(loan_id)
    sms_gateway.fail_next(1, status=503)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)
    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_UNAVAILABLE, False)
    assert error.value.next_retry_delay == timedelta(seconds=1)  # the gateway's Retry-After
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == "queued"

    retried = await activities.send_message(request)

    assert retried.status == "sent"
    assert len(sms_gateway.entries()) == 1
    assert sms_gateway.requests == 2


async def test_invalid_number_is_permanent_and_marks_the_message_failed(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = sms_request(loan_id, recipient=BAD_PHONE)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)

    assert (error.value.type, error.value.non_retryable) == (contracts.CONTACT_POINT_INVALID, True)
    assert "invalid_number" in str(error.value) and BAD_PHONE not in str(error.value)
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == "failed"
    assert sms_gateway.entries() == []


@pytest.mark.parametrize(
    ("status", "error_type", "non_retryable"),
    [
        (429, errors.PROVIDER_UNAVAILABLE, False),
        (500, errors.PROVIDER_UNAVAILABLE, False),
        (502, errors.PROVIDER_UNAVAILABLE, False),
        (401, errors.PROVIDER_MISCONFIGURED, False),
        (403, errors.PROVIDER_MISCONFIGURED, False),
        (404, errors.PROVIDER_MISCONFIGURED, False),
        (400, errors.MESSAGE_REJECTED, True),
        (413, errors.MESSAGE_REJECTED, True),
        (
            422,
            errors.MESSAGE_REJECTED,
            True,
        ),  # 422 without a recipient error code: the message, not the number
    ],
)
async def test_gateway_answers_map_to_retryable_or_permanent(
    sms_gateway: SmsGatewaySandbox,
    db_pool: asyncpg.Pool,
    loan_id: str,
    status: int,
    error_type: str,
    non_retryable: bool,
) -> None:
    adapter = sms_adapter(sms_gateway, url=f"{sms_gateway.url}?fail={status}")
    activities = CollectionActivities(db_pool, channel=ChannelRouter({"sms": adapter}))
    request = sms_request(loan_id)

    try:
        with pytest.raises(ApplicationError) as error:
            await activities.send_message(request)
    finally:
        await adapter.aclose()

    assert (error.value.type, error.value.non_retryable) == (error_type, non_retryable)
    expected_row = "failed" if non_retryable else "queued"
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == expected_row
    assert sms_gateway.entries() == []


async def test_wrong_api_key_is_refused_and_retryable(sms_gateway: SmsGatewaySandbox, loan_id: str) -> None:
    adapter = sms_adapter(sms_gateway, api_key="not-" + API_KEY)

    try:
        with pytest.raises(ApplicationError) as error:
            await adapter.deliver(CATALOGUE.render(sms_request(loan_id)))
    finally:
        await adapter.aclose()

    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_MISCONFIGURED, False)
    assert sms_gateway.entries() == []


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_gateway_that_never_answers_times_out_retryably(silent_server: int, loan_id: str) -> None:
    adapter = HttpSmsAdapter(f"http://127.0.0.1:{silent_server}/messages", timeout=0.3)

    try:
        with pytest.raises(ApplicationError) as error:
            await adapter.deliver(CATALOGUE.render(sms_request(loan_id)))
    finally:
        await adapter.aclose()

    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_UNAVAILABLE, False)
    assert "in time" in str(error.value)


async def test_a_422_rejection_is_message_rejected_and_the_row_says_why(
    activities: CollectionActivities, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    sms_gateway.fail_next(1, status=422)
    request = sms_request(loan_id)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)

    # The contract's name, which the workflow matches to fall back instead of waiting for an outage to end.
    assert (error.value.type, error.value.non_retryable) == (contracts.MESSAGE_REJECTED, True)
    row = await outbox_row(db_pool, request.idempotency_key)
    assert row["status"] == "failed"
    assert (
        row["failure_reason"]
        == "MessageRejected: sms: the provider rejected the message (HTTP 422 sandbox_failure)"
    )
    assert PHONE not in row["failure_reason"]
    assert sms_gateway.entries() == []
