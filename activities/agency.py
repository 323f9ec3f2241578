"""Placing accounts with collection agencies, and recalling them.

Selection rule of `DatabaseAgencyAdapter`: an active agency whose segments include the loan's segment (an
agency with no segments takes any), with fewer un-recalled placements than its capacity; among those, the one
with the fewest active placements, then the lowest id — so equal agencies take turns (round-robin).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Protocol

import asyncpg

from activities import contracts
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

_ONE_ACTIVE_PER_LOAN = "agency_placements_one_active_per_loan"

# Locks every active agency (in id order, so concurrent placements cannot deadlock) for the transaction:
# placements are serialised, and two of them can never both take an agency's last slot.
_LOCK_AGENCIES = "SELECT id FROM agencies WHERE active ORDER BY id FOR UPDATE"

# A separate statement after the lock: under READ COMMITTED it sees placements committed while we waited.
_PICK_AGENCY = """
SELECT a.id, a.name
FROM agencies a
LEFT JOIN agency_placements p ON p.agency_id = a.id AND p.recalled_at IS NULL
WHERE a.active AND (cardinality(a.segments) = 0 OR $1 = ANY (a.segments))
GROUP BY a.id
HAVING count(p.id) < a.capacity
ORDER BY count(p.id), a.id
LIMIT 1
"""


class AgencyAdapter(Protocol):
    """Hands accounts to agencies and takes them back. Both calls are idempotent on the request's key."""

    async def place(self, request: PlacementRequest) -> PlacementReceipt: ...

    async def recall(self, request: RecallRequest) -> RecallReceipt: ...


class DatabaseAgencyAdapter:
    """Agencies and placements kept in PostgreSQL (`agencies`, `agency_placements`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def place(self, request: PlacementRequest) -> PlacementReceipt:
        _validate_placement(request)
        async with self._pool.acquire() as connection:
            existing = await find_by_key(connection, "agency_placements", request.idempotency_key)
            if existing is not None:
                return await _receipt(connection, existing, request, duplicate=True)
            async with connection.transaction():
                await connection.execute(_LOCK_AGENCIES)
                agency = await connection.fetchrow(_PICK_AGENCY, request.segment)
                if agency is None:
                    raise permanent(
                        contracts.NO_AGENCY_AVAILABLE,
                        f"no active agency with capacity left takes segment {request.segment!r}",
                    )
                with rejected_data_is_permanent("agency placement"):
                    try:
                        row, duplicate = await insert_once(
                            connection, "agency_placements", _placement_row(request, agency["id"])
                        )
                    except asyncpg.UniqueViolationError as error:
                        if error.constraint_name != _ONE_ACTIVE_PER_LOAN:
                            raise
                        raise permanent(
                            contracts.LOAN_ALREADY_PLACED,
                            f"loan {request.loan_id} already has an active placement under another "
                            "idempotency key; recall it before placing again",
                        ) from error
            return await _receipt(connection, row, request, duplicate=duplicate)

    async def recall(self, request: RecallRequest) -> RecallReceipt:
        """Mark the placement recalled. Already recalled under another key: recalled=False (nothing changed).

        A retry with the same key answers as the first attempt did (recalled=True).
        """
        placement_id = _placement_uuid(request.placement_id)
        async with self._pool.acquire() as connection:
            try:
                updated = await connection.fetchval(
                    "UPDATE agency_placements SET recalled_at = now(), recall_reason = $3, recall_key = $4 "
                    "WHERE id = $1 AND loan_id = $2 AND recalled_at IS NULL RETURNING id",
                    placement_id,
                    request.loan_id,
                    request.reason,
                    request.idempotency_key,
                )
            except asyncpg.UniqueViolationError as error:
                raise permanent(
                    contracts.IDEMPOTENCY_KEY_CONFLICT,
                    f"idempotency_key {request.idempotency_key!r} already recalled another placement",
                ) from error
            if updated is not None:
                return RecallReceipt(placement_id=request.placement_id, recalled=True)
            row = await connection.fetchrow(
                "SELECT recall_key FROM agency_placements WHERE id = $1 AND loan_id = $2",
                placement_id,
                request.loan_id,
            )
        if row is None:
            raise permanent(
                contracts.PLACEMENT_NOT_FOUND,
                f"placement_id: {request.placement_id} is not a placement of loan {request.loan_id}",
            )
        same_request = row["recall_key"] == request.idempotency_key
        return RecallReceipt(placement_id=request.placement_id, recalled=same_request)


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


def _placement_row(request: PlacementRequest, agency_id: str) -> dict[str, object]:
    return {
        "idempotency_key": request.idempotency_key,
        "loan_id": request.loan_id,
        "agency_id": agency_id,
        "segment": request.segment,
        "dpd": request.dpd,
        "amount_overdue_minor": request.amount_overdue_minor,
        "principal_outstanding_minor": request.principal_outstanding_minor,
        "currency": request.currency,
        "placed_at": request.placed_at,
        "expires_at": request.placed_at + timedelta(days=request.period_days),
    }


async def _receipt(
    connection: Connection, row: asyncpg.Record, request: PlacementRequest, *, duplicate: bool
) -> PlacementReceipt:
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "agency placement")
    name = await connection.fetchval("SELECT name FROM agencies WHERE id = $1", row["agency_id"])
    return PlacementReceipt(
        placement_id=str(row["id"]),
        agency_id=row["agency_id"],
        agency_name=name,
        expires_at=row["expires_at"],
        duplicate=duplicate,
    )


def _placement_uuid(placement_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(placement_id)
    except ValueError:
        raise permanent(
            contracts.PLACEMENT_NOT_FOUND, f"placement_id: {placement_id!r} is not a placement id"
        ) from None
