"""The inbound app on a real PostgreSQL, with the loan's workflow and the SMS channel as fakes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from activities.messaging import OutboxAdapter, RenderedMessage
from domain.holds import ContactPointUnreachable
from inbound.app import build_app
from inbound.auth import signed_headers
from inbound.desk import DeskAnswer, ReplySender
from inbound.service import InboundService
from inbound.settings import InboundSettings
from tests.workflows.conftest import harness  # noqa: F401 (the loan-workflow harness fixture)

SECRET = "test-inbound-secret"
PUSH_KEY = "test-push-key"
PHONE = "+12125550142"


@dataclass
class FakeDesk:
    """The loan's workflow: remembers opt-outs and answers "already" the second time, as the update does."""

    opted_out: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False  # Temporal unreachable: every opt-out waits
    unreachable_told: list[tuple[str, str, str, str]] = field(default_factory=list)

    async def unreachable(self, loan_id: str, request: ContactPointUnreachable) -> DeskAnswer:
        self.unreachable_told.append((loan_id, request.channel, request.address, request.reason))
        return DeskAnswer("pending", "temporal: UNAVAILABLE") if self.down else DeskAnswer("unreachable")

    async def opt_out(self, loan_id: str, channel: str, via: str) -> DeskAnswer:
        self.calls.append((loan_id, channel))
        if self.down:
            return DeskAnswer("pending", "temporal: UNAVAILABLE")
        channels = self.opted_out.setdefault(loan_id, set())
        if channel in channels:
            return DeskAnswer("already_opted_out")
        channels.add(channel)
        return DeskAnswer("opted_out")


@dataclass
class FakeSms:
    sent: list[RenderedMessage] = field(default_factory=list)

    async def deliver(self, message: RenderedMessage) -> str:
        self.sent.append(message)
        return f"sms_{len(self.sent)}"


@dataclass
class Inbound:
    client: TestClient[Any, Any]
    pool: asyncpg.Pool
    desk: FakeDesk
    sms: FakeSms

    async def post(
        self, path: str, payload: dict[str, Any], *, secret: str | None = SECRET, **headers: str
    ) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", **headers}
        if secret is not None:
            sent |= signed_headers(secret, body)
        response = await self.client.post(path, data=body, headers=sent)
        return response.status, await response.json()

    async def message(
        self, loan_id: str, channel: str, recipient: str, *, provider_id: str | None = None
    ) -> str:
        """An outbox row as the worker leaves it: sent, with the provider's id."""
        return str(
            await self.pool.fetchval(
                "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, "
                "recipient, body, status, provider_id, sent_at) "
                "VALUES ($1, $2, 'd1', $3, 'reminder', 'en', $4, 'Pay now. Reply STOP to opt out.', 'sent', "
                "$5, now()) RETURNING id",
                f"{loan_id}:{uuid.uuid4().hex}",
                loan_id,
                channel,
                recipient,
                provider_id or f"{channel}_{uuid.uuid4().hex}",
            )
        )

    async def table(self) -> list[dict[str, Any]]:
        """Everything the inbound app may change: events, receipts, unreachable points, the outbox."""
        async with self.pool.acquire() as connection:
            events = await connection.fetch(
                "SELECT provider, event_id, outcome, loan_ids FROM inbound_events ORDER BY provider, event_id"
            )
            receipts = await connection.fetch(
                "SELECT id, status, delivery_status, delivery_reason FROM messages ORDER BY id"
            )
            points = await connection.fetch("SELECT * FROM unreachable_contact_points ORDER BY loan_id")
        return [dict(r) for r in [*events, *receipts, *points]]


def settings() -> InboundSettings:
    return InboundSettings(
        inbound_sms_secret=SecretStr(SECRET),
        inbound_email_secret=SecretStr(SECRET),
        inbound_push_api_key=SecretStr(PUSH_KEY),
    )


@pytest_asyncio.fixture
async def inbound(own_db_pool: asyncpg.Pool) -> AsyncIterator[Inbound]:
    desk, sms = FakeDesk(), FakeSms()
    service = InboundService(own_db_pool, desk, ReplySender(OutboxAdapter(own_db_pool), sms))
    async with TestClient(TestServer(build_app(service, settings()))) as client:
        yield Inbound(client, own_db_pool, desk, sms)


async def journal_jurisdiction(pool: asyncpg.Pool, loan_id: str, jurisdiction: str) -> None:
    """A contact attempt in the journal, which is where the inbound app reads the loan's jurisdiction."""
    await pool.execute(
        "INSERT INTO journal_contact_attempts (idempotency_key, loan_id, jurisdiction, at, channel, status, "
        "address_kind, actor) VALUES ($1, $2, $3, now(), 'sms', 'sent', 'phone', 'system')",
        f"{loan_id}:attempt:{uuid.uuid4().hex}",
        loan_id,
        jurisdiction,
    )
