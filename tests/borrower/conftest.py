"""The borrower page over ASGI (httpx) against the embedded PostgreSQL and the real workflow on the local dev
server with fake activities; the page signs with a borrower key the test worker trusts, codes go to a fake
channel that keeps them."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client

from activities.contracts import MessageRequest
from activities.messaging import (
    ChannelAdapter,
    OutboxAdapter,
    RenderedMessage,
    TemplateCatalogue,
    send_message,
)
from authority import Signer, SigningKey, TrustedKeys, trust
from borrower.app import Services, create_app
from borrower.settings import BorrowerSettings
from domain.loan import Loan
from domain.strategy import default_strategy
from starter.api import CollectionsStarter
from tests.authority.keys import KEYS
from tests.browser.conftest import running
from tests.workflows.conftest import make_loan

BORROWER_KEY = SigningKey.generate("test-borrower-1", "borrower", ("borrower",), "borrower", seed=b"b" * 32)
SECRET = "s" * 40
SETTINGS = BorrowerSettings(link_secret=SECRET)
PATTERN = "http://testserver/l/{token}"


@dataclass
class KeptCodes:
    """A channel that delivers nothing and keeps what it was asked to deliver."""

    sent: list[RenderedMessage] = field(default_factory=list)

    async def deliver(self, message: RenderedMessage) -> str:
        self.sent.append(message)
        return f"fake-{len(self.sent)}"

    def last_code(self) -> str:
        found = re.search(r"\d{6}", self.sent[-1].body)
        assert found, self.sent[-1].body
        return found.group(0)


@pytest.fixture(autouse=True)
def trust_the_borrower_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "_ring", TrustedKeys(key.public() for key in (*KEYS, BORROWER_KEY)))
    monkeypatch.setenv("OVERDUE_BORROWER_LINK_SECRET", SECRET)


@pytest.fixture
def starter(local_client: Client, task_queue: str) -> CollectionsStarter:
    """Signs as the borrower page and, for the tests' own moves (close), as servicing and operator."""
    return CollectionsStarter(
        local_client, task_queue=task_queue, strategy=default_strategy(), signer=Signer([*KEYS, BORROWER_KEY])
    )


@pytest.fixture
def codes() -> KeptCodes:
    return KeptCodes()


@pytest.fixture
def app(db_pool: asyncpg.Pool, starter: CollectionsStarter, codes: KeptCodes) -> FastAPI:
    return create_app(Services(db_pool, starter, codes, settings=SETTINGS))


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as made:
        yield made


async def message_link(
    pool: asyncpg.Pool,
    loan: Loan,
    *,
    channel: str = "sms",
    key: str | None = None,
    locale: str | None = None,
    pattern: str = PATTERN,
    deliver: ChannelAdapter | None = None,
) -> str:
    """Send a real reminder through the product's messaging path (outbox, no channel) and return the path
    of the link it carries."""
    recipient = loan.borrower.phone if channel == "sms" else (loan.borrower.email or "")
    receipt = await send_message(
        MessageRequest(
            idempotency_key=key
            or f"{loan.loan_id}:{loan.overdue_since.isoformat()}:reminder-{uuid.uuid4().hex[:6]}",
            loan_id=loan.loan_id,
            step_key="reminder",
            channel=channel,
            template="reminder_polite",
            locale=locale or loan.borrower.locale,
            recipient=recipient,
            variables={
                "borrower_name": loan.borrower.name,
                "lender": "Demo Lender",
                "dpd": "20",
                "amount_minor": str(loan.amount_overdue_minor),
                "currency": loan.currency,
                "overdue_since": loan.overdue_since.isoformat(),
                "jurisdiction": loan.jurisdiction,
            },
        ),
        catalogue=TemplateCatalogue.load(),
        outbox=OutboxAdapter(pool),
        channel=deliver,
        pay_url=pattern,
    )
    body = await pool.fetchval("SELECT body FROM messages WHERE id = $1::uuid", receipt.message_id)
    found = re.search(re.escape(pattern.split("{token}")[0]) + r"([A-Za-z0-9_-]{43})", body)
    assert found, body
    return f"/l/{found.group(1)}"


Verify = Callable[[httpx.AsyncClient, str], Awaitable[None]]


async def verified(client: httpx.AsyncClient, codes: KeptCodes, path: str) -> str:
    """Ask for a code, enter it; returns the account page."""
    assert (await client.post(f"{path}/code")).status_code == 200
    entered = await client.post(f"{path}/verify", data={"code": codes.last_code()})
    assert entered.status_code == 303, entered.text
    page = await client.get(path)
    assert page.status_code == 200
    return page.text


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found
    return found.group(1)


def own_phone() -> str:
    """Each loan its own number: the per-address code limit spans the session's shared database."""
    return f"+86139{secrets.randbelow(10**8):08d}"


def us_loan(hour_zone: str) -> Loan:
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    borrower = loan.borrower.model_copy(update={"timezone": hour_zone, "locale": "en", "phone": own_phone()})
    return loan.model_copy(
        update={"loan_id": f"BRW-{uuid.uuid4().hex[:8]}", "jurisdiction": "us", "borrower": borrower}
    )


def cn_loan() -> Loan:
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    borrower = loan.borrower.model_copy(update={"phone": own_phone()})
    return loan.model_copy(update={"loan_id": f"BRW-{uuid.uuid4().hex[:8]}", "borrower": borrower})


__all__ = ["running"]
