"""The business metrics counted by the journal writer: once per fact, only closed label values, no PII.

The journal below holds every entry kind with every value the domain can journal (and values it cannot
know: a new channel, an unknown kind), written by the real `record_journal` activity on PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from activities import contracts, journal
from activities.contracts import (
    JournalBatch,
    JournalCollectorAction,
    JournalContactAttempt,
    JournalDeferral,
    JournalEntry,
    JournalHold,
    JournalPayment,
    JournalPromise,
    JournalStageTransition,
)
from activities.journal import Journal
from domain.text import E164, EMAIL
from observability.labels import LABEL_VALUES, OTHER
from tests.observability.registry import delta, one, samples

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PII = ("Zhang Wei", "+8613800138000", "wei.zhang@example.cn", "12 Garden Road")


def _entries(loan_id: str) -> list[JournalEntry]:
    """A realistic journal of one loan: every kind, every closed value, and free text full of PII."""
    data: list[contracts._JournalData] = []
    for channel in LABEL_VALUES["channel"]:
        for status in LABEL_VALUES["result"]:
            data.append(
                JournalContactAttempt(
                    channel=channel,
                    template="reminder_due",
                    content_ref=str(uuid.uuid4()),
                    provider_id="prov-1",
                    status=status,
                    address_kind="phone",
                    actor="collector-7",
                )
            )
    for rule in LABEL_VALUES["rule"]:
        data.append(
            JournalDeferral(
                step_key="d3-sms",
                channel="sms",
                rule=rule,
                reason=f"{PII[0]} asked for quiet hours",
                deferred_from=AT,
                deferred_until=AT + timedelta(hours=10),
            )
        )
    for hold in LABEL_VALUES["hold"]:
        for action in LABEL_VALUES["action"]:
            data.append(JournalHold(kind=hold, action=action, detail=f"call {PII[1]}", actor="c-7"))
    for fate in LABEL_VALUES["fate"]:
        data.append(
            JournalPromise(
                promise_id=f"P-{fate}",
                amount_minor=150_00,
                currency="CNY",
                due_date=date(2026, 3, 9),
                fate=fate,
                actor="collector-7",
            )
        )
    for currency in LABEL_VALUES["currency"]:
        for applied in (True, False):
            data.append(
                JournalPayment(
                    payment_id=f"PAY-{currency}-{applied}",
                    amount_minor=99_00,
                    currency=currency,
                    received_at=AT,
                    source="bank_transfer",
                    applied=applied,
                    reason=None if applied else f"paid by {PII[0]}",
                )
            )
    for before, after in zip((None, *LABEL_VALUES["stage"]), LABEL_VALUES["stage"], strict=False):
        data.append(JournalStageTransition(from_stage=before, to_stage=after, dpd=31, reason="due"))
    for signal in LABEL_VALUES["signal"]:
        data.append(
            JournalCollectorAction(
                collector="unverified", action="signal_refused", outcome=signal, detail="signature invalid"
            )
        )
    data.append(  # not in any closed set: counted as "other", never under its own name
        JournalContactAttempt(
            channel="carrier_pigeon", status=PII[3], address_kind="postal", actor="collector-7"
        )
    )
    data.append(
        JournalCollectorAction(collector=PII[0], action="note", outcome=None, detail=f"{PII[2]} {PII[3]}")
    )
    entries = [
        item.entry(idempotency_key=f"{loan_id}:{i}", loan_id=loan_id, jurisdiction="cn", at=AT)
        for i, item in enumerate(data)
    ]
    # Dead letters: a refused field, an unknown kind.
    entries.append(
        JournalEntry.model_construct(
            kind="payment",
            idempotency_key=f"{loan_id}:bad-payment",
            loan_id=loan_id,
            jurisdiction="cn",
            at=AT,
            data={"payment_id": "X", "amount_minor": -5, "currency": "CNY", "applied": True},
        )
    )
    entries.append(
        JournalEntry.model_construct(
            kind=PII[0],  # type: ignore[arg-type]  # a caller bug: the label must not repeat it
            idempotency_key=f"{loan_id}:bad-kind",
            loan_id=loan_id,
            jurisdiction="cn",
            at=AT,
            data={"who": PII[2]},
        )
    )
    return entries


@pytest.fixture
def loan_id() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"


def _looks_personal(value: str, loan_id: str) -> bool:
    return bool(
        E164.match(value)
        or EMAIL.match(value)
        or loan_id in value
        or any(p.lower() in value.lower() for p in PII)
        or re.search(r"\d{4,}", value)
        or " " in value
    )


async def test_a_journal_of_every_kind_produces_only_closed_label_values(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    before = samples()
    await Journal(db_pool).record(JournalBatch(entries=_entries(loan_id)))
    counted = delta(before, samples())

    assert counted, "the journal counted nothing"
    names = set()
    for (name, labels), _value in counted.items():
        names.add(name)
        for label, value in labels:
            assert value in (*LABEL_VALUES[label], OTHER), f"{name}: {label}={value!r} is not a closed value"
            assert not _looks_personal(value, loan_id), f"{name}: {label}={value!r} looks personal"
    assert {
        "overdue_journal_entries_total",
        "overdue_journal_dead_lettered_total",
        "overdue_contacts_total",
        "overdue_deferrals_total",
        "overdue_holds_total",
        "overdue_promises_total",
        "overdue_payments_total",
        "overdue_payments_applied_minor_units_total",
        "overdue_stage_entries_total",
        "overdue_signals_refused_total",
    } <= names
    # Every closed value the run produced is counted under its own name.
    for channel in LABEL_VALUES["channel"]:
        for result in LABEL_VALUES["result"]:
            assert counted[one("overdue_contacts_total", channel=channel, result=result)] == 1
    assert counted[one("overdue_contacts_total", channel=OTHER, result=OTHER)] == 1
    assert counted[one("overdue_deferrals_total", rule="hours", channel="sms")] == 1
    assert counted[one("overdue_promises_total", fate="broken")] == 1
    assert counted[one("overdue_payments_total", currency="JPY", applied="false")] == 1
    assert counted[one("overdue_payments_applied_minor_units_total", currency="USD")] == 99_00
    assert counted[one("overdue_stage_entries_total", stage="legal", jurisdiction="cn")] == 1
    assert counted[one("overdue_signals_refused_total", signal="close")] == 1
    assert counted[one("overdue_journal_dead_lettered_total", kind="payment")] == 1
    assert counted[one("overdue_journal_dead_lettered_total", kind=OTHER)] == 1


async def test_a_retried_batch_counts_each_fact_once(db_pool: asyncpg.Pool, loan_id: str) -> None:
    entries = _entries(loan_id)
    await Journal(db_pool).record(JournalBatch(entries=entries))
    before = samples()

    receipt = await Journal(db_pool).record(JournalBatch(entries=entries))  # Temporal retries the batch

    assert receipt.duplicates == len(entries) - 2 and receipt.dead_lettered == 2
    counted = delta(before, samples())
    assert {name for name, _ in counted} == {"overdue_journal_entries_total"}
    assert all(dict(labels)["outcome"] == "duplicate" for _, labels in counted)


async def test_a_batch_rolled_back_counts_nothing(
    db_pool: asyncpg.Pool, loan_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost_connection(*_: Any) -> None:
        raise ConnectionResetError("connection lost half way")

    monkeypatch.setattr(journal, "_snapshot", lost_connection)
    snapshot = contracts.PortfolioSnapshot.model_construct(loan_id=loan_id)  # type: ignore[call-arg]
    before = samples()

    with pytest.raises(ConnectionResetError):
        await Journal(db_pool).record(JournalBatch(entries=_entries(loan_id)[:5], snapshot=snapshot))

    assert delta(before, samples()) == {}
    assert (
        await db_pool.fetchval("SELECT count(*) FROM journal_contact_attempts WHERE loan_id = $1", loan_id)
        == 0
    )
