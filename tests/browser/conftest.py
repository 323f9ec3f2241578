"""The admin UI in a real browser: the system chromium driven by Playwright, against the app served by uvicorn
in the test session's own event loop, on the embedded PostgreSQL and the local Temporal dev server.

One browser for the session, a new browser context (cookies, language) per test, a new server per test (it
takes milliseconds). Playwright never downloads a browser here: it launches /usr/bin/chromium (Debian's,
installed by .ci/run; OVERDUE_CHROMIUM names another). Without it the tests skip on a developer's machine
and fail in CI (CI=true), where a skipped browser suite would be a silent hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities import contracts
from activities.journal import upsert_snapshot
from admin.app import Services, create_app
from admin.screenshots import CHROMIUM as DEFAULT_CHROMIUM
from admin.screenshots import CHROMIUM_ARGS
from admin.users import Locale, User, create_user
from domain.loan import Loan
from domain.strategy import default_strategy
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, zone_at
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS

CHROMIUM = os.environ.get("OVERDUE_CHROMIUM", DEFAULT_CHROMIUM)
# A step that takes longer than this is a failure, not a 30 s wait (Playwright's default).
STEP_TIMEOUT_MS = 10_000

MakeUser = Callable[..., Awaitable[User]]


# -- the browser (one per session) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    reason = f"no chromium at {CHROMIUM} (apt-get install chromium; or set OVERDUE_CHROMIUM)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest_asyncio.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


# -- the app, served in this event loop ----------------------------------------------------------------------


class InLoopServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C stops pytest, not just the server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture
def starter(local_client: Client, task_queue: str) -> CollectionsStarter:
    return CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())


@pytest_asyncio.fixture
async def base_url(db_pool: asyncpg.Pool, starter: CollectionsStarter) -> AsyncIterator[str]:
    """The admin app on a free port of 127.0.0.1 (the socket is bound here, so no other process can take
    the port between choosing and serving)."""
    app = create_app(SETTINGS, services=Services(db_pool, starter))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


@pytest_asyncio.fixture
async def context(browser: Browser, base_url: str) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, in English unless the user's own locale says not."""
    opened = await browser.new_context(
        base_url=base_url, locale="en-US", viewport={"width": 1280, "height": 900}
    )
    opened.set_default_timeout(STEP_TIMEOUT_MS)
    opened.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    yield opened
    await opened.close()


@pytest_asyncio.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


# -- users and loans -----------------------------------------------------------------------------------------

# Pools bind collectors to loans (admin/access.py): the loans of these tests are in segment "standard",
# their hand-made tasks in pool "default".
TEST_POOLS = ("default", "standard")


@pytest.fixture
def make_user(db_pool: asyncpg.Pool) -> MakeUser:
    async def make(role: str, locale: Locale = "en") -> User:
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        return await create_user(
            db_pool, name, PASSWORD, role=role, display_name=name.title(), locale=locale, pools=TEST_POOLS
        )

    return make


async def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Type the credentials into the login page the browser is on and press the button."""
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("form[action='/login'] button[type=submit]")


def in_days(days: int) -> str:
    """A date `days` from today in the borrower's zone (the loans here are in Asia/Shanghai)."""
    return (datetime.now(UTC).astimezone(SHANGHAI).date() + timedelta(days=days)).isoformat()


@contextlib.asynccontextmanager
async def running(
    loan: Loan, local_client: Client, task_queue: str, starter: CollectionsStarter, db_pool: asyncpg.Pool
) -> AsyncIterator[Loan]:
    """`loan`'s workflow running on a worker with fakes, and its row in the portfolio read model (the real
    journal activity writes it; the fakes do not, so it is written here, with the product's own upsert)."""
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        assert await starter.start_loan(loan) == "started"
        status = await starter.status(loan.loan_id)
        now = datetime.now(UTC)
        snapshot = contracts.PortfolioSnapshot(
            loan_id=loan.loan_id,
            borrower_name=loan.borrower.name,
            jurisdiction=loan.jurisdiction,
            timezone=loan.borrower.timezone,
            locale=loan.borrower.locale,
            currency=loan.currency,
            segment=status.segment,
            strategy=status.strategy,
            stage=status.stage,
            overdue_since=loan.overdue_since,
            amount_overdue_minor=status.amount_overdue_minor,
            principal_outstanding_minor=status.principal_outstanding_minor,
            paid_total_minor=status.paid_total_minor,
            clock_real_anchor=now,
            clock_collections_anchor=now,
            as_of=now,
        )
        async with db_pool.acquire() as connection:
            await upsert_snapshot(connection, snapshot)
        try:
            yield loan
        finally:
            with contextlib.suppress(RPCError):  # already closed (a test that failed to keep it open)
                await starter.handle(loan.loan_id).terminate("test finished")
            await db_pool.execute("DELETE FROM portfolio WHERE loan_id = $1", loan.loan_id)


def browser_loan(timezone: str | None = None) -> Loan:
    """A CNY loan 20 days past due with 800.00 overdue; the borrower's name is unique, so a search finds only
    this loan."""
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    borrower = loan.borrower.model_copy(
        update={
            "name": f"Browser Borrower {uuid.uuid4().hex[:6]}",
            "timezone": timezone or loan.borrower.timezone,
        }
    )
    return loan.model_copy(update={"loan_id": f"WEB-{uuid.uuid4().hex[:8].upper()}", "borrower": borrower})


@pytest_asyncio.fixture
async def running_loan(
    local_client: Client, task_queue: str, starter: CollectionsStarter, db_pool: asyncpg.Pool
) -> AsyncIterator[Loan]:
    """A loan of `browser_loan()` (the borrower in Asia/Shanghai), running."""
    async with running(browser_loan(), local_client, task_queue, starter, db_pool) as loan:
        yield loan


@pytest_asyncio.fixture
async def loan_at_night(
    local_client: Client, task_queue: str, starter: CollectionsStarter, db_pool: asyncpg.Pool
) -> AsyncIterator[Loan]:
    """A running loan whose borrower lives where it is 02:xx now: outside every contact profile's hours."""
    loan = browser_loan(timezone=zone_at(2).key)
    async with running(loan, local_client, task_queue, starter, db_pool) as started:
        yield started
