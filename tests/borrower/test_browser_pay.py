"""The whole pay journey in a real browser on a phone: the link of a real SMS in the SMS sandbox -> the code
sent to that number (read from the sandbox) -> what is owed -> Pay -> the sandbox payment provider's hosted
page (stack/sandbox/payments.py) -> confirm -> back on the borrower page; the provider's signed webhook
reaches the page's /payments/webhook and the loan's workflow (the real one, fake activities) receives exactly
one payment, which pays the whole arrears and closes the loan as paid. Wired as `make run` wires it."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, expect
from temporalio.client import Client

from activities.channels import ChannelRouter, HttpSmsAdapter
from authority import Signer
from borrower.app import Services, create_app
from domain.strategy import default_strategy
from payments.provider import ProviderClient
from payments.service import PaymentService, payment_id
from payments.webhook import WEBHOOK_PATH
from stack.sandbox.payments import SANDBOX_PAYMENT_KEY, SANDBOX_WEBHOOK_SECRET, PaymentProviderSandbox
from stack.sandbox.sms import SmsGatewaySandbox
from tests.authority.keys import KEYS
from tests.borrower.conftest import BORROWER_KEY, SETTINGS, cn_loan, message_link, running
from tests.borrower.test_browser import PHONE, SANDBOX_KEY, last_sms_to, sms
from tests.browser.conftest import STEP_TIMEOUT_MS, InLoopServer, browser, chromium_path
from tests.payments.conftest import CountingStarter

__all__ = ["browser", "chromium_path", "sms"]  # fixtures shared with the other browser tests


@dataclass
class Served:
    base: str
    router: ChannelRouter
    starter: CountingStarter  # counts the payment signals the webhook sends
    provider: PaymentProviderSandbox


@pytest_asyncio.fixture
async def served(
    db_pool: asyncpg.Pool,
    local_client: Client,
    task_queue: str,
    sms: SmsGatewaySandbox,
    tmp_path: Path,
) -> AsyncIterator[Served]:
    """The borrower page with payments on, on a free port; the sandbox provider sends its webhooks there."""
    starter = CountingStarter(
        local_client, task_queue=task_queue, strategy=default_strategy(), signer=Signer([*KEYS, BORROWER_KEY])
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = PaymentProviderSandbox(tmp_path / "payments.jsonl", webhook_url=base + WEBHOOK_PATH)
    await provider.start()
    payments = PaymentService(
        db_pool,
        starter,
        ProviderClient(provider.base_url, SANDBOX_PAYMENT_KEY),
        webhook_secret=SANDBOX_WEBHOOK_SECRET,
    )
    router = ChannelRouter({"sms": HttpSmsAdapter(sms.url, api_key=SANDBOX_KEY)})
    app = create_app(Services(db_pool, starter, router, payments, SETTINGS))
    server = InLoopServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server
            await asyncio.sleep(0.01)
    yield Served(base, router, starter, provider)
    server.should_exit = True
    await task
    sock.close()
    await router.aclose()
    await provider.stop()


async def test_pay_the_arrears_at_the_provider_from_a_phone(
    browser: Browser,
    local_client: Client,
    task_queue: str,
    db_pool: asyncpg.Pool,
    sms: SmsGatewaySandbox,
    served: Served,
) -> None:
    base, starter = served.base, served.starter
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        await message_link(db_pool, loan, pattern=f"{base}/l/{{token}}", deliver=served.router)
        link = re.search(re.escape(base) + r"/l/[A-Za-z0-9_-]{43}", last_sms_to(sms, loan.borrower.phone))
        assert link

        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = await context.new_page()
            await page.goto(link.group(0))
            await page.get_by_role("button", name="发送验证码").click()
            await expect(page.get_by_role("status")).to_contain_text("验证码已发送")
            code = re.search(r"\d{6}", last_sms_to(sms, loan.borrower.phone))
            assert code
            await page.get_by_label("一次性验证码（6位数字）").fill(code.group(0))
            await page.get_by_role("button", name="继续").click()
            await expect(page.locator("#amount-overdue")).to_have_text("CNY 800.00")

            pay = page.get_by_role("region", name="立即还款")
            await pay.get_by_label("还款金额 (CNY)").fill("800")
            await pay.get_by_role("button", name="还款", exact=True).click()

            # The provider's hosted page, on the provider's own origin, for the amount asked.
            await expect(page.get_by_role("heading", level=1)).to_have_text("Sandbox payment")
            assert page.url.startswith(served.provider.base_url + "/pay/cs_")
            provider_id = page.url.rsplit("/", 1)[1]
            await expect(page.locator("[data-amount]")).to_have_attribute("data-amount", "80000")
            await page.get_by_role("button", name="Pay CNY 800.00").click()

            # Back on the borrower page. The webhook went out before the redirect, so the loan may already
            # be closed when the page loads: then it thanks for the payment received (never "no longer
            # active"), else it says the payment is being confirmed.
            back = re.escape(link.group(0)) + r"\?paid=1&checkout=cs_\w+&status=succeeded"
            await page.wait_for_url(re.compile(back))
            heading = page.get_by_role("heading", level=1)
            await expect(heading).to_have_text(re.compile("^(待还款项|谢谢，您的还款已收到)$"))
            if await heading.inner_text() == "待还款项":
                await expect(page.get_by_role("status")).to_contain_text("您的还款正在确认中")
        finally:
            await context.close()

        handle = starter.handle(loan.loan_id)
        async with asyncio.timeout(10):
            await handle.result()  # paying the whole arrears ends the collection
        status = await starter.status(loan.loan_id)
        assert status.outcome == "paid"
        assert status.paid_total_minor == 80_000 and status.amount_overdue_minor == 0
        assert starter.paid == [(loan.loan_id, 80_000, payment_id(provider_id))]
