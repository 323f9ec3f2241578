"""A loan's rows in every PostgreSQL table that can hold a borrower's data, and a scan for that data.

`seed_loan` writes what the product writes for a loan (portfolio, outbox, tasks, letter and validation
notice, dispatch, referral, placement, journal rows with collector free text, a dead letter), all dated `age`
ago; `personal_data_left` reads every text, bytea, json and array column of every table and says where a
borrower's name, phone or e-mail address still appears.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from activities.db import Connection
from activities.journal import TABLES
from tests.activities.test_journal import SAMPLES


@dataclass(frozen=True)
class Borrower:
    name: str
    phone: str
    email: str

    @property
    def values(self) -> tuple[str, str, str]:
        return (self.name, self.phone, self.email)


def borrower(tag: str) -> Borrower:
    """A borrower whose data is unique to one test: a scan for it finds nothing of any other test."""
    digits = f"{uuid.uuid4().int % 10**8:08d}"
    return Borrower(f"王秀英{tag}", f"+86138{digits}", f"xiuying.{tag.lower()}.{digits}@example.com")


async def _insert(connection: Connection, table: str, values: dict[str, Any]) -> asyncpg.Record:
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await connection.fetchrow(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders}) RETURNING *", *values.values()
    )
    assert row is not None
    return row


async def seed_loan(
    connection: Connection,
    loan_id: str,
    who: Borrower,
    *,
    jurisdiction: str = "uk",
    age: timedelta = timedelta(0),
    closed: bool = True,
) -> None:
    """Every kind of row the product writes for a loan, written `age` ago; `closed`: the latest portfolio
    cycle has an outcome."""
    now = await connection.fetchval("SELECT now()")
    at = now - age
    key = f"{loan_id}:{uuid.uuid4().hex[:6]}"
    await _insert(
        connection,
        "portfolio",
        {
            "loan_id": loan_id,
            "borrower_name": who.name,
            "jurisdiction": jurisdiction,
            "timezone": "Europe/London",
            "locale": "en",
            "currency": "GBP",
            "segment": "standard",
            "strategy": "default",
            "stage": "closed" if closed else "soft",
            "outcome": "paid" if closed else None,
            "overdue_since": (at - timedelta(days=40)).date(),
            "amount_overdue_minor": 120_00,
            "principal_outstanding_minor": 900_00,
            "paid_total_minor": 0,
            "clock_real_anchor": at,
            "clock_collections_anchor": at,
            "as_of": at,
            "updated_at": at,
        },
    )
    for channel, recipient in (("sms", who.phone), ("email", who.email)):
        await _insert(
            connection,
            "messages",
            {
                "idempotency_key": f"{key}:{channel}",
                "loan_id": loan_id,
                "step_key": "d3",
                "channel": channel,
                "template": "reminder_due",
                "locale": "en",
                "recipient": recipient,
                "subject": f"Dear {who.name}" if channel == "email" else None,
                "body": f"Dear {who.name}, your payment is due. Reply to {who.email}.",
                "status": "sent",
                "sent_at": at,
                "created_at": at,
            },
        )
    await _insert(
        connection,
        "collector_tasks",
        {
            "idempotency_key": f"{key}:call",
            "loan_id": loan_id,
            "step_key": "d10",
            "kind": "call",
            "due_at": at,
            "priority": 500,
            "note": f"call {who.name} on {who.phone}",
            "status": "done" if closed else "open",
            "created_at": at,
        },
    )
    pdf = f"%PDF-1.4 lawyer's letter to {who.name}, 1 High Street; {who.phone}".encode()
    documents = []
    for kind in ("lawyer_letter", "validation_notice"):
        documents.append(
            await _insert(
                connection,
                "legal_documents",
                {
                    "idempotency_key": f"{key}:{kind}",
                    "loan_id": loan_id,
                    "kind": kind,
                    "locale": "en",
                    "sha256": "0" * 64,
                    "size_bytes": len(pdf),
                    "content": pdf,
                    "created_at": at,
                },
            )
        )
    serial = f"{uuid.uuid4().int % 10**9:09d}"
    await _insert(
        connection,
        "legal_dispatches",
        {
            "idempotency_key": f"{key}:dispatch",
            "loan_id": loan_id,
            "document_id": documents[0]["id"],
            "locale": "en",
            "carrier": "demo-post",
            "tracking_reference": f"RR{serial}GB",
            "created_at": at,
        },
    )
    await _insert(
        connection,
        "litigation_referrals",
        {
            "idempotency_key": f"{key}:referral",
            "loan_id": loan_id,
            "currency": "GBP",
            "amount_overdue_minor": 120_00,
            "principal_outstanding_minor": 900_00,
            "dpd": 95,
            "document_ids": [str(documents[0]["id"])],
            "summary": f"no payment since {at:%Y-%m-%d}; borrower {who.name} reached on {who.phone}",
            "created_at": at,
        },
    )
    await _insert(
        connection,
        "agency_placements",
        {
            "idempotency_key": f"{key}:placement",
            "loan_id": loan_id,
            "agency_id": "east-recovery",
            "segment": "standard",
            "dpd": 60,
            "amount_overdue_minor": 120_00,
            "principal_outstanding_minor": 900_00,
            "currency": "GBP",
            "placed_at": at - timedelta(days=30),
            "expires_at": at,
            "recalled_at": at,
            "recall_reason": "closed",
            "status": "accepted",
            "created_at": at,
        },
    )
    details = {"hold": f"{who.name} says already paid", "collector_action": f"spoke on {who.phone}"}
    for kind in ("contact_attempt", "hold", "promise", "collector_action", "stage_transition"):
        data = SAMPLES[kind].model_dump()  # type: ignore[index]
        if kind in details:
            data["detail"] = details[kind]
        await _insert(
            connection,
            TABLES[kind],  # type: ignore[index]
            {
                "idempotency_key": f"{key}:{kind}",
                "loan_id": loan_id,
                "jurisdiction": jurisdiction,
                "at": at,
                "recorded_at": at,
                **data,
            },
        )
    await _insert(
        connection,
        "journal_dead_letters",
        {
            "idempotency_key": f"{key}:dead",
            "loan_id": loan_id,
            "kind": "collector_action",
            "reason": "detail: NUL character",
            "entry": json.dumps({"detail": f"{who.email}\\u0000"}),
            "recorded_at": at,
        },
    )


async def personal_data_left(connection: Connection, values: tuple[str, ...]) -> list[str]:
    """`table.column` of every column of every table in which one of `values` appears."""
    columns = await connection.fetch(
        """
        SELECT c.table_name, c.column_name, c.data_type
        FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
          AND c.data_type IN ('text', 'character varying', 'character', 'bytea', 'jsonb', 'json', 'ARRAY')
        ORDER BY 1, 2
        """
    )
    assert len(columns) > 50, "the scan must see the whole schema"
    found: list[str] = []
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        if column["data_type"] == "bytea":  # bytes: a PDF carries the name as UTF-8 text
            where = f"position(convert_to($1, 'UTF8') IN \"{name}\") > 0"
        else:
            where = f'strpos("{name}"::text, $1) > 0'
        for value in values:
            if await connection.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {where})', value):
                found.append(f"{table}.{name}")
                break
    return found


def years(n: float) -> timedelta:
    return timedelta(days=round(365.25 * n))
