"""The portfolio page over HTTP (ASGI) on a database of the test's own with known portfolio rows: each filter
narrows the results, free text finds by name and id, pagination keeps the filters, a bad amount is an error
next to its field (never a 500), and the page needs a login.

The page reads PostgreSQL only, so the app here has no Temporal client (the dossier links are not followed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest_asyncio

from admin.app import Services, create_app
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, login


async def add_loans(pool: asyncpg.Pool, rows: list[dict[str, Any]]) -> None:
    """Portfolio rows (UTC borrowers, real-time clock: `dpd` days past due today), defaults for the rest."""
    today: date = await pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    now = datetime.now(UTC)
    for given in rows:
        row = {
            "borrower_name": "Test Borrower",
            "jurisdiction": "us",
            "timezone": "UTC",
            "locale": "en",
            "currency": "USD",
            "segment": "standard",
            "strategy": "default",
            "stage": "reminder",
            "outcome": None,
            "amount_overdue_minor": 10_000,
            "principal_outstanding_minor": 100_000,
            "paid_total_minor": 0,
            "hold": None,
            "agency_id": None,
            "open_promise_due": None,
            "broken_promises": 0,
            "clock_real_anchor": now,
            "clock_collections_anchor": now,
            "clock_speed": 1.0,
            "as_of": now,
            **{k: v for k, v in given.items() if k != "dpd"},
            "overdue_since": today - timedelta(days=given.get("dpd", 5)),
        }
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await pool.execute(
            f"INSERT INTO portfolio ({', '.join(columns)}) VALUES ({placeholders})", *row.values()
        )


LOANS: list[dict[str, Any]] = [
    {"loan_id": "CN-0001", "borrower_name": "王伟", "currency": "CNY", "dpd": 3,
     "amount_overdue_minor": 50_000},
    {"loan_id": "CN-0002", "borrower_name": "王秀英", "currency": "CNY", "dpd": 40, "stage": "deep_contact",
     "segment": "high_risk", "hold": "dispute open: collection stopped until verification is sent"},
    {"loan_id": "US-0001", "borrower_name": "James Smith", "dpd": 75, "stage": "agency",
     "agency_id": "east-recovery", "amount_overdue_minor": 250_000, "segment": "high_balance"},
    {"loan_id": "US-0002", "borrower_name": "Mary Smithson", "dpd": 200, "stage": "legal",
     "agency_id": "north-credit", "strategy": "gentle", "open_promise_due": date(2030, 1, 15)},
    {"loan_id": "UK-0001", "borrower_name": "Oliver Jones", "currency": "GBP", "dpd": 100, "stage": "legal",
     "amount_overdue_minor": 99_999},
    {"loan_id": "JP-0001", "borrower_name": "Yamada Taro", "currency": "JPY", "dpd": 10,
     "amount_overdue_minor": 2_000},  # JPY 2,000: within 1,000-3,000 major units
    {"loan_id": "US-0003", "borrower_name": "Closed Case", "dpd": 60, "outcome": "paid",
     "amount_overdue_minor": 0},
]  # fmt: skip


@pytest_asyncio.fixture
async def client(own_db_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in collector's browser on an app over a database holding LOANS only."""
    await add_loans(own_db_pool, LOANS)
    # The portfolio page never reaches a workflow: no Temporal server needed.
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    username = f"collector-{uuid.uuid4().hex[:8]}"
    await create_user(own_db_pool, username, PASSWORD, role="collector", display_name="C", locale="en")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await login(http, username)).status_code == 303
        yield http


def loan_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="loan">\s*<td><a href="/loans/([^"]+)">', html)


async def found(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/portfolio", params=params)
    assert response.status_code == 200, response.text
    return loan_ids(response.text)


async def test_open_loans_by_most_days_past_due(client: httpx.AsyncClient) -> None:
    response = await client.get("/portfolio")
    assert response.status_code == 200
    assert loan_ids(response.text) == ["US-0002", "UK-0001", "US-0001", "CN-0002", "JP-0001", "CN-0001"]
    assert "6 loans" in response.text
    page = response.text
    assert 'href="/loans/US-0001"' in page and "USD 2,500.00" in page and "east-recovery" in page
    assert "2030-01-15" in page  # the open promise
    assert page.count('class="badge warn hold"') == 1


async def test_each_filter_narrows_the_results(client: httpx.AsyncClient) -> None:
    assert await found(client, stage="legal") == ["US-0002", "UK-0001"]
    assert await found(client, dpd="0-30") == ["JP-0001", "CN-0001"]
    assert await found(client, dpd="31-60") == ["CN-0002"]
    assert await found(client, dpd="61-90") == ["US-0001"]
    assert await found(client, dpd="91-180") == ["UK-0001"]
    assert await found(client, dpd="180+") == ["US-0002"]
    assert await found(client, segment="high_risk") == ["CN-0002"]
    assert await found(client, strategy="gentle") == ["US-0002"]
    assert await found(client, agency="east-recovery") == ["US-0001"]
    assert await found(client, agency="any") == ["US-0002", "US-0001"]
    assert await found(client, agency="none") == ["UK-0001", "CN-0002", "JP-0001", "CN-0001"]
    assert await found(client, hold="any") == ["CN-0002"]
    assert len(await found(client, hold="none")) == 5
    assert await found(client, status="closed") == ["US-0003"]
    assert len(await found(client, status="all")) == 7
    assert await found(client, stage="legal", agency="none") == ["UK-0001"]


async def test_amounts_are_major_units_of_each_currency(client: httpx.AsyncClient) -> None:
    # USD 100.00 (US-0002, CN-0002 are CNY 100.00), CNY 500.00, GBP 999.99, JPY 2,000, USD 2,500.00
    assert await found(client, amount_min="1000", amount_max="3000") == ["US-0001", "JP-0001"]
    assert await found(client, amount_min="999.99", amount_max="999.99") == ["UK-0001"]
    assert await found(client, amount_max="100", sort="loan_id") == ["CN-0002", "US-0002"]
    assert await found(client, amount_min="1,000", sort="amount") == ["US-0001", "JP-0001"]


async def test_free_text_finds_by_name_and_id(client: httpx.AsyncClient) -> None:
    assert await found(client, q="smith") == ["US-0002", "US-0001"]  # a substring, any case
    assert await found(client, q="SMITHSON") == ["US-0002"]
    assert await found(client, q="王") == ["CN-0002", "CN-0001"]  # short: a name prefix
    assert await found(client, q="秀英") == []  # short and not a prefix
    assert await found(client, q="王秀英") == ["CN-0002"]
    assert await found(client, q="cn-000") == ["CN-0002", "CN-0001"]  # an id prefix, any case
    assert await found(client, q="UK-0001") == ["UK-0001"]
    assert await found(client, q="0001") == []  # ids match from the start only
    assert await found(client, q="%") == []  # wildcards are literal
    assert await found(client, q="_") == []


async def test_loans_on_a_fast_clock_sort_by_their_own_dpd(
    own_db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    """A demo loan (a day every 10 s, started an hour ago) is about 360 days past due, whatever its
    overdue_since: first in DPD order and in the 180+ bucket, though real-clock loans are bounded by date."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await add_loans(
        own_db_pool,
        [{"loan_id": "DEMO-0001", "dpd": 5, "clock_speed": 8640.0, "clock_real_anchor": an_hour_ago,
          "clock_collections_anchor": an_hour_ago}],
    )  # fmt: skip
    assert (await found(client))[:2] == ["DEMO-0001", "US-0002"]
    assert await found(client, dpd="180+") == ["DEMO-0001", "US-0002"]
    assert "DEMO-0001" not in await found(client, dpd="0-30")


async def test_sort_orders(client: httpx.AsyncClient) -> None:
    assert (await found(client, sort="loan_id"))[:2] == ["CN-0001", "CN-0002"]
    assert (await found(client, sort="amount"))[:2] == ["US-0001", "UK-0001"]


async def test_pages_of_fifty_keep_the_filters(own_db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    await add_loans(
        own_db_pool,
        [{"loan_id": f"PG-{n:04d}", "stage": "legal", "dpd": 100 + n % 50} for n in range(120)],
    )
    first = await client.get("/portfolio", params={"stage": "legal", "q": "pg-"})
    assert "120 loans" in first.text and "page 1 of 3" in first.text
    ids = loan_ids(first.text)
    assert len(ids) == 50 and 'rel="prev"' not in first.text
    next_url = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert next_url and next_url.group(1) == "/portfolio?stage=legal&amp;q=pg-&amp;page=2"
    second = await client.get(next_url.group(1).replace("&amp;", "&"))
    ids += loan_ids(second.text)
    assert 'href="/portfolio?stage=legal&amp;q=pg-"' in second.text  # previous: page 1
    third = await client.get("/portfolio", params={"stage": "legal", "q": "pg-", "page": "3"})
    ids += loan_ids(third.text)
    assert len(loan_ids(third.text)) == 20 and 'rel="next"' not in third.text
    assert sorted(ids) == sorted(f"PG-{n:04d}" for n in range(120))  # each once, none lost between pages
    beyond = await client.get("/portfolio", params={"stage": "legal", "q": "pg-", "page": "9"})
    assert beyond.status_code == 200 and loan_ids(beyond.text) == []


async def test_a_bad_amount_is_an_error_next_to_the_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/portfolio", params={"amount_min": "12abc", "stage": "legal"})
    assert response.status_code == 422
    assert re.search(r'id="amount_min-error"[^>]*>Enter an amount like 500 or 1,250.50.<', response.text)
    assert 'value="12abc"' in response.text  # the form keeps what was typed
    assert '<option value="legal" selected>' in response.text
    assert loan_ids(response.text) == [] and 'id="results"' not in response.text
    for params in (
        {"amount_max": "-1"},
        {"amount_min": "1e99999999"},
        {"amount_min": "5", "amount_max": "1"},
    ):
        assert (await client.get("/portfolio", params=params)).status_code == 422


async def test_odd_input_never_fails(client: httpx.AsyncClient) -> None:
    for params in (
        {"page": "-3"},
        {"page": "x"},
        {"sort": "'; DROP TABLE portfolio; --"},
        {"q": "x" * 500},
        {"segment": "\u2603", "agency": "'"},
        {"stage": "nope"},
    ):
        response = await client.get("/portfolio", params=params)
        assert response.status_code in (200, 422), params


async def test_dropdowns_list_the_portfolios_values(client: httpx.AsyncClient) -> None:
    page = (await client.get("/portfolio")).text
    for value in (
        "high_balance",
        "high_risk",
        "standard",
        "default",
        "gentle",
        "east-recovery",
        "north-credit",
    ):
        assert f'<option value="{value}">' in page


async def test_chinese_page(own_db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    await own_db_pool.execute("UPDATE users SET locale = 'zh-CN'")
    page = (await client.get("/portfolio", params={"amount_min": "abc"})).text
    assert "请输入金额" in page and "逾期金额" in page


async def test_logged_out_goes_to_login(own_db_pool: asyncpg.Pool) -> None:
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get("/portfolio", params={"stage": "legal"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/portfolio%3Fstage%3Dlegal"
