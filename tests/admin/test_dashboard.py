"""GET /dashboard over ASGI against a database of the test's own (exact numbers): login required, charts and
tables from the seeded rows, a currency at a time, "no data yet" on an empty database, Chinese for zh-CN."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import cast

import asyncpg
import httpx
import pytest
import pytest_asyncio

from admin.app import Services, create_app
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, login
from tests.admin.test_metrics import (
    DAY,
    add_deferral,
    add_loan,
    add_payment,
    add_placement,
    add_promise,
    add_transition,
    anchors,
    key,
)

Client = Callable[[str | None], Awaitable[httpx.AsyncClient]]  # logged in with this locale, or logged out


@pytest_asyncio.fixture
async def client_for(own_db_pool: asyncpg.Pool) -> AsyncIterator[Client]:
    # The dashboard never reaches a workflow: no Temporal server is needed.
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    clients: list[httpx.AsyncClient] = []

    async def make(locale: str | None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        if locale is not None:
            name = f"collector-{uuid.uuid4().hex[:8]}"
            await create_user(own_db_pool, name, PASSWORD, role="collector", display_name=name, locale=locale)
            assert (await login(client, name)).status_code == 303
        return client

    yield make
    for client in clients:
        await client.aclose()


async def seed(pool: asyncpg.Pool) -> None:
    a = await anchors(pool)
    await add_loan(pool, "CN-1", dpd=10, amount=100_000)
    await add_loan(pool, "CN-2", dpd=95, amount=250_050, stage="agency", agency_id="east-recovery")
    await add_loan(pool, "CN-3", dpd=40, amount=1_000, stage="closed", outcome="paid")
    await add_loan(pool, "CN-4", dpd=40, amount=1_000, stage="closed", outcome="written_off")
    await add_loan(pool, "US-1", dpd=3, amount=4_200, currency="USD")
    await add_transition(pool, "CN-2", a.now - 50 * DAY, "reminder", "agency")
    await add_placement(pool, "CN-2", "east-recovery", a.week - 20 * DAY)
    await add_payment(pool, "CN-2", 12_345, a.week - 5 * DAY, source="agency")
    await add_payment(pool, "CN-1", 20_000, a.week - 12 * DAY)
    await add_payment(pool, "US-1", 999, a.week - 5 * DAY, currency="USD")
    due = a.week_day - 7 * DAY
    await add_promise(pool, "CN-1", "p1", due, ["made", "kept"], a.now - 20 * DAY)
    await add_promise(pool, "CN-1", "p2", due, ["made", "kept"], a.now - 20 * DAY)
    await add_promise(pool, "CN-2", "p3", due, ["made", "broken"], a.now - 20 * DAY)
    await add_deferral(pool, "CN-1", "contact_hours", a.now - DAY)
    await add_deferral(pool, "CN-2", "<b>cap</b>", a.now - DAY, dropped=True)


def well_formed_svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


async def test_logged_out_visitors_are_sent_to_the_login_page(client_for: Client) -> None:
    client = await client_for(None)
    response = await client.get("/dashboard")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/dashboard"


async def test_a_collector_sees_charts_and_the_numbers_of_the_seeded_rows(
    client_for: Client, own_db_pool: asyncpg.Pool
) -> None:
    await seed(own_db_pool)
    client = await client_for("en")
    page = await client.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert len(well_formed_svgs(html)) == 10 and "<script" not in html
    assert re.search(r'<option value="CNY"\s+selected>CNY · 2 open loans</option>', html)
    assert "USD · 1 open loans" in html
    # 1. open loans in CNY only
    assert "2 open loans, CNY 3,500.50 overdue" in html
    assert re.search(
        r"<td>Agency placement</td><td class=\"num\">1</td><td class=\"num\">CNY 2,500.50</td>", html
    )
    assert re.search(r"<td>91-180 days</td><td class=\"num\">1</td><td class=\"num\">CNY 2,500.50</td>", html)
    # 2. promises: 2 kept, 1 broken
    assert "Overall: 66.7% (2 kept, 1 broken)" in html
    # 3. cure: two loans left from reminder, one paid
    assert re.search(
        r"<td>Reminder</td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">50.0%</td>", html
    )
    # 5. recovered in CNY, by stage and by agency; the USD payment is not in it
    assert "CNY 323.45 recovered in 12 weeks" in html
    # the numbers behind both weekly charts: one table per chart, each week's total in its last column
    assert html.count("Week received") == 2 and '<td class="num">CNY 123.45</td></tr>' in html
    assert "East Recovery Partners" in html and "CNY 123.45" in html and "USD 9.99" not in html
    # 6. deferrals, rule names escaped
    assert "contact_hours" in html and "&lt;b&gt;cap&lt;/b&gt;" in html and "<b>cap</b>" not in html
    assert html.count("<details>") == 7

    usd = (await client.get("/dashboard", params={"currency": "USD"})).text
    assert "1 open loans, USD 42.00 overdue" in usd and "USD 9.99 recovered in 12 weeks" in usd
    assert re.search(r'<option value="USD"\s+selected>', usd)
    unknown = (await client.get("/dashboard", params={"currency": "<XYZ>"})).text
    assert "2 open loans, CNY 3,500.50 overdue" in unknown and "&lt;XYZ&gt;" not in unknown


async def test_an_empty_database_shows_no_data_yet(client_for: Client) -> None:
    client = await client_for("en")
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert page.text.count("No data yet.") == 8 and "<svg" not in page.text
    assert "self-service-figures" not in page.text


async def test_a_zh_cn_user_gets_chinese_headings(client_for: Client, own_db_pool: asyncpg.Pool) -> None:
    await seed(own_db_pool)
    client = await client_for("zh-CN")
    html = (await client.get("/dashboard")).text
    for heading in (
        "在催案件与逾期金额",
        "承诺兑现率",
        "各阶段治愈率",
        "逐月迁徙率",
        "每周回收金额",
        "按规则延后的联系",
    ):
        assert f"<h2>{heading}</h2>" in html
    assert "各阶段在催案件数" in html  # a chart title
    assert "Open loans and amounts overdue" not in html


# -- self-service (issue 11): admin/self_service.py ---------------------------------------------------------


async def has_table(pool: asyncpg.Pool, table: str) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"))


async def add_action(pool: asyncpg.Pool, loan_id: str, actor: str, at: datetime) -> None:
    await pool.execute(
        "INSERT INTO journal_collector_actions (idempotency_key, loan_id, jurisdiction, at, collector,"
        " action) VALUES ($1, $2, 'cn', $3, $4, 'call_outcome')",
        key(),
        loan_id,
        at,
        actor,
    )


async def add_intent(
    pool: asyncpg.Pool, loan_id: str, amount: int, status: str, currency: str = "CNY"
) -> None:
    await pool.execute(
        "INSERT INTO payment_intents (provider_id, loan_id, amount_minor, currency, status)"
        " VALUES ($1, $2, $3, $4, $5)",
        "cs_" + key(),
        loan_id,
        amount,
        currency,
        status,
    )


async def add_message(
    pool: asyncpg.Pool, loan_id: str, channel: str, status: str, receipt: str | None
) -> None:
    await pool.execute(
        "INSERT INTO messages (idempotency_key, loan_id, step_key, channel, template, locale, recipient,"
        " body, status, delivery_status) VALUES ($1, $2, 'step', $3, 't', 'en', 'x', 'b', $4, $5)",
        key(),
        loan_id,
        channel,
        status,
        receipt,
    )


def row_of(html: str, row_id: str) -> list[str]:
    """The cells of the self-service table's row `row_id` (an id or a class), as text."""
    found = re.search(rf'<tr (?:id|class)="{row_id}">(.*?)</tr>', html, flags=re.S)
    assert found, row_id
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1))
    ]


async def test_self_service_share_and_payments_through_the_page(
    client_for: Client, own_db_pool: asyncpg.Pool
) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    # Three paid loans: one alone, one only the workflow and the borrower touched, one a collector called.
    await add_loan(pool, "SS-1", stage="closed", outcome="paid")
    await add_loan(pool, "SS-2", stage="closed", outcome="settled")
    await add_loan(pool, "SS-3", stage="closed", outcome="paid")
    await add_loan(pool, "SS-4", stage="closed", outcome="written_off")  # not resolved by paying
    await add_action(pool, "SS-2", "system", a.now - DAY)
    await add_action(pool, "SS-2", "borrower", a.now - DAY)
    await add_action(pool, "SS-3", "li.na", a.now - DAY)
    await add_action(pool, "SS-4", "li.na", a.now - DAY)
    await add_intent(pool, "SS-1", 30_000, "confirmed")
    await add_intent(pool, "SS-2", 12_345, "confirmed")
    await add_intent(pool, "SS-2", 500, "confirmed", currency="USD")
    await add_intent(pool, "SS-3", 1_000, "declined")
    await add_intent(pool, "SS-3", 1_000, "expired")
    await add_intent(pool, "SS-3", 1_000, "pending")
    client = await client_for("en")

    html = (await client.get("/dashboard", params={"currency": "CNY"})).text

    assert row_of(html, "ss-share") == [
        "Resolved (paid or settled) with no collector action",
        "2 / 3",
        "66.7%",
    ]
    assert row_of(html, "ss-payments") == [
        "Payments through the page: confirmed of started (CNY 423.45 in CNY)",
        "3 / 6",
        "50.0%",
    ]
    assert row_of(html, "ss-payments-failed")[1] == "1 / 1"
    zh = (await (await client_for("zh-CN")).get("/dashboard")).text
    assert "<h2>自助服务</h2>" in zh and "无催收员操作而结清（还清或和解）" in zh


async def test_page_funnel_opt_outs_and_delivery_rate(client_for: Client, own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    if not all([await has_table(pool, t) for t in ("borrower_sessions", "inbound_events")]):
        pytest.skip("the borrower page's or the inbound webhooks' migration is not in this tree")
    a = await anchors(pool)
    # Four loans sent a link; three asked for a code; two verified; one of those acted on the page.
    for n in range(1, 5):
        await add_loan(pool, f"FN-{n}")
        token = f"token-{n}".encode()
        await pool.execute(
            "INSERT INTO borrower_links (token_hash, message_key, loan_id, channel, expires_at)"
            " VALUES ($1, $2, $3, 'sms', now() + interval '1 day')",
            token,
            key(),
            f"FN-{n}",
        )
        if n <= 3:
            await pool.execute(
                "INSERT INTO borrower_codes (token_hash, recipient_hash, code_hash, expires_at)"
                " VALUES ($1, 'r', 'c', now())",
                token,
            )
        if n <= 2:
            await pool.execute(
                "INSERT INTO borrower_sessions (session_hash, token_hash, expires_at) VALUES ($1, $1, now())",
                token,
            )
    await add_payment(pool, "FN-1", 1_000, a.now - DAY, source="borrower")
    await add_action(pool, "FN-3", "borrower", a.now - DAY)  # not verified in this window: not counted
    for provider_, outcome in [
        ("sms", "opted_out"),
        ("sms", "opted_out"),
        ("email", "opted_out"),
        ("sms", "help_sent"),
    ]:
        await pool.execute(
            "INSERT INTO inbound_events (provider, event_id, kind, classification, outcome)"
            " VALUES ($1, $2, 'reply', 'stop', $3)",
            provider_,
            key(),
            outcome,
        )
    for status, receipt in [
        ("sent", "delivered"),
        ("sent", "delivered"),
        ("sent", "failed"),
        ("failed", None),
    ]:
        await add_message(pool, "FN-1", "sms", status, receipt)
    await add_message(pool, "FN-1", "email", "sent", None)
    await add_message(pool, "FN-1", "email", "queued", None)  # never left: not counted
    client = await client_for("en")

    html = (await client.get("/dashboard")).text

    assert row_of(html, "ss-linked")[1] == "4"
    assert row_of(html, "ss-visited")[1:] == ["3", "75.0%"]
    assert row_of(html, "ss-verified")[1:] == ["2", "50.0%"]
    assert row_of(html, "ss-acted")[1:] == ["1", "25.0%"]
    opt_outs = re.findall(r'<tr class="ss-opt-out">(.*?)</tr>', html, flags=re.S)
    assert len(opt_outs) == 2 and "Opt-outs by reply (email)" in opt_outs[0] and ">2<" in opt_outs[1]
    delivery = re.findall(r'<tr class="ss-delivery">(.*?)</tr>', html, flags=re.S)
    assert "(email)" in delivery[0] and "0 / 1" in delivery[0] and "0.0%" in delivery[0]
    assert "(sms)" in delivery[1] and "2 / 4" in delivery[1] and "50.0%" in delivery[1]
