from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contact_profiles import default_profiles
from domain.loan import Borrower, Instalment, Loan
from domain.strategy import Strategy, default_strategy
from tests.authority.keys import signed
from tests.workflows.fakes import FakeActivities
from workflows.messages import WORKFLOW_NAME, CollectionInput, CollectionStatus, workflow_id
from workflows.registry import WORKFLOWS

SHANGHAI = ZoneInfo("Asia/Shanghai")


def zone_at(hour: int) -> ZoneInfo:
    """A fixed-offset zone (no DST) where the wall clock shows `hour` o'clock now: for tests on the real clock
    (the dev server, not time skipping) that need the borrower inside or outside the contact hours whatever
    time they run."""
    offset = (hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    # POSIX-style names: Etc/GMT-8 is UTC+08:00.
    return ZoneInfo("Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}")


def make_loan(
    now: datetime,
    *,
    dpd: int,
    amount: int = 150_000,
    principal: int | None = None,
    risk: str = "C",
    instalments: list[tuple[int, int]] | None = None,
    email: str | None = "li.lei@example.cn",
    postal_address: str | None = "上海市浦东新区世纪大道100号",
    timezone: str = "Asia/Shanghai",
) -> Loan:
    """A CNY loan overdue for `dpd` borrower-local days; instalments as (days before today, amount)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    overdue_since = today - timedelta(days=dpd)
    return Loan(
        loan_id=f"L-{uuid.uuid4().hex[:10]}",
        borrower=Borrower(
            name="李雷",
            phone="+8613800138000",
            email=email,
            locale="zh-CN",
            timezone=timezone,
            postal_address=postal_address,
        ),
        currency="CNY",
        amount_overdue_minor=amount,
        principal_outstanding_minor=principal if principal is not None else amount * 4,
        overdue_since=overdue_since,
        risk_grade=risk,
        overdue_instalments=[
            Instalment(due_date=today - timedelta(days=d), amount_minor=a) for d, a in instalments
        ]
        if instalments
        else None,
    )


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    fakes: FakeActivities
    started: list[WorkflowHandle] = field(default_factory=list)

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def today(self) -> date:
        return (await self.now()).astimezone(SHANGHAI).date()

    async def start(self, loan: Loan, strategy: Strategy | None = None, **kwargs: object) -> WorkflowHandle:
        """Start a loan with its jurisdiction's contact profile."""
        profile = default_profiles()[loan.jurisdiction]
        handle = await self.client.start_workflow(
            WORKFLOW_NAME,
            CollectionInput(loan=loan, strategy=strategy or default_strategy(), profile=profile, **kwargs),
            id=workflow_id(loan.loan_id),
            task_queue=self.task_queue,
            result_type=CollectionStatus,
        )
        self.started.append(handle)
        return handle

    async def terminate_running(self) -> None:
        # The time-skipping server cannot skip time while a left-over workflow has tasks no worker polls;
        # each test therefore ends its own loans.
        for handle in self.started:
            try:
                await handle.terminate("test finished")
            except RPCError:
                pass  # already completed


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    fakes = FakeActivities()
    task_queue = f"wf-{uuid.uuid4().hex}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=fakes.all(),
    ):
        # Signals and updates go out signed as the actor their request names (tests/authority/keys.py);
        # tests/workflows/test_actors.py sends through the raw client.
        client = signed(time_skipping_env.client, time_skipping_env.get_current_time)
        harness = Harness(time_skipping_env, client, task_queue, fakes)
        # Every test starts at 10:00 in Shanghai: inside contact hours, after the day's 09:00 steps, and the
        # same whatever the wall clock of the machine running the tests.
        now = await harness.now()
        local = now.astimezone(SHANGHAI)
        ten = local.replace(hour=10, minute=0, second=0, microsecond=0)
        if ten <= local:
            ten += timedelta(days=1)
        await time_skipping_env.sleep(ten - local)
        yield harness
        await harness.terminate_running()
        assert fakes.journal_errors == [], "the workflow wrote journal entries the real activity rejects"
