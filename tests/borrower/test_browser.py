"""The borrower's journey in a real browser on a phone-sized screen: the link of a real SMS in the SMS sandbox
-> a code sent to that number (read from the sandbox) -> what is owed -> a promise the workflow accepts.
Debian's chromium through Playwright, as tests/browser does (skipped without it, failed in CI)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, ViewportSize, expect
from temporalio.client import Client

from activities.channels import ChannelRouter, HttpSmsAdapter
from borrower.app import Services, create_app
from borrower.links import revoke_links
from stack.sandbox.sms import SmsGatewaySandbox
from starter.api import CollectionsStarter
from tests.admin.conftest import zone_at
from tests.borrower.conftest import SETTINGS, cn_loan, message_link, running, us_loan
from tests.browser.conftest import STEP_TIMEOUT_MS, InLoopServer, browser, chromium_path

__all__ = ["browser", "chromium_path"]  # the session's chromium (tests/browser/conftest.py)

PHONE: ViewportSize = {"width": 390, "height": 844}
SANDBOX_KEY = "sandbox-key"


@pytest_asyncio.fixture
async def sms(tmp_path: Path) -> AsyncIterator[SmsGatewaySandbox]:
    sandbox = SmsGatewaySandbox(tmp_path / "sms.jsonl", api_key=SANDBOX_KEY)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def page_url(
    db_pool: asyncpg.Pool, starter: CollectionsStarter, sms: SmsGatewaySandbox
) -> AsyncIterator[tuple[str, ChannelRouter]]:
    """The borrower page served on a free port, its codes going out through the SMS sandbox."""
    router = ChannelRouter({"sms": HttpSmsAdapter(sms.url, api_key=SANDBOX_KEY)})
    app = create_app(Services(db_pool, starter, router, settings=SETTINGS))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = InLoopServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server
            await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", router
    server.should_exit = True
    await task
    sock.close()
    await router.aclose()


def last_sms_to(sms: SmsGatewaySandbox, number: str) -> str:
    texts = [entry["text"] for entry in sms.entries() if entry["to"] == number]
    assert texts, sms.entries()
    return str(texts[-1])


async def test_link_code_owed_promise_on_a_phone(
    browser: Browser,
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    sms: SmsGatewaySandbox,
    page_url: tuple[str, ChannelRouter],
) -> None:
    base, router = page_url
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        await message_link(db_pool, loan, pattern=f"{base}/l/{{token}}", deliver=router)
        reminder = last_sms_to(sms, loan.borrower.phone)  # the message as the borrower's phone got it
        link = re.search(re.escape(base) + r"/l/[A-Za-z0-9_-]{43}", reminder)
        assert link and loan.loan_id not in link.group(0)

        context = await browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", device_scale_factor=2
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = await context.new_page()
            await page.goto(link.group(0))
            await expect(page.get_by_role("heading", level=1)).to_have_text("确认您的身份")
            assert "800" not in await page.content()  # nothing about the debt before the code
            await page.keyboard.press("Tab")  # the first stop is the skip link (keyboard users)
            await expect(page.get_by_role("link", name="跳到主要内容")).to_be_focused()

            await page.get_by_role("button", name="发送验证码").click()
            await expect(page.get_by_role("status")).to_contain_text("验证码已发送")
            code = re.search(r"\d{6}", last_sms_to(sms, loan.borrower.phone))
            assert code
            await page.get_by_label("一次性验证码（6位数字）").fill(code.group(0))
            await page.get_by_role("button", name="继续").click()

            await expect(page.get_by_role("heading", level=1)).to_have_text("待还款项")
            await expect(page.locator("#amount-overdue")).to_have_text("CNY 800.00")
            await expect(page.get_by_role("region", name="您的权利")).to_be_visible()
            # Mobile first: nothing wider than the phone.
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
            promise = page.get_by_role("region", name="承诺还款")
            await promise.get_by_label("金额 (CNY)").fill("300")
            await promise.get_by_label("还款日期").fill(due)
            await promise.get_by_role("button", name="提交承诺").click()
            await expect(page.get_by_role("status")).to_contain_text("已记录您于")
        finally:
            await context.close()
        status = await starter.status(loan.loan_id)
        assert status.open_promise is not None and status.open_promise.collector == "borrower"
        assert status.open_promise.amount_minor == 30_000


async def verified_page(
    browser: Browser, link: str, sms: SmsGatewaySandbox, number: str, locale: str
) -> Page:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale=locale)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(link)
    await page.locator("form").first.get_by_role("button").click()
    code = re.search(r"\d{6}", last_sms_to(sms, number))
    assert code
    await page.locator("#code").fill(code.group(0))
    await page.locator("form").nth(1).get_by_role("button").click()
    await expect(page.locator("#amount-overdue")).to_be_visible()
    return page


async def test_plans_refused_with_the_reason_then_accepted_and_a_us_dispute(
    browser: Browser,
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    sms: SmsGatewaySandbox,
    page_url: tuple[str, ChannelRouter],
) -> None:
    base, router = page_url
    async with running(us_loan(zone_at(12).key), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan, pattern=f"{base}/l/{{token}}", deliver=router, locale="en")
        page = await verified_page(browser, base + path, sms, loan.borrower.phone, "en-US")
        try:
            plan = page.get_by_role("region", name="Repayment plan")
            # The count is chosen among the band's (CNY 800.00: 2 to 4); a late first payment is refused.
            await plan.get_by_label("Number of instalments").select_option("2")
            first = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
            await plan.get_by_label("First payment on").fill(first)
            await plan.get_by_role("button", name="Propose this plan").click()
            field = page.get_by_role("region", name="Repayment plan").get_by_label("First payment on")
            await expect(field).to_have_attribute("aria-invalid", "true")
            await expect(page.locator("#plan-first-error")).to_contain_text("first payment within 14 days")
            assert (await starter.status(loan.loan_id)).repayment_plan is None

            plan = page.get_by_role("region", name="Repayment plan")
            await plan.get_by_label("Number of instalments").select_option("4")
            soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
            await plan.get_by_label("First payment on").fill(soon)
            await plan.get_by_role("button", name="Propose this plan").click()
            await expect(page.get_by_role("status")).to_contain_text("Your repayment plan is agreed")
            agreed = (await starter.status(loan.loan_id)).repayment_plan
            assert agreed is not None and agreed.collector == "borrower"

            dispute = page.get_by_role("region", name="Dispute this debt")
            await dispute.get_by_label("What is wrong?").fill("I never took this loan; please verify it.")
            await dispute.get_by_role("button", name="Send my dispute").click()
            await expect(page.get_by_role("status")).to_contain_text("Your dispute is recorded")
            status = await starter.status(loan.loan_id)
            assert status.contact is not None and status.contact.dispute_open
        finally:
            await page.context.close()


async def test_a_forwarded_then_revoked_link(
    browser: Browser,
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    sms: SmsGatewaySandbox,
    page_url: tuple[str, ChannelRouter],
) -> None:
    base, router = page_url
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan, pattern=f"{base}/l/{{token}}", deliver=router)
        context = await browser.new_context(viewport=PHONE, is_mobile=True, locale="en-US")
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = await context.new_page()
            await page.goto(base + path)  # someone the message was forwarded to, without the phone
            text = await page.locator("body").inner_text()
            for secret in ("800", loan.loan_id, loan.borrower.name, loan.borrower.phone):
                assert secret not in text
            await revoke_links(db_pool, loan.loan_id)
            answer = await page.goto(base + path)
            assert answer is not None and answer.status == 410
            await expect(page.get_by_role("heading", level=1)).to_have_text("该链接已失效")
        finally:
            await context.close()
