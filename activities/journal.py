"""The append-only collections journal: what was done on each loan, kept for audit (migrations/0002).

`Journal(pool).record` is the `record_journal` activity: it validates each entry of a batch against its
kind's model (activities/contracts.py) and writes it once per idempotency key. The journal never drops an
entry: one that cannot be written (a bad field, a NUL character, a table CHECK, a key of another loan) is
kept in journal_dead_letters with the reason (activities/dead_letters.py) while the rest of the batch is
written. `loan_timeline` reads one loan's journal back, every kind merged in time order (admin UI).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import contracts, dead_letters
from activities.contracts import JOURNAL_DATA, JournalBatch, JournalEntry, JournalKind, JournalReceipt
from activities.db import Connection
from activities.errors import rejected_data_is_permanent
from observability import journal as business_metrics

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
_COMMON = ("id", "idempotency_key", "loan_id", "jurisdiction", "at", "cycle", "recorded_at")
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
    cycle: date | None = None
    recorded_at: datetime
    data: dict[str, Any]


def _check(entry: JournalEntry) -> tuple[dict[str, Any] | None, str]:
    """The entry's columns, or None and the reason it can never be written (`data.<field>: ...`).

    Caught here rather than by the database where a readable reason is cheap: a NUL character (PostgreSQL
    text cannot hold one) and a deferral that ends before it starts (the table's CHECK).
    """
    model = JOURNAL_DATA.get(entry.kind)
    if model is None:
        return None, f"kind: unknown journal kind {entry.kind!r}"
    problems: list[str] = []
    if not isinstance(entry.at, datetime) or entry.at.utcoffset() is None:
        problems.append("at: must carry a timezone offset")
    for name, text in (("idempotency_key", entry.idempotency_key), ("loan_id", entry.loan_id)):
        if isinstance(text, str) and "\x00" in text:
            problems.append(f"{name}: contains a NUL character")
    for name, value in (entry.data or {}).items():
        if isinstance(value, str) and "\x00" in value:
            problems.append(f"data.{name}: contains a NUL character")
    columns: dict[str, Any] | None = None
    try:
        data = model.model_validate(entry.data)
    except ValidationError as error:
        for detail in error.errors(include_url=False, include_input=False):
            field = ".".join(str(part) for part in detail["loc"]) or "data"
            problems.append(f"data.{field}: {detail['msg']}")
    else:
        columns = {name: getattr(data, name) for name in type(data).model_fields}
        until, since = columns.get("deferred_until"), columns.get("deferred_from")
        if isinstance(until, datetime) and isinstance(since, datetime) and until < since:
            problems.append("data.deferred_until: before deferred_from")
    if problems:
        more = len(problems) - _MAX_REPORTED
        reason = "; ".join(problems[:_MAX_REPORTED]) + (f"; and {more} more" if more > 0 else "")
        return None, f"{reason} (kind {entry.kind!r})"
    return columns, ""


class Journal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=contracts.RECORD_JOURNAL)
    async def record(self, batch: JournalBatch) -> JournalReceipt:
        """Write every entry once per idempotency key; duplicates are counted, not written; an entry that
        cannot be written is kept as a dead letter with the reason while the others are written.

        One transaction with a savepoint per entry: a connection lost half way rolls everything back and
        Temporal retries the batch, which writes each key once whatever the earlier attempts did.
        """
        outcomes: Counter[str] = Counter()
        # What the metrics count: entries stored for the first time, and duplicates (retries, by kind only).
        fresh: list[tuple[JournalEntry, str]] = []
        if batch.entries or batch.snapshot is not None:
            async with self._pool.acquire() as connection, connection.transaction():
                for entry in batch.entries:
                    outcome, first_time = await _write(connection, entry)
                    outcomes[outcome] += 1
                    if first_time or outcome == "duplicate":
                        fresh.append((entry, outcome))
                if batch.snapshot is not None:
                    await _snapshot(connection, batch.snapshot)
        business_metrics.count_committed(fresh)  # after the commit: a rolled-back batch counts nothing
        written, duplicates, dead = outcomes["written"], outcomes["duplicate"], outcomes["dead_lettered"]
        log.info(
            "journal_recorded",
            loan_ids=sorted({str(entry.loan_id) for entry in batch.entries}),
            kinds=dict(Counter(str(entry.kind) for entry in batch.entries)),
            written=written,
            duplicates=duplicates,
            dead_lettered=dead,
            **({"attempt": activity.info().attempt} if activity.in_activity() else {}),
        )
        return JournalReceipt(written=written, duplicates=duplicates, dead_lettered=dead)


# What the database (or asyncpg, encoding an argument) answers for a row that can never be written: a CHECK
# or NOT NULL, a value the column type refuses, a character the encoding cannot hold. Anything else (a lost
# connection, a timeout, a deadlock) propagates and Temporal retries the batch.
_UNWRITABLE = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    asyncpg.exceptions._base.DataError,  # asyncpg could not encode an argument
    UnicodeError,
)


def _database_reason(error: BaseException, entry: JournalEntry) -> str:
    """Names the constraint or the error class, never the row: PostgreSQL's message may quote the data."""
    constraint = getattr(error, "constraint_name", None)
    detail = f"constraint {constraint}" if constraint else type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    state = f", SQLSTATE {sqlstate}" if sqlstate else ""
    return f"rejected by the database: {detail}{state} (kind {entry.kind!r})"


async def _write(connection: Connection, entry: JournalEntry) -> tuple[str, bool]:
    """Write one entry: 'written', 'duplicate' (its key is stored for its loan) or 'dead_lettered', and
    whether this call stored it (False for a duplicate, and for a dead letter kept by an earlier attempt)."""
    columns, reason = _check(entry)
    if columns is not None:
        try:
            # A savepoint: a row the database refuses undoes only itself, not the batch.
            async with connection.transaction():
                stored_loan = await _insert(connection, entry, columns)
        except _UNWRITABLE as error:
            reason = _database_reason(error, entry)
        else:
            if stored_loan is None:
                return "written", True
            if stored_loan == entry.loan_id:
                return "duplicate", False
            reason = "idempotency_key: already used by another loan's journal entry"
    return "dead_lettered", await dead_letters.keep(connection, entry, reason)


async def _insert(connection: Connection, entry: JournalEntry, columns: dict[str, Any]) -> str | None:
    """Insert one row; None when written, else the loan id that already holds the key (a duplicate when it
    is this entry's loan, a caller bug when it is another's)."""
    table = TABLES[entry.kind]
    values: dict[str, Any] = {
        "idempotency_key": entry.idempotency_key,
        "loan_id": entry.loan_id,
        "jurisdiction": entry.jurisdiction,
        "at": entry.at,
        "cycle": entry.cycle,
        **columns,
    }
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    inserted = await connection.fetchval(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        *values.values(),
    )
    if inserted is not None:
        return None
    stored_loan = await connection.fetchval(
        f"SELECT loan_id FROM {table} WHERE idempotency_key = $1", entry.idempotency_key
    )
    if stored_loan is None:  # deleted between the two statements (the purge): let Temporal retry
        raise RuntimeError(f"{table}: row for an existing idempotency key vanished; retrying")
    return str(stored_loan)


async def _snapshot(connection: Connection, snapshot: contracts.PortfolioSnapshot) -> None:
    """The read model after the entries; a snapshot the database refuses is logged and skipped, never a
    reason to lose the entries written with it (the next batch's snapshot replaces it)."""
    try:
        async with connection.transaction():
            await upsert_snapshot(connection, snapshot)
    except ApplicationError as error:
        log.error("portfolio_snapshot_rejected", loan_id=snapshot.loan_id, reason=error.message)


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
            f"ON CONFLICT (loan_id, cycle) DO UPDATE SET {updates}, updated_at = now() "
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
