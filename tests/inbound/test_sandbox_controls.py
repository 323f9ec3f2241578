"""The sandboxes of `make run` send replies, receipts and bounces to the inbound app."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest_asyncio

from activities.channels.sms import HttpSmsAdapter
from activities.channels.smtp import SmtpEmailAdapter
from activities.messaging import OutboxAdapter, RenderedMessage
from inbound.app import build_app
from inbound.desk import ReplySender
from inbound.runtime import InboundServer
from inbound.service import InboundService
from stack.sandbox import MailCapture, SmsGatewaySandbox
from tests.inbound.conftest import SECRET, FakeDesk, FakeSms, settings

PHONE = "+8613800138001"
LENDER = "collections@lender.example"


@pytest_asyncio.fixture
async def app(own_db_pool: asyncpg.Pool) -> AsyncIterator[tuple[InboundServer, FakeDesk]]:
    desk = FakeDesk()
    service = InboundService(own_db_pool, desk, ReplySender(OutboxAdapter(own_db_pool), FakeSms()))
    server = InboundServer(build_app(service, settings()), "127.0.0.1", 0)
    await server.start()
    yield server, desk
    await server.stop()


def _message(loan_id: str, channel: str, recipient: str) -> RenderedMessage:
    return RenderedMessage(
        idempotency_key=f"{loan_id}:d1",
        loan_id=loan_id,
        step_key="d1",
        channel=channel,  # type: ignore[arg-type]
        template="reminder",
        locale="en",
        recipient=recipient,
        subject="Your payment" if channel == "email" else None,
        body="Please pay. Reply STOP to opt out.",
    )


async def _sent(pool: asyncpg.Pool, message: RenderedMessage, provider_id: str) -> None:
    outbox = OutboxAdapter(pool)
    stored = await outbox.store(message)
    await outbox.mark_sent(stored.message_id, provider_id)


async def test_sms_sandbox_page_sends_a_failed_receipt_and_a_stop_reply(
    tmp_path: Path, own_db_pool: asyncpg.Pool, app: tuple[InboundServer, FakeDesk]
) -> None:
    server, desk = app
    gateway = SmsGatewaySandbox(tmp_path / "sms.jsonl", api_key="k")
    await gateway.start()
    try:
        message = _message("L-sandbox-1", "sms", PHONE)
        provider_id = await HttpSmsAdapter(gateway.url, api_key="k").deliver(message)
        await _sent(own_db_pool, message, provider_id)
        async with aiohttp.ClientSession(base_url=gateway.base_url) as http:
            async with http.get("/") as page:
                assert "Receipt: failed" not in await page.text()  # not connected: no controls
            gateway.connect_inbound(server.url, SECRET)
            async with http.get("/") as page:
                shown = await page.text()
            assert "Receipt: failed (unknown_subscriber)" in shown and "Send reply" in shown
            form = {"id": provider_id, "status": "failed", "code": "unknown_subscriber"}
            async with http.post("/sandbox/receipt", data=form, allow_redirects=False) as sent:
                assert sent.status == 303 and "answered+200" in sent.headers["Location"]
            form = {"id": provider_id, "text": "STOP"}
            async with http.post("/sandbox/reply", data=form, allow_redirects=False) as sent:
                assert sent.status == 303
    finally:
        await gateway.stop()

    assert (
        await own_db_pool.fetchval(
            "SELECT reason FROM unreachable_contact_points WHERE loan_id = 'L-sandbox-1'"
        )
        == "unknown_subscriber"
    )
    assert desk.opted_out == {"L-sandbox-1": {"sms"}}


async def test_mailbox_bounces_and_forwards_a_reply_sent_to_the_lender(
    tmp_path: Path, own_db_pool: asyncpg.Pool, app: tuple[InboundServer, FakeDesk]
) -> None:
    server, desk = app
    mailbox = MailCapture(tmp_path / "mailbox")
    await mailbox.start()
    mailbox.connect_inbound(server.url, SECRET, reply_address=LENDER)
    try:
        message = _message("L-sandbox-2", "email", "pat@example.com")
        adapter = SmtpEmailAdapter(mailbox.host, port=mailbox.smtp_port, sender=LENDER, tls="none")
        provider_id = await adapter.deliver(message)
        await _sent(own_db_pool, message, provider_id)
        [mail_id] = mailbox.ids()
        async with aiohttp.ClientSession(base_url=mailbox.base_url) as http:
            async with http.get(f"/messages/{mail_id}") as page:
                assert "Hard bounce (5.1.1)" in await page.text()
            url = f"/messages/{mail_id}/event"
            async with http.post(url, data={"type": "bounce"}, allow_redirects=False) as sent:
                assert sent.status == 303
        # The borrower answers by mail: the sandbox SMTP server forwards it to the inbound app.
        reply = (
            f"From: Pat <pat@example.com>\r\nTo: {LENDER}\r\nSubject: Re: Your payment\r\n\r\nUNSUBSCRIBE\r\n"
        )
        await asyncio.to_thread(_smtp_send, mailbox, reply)
    finally:
        await mailbox.stop()

    assert (
        await own_db_pool.fetchval(
            "SELECT address FROM unreachable_contact_points WHERE loan_id = 'L-sandbox-2'"
        )
        == "pat@example.com"
    )
    assert desk.opted_out == {"L-sandbox-2": {"email"}}


def _smtp_send(mailbox: MailCapture, mail: str) -> None:
    with smtplib.SMTP(mailbox.host, mailbox.smtp_port, timeout=10) as smtp:
        smtp.sendmail("pat@example.com", [LENDER], mail.encode())
