"""The admin UI as a collector uses it: real clicks and typing in chromium, the real workflow behind it.

Fields are found by name and buttons by their text, not by layout, so moving a form to another template
(admin/templates/loan_actions.html) does not break these tests.
"""

from __future__ import annotations

import re
import struct
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from playwright.async_api import Locator, Page, expect
from temporalio.client import WorkflowExecutionStatus

from admin import screenshots
from admin.screenshots import Options, ScreenshotError, take
from admin.users import get_user
from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD
from tests.browser.conftest import MakeUser, in_days, log_in

pytestmark = pytest.mark.browser


async def open_dossier(page: Page, loan: Loan) -> None:
    response = await page.goto(f"/loans/{loan.loan_id}")
    assert response is not None and response.status == 200
    await expect(page.locator("h1")).to_contain_text(loan.loan_id)


async def expect_login_page_for(page: Page, base_url: str, target: str) -> None:
    """The login page, asked to return to `target` after the login."""
    await expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/login\?"))
    assert parse_qs(urlsplit(page.url).query)["next"] == [target]
    await expect(page.locator("input[name=password]")).to_be_visible()


async def logged_in(page: Page, username: str) -> None:
    await page.goto("/login")
    await log_in(page, username)


def promise_form_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Record promise")


async def test_logged_out_pages_lead_to_the_login_and_a_collector_gets_the_work_queue(
    page: Page, base_url: str, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    loan_id = f"WEB-{uuid.uuid4().hex[:8].upper()}"
    await db_pool.execute(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority) "
        "VALUES ($1, $2, 'call-1', 'call', now(), 1000)",  # the top priority: first in the queue
        f"{loan_id}:call-1",
        loan_id,
    )
    user = await make_user("collector")

    await page.goto("/portfolio")
    await expect_login_page_for(page, base_url, "/portfolio")
    await page.goto("/")
    await expect_login_page_for(page, base_url, "/")

    await log_in(page, user.username, "not the password")
    await expect(page.get_by_role("alert")).to_contain_text("Wrong username or password.")
    await expect(page.locator("input[name=username]")).to_have_value(user.username)

    await log_in(page, user.username)
    await expect(page).to_have_url(f"{base_url}/")
    await expect(page.get_by_role("link", name="Work queue")).to_have_attribute("aria-current", "page")
    await expect(page.locator("header")).to_contain_text(user.display_name)
    await expect(page.get_by_role("link", name=loan_id)).to_have_attribute("href", f"/loans/{loan_id}")


async def test_a_collector_finds_a_loan_in_the_portfolio(
    page: Page, make_user: MakeUser, running_loan: Loan
) -> None:
    await logged_in(page, (await make_user("collector")).username)

    await page.get_by_role("link", name="Portfolio").click()
    await expect(page).to_have_url(re.compile(r"/portfolio"))
    result = page.locator(f"a[href='/loans/{running_loan.loan_id}']")

    # By loan id, submitted with Enter.
    await page.fill("input[name=q]", running_loan.loan_id)
    async with page.expect_navigation():
        await page.press("input[name=q]", "Enter")
    await expect(result).to_have_count(1)

    # A name nobody has: no result.
    await page.fill("input[name=q]", f"nobody-{uuid.uuid4().hex[:8]}")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Search").click()
    await expect(result).to_have_count(0)

    # By part of the borrower's name, in another case, with the Search button.
    name_part = " ".join(running_loan.borrower.name.split()[1:]).upper()  # "BORROWER 1A2B3C"
    await page.fill("input[name=q]", name_part)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Search").click()
    await expect(result).to_have_count(1)
    await result.click()
    await expect(page.locator("h1")).to_contain_text(running_loan.loan_id)
    await expect(page.get_by_text("CNY 800.00").first).to_be_visible()


async def test_a_valid_promise_is_shown_and_reaches_the_workflow(
    page: Page, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    user = await make_user("collector")
    await logged_in(page, user.username)
    await open_dossier(page, running_loan)

    await page.fill("input[name=amount]", "300.50")
    await page.fill("input[name=due_date]", in_days(3))
    await page.fill("input[name=note]", "salary day")
    async with page.expect_navigation() as navigation:
        await promise_form_button(page).click()
    response = await navigation.value
    assert response is not None and response.status == 200

    await expect(page.get_by_role("status")).to_contain_text("Promise recorded.")
    shown = page.locator("tr", has_text="salary day")  # the promise's row: amount, due date, collector
    await expect(shown.first).to_contain_text("CNY 300.50")
    await expect(shown.first).to_contain_text(in_days(3))
    await expect(shown.first).to_contain_text(user.username)

    status = await starter.status(running_loan.loan_id)
    assert status.open_promise is not None
    assert (status.open_promise.amount_minor, status.open_promise.collector) == (30_050, user.username)
    assert (status.open_promise.due_date.isoformat(), status.open_promise.note) == (in_days(3), "salary day")


async def test_an_invalid_promise_shows_the_reason_next_to_the_field_and_saves_nothing(
    page: Page, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    await logged_in(page, (await make_user("collector")).username)
    await open_dossier(page, running_loan)
    amount, due_date = page.locator("input[name=amount]"), page.locator("input[name=due_date]")

    # More than the 800.00 overdue.
    await amount.fill("900")
    await due_date.fill(in_days(3))
    async with page.expect_navigation() as navigation:
        await promise_form_button(page).click()
    assert (response := await navigation.value) is not None and response.status == 422
    amount_error = amount.locator("xpath=..").locator(".field-error")
    await expect(amount_error).to_contain_text("more than the amount overdue")
    await expect(amount).to_have_value("900")  # what the collector typed is kept
    await expect(due_date.locator("xpath=..").locator(".field-error")).to_have_count(0)

    # A date in the past.
    await amount.fill("100")
    await due_date.fill(in_days(-1))
    async with page.expect_navigation() as navigation:
        await promise_form_button(page).click()
    assert (response := await navigation.value) is not None and response.status == 422
    await expect(due_date.locator("xpath=..").locator(".field-error")).to_contain_text("in the past")
    await expect(amount.locator("xpath=..").locator(".field-error")).to_have_count(0)

    status = await starter.status(running_loan.loan_id)
    assert status.promises == [] and status.open_promise is None


async def test_a_collector_cannot_close_a_loan(
    page: Page, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    await logged_in(page, (await make_user("collector")).username)
    await open_dossier(page, running_loan)
    close_url = f"/loans/{running_loan.loan_id}/close"
    await expect(page.locator(f"form[action='{close_url}']")).to_have_count(0)  # no such form for them
    token = await page.locator("input[name=csrf_token]").first.input_value()

    # The browser submits the supervisor's form anyway, with a valid CSRF token: the role is what stops it.
    async with page.expect_navigation() as navigation:
        await page.evaluate(
            """([action, token]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = action;
                for (const [name, value] of [['csrf_token', token], ['reason', 'settled'], ['note', 'x']]) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [close_url, token],
        )
    assert (response := await navigation.value) is not None and response.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("This action needs the supervisor role.")
    # The same from the context's request API (the browser's cookies).
    direct = await page.request.post(close_url, form={"csrf_token": token, "reason": "settled"})
    assert direct.status == 403

    status = await starter.status(running_loan.loan_id)
    assert status.outcome is None
    description = await starter.handle(running_loan.loan_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_a_form_without_its_csrf_token_is_refused(
    page: Page, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    await logged_in(page, (await make_user("collector")).username)
    await open_dossier(page, running_loan)
    await page.fill("input[name=amount]", "300")
    await page.fill("input[name=due_date]", in_days(3))
    removed = await page.evaluate(
        """() => {
            const tokens = document.querySelector('input[name=amount]').form
                .querySelectorAll('input[name=csrf_token]');
            tokens.forEach((input) => input.remove());
            return tokens.length;
        }"""
    )
    assert removed == 1
    async with page.expect_navigation() as navigation:
        await promise_form_button(page).click()
    assert (response := await navigation.value) is not None and response.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("This form has expired")

    status = await starter.status(running_loan.loan_id)
    assert status.promises == [] and status.open_promise is None


async def test_a_chinese_user_sees_chinese_and_can_switch_language(page: Page, make_user: MakeUser) -> None:
    await logged_in(page, (await make_user("collector", locale="zh-CN")).username)
    header = page.locator("header")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(header.get_by_role("link", name="工作队列")).to_be_visible()
    await expect(header.get_by_role("link", name="案件查询")).to_be_visible()
    await expect(header.get_by_role("button", name="退出登录")).to_be_visible()

    # The header's language button: English from now on, and back.
    async with page.expect_navigation():
        await header.get_by_role("button", name="English").click()
    await expect(header.get_by_role("link", name="Work queue")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    async with page.expect_navigation():
        await header.get_by_role("button", name="中文").click()
    await expect(header.get_by_role("link", name="工作队列")).to_be_visible()


async def test_the_screenshot_tool_saves_every_page(
    page: Page,
    base_url: str,
    chromium_path: str,
    make_user: MakeUser,
    running_loan: Loan,
    db_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    user = await make_user("collector")
    options = Options(base_url, user.username, PASSWORD, tmp_path, running_loan.loan_id, chromium_path)
    saved = await take(options)

    names = [path.name for path in saved]
    assert names == [
        "01-login.png",
        "02-work-queue.png",
        "03-portfolio.png",
        "04-loan-en.png",
        "05-dashboard.png",
        "06-loan-zh-CN.png",
    ]
    for path in saved:
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", header[16:24])
        assert width == 1366 and height >= 900, (path.name, width, height)
    after = await get_user(db_pool, user.id)
    assert after is not None and after.locale == "en"  # switched back after the Chinese dossier

    # A wrong password is a clear error (checked in the session's browser: no second chromium to start).
    await page.goto("/login")
    with pytest.raises(ScreenshotError, match=r"login as .* failed: Wrong username or password"):
        await screenshots.log_in(page, user.username, "not the password")


async def test_a_call_claimed_at_night_is_refused_and_waits_in_the_queue_until_the_borrowers_morning(
    page: Page, make_user: MakeUser, loan_at_night: Loan, db_pool: asyncpg.Pool
) -> None:
    task_id = await db_pool.fetchval(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority) "
        "VALUES ($1, $2, 'call-1', 'call', now() - interval '1 minute', 1000) RETURNING id",
        f"{loan_at_night.loan_id}:call-1",
        loan_at_night.loan_id,
    )
    await logged_in(page, (await make_user("collector")).username)
    row = page.locator(f"#open tr[data-task='{task_id}']")
    async with page.expect_navigation() as navigation:
        await row.get_by_role("button", name="Claim").click()
    assert (response := await navigation.value) is not None and response.status == 409
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Contact with this borrower is not allowed now")
    await expect(alert).to_contain_text(f"08:00 ({loan_at_night.borrower.timezone}, UTC")
    await expect(alert).to_contain_text("the borrower's local time")

    await page.get_by_role("link", name="Back to the work queue").click()
    await expect(page.locator(f"#open tr[data-task='{task_id}']")).to_have_count(0)
    held = page.locator(f"#held tr[data-task='{task_id}']")
    await expect(held).to_contain_text(loan_at_night.loan_id)
    await expect(held.locator(".allowed-from")).to_contain_text(f"08:00 ({loan_at_night.borrower.timezone}")
    await expect(held.get_by_role("button")).to_have_count(0)  # nothing to claim before then
    claimed = await db_pool.fetchrow("SELECT status, assignee FROM collector_tasks WHERE id = $1", task_id)
    assert claimed is not None and (claimed["status"], claimed["assignee"]) == ("open", None)


async def test_a_supervisor_reaches_the_journal_dead_letters_from_the_dashboard(
    page: Page, make_user: MakeUser
) -> None:
    await logged_in(page, (await make_user("supervisor")).username)
    await page.get_by_role("link", name="Dashboard").click()
    async with page.expect_navigation():
        await page.get_by_role("link", name=re.compile(r"Journal entries not written: \d+")).click()
    await expect(page).to_have_url(re.compile(r"/journal/dead-letters$"))
    await expect(page.locator("h1")).to_have_text("Journal dead letters")
