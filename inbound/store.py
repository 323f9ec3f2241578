"""PostgreSQL for the inbound app: events once per (provider, event id), receipts, unreachable points.

`claim` inserts the event row first, in the same transaction as everything the event changes, so a replayed
or concurrently retried webhook finds the row (or waits on its lock) and changes nothing a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities.db import Connection

DeliveryStatus = str  # 'delivered' | 'failed' | 'unknown'


@dataclass(frozen=True)
class OutboxRow:
    message_id: str
    loan_id: str
    channel: str
    recipient: str
    locale: str


async def claim(
    connection: Connection, provider: str, event_id: str, kind: str, classification: str
) -> str | None:
    """The event row's id to act on, or None when this (provider, event id) was handled before.

    An event whose workflow part did not finish ('received': the app died mid-way; 'pending': the workflow
    could not be told) is handed out again: what it does after its claim is idempotent on its own (the
    workflow's opt-out answers "already", the reply SMS has one outbox key per event)."""
    row = await connection.fetchrow(
        "INSERT INTO inbound_events (provider, event_id, kind, classification, outcome) "
        "VALUES ($1, $2, $3, $4, 'received') ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
        provider,
        event_id,
        kind,
        classification,
    )
    if row is not None:
        return str(row["id"])
    again = await connection.fetchval(
        "SELECT id FROM inbound_events WHERE provider = $1 AND event_id = $2 "
        "AND outcome IN ('received', 'pending')",
        provider,
        event_id,
    )
    return None if again is None else str(again)


async def settle(
    connection: Connection,
    event: str,
    outcome: str,
    *,
    loan_ids: list[str] | None = None,
    message_id: str | None = None,
    detail: str | None = None,
) -> None:
    await connection.execute(
        "UPDATE inbound_events SET outcome = $2, loan_ids = $3, message_id = $4::uuid, detail = $5 "
        "WHERE id = $1::uuid",
        event,
        outcome,
        loan_ids or [],
        message_id,
        detail[:500] if detail else None,
    )


async def loans_messaged(connection: Connection, channel: str, address: str) -> list[OutboxRow]:
    """The newest outbox row of each loan that sent `channel` messages to `address` (a reply's sender)."""
    rows = await connection.fetch(
        "SELECT DISTINCT ON (loan_id) id, loan_id, channel, recipient, locale FROM messages "
        "WHERE channel = $1 AND recipient = $2 AND recipient <> '' "
        "ORDER BY loan_id, created_at DESC",
        channel,
        address,
    )
    return [_row(r) for r in rows]


async def by_provider_id(connection: Connection, channel: str, provider_id: str) -> OutboxRow | None:
    row = await connection.fetchrow(
        "SELECT id, loan_id, channel, recipient, locale FROM messages "
        "WHERE channel = $1 AND provider_id = $2 ORDER BY created_at DESC LIMIT 1",
        channel,
        provider_id,
    )
    return None if row is None else _row(row)


async def record_receipt(
    connection: Connection, message_id: str, status: str, at: datetime, reason: str | None
) -> None:
    """The provider's word on delivery, on the outbox row. An older receipt never overwrites a newer one."""
    await connection.execute(
        "UPDATE messages SET delivery_status = $2, delivery_at = $3, delivery_reason = $4 "
        "WHERE id = $1::uuid AND (delivery_at IS NULL OR delivery_at <= $3)",
        message_id,
        status,
        at,
        reason,
    )


async def mark_unreachable(connection: Connection, row: OutboxRow, reason: str) -> bool:
    """Record the contact point as unreachable for the loan; False when it already was."""
    if not row.recipient:  # redacted: the address is gone, nothing left to close
        return False
    result = await connection.execute(
        "INSERT INTO unreachable_contact_points (loan_id, channel, address, reason, message_id) "
        "VALUES ($1, $2, $3, $4, $5::uuid) ON CONFLICT DO NOTHING",
        row.loan_id,
        row.channel,
        row.recipient,
        reason,
        row.message_id,
    )
    return bool(result.endswith(" 1"))


async def untold(connection: Connection, row: OutboxRow) -> bool:
    """Whether the loan's workflow has yet to learn that this contact point is unreachable."""
    found = await connection.fetchval(
        "SELECT 1 FROM unreachable_contact_points "
        "WHERE loan_id = $1 AND channel = $2 AND address = $3 AND told_at IS NULL",
        row.loan_id,
        row.channel,
        row.recipient,
    )
    return found is not None


async def mark_told(connection: Connection, row: OutboxRow) -> None:
    """The loan's workflow knows: the row stops waiting (it stays until retention, like the outbox row)."""
    await connection.execute(
        "UPDATE unreachable_contact_points SET told_at = now() "
        "WHERE loan_id = $1 AND channel = $2 AND address = $3 AND told_at IS NULL",
        row.loan_id,
        row.channel,
        row.recipient,
    )


async def jurisdiction(connection: Connection, loan_id: str) -> str | None:
    """The loan's jurisdiction as its journal recorded it (its contact attempts)."""
    value = await connection.fetchval(
        "SELECT jurisdiction FROM journal_contact_attempts WHERE loan_id = $1 "
        "ORDER BY recorded_at DESC LIMIT 1",
        loan_id,
    )
    return None if value is None else str(value)


def _row(row: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        message_id=str(row["id"]),
        loan_id=row["loan_id"],
        channel=row["channel"],
        recipient=row["recipient"],
        locale=row["locale"],
    )
