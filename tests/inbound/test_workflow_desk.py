"""The inbound app's own path into the workflow: `WorkflowDesk` signs the opt-out as the borrower and the
real LoanCollectionWorkflow (local dev server, fake activities) verifies and applies it once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from authority import Signer, SigningKey, TrustedKeys, trust
from domain.strategy import default_strategy
from inbound.desk import WorkflowDesk
from inbound.models import SmsReply
from inbound.service import InboundService
from starter.api import CollectionsStarter
from tests.authority.keys import KEYS
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS

BORROWER_KEY = SigningKey.generate("test-borrower-9", "borrower", ("borrower",), "borrower", seed=b"q" * 32)
PHONE = "+8613800138000"  # make_loan's borrower


@pytest.fixture(autouse=True)
def trust_the_borrower_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "_ring", TrustedKeys(key.public() for key in (*KEYS, BORROWER_KEY)))


async def _stop(service: InboundService, event_id: str) -> str:
    return await service.sms_reply(
        SmsReply.model_validate({"event_id": event_id, "from": PHONE, "text": "TD"})
    )


async def test_stop_reply_is_signed_as_the_borrower_and_applied_once(
    local_client: Client, task_queue: str, own_db_pool: asyncpg.Pool
) -> None:
    with_key = CollectionsStarter(
        local_client, task_queue=task_queue, strategy=default_strategy(), signer=Signer([*KEYS, BORROWER_KEY])
    )
    without_key = CollectionsStarter(
        local_client, task_queue=task_queue, strategy=default_strategy(), signer=Signer(KEYS)
    )
    loan = make_loan(datetime.now(UTC), dpd=0)
    await own_db_pool.execute(
        "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, recipient, "
        "body, status, provider_id) "
        "VALUES ($1, $2, 'd1', 'sms', 'reminder', 'zh-CN', $3, '...', 'sent', 'x')",
        f"{loan.loan_id}:d1",
        loan.loan_id,
        PHONE,
    )
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        await with_key.start_loan(loan)
        # A process without the borrower key cannot act: the event waits ('pending'), nothing changes.
        assert await _stop(InboundService(own_db_pool, WorkflowDesk(without_key)), "e-1") == "pending"
        status = await with_key.status(loan.loan_id)
        assert status.contact is not None and status.contact.opted_out_channels == []

        service = InboundService(own_db_pool, WorkflowDesk(with_key))
        assert await _stop(service, "e-1") == "opted_out"  # the provider's retry of the pending event
        assert await _stop(service, "e-1") == "duplicate"
        assert await _stop(service, "e-2") == "already_opted_out"
        status = await with_key.status(loan.loan_id)
        await with_key.handle(loan.loan_id).terminate("test finished")

    assert status.contact is not None and status.contact.opted_out_channels == ["sms"]
    detail = await own_db_pool.fetchval("SELECT outcome FROM inbound_events WHERE event_id = 'e-1'")
    assert detail == "opted_out"
