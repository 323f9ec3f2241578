"""The portfolio page: search every loan in collection by stage, DPD bucket, segment, strategy, agency, hold,
amount range and free text (loan id or borrower name), 50 rows a page. A loan cured and overdue again has a
row per collection cycle: the search shows each loan's latest cycle unless asked for every cycle, and a row
shows its cycle's overdue date; the link goes to the loan's dossier (its latest cycle).

The search reads the portfolio read model (`portfolio_now`, migrations/0008 and 0009);
admin/portfolio_query.py turns the query string into parameterized SQL and says which index serves which
filter. A wrong field (an amount like "12abc") shows the form again with the error next to the field and no
results (422).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from admin.portfolio_query import (
    COUNT_CAP,
    DPD_BUCKETS,
    DPD_LABELS,
    OPTION_COLUMNS,
    PAGE_SIZE,
    STAGES,
    PortfolioFilter,
    build_count,
    build_dpd_bound,
    build_options,
    build_search,
    parse_query,
    query_string,
)
from admin.web import STAGE_LABELS, CurrentUser, render, services_of

router = APIRouter()

# English labels of the stored values (translated in admin/translations/portfolio.toml).
SORT_LABELS = {"dpd": "Most days past due", "amount": "Largest amount overdue", "loan_id": "Loan id"}
STATUS_LABELS = {"open": "Open", "closed": "Closed", "all": "All"}
CYCLE_LABELS = {"latest": "Latest cycle of each loan", "all": "Every cycle"}


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
    """This search's page `page`, every filter kept."""
    query = query_string(values, page=page)
    return f"/portfolio?{query}" if query else "/portfolio"


@router.get("/portfolio", response_class=HTMLResponse)
async def portfolio_page(request: Request, user: CurrentUser) -> Response:
    pool = services_of(request).pool
    parsed = parse_query(request.query_params)
    search = parsed.filter
    if search is None:
        options = await dropdown_options(pool)
    else:  # the dropdowns and the search at once, each on connections of its own
        options, (rows, total) = await asyncio.gather(dropdown_options(pool), search_portfolio(pool, search))
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
        "previous_url": None,
        "next_url": None,
    }
    if search is None:
        return render(request, "portfolio.html", context, status_code=422)
    capped = total > COUNT_CAP
    more = len(rows) == PAGE_SIZE and (capped or search.page * PAGE_SIZE < total)
    context.update(
        rows=rows,
        total=min(total, COUNT_CAP),
        capped=capped,
        page=search.page,
        pages=None if capped else max(1, -(-total // PAGE_SIZE)),
        previous_url=page_url(parsed.values, search.page - 1) if search.page > 1 else None,
        next_url=page_url(parsed.values, search.page + 1) if more else None,
    )
    return render(request, "portfolio.html", context)
