"""The journal never drops an entry: one that cannot be written is kept apart with the reason, the rest of
its batch is written, and a retried batch duplicates nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from activities import journal as journal_module
from activities.contracts import (
    JournalBatch,
    JournalCollectorAction,
    JournalDeferral,
    JournalEntry,
    JournalPayment,
    PortfolioSnapshot,
)
from activities.dead_letters import dead_letter_count, dead_letters
from activities.journal import TABLES, Journal, loan_timeline

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CYCLE = date(2026, 2, 1)


def _note(loan_id: str, detail: str, n: int) -> JournalEntry:
    return JournalCollectorAction(collector="c-7", action="note", detail=detail).entry(
        idempotency_key=f"{loan_id}:note:{n}", loan_id=loan_id, jurisdiction="cn", at=AT, cycle=CYCLE
    )


def _payment(loan_id: str, payment_id: str = "PAY-1") -> JournalEntry:
    return JournalPayment(
        payment_id=payment_id,
        amount_minor=500_00,
        currency="CNY",
        received_at=AT,
        source="bank_transfer",
        applied=True,
    ).entry(idempotency_key=f"{loan_id}:payment:{payment_id}", loan_id=loan_id, jurisdiction="cn", at=AT)


def _deferral(loan_id: str, until: datetime, n: int = 0) -> JournalEntry:
    # Built like an older workflow did: the retry time from the step's start, which may precede the deferral.
    return JournalDeferral(
        step_key="d3-sms",
        channel="sms",
        rule="provider_unavailable",
        reason="channel provider unavailable",
        deferred_from=AT,
        deferred_until=until,
    ).entry(idempotency_key=f"{loan_id}:deferral:{n}", loan_id=loan_id, jurisdiction="cn", at=AT)


async def _rows(pool: asyncpg.Pool, loan_id: str) -> int:
    return sum(
        [
            await pool.fetchval(f"SELECT count(*) FROM {table} WHERE loan_id = $1", loan_id)
            for table in TABLES.values()
        ]
    )


async def _letters(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM journal_dead_letters WHERE loan_id = $1 ORDER BY id", loan_id)


@pytest.fixture
def loan_id() -> str:
    return f"DL-{uuid.uuid4().hex[:10]}"


async def test_a_nul_in_a_note_keeps_that_entry_apart_and_writes_the_others(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    batch = JournalBatch(
        entries=[_note(loan_id, "called, no answer", 1), _note(loan_id, "bad\x00note", 2), _payment(loan_id)]
    )

    with capture_logs() as logs:
        receipt = await Journal(db_pool).record(batch)

    assert (receipt.written, receipt.duplicates, receipt.dead_lettered) == (2, 0, 1)
    assert await _rows(db_pool, loan_id) == 2
    assert await db_pool.fetchval("SELECT count(*) FROM journal_payments WHERE loan_id = $1", loan_id) == 1
    [letter] = await _letters(db_pool, loan_id)
    assert (letter["idempotency_key"], letter["kind"], letter["cycle"]) == (
        f"{loan_id}:note:2",
        "collector_action",
        CYCLE,
    )
    assert "data.detail: contains a NUL character" in letter["reason"]
    stored = json.loads(letter["entry"])
    assert stored["data"]["detail"] == "bad\\u0000note"  # kept, escaped: jsonb cannot hold a NUL
    assert stored["loan_id"] == loan_id and stored["kind"] == "collector_action"
    [logged] = [e for e in logs if e["event"] == "journal_entry_dead_lettered"]
    assert (logged["kind"], logged["idempotency_key"]) == ("collector_action", f"{loan_id}:note:2")
    assert "bad" not in json.dumps(logged, default=str)  # never the entry's data


async def test_a_retried_batch_duplicates_neither_rows_nor_dead_letters(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    batch = JournalBatch(entries=[_note(loan_id, "ok", 1), _note(loan_id, "bad\x00", 2)])

    first = await Journal(db_pool).record(batch)
    again = await Journal(db_pool).record(batch)

    assert (first.written, first.duplicates, first.dead_lettered) == (1, 0, 1)
    assert (again.written, again.duplicates, again.dead_lettered) == (0, 1, 1)
    assert await _rows(db_pool, loan_id) == 1
    assert len(await _letters(db_pool, loan_id)) == 1


async def test_a_deferral_ending_before_it_starts_is_kept_apart_and_the_rest_written(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    batch = JournalBatch(
        entries=[
            _deferral(loan_id, AT + timedelta(hours=1), 1),
            _deferral(loan_id, AT - timedelta(minutes=5), 2),
            _payment(loan_id),
        ]
    )

    receipt = await Journal(db_pool).record(batch)

    assert (receipt.written, receipt.dead_lettered) == (2, 1)
    [letter] = await _letters(db_pool, loan_id)
    assert letter["idempotency_key"] == f"{loan_id}:deferral:2"
    assert "data.deferred_until: before deferred_from" in letter["reason"]


async def test_a_row_the_database_refuses_is_kept_apart_by_its_savepoint(
    db_pool: asyncpg.Pool, loan_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the activity's own check, the table's CHECK refuses the row: only that row is undone.
    def unchecked(entry: JournalEntry) -> tuple[dict[str, Any] | None, str]:
        model = journal_module.JOURNAL_DATA[entry.kind].model_validate(entry.data)
        return {name: getattr(model, name) for name in type(model).model_fields}, ""

    monkeypatch.setattr(journal_module, "_check", unchecked)
    batch = JournalBatch(
        entries=[
            _payment(loan_id, "P-1"),
            _deferral(loan_id, AT - timedelta(hours=1)),
            _payment(loan_id, "P-2"),
        ]
    )

    receipt = await Journal(db_pool).record(batch)

    assert (receipt.written, receipt.dead_lettered) == (2, 1)
    assert await db_pool.fetchval("SELECT count(*) FROM journal_payments WHERE loan_id = $1", loan_id) == 2
    [letter] = await _letters(db_pool, loan_id)
    assert "rejected by the database: constraint journal_deferrals_check" in letter["reason"]
    assert "SQLSTATE 23514" in letter["reason"]


async def test_text_that_cannot_be_encoded_is_kept_apart(db_pool: asyncpg.Pool, loan_id: str) -> None:
    # A lone surrogate passes the model but no UTF-8 encoder: asyncpg refuses the argument.
    receipt = await Journal(db_pool).record(
        JournalBatch(entries=[_note(loan_id, "half \ud800 a pair", 1), _note(loan_id, "fine", 2)])
    )

    assert (receipt.written, receipt.dead_lettered) == (1, 1)
    [letter] = await _letters(db_pool, loan_id)
    assert json.loads(letter["entry"])["data"]["detail"] == "half \\ud800 a pair"


async def test_a_lost_connection_is_retryable_and_writes_nothing(
    db_pool: asyncpg.Pool, loan_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = journal_module._insert
    calls = 0

    async def flaky(*args: Any) -> str | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return await original(*args)

    monkeypatch.setattr(journal_module, "_insert", flaky)
    batch = JournalBatch(entries=[_note(loan_id, "one", 1), _note(loan_id, "two", 2)])

    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await Journal(db_pool).record(batch)

    assert await _rows(db_pool, loan_id) == 0 and await _letters(db_pool, loan_id) == []
    retried = await Journal(db_pool).record(batch)  # what Temporal does next
    assert (retried.written, retried.dead_lettered) == (2, 0)


async def test_cycle_is_stored_with_each_row_and_read_back(db_pool: asyncpg.Pool, loan_id: str) -> None:
    await Journal(db_pool).record(JournalBatch(entries=[_note(loan_id, "first cycle", 1), _payment(loan_id)]))

    timeline = await loan_timeline(db_pool, loan_id)

    assert {(row.kind, row.cycle) for row in timeline} == {("collector_action", CYCLE), ("payment", None)}
    assert all("cycle" not in row.data for row in timeline)


async def test_snapshot_cycle_is_written_and_a_refused_snapshot_keeps_the_entries(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    now = datetime.now(UTC)
    snapshot = PortfolioSnapshot(
        loan_id=loan_id,
        borrower_name="王芳",
        jurisdiction="cn",
        timezone="Asia/Shanghai",
        locale="zh-CN",
        currency="CNY",
        segment="standard",
        strategy="default",
        stage="reminder",
        overdue_since=CYCLE,
        amount_overdue_minor=1,
        principal_outstanding_minor=1,
        paid_total_minor=0,
        clock_real_anchor=now,
        clock_collections_anchor=now,
        as_of=now,
        cycle=CYCLE,
    )
    await Journal(db_pool).record(JournalBatch(entries=[], snapshot=snapshot))
    assert await db_pool.fetchval("SELECT cycle FROM portfolio_now WHERE loan_id = $1", loan_id) == CYCLE

    refused = snapshot.model_copy(update={"currency": "C\x00Y", "as_of": now + timedelta(seconds=1)})
    receipt = await Journal(db_pool).record(JournalBatch(entries=[_payment(loan_id)], snapshot=refused))

    assert receipt.written == 1
    assert await db_pool.fetchval("SELECT currency FROM portfolio WHERE loan_id = $1", loan_id) == "CNY"


async def test_supervisors_read_the_dead_letters_newest_first(own_db_pool: asyncpg.Pool) -> None:
    loan = "DL-read"
    await Journal(own_db_pool).record(JournalBatch(entries=[_note(loan, "a\x00", 1)]))
    await Journal(own_db_pool).record(JournalBatch(entries=[_note(loan, "b\x00", 2), _note(loan, "ok", 3)]))

    rows = await dead_letters(own_db_pool, limit=10)

    assert await dead_letter_count(own_db_pool) == 2
    assert [row.idempotency_key for row in rows] == [f"{loan}:note:2", f"{loan}:note:1"]
    assert rows[0].entry["data"]["detail"] == "b\\u0000"
    assert (rows[0].kind, rows[0].cycle, rows[0].at, rows[0].jurisdiction) == (
        "collector_action",
        CYCLE,
        AT,
        "cn",
    )
    assert [row.idempotency_key for row in await dead_letters(own_db_pool, limit=1)] == [f"{loan}:note:2"]
