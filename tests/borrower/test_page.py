"""The borrower page end to end over ASGI: code flow and its limits, a forwarded link that shows nothing, and
the borrower's actions reaching the real workflow as actor `borrower`, refused with the workflow's reason."""

from __future__ import annotations

import asyncio
import hashlib
import html
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from authority.signer import Actor
from borrower.actions import plan_offer
from borrower.app import COOKIE
from borrower.texts import texts_for
from domain.borrower_plans import band_for
from domain.holds import HardshipHold
from domain.strategy import default_strategy
from starter.api import CollectionsStarter, ContactNotAllowed, RequestRefused
from tests.admin.conftest import zone_at
from tests.authority.keys import COLLECTOR
from tests.borrower.conftest import KeptCodes, cn_loan, csrf, message_link, running, us_loan, verified
from tests.browser import conftest as browser_conftest
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import HARDSHIP_HOLD_UPDATE

pytestmark = pytest.mark.asyncio


def new_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_a_forwarded_link_shows_nothing_without_the_code(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
    app: FastAPI,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await client.get(path)
        assert page.status_code == 200 and 'id="code"' in page.text
        for secret in (loan.loan_id, loan.borrower.name, "800.00", "800", loan.borrower.phone, "Demo Lender"):
            assert secret not in page.text
        # Posting an action without a session changes nothing and shows the code page again.
        before = await starter.status(loan.loan_id)
        refused = await client.post(f"{path}/promise", data={"amount": "100", "due_date": "2099-01-01"})
        assert refused.status_code == 403 and "800" not in refused.text
        assert (await starter.status(loan.loan_id)).open_promise == before.open_promise is None
        # The code goes to the number the message went to, never to one the visitor names.
        assert (await client.post(f"{path}/code", data={"recipient": "+15550000000"})).status_code == 200
        assert codes.sent[-1].recipient == loan.borrower.phone and codes.sent[-1].channel == "sms"
        # A session of another link opens nothing here.
        other = await message_link(db_pool, loan)
        async with new_client(app) as stranger:
            await verified(stranger, codes, other)
            cookie = stranger.cookies.get(COOKIE)
            assert cookie
            client.cookies.set(COOKIE, cookie)  # the other link's session, presented on this link
            shown = await client.get(path)
            assert shown.status_code == 200 and "800" not in shown.text


async def test_wrong_expired_and_too_many_codes(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        assert (await client.post(f"{path}/verify", data={"code": "123456"})).status_code == 422  # none yet
        await client.post(f"{path}/code")
        good = codes.last_code()
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        answer = await client.post(f"{path}/verify", data={"code": wrong})
        assert (
            answer.status_code == 422
            and "验证码不正确" in answer.text
            and 'aria-invalid="true"' in answer.text
        )
        # Expired: the right code, ten minutes late.
        await db_pool.execute("UPDATE borrower_codes SET expires_at = now() - interval '1 second'")
        late = await client.post(f"{path}/verify", data={"code": good})
        assert late.status_code == 422 and "验证码已过期" in late.text and COOKIE not in late.cookies
        # Five wrong tries lock the code: the right one no longer opens anything.
        await client.post(f"{path}/code")
        good = codes.last_code()
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        for _ in range(5):
            await client.post(f"{path}/verify", data={"code": wrong})
        locked = await client.post(f"{path}/verify", data={"code": good})
        assert locked.status_code == 422 and "尝试次数过多" in locked.text
        # Three codes per link an hour: the fourth request sends nothing.
        sent = len(codes.sent)
        assert (await client.post(f"{path}/code")).status_code == 200
        limited = await client.post(f"{path}/code")
        assert limited.status_code == 429 and len(codes.sent) == sent + 1
        # Five codes per address an hour, whatever the link: two more links reach the limit.
        for _ in range(2):
            assert (await client.post(f"{await message_link(db_pool, loan)}/code")).status_code == 200
        by_address = await client.post(f"{await message_link(db_pool, loan)}/code")
        assert by_address.status_code == 429 and "该号码或邮箱" in by_address.text


async def test_verified_the_page_shows_what_is_owed_and_a_promise_is_the_borrowers(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        assert "CNY 800.00" in page and loan.overdue_since.isoformat() in page and "您的权利" in page
        due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
        done = await client.post(
            f"{path}/promise", data={"csrf": csrf(page), "amount": "300", "due_date": due}
        )
        assert done.status_code == 200 and "已记录您于" in done.text, done.text
        promise = (await starter.status(loan.loan_id)).open_promise
        assert promise is not None and promise.collector == "borrower" and promise.amount_minor == 30_000
        # Without the form's token (another site posting with the cookie) nothing happens.
        forged = await client.post(f"{path}/dispute", data={"text": "this is not my debt at all"})
        assert forged.status_code == 403
        assert not (await starter.status(loan.loan_id)).contact.dispute_open  # type: ignore[union-attr]


async def test_a_plan_outside_the_bounds_is_refused_with_the_reason_next_to_the_field(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        late = (date.today() + timedelta(days=60)).isoformat()  # 12 monthly instalments: past 12 months
        refused = await client.post(
            f"{path}/plan", data={"csrf": csrf(page), "count": "12", "first": late, "every": "month"}
        )
        text = html.unescape(refused.text)
        assert refused.status_code == 422
        assert 'id="plan-first-error"' in text and "more than 12 months ahead" in text
        assert 'aria-describedby="plan-first-error"' in text
        assert (await starter.status(loan.loan_id)).repayment_plan is None
        soon = (date.today() + timedelta(days=3)).isoformat()
        agreed = await client.post(
            f"{path}/plan", data={"csrf": csrf(page), "count": "4", "first": soon, "every": "month"}
        )
        assert agreed.status_code == 200 and "分期还款计划已确认" in agreed.text
        plan = (await starter.status(loan.loan_id)).repayment_plan
        assert plan is not None and plan.collector == "borrower" and plan.total_minor == 80_000
        assert [i.amount_minor for i in plan.instalments] == [20_000] * 4


async def test_the_page_shows_the_bands_bounds_and_the_workflow_refuses_a_plan_outside_them(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        text = html.unescape(page)
        # CNY 800.00 is in the first CNY band: at most 6, each at least CNY 200.00 -> 2 to 4 to choose from.
        assert "逾期金额不超过CNY 5,000.00时：可分2至4期，每期不少于CNY 200.00，首期须在14天内" in text
        assert '<option value="4"' in page and '<option value="5"' not in page
        assert "请选择14天内的日期" in text
        soon = (date.today() + timedelta(days=3)).isoformat()
        late = (date.today() + timedelta(days=20)).isoformat()
        first_late = await client.post(
            f"{path}/plan", data={"csrf": csrf(page), "count": "2", "first": late, "every": "month"}
        )
        late_text = html.unescape(first_late.text)
        assert first_late.status_code == 422
        assert 'id="plan-first-error"' in late_text and "the first payment within 14 days" in late_text
        # A hand-made post with a count the page does not offer: the workflow refuses it, next to the count.
        too_small = await client.post(
            f"{path}/plan", data={"csrf": csrf(page), "count": "5", "first": soon, "every": "month"}
        )
        small_text = html.unescape(too_small.text)
        assert too_small.status_code == 422 and 'id="plan-count-error"' in small_text
        assert "each at least CNY 200.00 for arrears up to CNY 5,000.00" in small_text
        assert (await starter.status(loan.loan_id)).repayment_plan is None
        agreed = await client.post(
            f"{path}/plan", data={"csrf": csrf(page), "count": "2", "first": soon, "every": "week"}
        )
        assert agreed.status_code == 200 and "分期还款计划已确认" in agreed.text
        plan = (await starter.status(loan.loan_id)).repayment_plan
        assert plan is not None and [i.amount_minor for i in plan.instalments] == [40_000, 40_000]


async def test_a_settlement_above_the_floor_is_agreed_and_one_below_refused_next_to_the_amount(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    small = cn_loan()
    big = make_loan(datetime.now(UTC), dpd=20, amount=1_000_000)  # CNY 10,000.00: the band's floor is 80%
    big = big.model_copy(update={"loan_id": small.loan_id, "borrower": small.borrower})
    async with running(big, local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        assert "在14天内还款不少于CNY 8,000.00即可结清" in html.unescape(page)
        due = (date.today() + timedelta(days=5)).isoformat()
        low = await client.post(
            f"{path}/settle", data={"csrf": csrf(page), "amount": "7999.99", "due_date": due}
        )
        low_text = html.unescape(low.text)
        assert low.status_code == 422 and 'id="settle-amount-error"' in low_text
        assert "at least CNY 8,000.00 (80% of the amount overdue)" in low_text
        assert (await starter.status(loan.loan_id)).settlement is None
        fair = await client.post(
            f"{path}/settle", data={"csrf": csrf(page), "amount": "8000", "due_date": due}
        )
        assert fair.status_code == 200 and "结清已确认" in fair.text
        settlement = (await starter.status(loan.loan_id)).settlement
        assert settlement is not None and settlement.approver == "borrower"
        assert settlement.amount_minor == 800_000


async def test_the_bounds_in_english_and_no_plan_without_a_band() -> None:
    plans = default_strategy().borrower_plans
    usd = SimpleNamespace(borrower_plan=band_for(plans, 80_000, "USD"), amount_overdue_minor=80_000)
    shown = plan_offer(usd, texts_for("en"))  # type: ignore[arg-type]
    assert shown["plan_offer"] == {
        "counts": [2, 3, 4, 5, 6],
        "bounds": "For an amount overdue up to USD 800.00: 2 to 6 instalments of at least USD 25.00 each, "
        "the first within 14 days and the last within 180 days.",
    }
    assert shown["promise_bounds"] == "Choose a date within 14 days."
    assert shown["settle_offer"] is None  # this band has no settlement floor
    none = SimpleNamespace(borrower_plan=band_for(None, 80_000, "USD"), amount_overdue_minor=80_000)
    nothing = plan_offer(none, texts_for("en"))  # type: ignore[arg-type]
    assert nothing == {"plan_offer": None, "promise_bounds": None, "settle_offer": None}


async def test_a_hardship_request_on_a_us_loan_pauses_collection_as_the_profile_says(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(us_loan(zone_at(12).key), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan, locale="en")
        page = await verified(client, codes, path)
        done = await client.post(
            f"{path}/hardship",
            data={"csrf": csrf(page), "income": "900", "spending": "1200", "dependants": "1"},
        )
        assert done.status_code == 200 and "paused collection for 30 days" in done.text
        status = await starter.status(loan.loan_id)
        assert status.borrower_hardship_hold_days == 30
        assert status.contact is not None and status.contact.hardship_until is not None
        # The workflow holds the borrower to the profile: a longer pause asked directly is refused.
        longer = HardshipHold(collector="borrower", days=60, note="asked directly")
        with pytest.raises(RequestRefused, match="days: at most 30"):
            await starter.collector_action(
                loan.loan_id, HARDSHIP_HOLD_UPDATE, longer, actor=Actor("borrower", "borrower")
            )


async def test_a_dispute_on_a_us_loan_stops_contact(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(us_loan(zone_at(12).key), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan, locale="en")
        page = await verified(client, codes, path)
        assert "You may dispute this debt in writing" in page
        short = await client.post(f"{path}/dispute", data={"csrf": csrf(page), "text": "no"})
        assert short.status_code == 422 and "between 10 and 1000" in short.text
        done = await client.post(
            f"{path}/dispute", data={"csrf": csrf(page), "text": "I never took this loan; please verify it."}
        )
        assert done.status_code == 200 and "Your dispute is recorded" in done.text
        status = await starter.status(loan.loan_id)
        assert status.contact is not None and status.contact.dispute_open
        with pytest.raises(ContactNotAllowed):
            await starter.claim_contact(
                loan.loan_id, str(uuid.uuid4()), "call", COLLECTOR.name, actor=COLLECTOR
            )


async def test_hardship_preferences_and_call_back(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        token = csrf(page)
        bad = await client.post(f"{path}/hardship", data={"csrf": token, "income": "lots", "spending": "100"})
        assert bad.status_code == 422 and 'id="hardship-income-error"' in bad.text
        done = await client.post(
            f"{path}/hardship", data={"csrf": token, "income": "0", "spending": "2500", "dependants": "2"}
        )
        # China's profile gives a borrower's own hardship request no hold: a collector reviews it.
        assert done.status_code == 200 and "工作人员将审核您的情况并与您联系" in done.text
        status = await starter.status(loan.loan_id)
        assert status.contact is not None and status.contact.hardship_until is None
        task = await db_pool.fetchrow(
            "SELECT kind, note, pool FROM collector_tasks "
            "WHERE loan_id = $1 AND step_key = 'borrower:hardship'",
            loan.loan_id,
        )
        assert (
            task is not None
            and task["kind"] == "review"
            and "dependants 2" in task["note"]
            and task["pool"] == status.segment
        )
        assert (
            await client.post(f"{path}/optout", data={"csrf": token, "channel": "sms"})
        ).status_code == 200
        hours = await client.post(f"{path}/hours", data={"csrf": token, "start": "10:00", "end": "12:00"})
        assert hours.status_code == 200
        status = await starter.status(loan.loan_id)
        assert status.contact is not None and "sms" in status.contact.opted_out_channels
        assert status.contact.preferred_hours is not None
        assert (await client.post(f"{path}/callback", data={"csrf": token})).status_code == 200
        assert (
            await db_pool.fetchval(
                "SELECT kind FROM collector_tasks WHERE loan_id = $1 AND step_key = 'borrower:callback'",
                loan.loan_id,
            )
            == "call"
        )


async def test_the_link_is_revoked_when_the_collection_ends(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        await verified(client, codes, path)
        await starter.pay(loan.loan_id, 80_000, f"pay-{uuid.uuid4().hex[:8]}")
        for _ in range(50):  # the signal is applied by the workflow a moment later
            if (await starter.status(loan.loan_id)).outcome is not None:
                break
        ended = await client.get(path)
        assert ended.status_code == 410 and "该链接已失效" in ended.text and "800" not in ended.text
        token_hash = hashlib.sha256(path.rsplit("/", 1)[1].encode()).digest()
        assert await db_pool.fetchval(
            "SELECT revoked_at FROM borrower_links WHERE token_hash = $1", token_hash
        )
        assert not await db_pool.fetchval(
            "SELECT count(*) FROM borrower_sessions WHERE token_hash = $1", token_hash
        )


async def test_the_journal_says_borrower_and_e_mail_links_send_codes_by_e_mail(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    codes: KeptCodes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = FakeActivities()
    monkeypatch.setattr(browser_conftest, "FakeActivities", lambda: fakes)  # `running` uses these fakes
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan, channel="email")
        page = await verified(client, codes, path)
        assert codes.sent[-1].channel == "email" and codes.sent[-1].recipient == loan.borrower.email
        assert codes.sent[-1].subject
        due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
        done = await client.post(
            f"{path}/promise", data={"csrf": csrf(page), "amount": "100", "due_date": due}
        )
        assert done.status_code == 200
        dispute = await client.post(
            f"{path}/dispute", data={"csrf": csrf(page), "text": "Not my debt, please."}
        )
        assert dispute.status_code == 200
        for _ in range(100):  # the journal batch is written by an activity a moment after the update
            kinds = {(e.kind, e.data.get("actor")) for e in fakes.journal if e.loan_id == loan.loan_id}
            if {("promise", "borrower"), ("hold", "borrower")} <= kinds:
                break
            await asyncio.sleep(0.05)
        assert {("promise", "borrower"), ("hold", "borrower")} <= kinds


async def test_old_codes_and_sessions_are_purged(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, codes: KeptCodes
) -> None:
    loan = cn_loan()
    path = await message_link(db_pool, loan)
    await client.post(f"{path}/code")
    token_hash = hashlib.sha256(path.rsplit("/", 1)[1].encode()).digest()
    await db_pool.execute(
        "UPDATE borrower_codes SET created_at = now() - interval '2 days' WHERE token_hash = $1", token_hash
    )
    await client.post(f"{await message_link(db_pool, loan)}/code")  # any code request purges
    assert not await db_pool.fetchval("SELECT count(*) FROM borrower_codes WHERE token_hash = $1", token_hash)
