"""A STOP reply reaches the real loan workflow: SMS is opted out and the next SMS step goes by e-mail.

The workflow runs on the time-skipping server with fake activities (tests/workflows/conftest.py); the
inbound app runs on a real PostgreSQL and tells the workflow through its `opt_out` update.
"""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from activities import contracts
from domain.contact_rules import ContactState
from domain.holds import ContactPointUnreachable, OptOut
from inbound.app import build_app
from inbound.auth import signed_headers
from inbound.desk import DeskAnswer
from inbound.service import InboundService
from tests.inbound.conftest import SECRET, settings
from tests.workflows.conftest import Harness, make_loan
from workflows.messages import (
    CONTACT_POINT_UNREACHABLE_UPDATE,
    OPT_OUT_UPDATE,
    STATUS_QUERY,
    CollectionStatus,
    workflow_id,
)

PHONE = "+8613800138000"  # make_loan's borrower


class HarnessDesk:
    """The opt-out through the workflow's own update, signed as the test harness signs (the skipped clock);
    `inbound.desk.WorkflowDesk` does the same through `CollectionsStarter` in production."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    async def unreachable(self, loan_id: str, request: ContactPointUnreachable) -> DeskAnswer:
        handle = self.harness.client.get_workflow_handle(workflow_id(loan_id))
        await handle.execute_update(CONTACT_POINT_UNREACHABLE_UPDATE, request, result_type=ContactState)
        return DeskAnswer("unreachable")

    async def opt_out(self, loan_id: str, channel: str, via: str) -> DeskAnswer:
        handle = self.harness.client.get_workflow_handle(workflow_id(loan_id))
        await handle.execute_update(
            OPT_OUT_UPDATE, OptOut(collector="borrower", channel=channel, note=via), result_type=ContactState
        )
        return DeskAnswer("opted_out")


async def test_stop_reply_opts_out_and_the_next_sms_step_falls_back_to_email(
    harness: Harness, own_db_pool: asyncpg.Pool
) -> None:
    loan = make_loan(await harness.now(), dpd=0)  # the SMS reminder is due tomorrow (DPD 1)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    assert harness.fakes.of(contracts.SEND_MESSAGE) == []
    # An earlier SMS to this number is in the outbox: that is how the inbound app finds the loan.
    await own_db_pool.execute(
        "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, recipient, "
        "body, status, provider_id) "
        "VALUES ($1, $2, 'earlier', 'sms', 'reminder', 'zh-CN', $3, '...', 'sent', 'sms_1')",
        f"{loan.loan_id}:earlier",
        loan.loan_id,
        PHONE,
    )

    service = InboundService(own_db_pool, HarnessDesk(harness))
    body = json.dumps({"event_id": "gw-1", "from": PHONE, "text": "退订"}).encode()
    async with TestClient(TestServer(build_app(service, settings()))) as client:
        response = await client.post(
            "/inbound/sms/replies", data=body, headers=signed_headers(SECRET, body, now=None)
        )
        assert response.status == 200
        replay = await client.post(
            "/inbound/sms/replies", data=body, headers=signed_headers(SECRET, body, now=None)
        )
        assert replay.status == 200  # the workflow is not asked twice (it would refuse "already")

    status = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert status.contact is not None and status.contact.opted_out_channels == ["sms"]
    await harness.env.sleep(timedelta(days=1))
    sent = [(m.channel, m.step_key) for m in harness.fakes.of(contracts.SEND_MESSAGE)]
    assert sent == [("email", "sms_reminder:email")]
    assert (
        await own_db_pool.fetchval("SELECT outcome FROM inbound_events WHERE event_id = 'gw-1'")
        == "opted_out"
    )


async def test_a_failed_receipt_closes_the_number_and_the_next_sms_step_falls_back_to_email(
    harness: Harness, own_db_pool: asyncpg.Pool
) -> None:
    loan = make_loan(await harness.now(), dpd=0)  # the SMS reminder is due tomorrow (DPD 1)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    message = await own_db_pool.fetchval(
        "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, recipient, "
        "body, status, provider_id) "
        "VALUES ($1, $2, 'earlier', 'sms', 'reminder', 'zh-CN', $3, '...', 'sent', 'sms_9') RETURNING id",
        f"{loan.loan_id}:earlier",
        loan.loan_id,
        PHONE,
    )
    assert message is not None

    service = InboundService(own_db_pool, HarnessDesk(harness))
    receipt = {"event_id": "gw-r1", "message_id": "sms_9", "status": "failed", "code": "unknown_subscriber"}
    body = json.dumps(receipt).encode()
    async with TestClient(TestServer(build_app(service, settings()))) as client:
        response = await client.post(
            "/inbound/sms/receipts", data=body, headers=signed_headers(SECRET, body, now=None)
        )
        assert response.status == 200

    status = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    assert status.contact is not None and status.contact.unreachable_addresses == [PHONE]
    await harness.env.sleep(timedelta(days=1))
    sent = [(m.channel, m.step_key) for m in harness.fakes.of(contracts.SEND_MESSAGE)]
    assert sent == [("email", "sms_reminder:email")]
