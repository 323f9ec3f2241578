"""The portfolio page: search every loan in collection by stage, DPD bucket, segment, strategy, agency, hold,
amount range and free text (loan id or borrower name), 50 rows a page. A loan cured and overdue again has a
row per collection cycle: the search shows each loan's latest cycle unless asked for every cycle, and a row
shows its cycle's overdue date; the link goes to the loan's dossier (its latest cycle).

The search reads the portfolio read model (`portfolio_now`, migrations/0008 and 0009);
admin/portfolio_query.py turns the query string into parameterized SQL and says which index serves which
filter. A wrong field (an amount like "12abc") shows the form again with the error next to the field and no
results (422).

Least privilege: a user whose pools bind them (admin/access.py) finds only the loans of their pools. The free
text (loan id or name) is sent by POST and answered on that response, never put in an address: a GET with
`q` is refused with a field error. Filters that are not personal stay GET links (bookmarkable), and every
search is a row of read_audit without its text (admin/read_audit.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin.access import access_settings, visible_pools
from admin.portfolio_query import (
    COUNT_CAP,
    DPD_BUCKETS,
    DPD_LABELS,
    FIELDS,
    OPTION_COLUMNS,
    PAGE_SIZE,
    STAGES,
    ParsedQuery,
    PortfolioFilter,
    build_count,
    build_dpd_bound,
    build_options,
    build_search,
    parse_query,
    query_string,
)
from admin.read_audit import record_read, search_detail
from admin.users import User
from admin.web import STAGE_LABELS, CurrentUser, checked_form, render, services_of

router = APIRouter()

# English labels of the stored values (translated in admin/translations/portfolio.toml).
SORT_LABELS = {"dpd": "Most days past due", "amount": "Largest amount overdue", "loan_id": "Loan id"}
STATUS_LABELS = {"open": "Open", "closed": "Closed", "all": "All"}
CYCLE_LABELS = {"latest": "Latest cycle of each loan", "all": "Every cycle"}
ERROR_TEXT_IN_ADDRESS = "Type the loan id or name in the form: it is not taken from the page address."


async def dropdown_options(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """The distinct segments, strategies and agencies in the portfolio (one round trip, index probes only)."""
    arrays = ", ".join(f"ARRAY({build_options(column)}) AS {column}" for column in OPTION_COLUMNS)
    row = await pool.fetchrow(f"SELECT {arrays}")
    assert row is not None
    return {column: list(row[column]) for column in OPTION_COLUMNS}


async def _fetch(pool: asyncpg.Pool, sql: str, args: list[Any]) -> list[asyncpg.Record]:
    """`sql` planned for these very values: a generic plan of a prepared statement (what PostgreSQL may switch
    to after five runs) cannot use an index for `LIKE $1` nor know how selective a filter is: it scans."""
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        await connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return await connection.fetch(sql, *args)


async def _page(pool: asyncpg.Pool, search: PortfolioFilter) -> list[asyncpg.Record]:
    bound_query = build_dpd_bound(search)
    bound = None
    if bound_query is not None:
        found = await _fetch(pool, *bound_query)
        bound = found[0][0] if found else None
    return await _fetch(pool, *build_search(search, dpd_bound=bound))


async def search_portfolio(pool: asyncpg.Pool, search: PortfolioFilter) -> tuple[list[asyncpg.Record], int]:
    """The page of rows and the number of matches (at most COUNT_CAP + 1), on two connections at once."""
    rows, counted = await asyncio.gather(_page(pool, search), _fetch(pool, *build_count(search)))
    return rows, int(counted[0][0])


def page_url(values: dict[str, str], page: int) -> str:
    """This search's page `page`, every filter kept (never the free text: see query_string)."""
    query = query_string(values, page=page)
    return f"/portfolio?{query}" if query else "/portfolio"


async def _results(request: Request, user: User, parsed: ParsedQuery, *, status_code: int = 200) -> Response:
    """The page with the form as sent and, when it is valid, the results limited to the user's pools."""
    pool = services_of(request).pool
    pools = visible_pools(user, access_settings(request))
    bound = tuple(pools) if pools is not None else None
    search = replace(parsed.filter, pools=bound) if parsed.filter is not None else None
    if search is None:
        options = await dropdown_options(pool)
    else:  # the dropdowns and the search at once, each on connections of its own
        options, (rows, total) = await asyncio.gather(dropdown_options(pool), search_portfolio(pool, search))
    if pools is not None:
        options["segment"] = [segment for segment in options["segment"] if segment in pools]
    context: dict[str, Any] = {
        "user": user,
        "values": parsed.values,
        "errors": parsed.errors,
        "options": options,
        "stages": STAGES,
        "stage_labels": STAGE_LABELS,
        "dpd_buckets": list(DPD_BUCKETS),
        "dpd_labels": DPD_LABELS,
        "sort_labels": SORT_LABELS,
        "status_labels": STATUS_LABELS,
        "cycle_labels": CYCLE_LABELS,
        "rows": [],
        "total": None,
        "capped": False,
        "page": 1,
        "pages": None,
        "previous_page": None,
        "next_page": None,
        "previous_url": None,
        "next_url": None,
    }
    if search is None:
        return render(request, "portfolio.html", context, status_code=422)
    await record_read(request, user, "search", detail=search_detail(request, parsed.values, search.q))
    capped = total > COUNT_CAP
    more = len(rows) == PAGE_SIZE and (capped or search.page * PAGE_SIZE < total)
    previous_page = search.page - 1 if search.page > 1 else None
    next_page = search.page + 1 if more else None
    context.update(
        rows=rows,
        total=min(total, COUNT_CAP),
        capped=capped,
        page=search.page,
        pages=None if capped else max(1, -(-total // PAGE_SIZE)),
        # With free text the other pages are asked by POST too (buttons carrying the form); else links.
        previous_page=previous_page,
        next_page=next_page,
        previous_url=page_url(parsed.values, previous_page) if previous_page and not search.q else None,
        next_url=page_url(parsed.values, next_page) if next_page and not search.q else None,
    )
    return render(request, "portfolio.html", context, status_code=status_code)


@router.get("/portfolio", response_class=HTMLResponse)
async def portfolio_page(request: Request, user: CurrentUser) -> Response:
    """Filters that are not personal, from the address (bookmarkable). Free text in the address is refused:
    it may be a name, and addresses end up in access logs and browser histories."""
    parsed = parse_query(request.query_params)
    if parsed.values["q"]:
        parsed = ParsedQuery(None, {**parsed.errors, "q": ERROR_TEXT_IN_ADDRESS}, {**parsed.values, "q": ""})
    return await _results(request, user, parsed)


@router.post("/portfolio", response_class=HTMLResponse)
async def portfolio_search(request: Request, user: CurrentUser) -> Response:
    """The search form (CSRF-checked). With free text the results are this response; without, a redirect to
    the same search as an address."""
    form = await checked_form(request)
    parsed = parse_query({name: str(form.get(name, "")) for name in FIELDS})
    if parsed.filter is not None and not parsed.filter.q:
        return RedirectResponse(page_url(parsed.values, parsed.filter.page), status_code=303)
    return await _results(request, user, parsed)
