"""A loan through the product's own client and worker: what Temporal stores is ciphertext.

The product client comes from `starter.connect.connect` (the key ring `make run` would create in the state
dir, the loans' data keys in PostgreSQL); a second client on the same connection but WITHOUT the codec reads
the raw history, as `temporal workflow show` or the Web UI without a codec server would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from google.protobuf.message import Message
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import contracts
from domain.loan import Loan
from domain.strategy import default_strategy
from privacy.codec import KeyDestroyed
from privacy.data_keys import destroy_loan_key
from privacy.keyring import ensure_dev_keyring
from stack.settings import Settings
from starter.api import CollectionsStarter
from starter.connect import connect
from tests.workflows.conftest import make_loan, zone_at
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS


class BouncingProvider(FakeActivities):
    """Every message bounces with the provider's usual echo of the recipient: PII in a failure message."""

    @activity.defn(name=contracts.SEND_MESSAGE)
    async def send_message(self, request: contracts.MessageRequest) -> contracts.MessageReceipt:
        self._log(contracts.SEND_MESSAGE, request)
        raise ApplicationError(
            f"550 5.1.1 <{request.recipient}>: recipient unknown",
            type=contracts.MESSAGE_REJECTED,
            non_retryable=True,
        )


def _personal_values(loan: Loan) -> list[str]:
    borrower = loan.borrower
    values = [borrower.name, borrower.phone, borrower.email, borrower.postal_address]
    return [v for v in values if v]


def _leaks(blob: bytes, values: list[str]) -> list[str]:
    """Values found in the bytes, raw UTF-8 or JSON-escaped (\\uXXXX)."""
    return [v for v in values if v.encode() in blob or json.dumps(v)[1:-1].encode() in blob]


def _all_payloads(history: WorkflowHistory) -> list[Payload]:
    """Every payload of the history except search attributes."""
    found: list[Payload] = []

    def walk(message: Message) -> None:
        if isinstance(message, Payload):
            found.append(message)
            return
        for descriptor, value in message.ListFields():
            if (
                descriptor.name == "search_attributes"
            ):  # indexed by the server, plain by design (checked below)
                continue
            if isinstance(value, Message):
                walk(value)
            elif hasattr(value, "values") and callable(value.values):  # a map field
                for item in value.values():
                    if isinstance(item, Message):
                        walk(item)
            elif not isinstance(value, str | bytes) and hasattr(value, "__iter__"):  # a repeated field
                for item in value:
                    if isinstance(item, Message):
                        walk(item)

    for event in history.events:
        walk(event)
    return found


@pytest.fixture
def target(local_env: WorkflowEnvironment) -> str:
    return local_env.client.service_client.config.target_host


async def test_history_holds_no_borrower_data_and_erasure_makes_it_unreadable(
    target: str, task_queue: str, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    assert ensure_dev_keyring(tmp_path) == tmp_path / "codec-keys.json"  # as `make run` does
    assert (tmp_path / "codec-keys.json").stat().st_mode & 0o777 == 0o600
    settings = Settings(temporal_address=target, state_dir=tmp_path, task_queue=task_queue)
    client = await connect(settings, pool=db_pool)
    config = client.config()
    config["data_converter"] = pydantic_data_converter  # same connection, no codec: what is stored
    raw = Client(**config)
    starter = CollectionsStarter(client, task_queue=task_queue, strategy=default_strategy())
    provider = BouncingProvider()
    loan = make_loan(datetime.now(UTC), dpd=3, timezone=zone_at(13).key)  # first step due at once
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=provider.all()):
        assert await starter.start_loan(loan) == "started"
        status = await starter.status(loan.loan_id)
        assert status.loan_id == loan.loan_id  # the product client reads through the codec
        handle = raw.get_workflow_handle(f"collection-{loan.loan_id}")
        for _ in range(100):  # until the bounce is in the history (the workflow reacts to it at once)
            history = await handle.fetch_history()
            if any(e.HasField("activity_task_failed_event_attributes") for e in history.events):
                break
            await starter.status(loan.loan_id)
        else:
            pytest.fail("no message bounced")
        assert provider.of(contracts.SEND_MESSAGE), "the workflow sent nothing"

        blob = history.to_json().encode() + b"".join(e.SerializeToString() for e in history.events)
        assert _leaks(blob, _personal_values(loan)) == []
        payloads = _all_payloads(history)
        assert payloads and all(p.metadata.get("encoding") == b"binary/encrypted" for p in payloads)
        failed = next(e for e in history.events if e.HasField("activity_task_failed_event_attributes"))
        failure = failed.activity_task_failed_event_attributes.failure
        assert failure.message == "Encoded failure" and not failure.stack_trace  # both inside the payload
        # The product's converter does read the failure, with the provider's message in it.
        decoded = await client.data_converter.decode_failure(failure)
        assert "recipient unknown" in str(decoded) and _leaks(str(decoded).encode(), _personal_values(loan))

        # Search attributes and the workflow id: plain by design, so nothing personal in them.
        description = await handle.describe()
        indexed = description.raw_description.workflow_execution_info.search_attributes
        assert "CollectionStage" in indexed.indexed_fields
        assert _leaks(indexed.SerializeToString(), _personal_values(loan)) == []
        assert _leaks(description.id.encode(), _personal_values(loan)) == []

        # Erasure: the loan's data key is destroyed; nothing can decode its history any more.
        await handle.terminate("erasure test")
    assert await destroy_loan_key(db_pool, loan.loan_id) is True
    start = history.events[0].workflow_execution_started_event_attributes.input.payloads
    with pytest.raises(KeyDestroyed):
        await client.data_converter.decode(start)
    fresh = await connect(settings, pool=db_pool)  # another process: no cache at all
    with pytest.raises(KeyDestroyed):
        await fresh.data_converter.decode(start)
