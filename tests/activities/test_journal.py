from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import (
    JournalBatch,
    JournalCollectorAction,
    JournalContactAttempt,
    JournalDeferral,
    JournalEntry,
    JournalHold,
    JournalKind,
    JournalPayment,
    JournalPromise,
    JournalStageTransition,
)
from activities.journal import TABLES, Journal, loan_timeline

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

SAMPLES: dict[JournalKind, contracts._JournalData] = {
    "contact_attempt": JournalContactAttempt(
        channel="sms",
        template="reminder_due",
        content_ref="7d7c1a0e-msg",
        provider_id="prov-1",
        status="sent",
        address_kind="phone",
        actor="workflow",
    ),
    "deferral": JournalDeferral(
        step_key="d3-sms",
        channel="sms",
        rule="contact_hours",
        reason="22:00-08:00 borrower local time",
        deferred_from=AT,
        deferred_until=AT + timedelta(hours=10),
    ),
    "hold": JournalHold(
        kind="dispute", action="raised", until=None, detail="says already paid", actor="collector-7"
    ),
    "promise": JournalPromise(
        promise_id="P-1",
        amount_minor=150_00,
        currency="CNY",
        due_date=date(2026, 3, 9),
        fate="made",
        actor="collector-7",
    ),
    "payment": JournalPayment(
        payment_id="PAY-1",
        amount_minor=99_00,
        currency="CNY",
        received_at=AT - timedelta(hours=1),
        source="bank_transfer",
        applied=True,
        reason=None,
    ),
    "stage_transition": JournalStageTransition(
        from_stage="soft", to_stage="hard", dpd=31, reason="strategy step due"
    ),
    "collector_action": JournalCollectorAction(
        collector="collector-7", action="call_outcome", outcome="promise_to_pay", detail="will pay Monday"
    ),
}


def _entry(
    loan_id: str, kind: JournalKind = "collector_action", *, key: str | None = None, at: datetime = AT
) -> JournalEntry:
    return SAMPLES[kind].entry(
        idempotency_key=key or f"{loan_id}:{kind}:{uuid.uuid4().hex[:8]}",
        loan_id=loan_id,
        jurisdiction="cn",
        at=at,
    )


def _raw(loan_id: str, kind: str, data: dict[str, Any], at: datetime = AT) -> JournalEntry:
    return JournalEntry.model_construct(
        kind=kind,  # type: ignore[arg-type]  # deliberately not a JournalKind
        idempotency_key=f"{loan_id}:{uuid.uuid4().hex}",
        loan_id=loan_id,
        jurisdiction="cn",
        at=at,
        data=data,
    )


async def _count(pool: asyncpg.Pool, loan_id: str) -> int:
    return sum(
        [
            await pool.fetchval(f"SELECT count(*) FROM {t} WHERE loan_id = $1", loan_id)
            for t in TABLES.values()
        ]
    )


@pytest.fixture
def journal(db_pool: asyncpg.Pool) -> Journal:
    return Journal(db_pool)


@pytest.mark.parametrize("kind", list(TABLES))
async def test_each_kind_writes_one_row_with_its_columns(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str, kind: JournalKind
) -> None:
    receipt = await journal.record(JournalBatch(entries=[_entry(loan_id, kind)]))

    assert (receipt.written, receipt.duplicates) == (1, 0)
    [row] = await db_pool.fetch(f"SELECT * FROM {TABLES[kind]} WHERE loan_id = $1", loan_id)
    expected = SAMPLES[kind].model_dump()
    assert {name: row[name] for name in expected} == expected
    assert (row["jurisdiction"], row["at"]) == ("cn", AT)
    assert row["recorded_at"] is not None


async def test_a_batch_of_several_kinds_is_written_together(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await journal.record(JournalBatch(entries=[_entry(loan_id, kind) for kind in TABLES]))

    assert (receipt.written, receipt.duplicates) == (len(TABLES), 0)
    assert await _count(db_pool, loan_id) == len(TABLES)


async def test_same_key_twice_stores_one_row_and_counts_a_duplicate(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    entry = _entry(loan_id, "payment", key=f"{loan_id}:payment:PAY-1")

    first = await journal.record(JournalBatch(entries=[entry]))
    second = await journal.record(JournalBatch(entries=[entry]))
    within = await journal.record(
        JournalBatch(entries=[_entry(loan_id, key=f"{loan_id}:x"), _entry(loan_id, key=f"{loan_id}:x")])
    )

    assert (first.written, first.duplicates) == (1, 0)
    assert (second.written, second.duplicates) == (0, 1)
    assert (within.written, within.duplicates) == (1, 1)
    assert await _count(db_pool, loan_id) == 2


async def _dead_letters(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM journal_dead_letters WHERE loan_id LIKE $1 || '%' ORDER BY id", loan_id
    )


async def test_a_key_of_another_loan_is_dead_lettered_not_written(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    key = f"{loan_id}:shared"
    await journal.record(JournalBatch(entries=[_entry(loan_id, key=key)]))

    receipt = await journal.record(JournalBatch(entries=[_entry(f"{loan_id}-other", key=key)]))

    assert (receipt.written, receipt.duplicates, receipt.dead_lettered) == (0, 0, 1)
    [letter] = await _dead_letters(db_pool, f"{loan_id}-other")
    assert letter["idempotency_key"] == key
    assert "idempotency_key: already used by another loan" in letter["reason"]
    assert await _count(db_pool, f"{loan_id}-other") == 0


async def test_one_bad_entry_is_kept_apart_and_the_rest_of_the_batch_is_written(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    good = _entry(loan_id, "promise")
    bad = _entry(loan_id, "payment")
    bad = bad.model_copy(update={"data": {**bad.data, "amount_minor": "lots"}})

    receipt = await journal.record(JournalBatch(entries=[good, _entry(loan_id, "hold"), bad]))

    assert (receipt.written, receipt.duplicates, receipt.dead_lettered) == (2, 0, 1)
    assert await _count(db_pool, loan_id) == 2
    [letter] = await _dead_letters(db_pool, loan_id)
    assert (letter["idempotency_key"], letter["kind"]) == (bad.idempotency_key, "payment")
    assert "data.amount_minor" in letter["reason"] and "lots" not in letter["reason"]


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("hold", {"hold": "dispute"}, "data.hold"),  # unknown column
        ("contact_attempt", {"channel": None}, "data.channel"),
        ("contact_attempt", {"address_kind": "pager"}, "data.address_kind"),
        ("contact_attempt", {"content_ref": "+8613800138000"}, "data.content_ref"),  # a phone
        ("collector_action", {"outcome": "li.lei@example.com"}, "data.outcome"),  # an e-mail
        ("payment", {"currency": "RMB"}, "data.currency"),
        ("payment", {"applied": 1}, "data.applied"),
        ("payment", {"received_at": "2026-03-02T09:00:00"}, "data.received_at"),  # no offset
        ("promise", {"due_date": "next week"}, "data.due_date"),
        ("stage_transition", {"dpd": -1}, "data.dpd"),
    ],
)
async def test_bad_fields_are_dead_lettered_with_the_field_named(
    journal: Journal,
    db_pool: asyncpg.Pool,
    loan_id: str,
    kind: JournalKind,
    change: dict[str, Any],
    field: str,
) -> None:
    entry = _entry(loan_id, kind)
    entry = entry.model_copy(update={"data": {**entry.data, **change}})

    receipt = await journal.record(JournalBatch(entries=[entry]))

    assert receipt.dead_lettered == 1
    [letter] = await _dead_letters(db_pool, loan_id)
    assert field in letter["reason"]
    # The reason names the field, never the value (it may be a phone number or an e-mail address).
    assert "+8613800138000" not in letter["reason"] and "li.lei@" not in letter["reason"]


async def test_missing_field_unknown_kind_and_naive_time_are_dead_lettered(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    missing = _raw(loan_id, "stage_transition", {"to_stage": "hard", "dpd": 31, "reason": "x"})
    unknown = _raw(loan_id, "letter", {})
    naive = _entry(loan_id).model_copy(update={"at": datetime(2026, 3, 2, 9, 30)})

    receipt = await journal.record(JournalBatch.model_construct(entries=[missing, unknown, naive]))

    assert (receipt.written, receipt.dead_lettered) == (0, 3)
    reasons = {row["idempotency_key"]: row["reason"] for row in await _dead_letters(db_pool, loan_id)}
    assert "data.from_stage: Field required" in reasons[missing.idempotency_key]
    assert "kind: unknown journal kind 'letter'" in reasons[unknown.idempotency_key]
    assert "at: must carry a timezone offset" in reasons[naive.idempotency_key]


def test_detail_may_be_none_and_holds_a_collectors_words() -> None:
    action = JournalCollectorAction(collector="c-1", action="visit", outcome=None, detail=None)
    note = JournalCollectorAction(collector="c-1", action="call", detail="called +8613800138000, no answer")

    assert action.detail == ""
    assert "+8613800138000" in note.detail


def test_entries_survive_the_temporal_data_converter() -> None:
    batch = JournalBatch(entries=[_entry("LN-1", kind) for kind in TABLES])
    converter = pydantic_data_converter.payload_converter

    [decoded] = converter.from_payloads(converter.to_payloads([batch]), [JournalBatch])

    assert decoded == batch
    payment = next(e for e in decoded.entries if e.kind == "payment")
    assert payment.data["applied"] is True and payment.data["amount_minor"] == 99_00


def test_record_journal_is_registered_with_the_worker(db_pool: asyncpg.Pool) -> None:
    names = [activity._Definition.must_from_callable(fn).name for fn in CollectionActivities(db_pool).all()]

    assert names.count(contracts.RECORD_JOURNAL) == 1


@pytest.mark.parametrize("table", list(TABLES.values()))
async def test_journal_rows_cannot_be_updated_or_deleted(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str, table: str
) -> None:
    kind = next(k for k, t in TABLES.items() if t == table)
    await journal.record(JournalBatch(entries=[_entry(loan_id, kind)]))

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: UPDATE"):
        await db_pool.execute(f"UPDATE {table} SET loan_id = loan_id WHERE loan_id = $1", loan_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: DELETE"):
        await db_pool.execute(f"DELETE FROM {table} WHERE loan_id = $1", loan_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="TRUNCATE"):
        await db_pool.execute(f"TRUNCATE {table}")
    async with db_pool.acquire() as connection:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: UPDATE"):
            async with connection.transaction():
                await connection.execute("SELECT set_config('overdue.purge', 'on', true)")
                await connection.execute(f"UPDATE {table} SET loan_id = loan_id WHERE loan_id = $1", loan_id)
    assert await _count(db_pool, loan_id) == 1


async def test_the_purge_setting_allows_delete_in_its_transaction_only(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await journal.record(JournalBatch(entries=[_entry(loan_id)]))

    async with db_pool.acquire() as connection:
        async with connection.transaction():
            await connection.execute("SELECT set_config('overdue.purge', 'on', true)")
            status = await connection.execute(
                "DELETE FROM journal_collector_actions WHERE loan_id = $1", loan_id
            )
        assert status == "DELETE 1"
        await journal.record(JournalBatch(entries=[_entry(loan_id)]))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM journal_collector_actions WHERE loan_id = $1", loan_id)


async def test_timeline_merges_every_kind_in_time_order(
    journal: Journal, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    kinds = list(TABLES)
    # Written newest first, in two batches: the timeline orders by when things happened.
    entries = [
        _entry(loan_id, kind, at=AT + timedelta(minutes=len(kinds) - i)) for i, kind in enumerate(kinds)
    ]
    await journal.record(JournalBatch(entries=entries[:3]))
    await journal.record(JournalBatch(entries=entries[3:]))
    await journal.record(JournalBatch(entries=[_entry(f"{loan_id}-other")]))

    timeline = await loan_timeline(db_pool, loan_id)

    assert [row.kind for row in timeline] == list(reversed(kinds))
    assert [row.at for row in timeline] == sorted(row.at for row in timeline)
    assert {row.loan_id for row in timeline} == {loan_id}
    payment = next(row for row in timeline if row.kind == "payment")
    assert (payment.data["amount_minor"], payment.data["applied"], payment.jurisdiction) == (
        99_00,
        True,
        "cn",
    )
    assert "id" not in payment.data and "recorded_at" not in payment.data
    assert await loan_timeline(db_pool, f"{loan_id}-nobody") == []
