"""The portfolio page over HTTP (ASGI) on a database of the test's own with known portfolio rows: each filter
narrows the results, free text finds by name and id (sent by POST, never in an address), pagination keeps the
filters, a bad amount is an error next to its field (never a 500), pools bind what a collector finds, and the
page needs a login.

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

from admin.access import AccessSettings
from admin.app import Services, create_app
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, csrf_of, login

# The segments of LOANS: the collector of `client` works all three.
POOLS = ("standard", "high_risk", "high_balance")


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
    await create_user(
        own_db_pool, username, PASSWORD, role="collector", display_name="C", locale="en", pools=POOLS
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await login(http, username)).status_code == 303
        yield http


def loan_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="loan">\s*<td><a href="/loans/([^"]+)">', html)


async def search(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """The search form submitted (POST, with the page's CSRF token), as the browser does."""
    token = csrf_of((await client.get("/portfolio")).text)
    return await client.post("/portfolio", data={"csrf_token": token, **fields})


async def found(client: httpx.AsyncClient, **params: str) -> list[str]:
    """Free text through the form (POST), other filters as an address (GET)."""
    if params.get("q"):
        response = await search(client, **params)
    else:
        response = await client.get("/portfolio", params=params)
    assert response.status_code == 200, response.text
    return loan_ids(response.text)


def page_form(html: str, label: str) -> dict[str, str] | None:
    """The hidden fields of the form whose button reads `label` (another page of a free-text search)."""
    forms = re.findall(r'<form method="post" action="/portfolio" class="page-form".*?</form>', html, re.S)
    for form in forms:
        if f">{label}</button>" in form:
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    return None


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
    # With free text: the other pages are the form posted again (no link carries the text).
    first = await search(client, stage="legal", q="pg-")
    assert "120 loans" in first.text and "page 1 of 3" in first.text
    ids = loan_ids(first.text)
    assert len(ids) == 50 and "Previous page" not in first.text and "rel=" not in first.text
    next_page = page_form(first.text, "Next page")
    assert next_page is not None and next_page["page"] == "2" and next_page["q"] == "pg-"
    second = await client.post("/portfolio", data=next_page)
    ids += loan_ids(second.text)
    assert page_form(second.text, "Previous page") == {**next_page, "page": "1"}
    third = await search(client, stage="legal", q="pg-", page="3")
    ids += loan_ids(third.text)
    assert len(loan_ids(third.text)) == 20 and page_form(third.text, "Next page") is None
    assert sorted(ids) == sorted(f"PG-{n:04d}" for n in range(120))  # each once, none lost between pages
    beyond = await search(client, stage="legal", q="pg-", page="9")
    assert beyond.status_code == 200 and loan_ids(beyond.text) == []

    # Without free text: links, every filter kept.
    listed = await client.get("/portfolio", params={"stage": "legal"})
    assert "122 loans" in listed.text
    next_url = re.search(r'<a rel="next" href="([^"]+)"', listed.text)
    assert next_url and next_url.group(1) == "/portfolio?stage=legal&amp;page=2"
    assert 'href="/portfolio?stage=legal"' in (await client.get(next_url.group(1).replace("&amp;", "&"))).text


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
        {"q": "\x00"},
        {"segment": "a\x00b"},
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


async def test_a_name_search_is_posted_and_never_in_an_address(client: httpx.AsyncClient) -> None:
    page = (await client.get("/portfolio")).text
    assert '<form method="post" action="/portfolio" role="search">' in page
    response = await search(client, q="Smith", stage="")
    assert response.status_code == 200 and loan_ids(response.text) == ["US-0002", "US-0001"]
    assert "Smith" not in str(response.url) and "Smith" not in response.headers.get("location", "")
    assert not re.search(r'href="[^"]*Smith', response.text)  # no link carries the text

    # Free text in an address is refused by the field, and nothing is searched.
    refused = await client.get("/portfolio", params={"q": "Smith"})
    assert refused.status_code == 422 and 'id="q-error"' in refused.text and loan_ids(refused.text) == []
    assert 'value="Smith"' not in refused.text

    # Without free text the form answers with the same search as an address (bookmarkable).
    filters = await search(client, q="", stage="legal")
    assert filters.status_code == 303 and filters.headers["location"] == "/portfolio?stage=legal"

    # The form is CSRF-checked like every other.
    assert (await client.post("/portfolio", data={"q": "Smith"})).status_code == 403


async def test_nul_is_an_error_by_its_field_with_the_security_headers(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/portfolio?q=%00"),
        await client.get("/portfolio?segment=a%00b"),
        await search(client, q="\x00"),
    ):
        assert response.status_code == 422
        assert "Remove the control characters" in response.text or "not taken from the page" in response.text
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_a_collector_finds_only_the_loans_of_their_pools(own_db_pool: asyncpg.Pool) -> None:
    await add_loans(own_db_pool, LOANS)
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    users = {}
    for role, pools in (("collector", ("high_risk",)), ("supervisor", ("high_risk",))):
        users[role] = f"{role}-{uuid.uuid4().hex[:8]}"
        await create_user(own_db_pool, users[role], PASSWORD, role=role, locale="en", pools=pools)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        await login(http, users["collector"])
        page = (await http.get("/portfolio", params={"status": "all"})).text
        assert loan_ids(page) == ["CN-0002"]
        assert '<option value="high_risk">' in page and '<option value="standard">' not in page
        token = csrf_of(page)
        by_name = await http.post("/portfolio", data={"csrf_token": token, "q": "smith"})
        assert loan_ids(by_name.text) == []  # James and Mary Smith are in other pools
        await http.post("/logout", data={"csrf_token": token})

        await login(http, users["supervisor"])
        assert len(loan_ids((await http.get("/portfolio", params={"status": "all"})).text)) == 7
        app.state.access = AccessSettings(supervisors_see_all_pools=False)
        assert loan_ids((await http.get("/portfolio", params={"status": "all"})).text) == ["CN-0002"]
