"""The append-only collections journal: what was done on each loan, kept for audit (migrations/0002).

`Journal(pool).record` is the `record_journal` activity: it validates every entry of a batch against its
kind's model (activities/contracts.py) and writes them in one transaction, once per idempotency key. Any bad
entry rejects the whole batch with a non-retryable InvalidRequest naming `entries[i].<field>`, so nothing is
half-written. `loan_timeline` reads one loan's journal back, every kind merged in time order (admin UI).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity

from activities import contracts
from activities.contracts import JOURNAL_DATA, JournalBatch, JournalEntry, JournalKind, JournalReceipt
from activities.db import Connection
from activities.errors import invalid, permanent, rejected_data_is_permanent

log = structlog.get_logger("overdue.activities")

# The table of each kind; names come from code, never from input.
TABLES: dict[JournalKind, str] = {
    "contact_attempt": "journal_contact_attempts",
    "deferral": "journal_deferrals",
    "hold": "journal_holds",
    "promise": "journal_promises",
    "payment": "journal_payments",
    "stage_transition": "journal_stage_transitions",
    "collector_action": "journal_collector_actions",
}

# Columns every journal table has besides its kind's own (the TimelineRow fields).
_COMMON = ("id", "idempotency_key", "loan_id", "jurisdiction", "at", "recorded_at")
_MAX_REPORTED = 5


class TimelineRow(BaseModel):
    """One journal row of a loan; `data` holds its kind's columns (native dates, times, ints, bools)."""

    model_config = ConfigDict(frozen=True)

    kind: JournalKind
    id: int
    idempotency_key: str
    loan_id: str
    jurisdiction: str
    at: datetime
    recorded_at: datetime
    data: dict[str, Any]


def _validate(batch: JournalBatch) -> list[tuple[JournalEntry, dict[str, Any]]]:
    """Each entry with its columns, or one InvalidRequest listing the bad fields (`entries[i].data.x`)."""
    valid: list[tuple[JournalEntry, dict[str, Any]]] = []
    problems: list[str] = []
    for index, entry in enumerate(batch.entries):
        where = f"entries[{index}]"
        model = JOURNAL_DATA.get(entry.kind)
        if model is None:
            problems.append(f"{where}.kind: unknown journal kind {entry.kind!r}")
            continue
        if entry.at.tzinfo is None or entry.at.utcoffset() is None:
            problems.append(f"{where}.at: must carry a timezone offset")
        try:
            data = model.model_validate(entry.data)
        except ValidationError as error:
            for detail in error.errors(include_url=False, include_input=False):
                field = ".".join(str(part) for part in detail["loc"]) or "data"
                problems.append(f"{where}.data.{field}: {detail['msg']} (kind {entry.kind!r})")
            continue
        valid.append((entry, {name: getattr(data, name) for name in type(data).model_fields}))
    if problems:
        more = len(problems) - _MAX_REPORTED
        message = "; ".join(problems[:_MAX_REPORTED]) + (f"; and {more} more" if more > 0 else "")
        raise invalid(f"journal batch rejected, nothing written: {message}")
    return valid


class Journal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=contracts.RECORD_JOURNAL)
    async def record(self, batch: JournalBatch) -> JournalReceipt:
        """Write every entry once per idempotency key, all or nothing; duplicates are counted, not written."""
        rows = _validate(batch)
        written = duplicates = 0
        if rows or batch.snapshot is not None:
            async with self._pool.acquire() as connection, connection.transaction():
                for index, (entry, columns) in enumerate(rows):
                    if await _insert(connection, index, entry, columns):
                        written += 1
                    else:
                        duplicates += 1
                if batch.snapshot is not None:
                    await upsert_snapshot(connection, batch.snapshot)
        log.info(
            "journal_recorded",
            loan_ids=sorted({entry.loan_id for entry in batch.entries}),
            kinds=dict(Counter(entry.kind for entry in batch.entries)),
            written=written,
            duplicates=duplicates,
            **({"attempt": activity.info().attempt} if activity.in_activity() else {}),
        )
        return JournalReceipt(written=written, duplicates=duplicates)


async def _insert(connection: Connection, index: int, entry: JournalEntry, columns: dict[str, Any]) -> bool:
    """Insert one row; False when its key is already stored (for the same loan, or it is a caller bug)."""
    table = TABLES[entry.kind]
    values: dict[str, Any] = {
        "idempotency_key": entry.idempotency_key,
        "loan_id": entry.loan_id,
        "jurisdiction": entry.jurisdiction,
        "at": entry.at,
        **columns,
    }
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    with rejected_data_is_permanent(f"journal entries[{index}] ({entry.kind})"):
        inserted = await connection.fetchval(
            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders}) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            *values.values(),
        )
    if inserted is not None:
        return True
    stored_loan = await connection.fetchval(
        f"SELECT loan_id FROM {table} WHERE idempotency_key = $1", entry.idempotency_key
    )
    if stored_loan is not None and stored_loan != entry.loan_id:
        raise permanent(
            contracts.IDEMPOTENCY_KEY_CONFLICT,
            f"entries[{index}].idempotency_key {entry.idempotency_key!r} already used by another loan's "
            f"{entry.kind} journal entry",
        )
    return False


async def upsert_snapshot(connection: Connection, snapshot: contracts.PortfolioSnapshot) -> None:
    """The loan's portfolio row (migrations/0008) becomes `snapshot`, unless a newer one is stored: a retried
    or late activity never moves the read model back in time."""
    columns = snapshot.model_dump()
    names = list(columns)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name != "loan_id")
    with rejected_data_is_permanent("portfolio snapshot"):
        await connection.execute(
            f"INSERT INTO portfolio ({', '.join(names)}) VALUES ({placeholders}) "
            f"ON CONFLICT (loan_id) DO UPDATE SET {updates}, updated_at = now() "
            "WHERE portfolio.as_of <= EXCLUDED.as_of",
            *columns.values(),
        )


async def loan_timeline(pool: asyncpg.Pool, loan_id: str) -> list[TimelineRow]:
    """Every journal row of one loan, all kinds merged, oldest first (by `at`, then when recorded)."""
    order = {kind: position for position, kind in enumerate(TABLES)}
    timeline: list[TimelineRow] = []
    async with pool.acquire() as connection:
        for kind, table in TABLES.items():
            for row in await connection.fetch(f"SELECT * FROM {table} WHERE loan_id = $1", loan_id):
                record = dict(row)
                timeline.append(
                    TimelineRow(
                        kind=kind,
                        **{name: record.pop(name) for name in _COMMON},
                        data=record,
                    )
                )
    timeline.sort(key=lambda r: (r.at, r.recorded_at, order[r.kind], r.id))
    return timeline
