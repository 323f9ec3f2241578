"""The dashboard's self-service figures (issue 11): how much the borrower page, inbound messages and delivery
receipts do without a person. One aggregate query each, over the last SELF_SERVICE_DAYS days.

- self-service share: collection cycles resolved (paid or settled) with no action journaled by a person
  (any actor but the machine ones below: a collector, supervisor or operator);
- the page's funnel, in loans: links sent → code asked (a visit that went on) → verified → acted (anything the
  journal has from actor `borrower`, a payment from the page included) — from the borrower page's tables;
- payments through the page: intents started, confirmed (and their amount in the chosen currency), declined,
  expired (payment_intents);
- opt-outs by inbound message, per channel (inbound_events);
- delivery rate per channel: of the messages that left (sent or failed), how many a receipt says delivered.

The borrower page's and the inbound webhooks' tables come with their own migrations; a figure whose tables
(or columns) are not in this database is None and the dashboard leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from activities.db import Connection
from admin.metrics import _CYCLE_OF, CURED_OUTCOMES

SELF_SERVICE_DAYS = 30
# Journal actors that are not a person deciding something: the workflow itself, a refused signal, servicing's
# systems, the borrower on the page.
MACHINE_ACTORS: tuple[str, ...] = ("system", "unverified", "servicing", "borrower")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Share:
    resolved: int
    without_collector: int

    @property
    def rate(self) -> float | None:
        return _ratio(self.without_collector, self.resolved)


@dataclass(frozen=True)
class Funnel:
    linked: int
    visited: int
    verified: int
    acted: int

    def rate(self, step: int) -> float | None:
        return _ratio(step, self.linked)


@dataclass(frozen=True)
class PagePayments:
    started: int
    confirmed: int
    declined: int
    expired: int
    confirmed_amount_minor: int  # in the chosen currency only

    @property
    def rate(self) -> float | None:
        return _ratio(self.confirmed, self.started)


@dataclass(frozen=True)
class ChannelCount:
    channel: str
    count: int


@dataclass(frozen=True)
class Delivery:
    channel: str
    left: int
    delivered: int
    failed: int

    @property
    def rate(self) -> float | None:
        return _ratio(self.delivered, self.left)


@dataclass(frozen=True)
class SelfService:
    days: int
    share: Share
    funnel: Funnel | None
    payments: PagePayments | None
    opt_outs: list[ChannelCount] | None
    delivery: list[Delivery]
    receipts: bool  # whether the outbox keeps delivery receipts (else `delivered` counts nothing)

    @property
    def empty(self) -> bool:
        return (
            self.share.resolved == 0 and not self.delivery and not (self.payments and self.payments.started)
        )


async def _has(conn: Connection, table: str, column: str | None = None) -> bool:
    if column is None:
        return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"))
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = $1 AND column_name = $2)",
            table,
            column,
        )
    )


async def self_service(pool: asyncpg.Pool, currency: str, days: int = SELF_SERVICE_DAYS) -> SelfService:
    async with pool.acquire() as conn:
        share = await _share(conn, days)
        funnel = await _funnel(conn, days) if await _has(conn, "borrower_sessions") else None
        payments = await _payments(conn, currency, days) if await _has(conn, "payment_intents") else None
        opt_outs = await _opt_outs(conn, days) if await _has(conn, "inbound_events") else None
        receipts = await _has(conn, "messages", "delivery_status")
        delivery = await _delivery(conn, days, receipts)
    return SelfService(days, share, funnel, payments, opt_outs, delivery, receipts)


async def _share(conn: Connection, days: int) -> Share:
    cycle = _CYCLE_OF.format(t="j")
    row = await conn.fetchrow(
        f"""
        SELECT count(*) AS resolved,
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM journal_collector_actions j
                   WHERE j.loan_id = p.loan_id AND {cycle} = p.cycle AND j.collector <> ALL($3::text[])
               ) AND NOT EXISTS (
                   SELECT 1 FROM journal_promises j
                   WHERE j.loan_id = p.loan_id AND {cycle} = p.cycle AND j.actor <> ALL($3::text[])
               )) AS without_collector
        FROM portfolio p
        WHERE p.outcome = ANY($1::text[]) AND p.updated_at >= now() - make_interval(days => $2)
        """,
        list(CURED_OUTCOMES),
        days,
        list(MACHINE_ACTORS),
    )
    assert row is not None
    return Share(row["resolved"], row["without_collector"])


async def _funnel(conn: Connection, days: int) -> Funnel:
    row = await conn.fetchrow(
        """
        WITH links AS (
            SELECT token_hash, loan_id FROM borrower_links
            WHERE created_at >= now() - make_interval(days => $1)
        )
        SELECT
            (SELECT count(DISTINCT loan_id) FROM links) AS linked,
            (SELECT count(DISTINCT l.loan_id) FROM links l
              WHERE EXISTS (SELECT 1 FROM borrower_codes c WHERE c.token_hash = l.token_hash)) AS visited,
            (SELECT count(DISTINCT l.loan_id) FROM links l
              WHERE EXISTS (SELECT 1 FROM borrower_sessions s WHERE s.token_hash = l.token_hash)) AS verified,
            (SELECT count(DISTINCT l.loan_id) FROM links l
              WHERE EXISTS (SELECT 1 FROM borrower_sessions s WHERE s.token_hash = l.token_hash)
                AND (EXISTS (SELECT 1 FROM journal_collector_actions j WHERE j.loan_id = l.loan_id
                                AND j.collector = 'borrower' AND j.at >= now() - make_interval(days => $1))
                  OR EXISTS (SELECT 1 FROM journal_promises j WHERE j.loan_id = l.loan_id
                                AND j.actor = 'borrower' AND j.at >= now() - make_interval(days => $1))
                  OR EXISTS (SELECT 1 FROM journal_payments j WHERE j.loan_id = l.loan_id
                                AND j.source = 'borrower' AND j.at >= now() - make_interval(days => $1))))
              AS acted
        """,
        days,
    )
    assert row is not None
    return Funnel(row["linked"], row["visited"], row["verified"], row["acted"])


async def _payments(conn: Connection, currency: str, days: int) -> PagePayments:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS started,
               count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
               count(*) FILTER (WHERE status = 'declined') AS declined,
               count(*) FILTER (WHERE status = 'expired') AS expired,
               coalesce(sum(amount_minor) FILTER (WHERE status = 'confirmed' AND currency = $2), 0) AS amount
        FROM payment_intents WHERE created_at >= now() - make_interval(days => $1)
        """,
        days,
        currency,
    )
    assert row is not None
    return PagePayments(row["started"], row["confirmed"], row["declined"], row["expired"], int(row["amount"]))


async def _opt_outs(conn: Connection, days: int) -> list[ChannelCount]:
    rows = await conn.fetch(
        """
        SELECT provider AS channel, count(*) AS n FROM inbound_events
        WHERE kind = 'reply' AND outcome = 'opted_out' AND received_at >= now() - make_interval(days => $1)
        GROUP BY provider ORDER BY provider
        """,
        days,
    )
    return [ChannelCount(row["channel"], row["n"]) for row in rows]


async def _delivery(conn: Connection, days: int, receipts: bool) -> list[Delivery]:
    delivered = "count(*) FILTER (WHERE delivery_status = 'delivered')" if receipts else "0"
    failed = "status = 'failed'" + (" OR delivery_status = 'failed'" if receipts else "")
    rows = await conn.fetch(
        f"""
        SELECT channel, count(*) AS left_, {delivered} AS delivered,
               count(*) FILTER (WHERE {failed}) AS failed
        FROM messages
        WHERE status IN ('sent', 'failed') AND created_at >= now() - make_interval(days => $1)
        GROUP BY channel ORDER BY channel
        """,
        days,
    )
    return [Delivery(row["channel"], row["left_"], row["delivered"], row["failed"]) for row in rows]
