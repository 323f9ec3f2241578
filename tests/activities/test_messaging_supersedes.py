"""Superseded messages leave 'queued' in the same transaction as their replacement is stored, and never go
out; a provider's refusal for good is recorded with its reason."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.messaging import RenderedMessage
from tests.activities.builders import key, message_request


class RecordingChannel:
    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def deliver(self, message: RenderedMessage) -> str:
        self.delivered.append(message.idempotency_key)
        return f"provider-{len(self.delivered)}"


async def _status(pool: asyncpg.Pool, idempotency_key: str) -> tuple[str, str | None]:
    row = await pool.fetchrow(
        "SELECT status, superseded_by FROM messages WHERE idempotency_key = $1", idempotency_key
    )
    assert row is not None
    return row["status"], row["superseded_by"]


async def test_supersedes_marks_the_queued_message_of_the_step_and_a_retry_says_the_same(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    old = message_request(loan_id, step_key="d3")
    await activities.send_message(old)  # no provider: stays queued, as after an outage
    new = message_request(
        loan_id,
        step_key="d3",
        idempotency_key=key(loan_id, "d3:email"),
        channel="email",
        recipient="li.na@example.cn",
        supersedes=[old.idempotency_key],
    )

    receipt = await activities.send_message(new)
    retried = await activities.send_message(new)

    assert await _status(db_pool, old.idempotency_key) == ("superseded", new.idempotency_key)
    assert await _status(db_pool, new.idempotency_key) == ("queued", None)
    assert receipt.superseded == [old.idempotency_key] == retried.superseded
    assert retried.duplicate is True


async def test_a_superseded_message_is_never_sent(db_pool: asyncpg.Pool, loan_id: str) -> None:
    await CollectionActivities(db_pool).send_message(message_request(loan_id, step_key="d3"))
    old = message_request(loan_id, step_key="d3")
    await CollectionActivities(db_pool).send_message(
        message_request(loan_id, idempotency_key=key(loan_id, "d3:push"), supersedes=[old.idempotency_key])
    )
    channel = RecordingChannel()

    # The old key asked again (a late retry, a dispatcher): nothing goes out.
    receipt = await CollectionActivities(db_pool, channel=channel).send_message(old)

    assert (receipt.status, receipt.duplicate) == ("superseded", True)
    assert channel.delivered == []
    assert await _status(db_pool, old.idempotency_key) == ("superseded", key(loan_id, "d3:push"))


async def test_sent_unknown_and_other_loans_messages_are_not_superseded(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    sent = message_request(loan_id, step_key="d1")
    await CollectionActivities(db_pool, channel=RecordingChannel()).send_message(sent)
    other = message_request(f"{loan_id}-other", step_key="d1")
    await CollectionActivities(db_pool).send_message(other)

    receipt = await CollectionActivities(db_pool).send_message(
        message_request(
            loan_id,
            idempotency_key=key(loan_id, "d1:email"),
            supersedes=[sent.idempotency_key, other.idempotency_key, key(loan_id, "never-stored")],
        )
    )

    assert receipt.superseded == []
    assert (await _status(db_pool, sent.idempotency_key))[0] == "sent"
    assert (await _status(db_pool, other.idempotency_key))[0] == "queued"


async def test_nothing_is_superseded_when_the_new_message_is_not_stored(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    old = message_request(loan_id, step_key="d3")
    await activities.send_message(old)
    taken = key(loan_id, "d3:email")
    await activities.send_message(message_request(f"{loan_id}-x", idempotency_key=taken))

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(
            message_request(loan_id, idempotency_key=taken, supersedes=[old.idempotency_key])
        )

    assert error.value.type == contracts.IDEMPOTENCY_KEY_CONFLICT
    assert await _status(db_pool, old.idempotency_key) == ("queued", None)


async def test_a_message_cannot_supersede_itself(activities: CollectionActivities, loan_id: str) -> None:
    request = message_request(loan_id)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request.model_copy(update={"supersedes": [request.idempotency_key]}))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)
    assert "supersedes" in str(error.value)


async def test_a_rejected_message_is_failed_with_the_reason_not_left_queued(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    class RejectingChannel:
        async def deliver(self, message: RenderedMessage) -> str:
            raise ApplicationError(
                "sms: the provider rejected the message (HTTP 413)",
                type=contracts.MESSAGE_REJECTED,
                non_retryable=True,
            )

    request = message_request(loan_id)

    with pytest.raises(ApplicationError):
        await CollectionActivities(db_pool, channel=RejectingChannel()).send_message(request)

    row = await db_pool.fetchrow(
        "SELECT status, failure_reason FROM messages WHERE idempotency_key = $1", request.idempotency_key
    )
    assert row is not None
    assert (row["status"], row["failure_reason"]) == (
        "failed",
        "MessageRejected: sms: the provider rejected the message (HTTP 413)",
    )
