"""Who read what: dossier views, letter downloads, portfolio searches and reveals of masked contact data, in
the append-only `read_audit` table (migrations/0018), and the supervisors' page that queries it.

A row names the user (id, username, role), when, what (the action, the loan, the document, the revealed field
and the reason typed for it) and the client's address. It never holds a borrower's name: a search records its
filters that are not personal and whether free text was typed (`text: true`), with a keyed hash of that text
when OVERDUE_READ_AUDIT_KEY is set (the same search hashes the same; the text cannot be read back).

PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the table; `purge_read_audit` (retention) deletes rows
older than a bound through the one function the trigger lets through.

GET /audit/reads (supervisors): filter by username, loan id and a date range (UTC days), newest first,
PAGE_SIZE rows a page. Its query string holds no borrower data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from activities.db import Connection
from admin.access import access_settings
from admin.users import USERNAME, User
from admin.web import Supervisor, render, services_of

router = APIRouter()

ReadAction = Literal["dossier_view", "document_download", "search", "reveal"]
PAGE_SIZE = 50
MAX_PAGE = 10_000
MAX_LOAN_ID = 64


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def record_read(
    request: Request,
    user: User,
    action: ReadAction,
    *,
    loan_id: str | None = None,
    document_id: str | None = None,
    field_name: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One row of read_audit for this request (the client address is the request's)."""
    await services_of(request).pool.execute(
        "INSERT INTO read_audit (user_id, username, role, action, loan_id, document_id, field, reason, "
        "detail, client_addr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
        user.id,
        user.username,
        user.role,
        action,
        loan_id,
        document_id,
        field_name,
        reason,
        json.dumps(dict(detail or {}), sort_keys=True, default=str),
        client_address(request),
    )


def search_detail(request: Request, filters: Mapping[str, str], text: str) -> dict[str, Any]:
    """What a search row keeps: the non-personal filters given, and of the free text only that it was typed
    (and its keyed hash when a key is configured): the text may be a borrower's name."""
    detail: dict[str, Any] = {name: value for name, value in filters.items() if value and name != "q"}
    if text:
        detail["text"] = True
        key = access_settings(request).read_audit_key
        if key is not None:
            digest = hmac.new(key.get_secret_value().encode(), text.strip().lower().encode(), hashlib.sha256)
            detail["text_hmac"] = digest.hexdigest()
    return detail


async def purge_read_audit(conn: Connection | asyncpg.Pool, older_than: datetime) -> int:
    """Delete the read_audit rows older than `older_than` (retention); how many. Works despite the
    append-only trigger: read_audit_purge() is the one path it lets through, and only for older rows."""
    removed = await conn.fetchval("SELECT read_audit_purge($1)", older_than)
    return int(removed or 0)


# -- the page ------------------------------------------------------------------------------------------------

ERROR_USERNAME = "Not a username."
ERROR_LOAN_ID = "At most 64 characters, no control characters."
ERROR_DATE = "Enter a date like 2026-01-31."
ERROR_RANGE = "The end is before the start."


@dataclass
class AuditQuery:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    loan_id: str | None = None
    start: date | None = None
    end: date | None = None
    page: int = 1


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValueError(ERROR_DATE) from None


def parse_audit_query(params: Mapping[str, str]) -> AuditQuery:
    names = ("user", "loan", "from", "to", "page")
    values = {name: str(params.get(name, "") or "").strip() for name in names}
    query = AuditQuery(values)
    if values["user"]:
        if USERNAME.match(values["user"].lower()):
            query.username = values["user"].lower()
        else:
            query.errors["user"] = ERROR_USERNAME
    if values["loan"]:
        if len(values["loan"]) <= MAX_LOAN_ID and values["loan"].isprintable():
            query.loan_id = values["loan"]
        else:
            query.errors["loan"] = ERROR_LOAN_ID
    for name, attribute in (("from", "start"), ("to", "end")):
        try:
            setattr(query, attribute, _date(values[name]))
        except ValueError as error:
            query.errors[name] = str(error)
    if query.start and query.end and query.end < query.start:
        query.errors["to"] = ERROR_RANGE
    page = values["page"]
    query.page = min(int(page), MAX_PAGE) if page.isascii() and page.isdigit() and 0 < len(page) <= 6 else 1
    query.page = max(query.page, 1)
    return query


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def audit_rows(pool: asyncpg.Pool, query: AuditQuery) -> list[asyncpg.Record]:
    """One page (plus one row, to know whether there is a next page), newest first."""
    end = _midnight(query.end) + timedelta(days=1) if query.end else None
    return await pool.fetch(
        "SELECT * FROM read_audit WHERE ($1::text IS NULL OR username = $1) "
        "AND ($2::text IS NULL OR loan_id = $2) "
        "AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4) "
        "ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6",
        query.username,
        query.loan_id,
        _midnight(query.start) if query.start else None,
        end,
        PAGE_SIZE + 1,
        (query.page - 1) * PAGE_SIZE,
    )


def audit_url(values: Mapping[str, str], page: int) -> str:
    pairs = [(name, values[name]) for name in ("user", "loan", "from", "to") if values.get(name)]
    if page > 1:
        pairs.append(("page", str(page)))
    return "/audit/reads" + (f"?{urlencode(pairs)}" if pairs else "")


def _detail(row: asyncpg.Record) -> dict[str, Any]:
    detail = row["detail"]
    return dict(json.loads(detail) if isinstance(detail, str) else detail or {})


ACTION_LABELS = {
    "dossier_view": "Dossier viewed",
    "document_download": "Letter downloaded",
    "search": "Portfolio search",
    "reveal": "Contact revealed",
}


@router.get("/audit/reads", response_class=HTMLResponse)
async def reads_page(request: Request, user: Supervisor) -> Response:
    query = parse_audit_query(request.query_params)
    rows: list[asyncpg.Record] = []
    if not query.errors:
        rows = await audit_rows(services_of(request).pool, query)
    more = len(rows) > PAGE_SIZE
    context = {
        "user": user,
        "values": query.values,
        "errors": query.errors,
        "rows": rows[:PAGE_SIZE],
        "page": query.page,
        "action_labels": ACTION_LABELS,
        "detail_of": _detail,
        "utc": UTC,
        "previous_url": audit_url(query.values, query.page - 1) if query.page > 1 else None,
        "next_url": audit_url(query.values, query.page + 1) if more else None,
    }
    return render(request, "audit_reads.html", context, status_code=422 if query.errors else 200)
