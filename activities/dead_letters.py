"""Journal entries that could not be written, kept apart with the reason (journal_dead_letters, 0012).

The journal activity (activities/journal.py) writes each entry of a batch on its own; one it cannot write (a
field its kind's model refuses, a NUL character, a table CHECK) lands here instead of failing the batch, once
per idempotency key. Supervisors see them (`dead_letters`, `dead_letter_count`) and the metrics count them.

The entry is stored as received, except that NUL and other control characters are escaped ("\\u0000" as
six characters): jsonb cannot hold a NUL, and the point is to keep what could not be written, not lose it.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict

from activities.contracts import JournalEntry
from activities.db import Connection

log = structlog.get_logger("overdue.activities")

# C0 and C1 controls except tab, line feed and carriage return, and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_MAX_REASON = 1000


class DeadLetterRow(BaseModel):
    """One journal entry kept apart; `entry` is the entry as received (control characters escaped)."""

    model_config = ConfigDict(frozen=True)

    id: int
    idempotency_key: str
    loan_id: str
    kind: str
    jurisdiction: str | None
    cycle: date | None
    at: datetime | None
    reason: str
    entry: dict[str, Any]
    recorded_at: datetime


def storable(text: str) -> str:
    """`text` with the characters PostgreSQL text or jsonb cannot hold escaped as `\\uXXXX`."""
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group(0)):04x}", text)


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): _storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(item) for item in value]
    return value


def _entry_json(entry: JournalEntry) -> str:
    # model_construct'ed entries (tests, older callers) may hold anything: dump leniently, never raise here.
    dumped = entry.model_dump(mode="json", warnings=False)
    return json.dumps(_storable_json(dumped), ensure_ascii=False, default=str)


async def keep(connection: Connection, entry: JournalEntry, reason: str) -> bool:
    """Store `entry` as a dead letter with `reason`; False when its key was already kept (a retried batch).

    `reason` names fields and constraints only; it is logged with the kind and the key, never the data.
    """
    key = storable(str(entry.idempotency_key))
    at = entry.at if isinstance(entry.at, datetime) and entry.at.utcoffset() is not None else None
    cycle = entry.cycle if isinstance(entry.cycle, date) else None
    inserted = await connection.fetchval(
        "INSERT INTO journal_dead_letters "
        "(idempotency_key, loan_id, kind, jurisdiction, cycle, at, reason, entry) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        key,
        storable(str(entry.loan_id)),
        storable(str(entry.kind)),
        storable(str(entry.jurisdiction)) if entry.jurisdiction is not None else None,
        cycle,
        at,
        storable(reason)[:_MAX_REASON],
        _entry_json(entry),
    )
    log.warning(
        "journal_entry_dead_lettered",
        kind=storable(str(entry.kind)),
        idempotency_key=key,
        reason=storable(reason)[:_MAX_REASON],
        first_time=inserted is not None,
    )
    return inserted is not None


async def dead_letters(pool: asyncpg.Pool, limit: int = 100) -> list[DeadLetterRow]:
    """The newest dead letters first, at most `limit` (for the supervisors' page)."""
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT * FROM journal_dead_letters ORDER BY recorded_at DESC, id DESC LIMIT $1", limit
        )
    return [DeadLetterRow(**{**dict(row), "entry": json.loads(row["entry"])}) for row in rows]


async def dead_letter_count(pool: asyncpg.Pool) -> int:
    """How many journal entries are kept apart (for the metrics and the dashboard)."""
    async with pool.acquire() as connection:
        count = await connection.fetchval("SELECT count(*) FROM journal_dead_letters")
    return int(count or 0)
