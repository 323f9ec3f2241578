"""GET /dashboard over ASGI against a database of the test's own (exact numbers): login required, charts and
tables from the seeded rows, a currency at a time, "no data yet" on an empty database, Chinese for zh-CN."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import asyncpg
import httpx
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
    assert page.text.count("No data yet.") == 7 and "<svg" not in page.text


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
