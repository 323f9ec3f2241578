"""The real sandbox servers (stack/sandbox) on free 127.0.0.1 ports, and the activities wired to them.

Every test talks to real local servers over real sockets: SMTP to the capture server, HTTP to the SMS
gateway and the push webhook. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from activities.channels import ChannelRouter, HttpSmsAdapter, SmtpEmailAdapter, WebhookPushAdapter
from activities.collection_activities import CollectionActivities
from activities.contracts import MessageRequest
from stack.sandbox import MailCapture, PushWebhookSandbox, SmsGatewaySandbox
from tests.activities.builders import key, message_request

API_KEY = "test-api-key"
SECRET = "test-webhook-secret"
SENDER = "Overdue Collections <collections@lender.test>"

# Contact points; the sandboxes refuse anything ending in 0000 for good.
PHONE = "+8613800138000"
BAD_PHONE = "+8613800130000"
EMAIL = "li.na@example.cn"
BAD_EMAIL = "nobody0000@example.cn"
ACCOUNT = "LN-app-1"
NO_DEVICE_ACCOUNT = "LN-app-0000"


@pytest.fixture
def loan_id() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def mailbox(tmp_path: Path) -> AsyncIterator[MailCapture]:
    capture = MailCapture(tmp_path / "mailbox")
    await capture.start()
    yield capture
    await capture.stop()


@pytest_asyncio.fixture
async def sms_gateway(tmp_path: Path) -> AsyncIterator[SmsGatewaySandbox]:
    gateway = SmsGatewaySandbox(tmp_path / "sms.jsonl", api_key=API_KEY)
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest_asyncio.fixture
async def push_webhook(tmp_path: Path) -> AsyncIterator[PushWebhookSandbox]:
    webhook = PushWebhookSandbox(tmp_path / "push.jsonl", secret=SECRET)
    await webhook.start()
    yield webhook
    await webhook.stop()


def smtp_adapter(mailbox: MailCapture, **overrides: Any) -> SmtpEmailAdapter:
    options: dict[str, Any] = {"port": mailbox.smtp_port, "sender": SENDER, "tls": "none", "timeout": 5.0}
    return SmtpEmailAdapter(mailbox.host, **(options | overrides))


def sms_adapter(gateway: SmsGatewaySandbox, **overrides: Any) -> HttpSmsAdapter:
    options: dict[str, Any] = {"api_key": API_KEY, "timeout": 5.0}
    return HttpSmsAdapter(overrides.pop("url", gateway.url), **(options | overrides))


def push_adapter(webhook: PushWebhookSandbox, **overrides: Any) -> WebhookPushAdapter:
    options: dict[str, Any] = {"secret": SECRET, "timeout": 5.0}
    return WebhookPushAdapter(overrides.pop("url", webhook.url), **(options | overrides))


@pytest_asyncio.fixture
async def router(
    mailbox: MailCapture, sms_gateway: SmsGatewaySandbox, push_webhook: PushWebhookSandbox
) -> AsyncIterator[ChannelRouter]:
    channels = ChannelRouter(
        {"email": smtp_adapter(mailbox), "sms": sms_adapter(sms_gateway), "push": push_adapter(push_webhook)}
    )
    yield channels
    await channels.aclose()


@pytest.fixture
def activities(db_pool: asyncpg.Pool, router: ChannelRouter) -> CollectionActivities:
    return CollectionActivities(db_pool, channel=router)


def sms_request(loan_id: str, **overrides: Any) -> MessageRequest:
    return message_request(loan_id, **({"recipient": PHONE} | overrides))


def email_request(loan_id: str, **overrides: Any) -> MessageRequest:
    fields = {
        "idempotency_key": key(loan_id, "email_statement"),
        "step_key": "email_statement",
        "channel": "email",
        "template": "statement",
        "recipient": EMAIL,
    }
    return message_request(loan_id, **(fields | overrides))


def push_request(loan_id: str, **overrides: Any) -> MessageRequest:
    fields = {
        "idempotency_key": key(loan_id, "app_push"),
        "step_key": "app_push",
        "channel": "push",
        "recipient": ACCOUNT,
    }
    return message_request(loan_id, **(fields | overrides))


async def outbox_row(pool: asyncpg.Pool, idempotency_key: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM messages WHERE idempotency_key = $1", idempotency_key)
    assert row is not None
    return row
