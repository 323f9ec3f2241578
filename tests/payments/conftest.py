"""A loan on the real LoanCollectionWorkflow (fake activities, local dev server), the sandbox provider,
and the product's webhook served over real HTTP, wired together as `make run` wires them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.loan import Loan, Payment
from domain.strategy import default_strategy
from payments import webhook
from payments.provider import ProviderClient
from payments.service import PaymentService
from stack.sandbox.common import bind
from stack.sandbox.payments import SANDBOX_PAYMENT_KEY, SANDBOX_WEBHOOK_SECRET, PaymentProviderSandbox
from starter.api import CollectionsStarter
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS


class CountingStarter(CollectionsStarter):
    """The real starter, counting the payment signals it sends (the workflow itself would also drop a
    repeated payment id: the count shows the webhook did not even try twice)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paid: list[tuple[str, int, str]] = []

    async def pay(self, loan_id: str, amount_minor: int, payment_id: str, *a: Any, **k: Any) -> Payment:
        payment = await super().pay(loan_id, amount_minor, payment_id, *a, **k)
        self.paid.append((loan_id, amount_minor, payment_id))
        return payment


@dataclass
class Rig:
    service: PaymentService
    starter: CountingStarter
    provider: PaymentProviderSandbox
    webhook_url: str
    pool: asyncpg.Pool
    started: list[str]

    async def loan(self, amount: int = 80_000) -> Loan:
        loan = make_loan(datetime.now(UTC), dpd=20, amount=amount)
        loan = loan.model_copy(update={"loan_id": f"PAY-{uuid.uuid4().hex[:8]}"})
        assert await self.starter.start_loan(loan) == "started"
        self.started.append(loan.loan_id)
        return loan


@pytest_asyncio.fixture
async def rig(
    local_client: Client, task_queue: str, db_pool: asyncpg.Pool, tmp_path: Any
) -> AsyncIterator[Rig]:
    starter = CountingStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    sock = bind("127.0.0.1", 0, "test")
    webhook_url = f"http://127.0.0.1:{sock.getsockname()[1]}{webhook.WEBHOOK_PATH}"
    provider = PaymentProviderSandbox(tmp_path / "payments.jsonl", webhook_url=webhook_url)
    await provider.start()
    service = PaymentService(
        db_pool,
        starter,
        ProviderClient(provider.base_url, SANDBOX_PAYMENT_KEY),
        webhook_secret=SANDBOX_WEBHOOK_SECRET,
        minimum_minor=100,
    )
    app = FastAPI()
    app.state.payments = service
    app.include_router(webhook.router)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    worker = Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    )
    async with worker:
        rig = Rig(service, starter, provider, webhook_url, db_pool, [])
        yield rig
        for loan_id in rig.started:
            try:
                await starter.handle(loan_id).terminate("test finished")
            except RPCError:
                pass  # ended by the test
    server.should_exit = True
    await serving
    await provider.stop()
