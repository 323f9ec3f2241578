"""Placing accounts with collection agencies, and recalling them.

Agencies are configuration (strategies/agencies.toml, domain/agencies.py) synced into the `agencies` table
when the worker starts (`start_agencies` → `sync_agencies`). Placements live in `agency_placements`.

Assignment rule of `DatabaseAgencyAdapter`: an active agency
- whose segments include the loan's segment (an agency with no segments takes any),
- within its optional amount limits for the loan's currency (a currency not listed in a limit: not taken),
- with fewer active placements (un-recalled, not rejected) than its capacity,
- and not one of the request's `exclude_agencies` (the agencies the loan was already placed with);
among those, the one with the fewest active placements, then the least recently assigned, then the lowest
id — so equal agencies take turns (round-robin).

Placing is write first, call second: the row is stored 'pending' (with the agency chosen, in one locked
transaction), then the agency's API is called with the placement's idempotency key, then the row is marked
'accepted' with the agency's reference. A retry finds the row: accepted → no call; pending → the same call
again under the same Idempotency-Key (the agency drops the repeat); so an account is never placed twice.
File agencies (endpoint "file") get no call: their placements are accepted at once and handed over as CSV
(`python -m starter agencies export`). Recalls likewise: the row is marked recalled, then the agency told.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TextIO

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.agency_http import AGENCY_REJECTED, AgencyHttpClient, client_from_settings
from activities.contracts import PlacementReceipt, PlacementRequest, RecallReceipt, RecallRequest
from activities.db import Connection, find_by_key, insert_once
from activities.errors import (
    invalid,
    permanent,
    rejected_data_is_permanent,
    require_currency,
    require_non_negative,
    require_same_loan,
)
from domain.agencies import FILE_ENDPOINT, AgencyBook, AgencyConfig, load_agencies
from domain.loan import CURRENCIES
from observability import activity_metrics
from stack.settings import Settings

log = structlog.get_logger("overdue.agencies")

_ONE_ACTIVE_PER_LOAN = "agency_placements_one_active_per_loan"

# Locks every active agency (in id order, so concurrent placements cannot deadlock) for the transaction:
# placements are serialised, and two of them can never both take an agency's last slot.
_LOCK_AGENCIES = "SELECT id FROM agencies WHERE active ORDER BY id FOR UPDATE"

# A separate statement after the lock: under READ COMMITTED it sees placements committed while we waited.
# $1 segment, $2 excluded agency ids, $3 currency, $4 amount overdue.
_PICK_AGENCY = """
SELECT a.id, a.name, a.endpoint
FROM agencies a
LEFT JOIN agency_placements p
    ON p.agency_id = a.id AND p.recalled_at IS NULL AND p.status <> 'rejected'
WHERE a.active
  AND (cardinality(a.segments) = 0 OR $1 = ANY (a.segments))
  AND NOT (a.id = ANY ($2::text[]))
  AND (a.min_amount_overdue_minor IS NULL
       OR (a.min_amount_overdue_minor ? $3 AND $4 >= (a.min_amount_overdue_minor ->> $3)::bigint))
  AND (a.max_amount_overdue_minor IS NULL
       OR (a.max_amount_overdue_minor ? $3 AND $4 <= (a.max_amount_overdue_minor ->> $3)::bigint))
GROUP BY a.id
HAVING count(p.id) < a.capacity
ORDER BY count(p.id), a.last_assigned_at NULLS FIRST, a.id
LIMIT 1
"""

_RECALL = """
UPDATE agency_placements p
SET recalled_at = now(), recall_reason = $3, recall_key = $4,
    recall_status = CASE WHEN a.endpoint = 'file' THEN NULL ELSE 'pending' END
FROM agencies a
WHERE p.id = $1 AND p.loan_id = $2 AND p.recalled_at IS NULL AND p.status <> 'rejected' AND a.id = p.agency_id
RETURNING p.id, p.recall_status
"""


class AgencyAdapter(Protocol):
    """Hands accounts to agencies and takes them back. Both calls are idempotent on the request's key."""

    async def place(self, request: PlacementRequest) -> PlacementReceipt: ...

    async def recall(self, request: RecallRequest) -> RecallReceipt: ...


class DatabaseAgencyAdapter:
    """Agencies and placements kept in PostgreSQL; agencies with an API are called through `http`.

    Without `http`, a client with no API keys and no sandbox URL is used (enough for file agencies).
    """

    def __init__(self, pool: asyncpg.Pool, *, http: AgencyHttpClient | None = None) -> None:
        self._pool = pool
        self._http = http if http is not None else AgencyHttpClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place(self, request: PlacementRequest) -> PlacementReceipt:
        _validate_placement(request)
        async with self._pool.acquire() as connection:
            row = await find_by_key(connection, "agency_placements", request.idempotency_key)
            duplicate = row is not None
            if row is None:
                row, duplicate = await _assign(connection, request)
                activity_metrics.placed(request, first_time=not duplicate)
            require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "agency placement")
            agency = await connection.fetchrow(
                "SELECT id, name, endpoint FROM agencies WHERE id = $1", row["agency_id"]
            )
        assert agency is not None  # agencies are never deleted (placements reference them)
        if row["status"] == "rejected":
            raise ApplicationError(
                f"agency {agency['id']} refused this placement for good ({row['rejected_code']})",
                row["rejected_code"],
                type=AGENCY_REJECTED,
                non_retryable=True,
            )
        if row["status"] == "pending" and row["recalled_at"] is None:
            row = await self._deliver(row, agency, request)
        return PlacementReceipt(
            placement_id=str(row["id"]),
            agency_id=agency["id"],
            agency_name=agency["name"],
            expires_at=row["expires_at"],
            duplicate=duplicate,
            agency_reference=row["agency_reference"],
        )

    async def _deliver(
        self, row: asyncpg.Record, agency: asyncpg.Record, request: PlacementRequest
    ) -> asyncpg.Record:
        """Call the agency's API for a pending placement (no connection held meanwhile), then record it."""
        payload = {
            "placement_id": str(row["id"]),
            "loan_id": row["loan_id"],
            "amount_overdue_minor": row["amount_overdue_minor"],
            "currency": row["currency"],
            "dpd": row["dpd"],
            "segment": row["segment"],
            "period_days": request.period_days,
            "expires_at": row["expires_at"].isoformat(),
        }
        try:
            reference = await self._http.place(
                agency["id"], agency["endpoint"], row["idempotency_key"], payload
            )
        except ApplicationError as error:
            if error.non_retryable:
                code = str(error.details[0]) if error.details else error.type
                await self._pool.execute(
                    "UPDATE agency_placements SET status = 'rejected', rejected_code = $2 "
                    "WHERE id = $1 AND status = 'pending'",
                    row["id"],
                    code,
                )
                log.warning(
                    "agency_rejected_placement", loan_id=row["loan_id"], agency_id=agency["id"], code=code
                )
            raise
        accepted = await self._pool.fetchrow(
            "UPDATE agency_placements SET status = 'accepted', agency_reference = $2, accepted_at = now() "
            "WHERE id = $1 AND status = 'pending' RETURNING *",
            row["id"],
            reference,
        )
        if accepted is None:  # a concurrent attempt recorded it first
            accepted = await self._pool.fetchrow("SELECT * FROM agency_placements WHERE id = $1", row["id"])
        assert accepted is not None
        return accepted

    async def recall(self, request: RecallRequest) -> RecallReceipt:
        """Mark the placement recalled, then tell an agency with an API. Already recalled under another key:
        recalled=False (nothing changed, nothing sent).

        A retry with the same key answers as the first attempt did (recalled=True), and tells the agency
        again if it has not confirmed yet (same Idempotency-Key).
        """
        placement_id = _placement_uuid(request.placement_id)
        async with self._pool.acquire() as connection:
            try:
                updated = await connection.fetchrow(
                    _RECALL, placement_id, request.loan_id, request.reason, request.idempotency_key
                )
                activity_metrics.recalled(request, first_time=updated is not None)
            except asyncpg.UniqueViolationError as error:
                raise permanent(
                    contracts.IDEMPOTENCY_KEY_CONFLICT,
                    f"idempotency_key {request.idempotency_key!r} already recalled another placement",
                ) from error
            row = await connection.fetchrow(
                "SELECT p.id, p.loan_id, p.recall_key, p.recall_reason, p.recall_status, "
                "a.id AS agency_id, a.endpoint "
                "FROM agency_placements p JOIN agencies a ON a.id = p.agency_id "
                "WHERE p.id = $1 AND p.loan_id = $2",
                placement_id,
                request.loan_id,
            )
        if row is None:
            raise permanent(
                contracts.PLACEMENT_NOT_FOUND,
                f"placement_id: {request.placement_id} is not a placement of loan {request.loan_id}",
            )
        same_request = updated is not None or row["recall_key"] == request.idempotency_key
        if same_request and row["recall_status"] == "pending" and row["endpoint"] != FILE_ENDPOINT:
            await self._tell_agency(row, request)
        return RecallReceipt(placement_id=request.placement_id, recalled=same_request)

    async def _tell_agency(self, row: asyncpg.Record, request: RecallRequest) -> None:
        delivery = await self._http.recall(
            row["agency_id"], row["endpoint"], request.idempotency_key, str(row["id"]), row["recall_reason"]
        )
        await self._pool.execute(
            "UPDATE agency_placements SET recall_status = $2, recall_error_code = $3, "
            "recall_delivered_at = CASE WHEN $2 = 'delivered' THEN now() END "
            "WHERE id = $1 AND recall_status = 'pending'",
            row["id"],
            delivery.outcome,
            delivery.code if delivery.outcome == "refused" else None,
        )
        if delivery.outcome == "refused":
            # The lender's books say recalled; the agency may still be working the account. An operator
            # settles it with the agency (`python -m starter agencies list` shows refused recalls).
            log.error(
                "agency_refused_recall",
                loan_id=row["loan_id"],
                agency_id=row["agency_id"],
                placement_id=str(row["id"]),
                code=delivery.code,
            )


async def _assign(connection: Connection, request: PlacementRequest) -> tuple[asyncpg.Record, bool]:
    """Choose the agency and store the placement, in one transaction holding the agencies' locks."""
    async with connection.transaction():
        await connection.execute(_LOCK_AGENCIES)
        agency = await connection.fetchrow(
            _PICK_AGENCY,
            request.segment,
            list(request.exclude_agencies),
            request.currency,
            request.amount_overdue_minor,
        )
        if agency is None:
            excluded = f", not {', '.join(request.exclude_agencies)}" if request.exclude_agencies else ""
            raise permanent(
                contracts.NO_AGENCY_AVAILABLE,
                f"no active agency with capacity left takes segment {request.segment!r} at "
                f"{request.amount_overdue_minor} {request.currency} minor units{excluded}",
            )
        with rejected_data_is_permanent("agency placement"):
            try:
                row, duplicate = await insert_once(
                    connection, "agency_placements", _placement_row(request, agency)
                )
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name != _ONE_ACTIVE_PER_LOAN:
                    raise
                raise permanent(
                    contracts.LOAN_ALREADY_PLACED,
                    f"loan {request.loan_id} already has an active placement under another "
                    "idempotency key; recall it before placing again",
                ) from error
        if not duplicate:
            await connection.execute(
                "UPDATE agencies SET last_assigned_at = clock_timestamp() WHERE id = $1", agency["id"]
            )
    return row, duplicate


def _validate_placement(request: PlacementRequest) -> None:
    require_currency(request.currency)
    require_non_negative(
        amount_overdue_minor=request.amount_overdue_minor,
        principal_outstanding_minor=request.principal_outstanding_minor,
        dpd=request.dpd,
    )
    if request.period_days < 1:
        raise invalid(f"period_days: must be at least 1 (got {request.period_days})")
    if request.placed_at.tzinfo is None or request.placed_at.utcoffset() is None:
        raise invalid("placed_at: must carry a timezone offset")


def _placement_row(request: PlacementRequest, agency: asyncpg.Record) -> dict[str, object]:
    file_agency = agency["endpoint"] == FILE_ENDPOINT  # nothing to call: handed over by CSV export
    return {
        "idempotency_key": request.idempotency_key,
        "loan_id": request.loan_id,
        "agency_id": agency["id"],
        "segment": request.segment,
        "dpd": request.dpd,
        "amount_overdue_minor": request.amount_overdue_minor,
        "principal_outstanding_minor": request.principal_outstanding_minor,
        "currency": request.currency,
        "placed_at": request.placed_at,
        "expires_at": request.placed_at + timedelta(days=request.period_days),
        "status": "accepted" if file_agency else "pending",
        "accepted_at": request.placed_at if file_agency else None,
    }


def _placement_uuid(placement_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(placement_id)
    except ValueError:
        raise permanent(
            contracts.PLACEMENT_NOT_FOUND, f"placement_id: {placement_id!r} is not a placement id"
        ) from None


# ------------------------------------------------------------------------------------- configuration sync

_UPSERT_AGENCY = """
INSERT INTO agencies (id, name, endpoint, capacity, segments, commission_bps, active,
                      min_amount_overdue_minor, max_amount_overdue_minor, receives_contact_details)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, endpoint = EXCLUDED.endpoint, capacity = EXCLUDED.capacity,
    segments = EXCLUDED.segments, commission_bps = EXCLUDED.commission_bps, active = EXCLUDED.active,
    min_amount_overdue_minor = EXCLUDED.min_amount_overdue_minor,
    max_amount_overdue_minor = EXCLUDED.max_amount_overdue_minor,
    receives_contact_details = EXCLUDED.receives_contact_details, updated_at = now()
"""


@dataclass(frozen=True)
class SyncResult:
    added: list[str]
    deactivated: list[str]  # in the table, active, but no longer in the file
    active: list[str]  # active after the sync


async def sync_agencies(pool: asyncpg.Pool, agencies: AgencyBook | Sequence[AgencyConfig]) -> SyncResult:
    """Make the `agencies` table say what the file says: upsert each agency; one no longer in the file
    becomes inactive (never deleted: placements reference it). Idempotent; several workers may run it."""
    configured = list(agencies.agencies if isinstance(agencies, AgencyBook) else agencies)
    ids = [a.id for a in configured]
    async with pool.acquire() as connection, connection.transaction():
        # The same lock order as a placement, so a sync and a placement never deadlock.
        await connection.execute("SELECT id FROM agencies ORDER BY id FOR UPDATE")
        known = {r["id"] for r in await connection.fetch("SELECT id FROM agencies")}
        await connection.executemany(
            _UPSERT_AGENCY,
            [
                (
                    a.id,
                    a.name,
                    a.endpoint,
                    a.capacity,
                    list(a.segments),
                    a.commission_bps,
                    a.active,
                    _json_or_none(a.min_amount_overdue_minor),
                    _json_or_none(a.max_amount_overdue_minor),
                    a.receives_contact_details,
                )
                for a in configured
            ],
        )
        deactivated = await connection.fetch(
            "UPDATE agencies SET active = false, updated_at = now() "
            "WHERE active AND NOT (id = ANY ($1::text[])) RETURNING id",
            ids,
        )
    return SyncResult(
        added=[i for i in ids if i not in known],
        deactivated=sorted(r["id"] for r in deactivated),
        active=[a.id for a in configured if a.active],
    )


def _json_or_none(amounts: dict[str, int] | None) -> str | None:
    return None if amounts is None else json.dumps(amounts, sort_keys=True)


async def start_agencies(settings: Settings, pool: asyncpg.Pool) -> DatabaseAgencyAdapter:
    """At worker start: load OVERDUE_AGENCIES_FILE, sync it into the table, return the adapter to use.

    Raises AgencyConfigError (file, field, message) or AgencySettingsError (an API key variable not set).
    """
    book = load_agencies(settings.agencies_file)
    http = client_from_settings(settings, book)
    result = await sync_agencies(pool, book)
    log.info(
        "agencies synced",
        file=str(settings.agencies_file),
        active=result.active,
        added=result.added,
        deactivated=result.deactivated,
    )
    return DatabaseAgencyAdapter(pool, http=http)


# ---------------------------------------------------------------------------------------------- reports


async def agency_overview(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every agency with its load: active, pending (API not confirmed yet) and refused-recall counts."""
    return await pool.fetch(
        """
        SELECT a.id, a.name, a.endpoint, a.active, a.capacity, a.segments, a.commission_bps,
               a.receives_contact_details, a.last_assigned_at,
               count(p.id) FILTER (WHERE p.recalled_at IS NULL AND p.status = 'accepted') AS placed,
               count(p.id) FILTER (WHERE p.recalled_at IS NULL AND p.status = 'pending') AS pending,
               count(p.id) FILTER (WHERE p.status = 'rejected') AS rejected,
               count(p.id) FILTER (WHERE p.recall_status = 'pending') AS recalls_pending,
               count(p.id) FILTER (WHERE p.recall_status = 'refused') AS recalls_refused
        FROM agencies a LEFT JOIN agency_placements p ON p.agency_id = a.id
        GROUP BY a.id
        ORDER BY a.active DESC, a.id
        """
    )


# A lookup of the borrower's name and phone by loan id (the CLI asks the loan's workflow, which keeps the
# current contact points; docs/personal-data.md lists what PostgreSQL holds). None: not found.
ContactLookup = Callable[[str], Awaitable[tuple[str, str] | None]]

EXPORT_COLUMNS = (
    "placement_id",
    "loan_id",
    "agency_reference",
    "segment",
    "currency",
    "amount_overdue_minor",
    "amount_overdue",
    "principal_outstanding_minor",
    "principal_outstanding",
    "dpd",
    "placed_at",
    "expires_at",
)
CONTACT_COLUMNS = ("borrower_name", "borrower_phone")


class AgencyExportError(RuntimeError):
    """The export cannot be written as asked (unknown agency, contact details unavailable)."""


@dataclass(frozen=True)
class ExportSummary:
    agency_id: str
    rows: int
    contact_details: bool
    contacts_missing: list[str]  # loans whose contact details could not be found (cells left empty)


async def export_placements(
    pool: asyncpg.Pool, agency_id: str, out: TextIO, contacts: ContactLookup | None = None
) -> ExportSummary:
    """Write the agency's active placements as CSV to `out`, oldest first.

    Borrower name and phone are columns only for an agency marked `receives_contact_details`; for one,
    `contacts` is required. Nothing else about the borrower is ever written.
    """
    agency = await pool.fetchrow("SELECT id, receives_contact_details FROM agencies WHERE id = $1", agency_id)
    if agency is None:
        raise AgencyExportError(f"no agency {agency_id!r} (see `python -m starter agencies list`)")
    with_contacts = bool(agency["receives_contact_details"])
    if with_contacts and contacts is None:
        raise AgencyExportError(f"agency {agency_id} receives contact details, but no lookup was given")
    rows = await pool.fetch(
        "SELECT * FROM agency_placements WHERE agency_id = $1 AND recalled_at IS NULL "
        "AND status = 'accepted' ORDER BY placed_at, id",
        agency_id,
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS + (CONTACT_COLUMNS if with_contacts else ()))
    missing: list[str] = []
    for row in rows:
        line = [
            str(row["id"]),
            row["loan_id"],
            row["agency_reference"] or "",
            row["segment"],
            row["currency"],
            str(row["amount_overdue_minor"]),
            major_units(row["amount_overdue_minor"], row["currency"]),
            str(row["principal_outstanding_minor"]),
            major_units(row["principal_outstanding_minor"], row["currency"]),
            str(row["dpd"]),
            row["placed_at"].isoformat(),
            row["expires_at"].isoformat(),
        ]
        if with_contacts:
            assert contacts is not None
            found = await contacts(row["loan_id"])
            if found is None:
                missing.append(row["loan_id"])
                line += ["", ""]
            else:
                line += [_cell(found[0]), found[1]]
        writer.writerow(line)
    return ExportSummary(agency_id, len(rows), with_contacts, missing)


def major_units(amount_minor: int, currency: str) -> str:
    """'5000.00' for 500000 CNY: plain digits and a dot, for spreadsheets and import scripts."""
    digits = CURRENCIES.get(currency, 2)
    if digits == 0:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{major}.{minor:0{digits}d}"


def _cell(text: str) -> str:
    """Free text a spreadsheet would run as a formula (=, +, -, @ first) is quoted with a leading '."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
