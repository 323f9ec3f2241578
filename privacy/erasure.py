"""Erasure of one loan's personal data, and the retention periods of personal data (docs/personal-data.md).

An erasure blanks, in every PostgreSQL table, what can identify the borrower of one loan (names, phone
numbers, e-mail addresses, message bodies, letter PDFs, free text collectors wrote) and destroys the loan's
data key (privacy/data_keys.py), so that its Temporal histories, wherever they are kept, can no longer be
decrypted. It keeps what is not personal and is still owed to a regulator or a court: the journal's rows
(without their free text), amounts, dates, statuses, a letter's SHA-256. `python -m privacy.erase` is its
command; `python -m stack.purge` deletes whole loan records once their retention is over.

It refuses a loan still within its legal retention (`ContactProfile.retention_years` of its jurisdiction,
counted from the loan's last activity) unless forced on a lawful request, and a loan still in collection
unless forced (its running workflow keeps the borrower's data in its state, and its data key is kept, or the
workflow could not go on). Every run that changed something leaves one non-personal row in `erasures`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from activities.db import Connection
from activities.journal import TABLES
from domain.contact_profiles import load_profiles

JOURNAL_TABLES: tuple[str, ...] = tuple(TABLES.values())
DataKeyOutcome = Literal["destroyed", "absent", "kept", "unavailable"]


class RetentionSettings(BaseSettings):
    """How long personal data outside the collections record is kept (the record itself: the contact
    profiles' `retention_years`, one per jurisdiction)."""

    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    outbox_retention_days: int = Field(
        default=30, ge=1, le=3650, description="recipient, subject and body of a delivered or failed message"
    )
    session_retention_days: int = Field(
        default=30, ge=1, le=3650, description="admin sessions (client address, user agent) after they end"
    )
    read_audit_retention_days: int = Field(default=400, ge=30, le=3650, description="who read which loan")
    codec_audit_retention_days: int = Field(default=400, ge=30, le=3650, description="who decoded payloads")


def retention_years(profiles_file: Path | str) -> dict[str, int]:
    """Years to keep a loan's collections record, by jurisdiction: the contact profiles' `retention_years`
    (the one source of truth; a profile is named by its jurisdiction code)."""
    return {name: profile.retention_years for name, profile in load_profiles(profiles_file).items()}


# Tables holding a loan's rows outside the journal, children before the rows they reference (the purge
# deletes in this order).
LOAN_TABLES: tuple[str, ...] = (
    "legal_dispatches",
    "legal_documents",
    "litigation_referrals",
    "agency_placements",
    "collector_tasks",
    "messages",
    "journal_dead_letters",
    "portfolio",
)


@dataclass(frozen=True)
class Redaction:
    """What an erasure does to one table's rows of the loan ($1): blank these columns (or delete the rows)
    where `pending` says something personal is left, so that a second run finds nothing to do."""

    table: str
    pending: str
    assignments: str | None  # None: delete the rows

    def statement(self) -> str:
        if self.assignments is None:
            return f"DELETE FROM {self.table} WHERE loan_id = $1 AND {self.pending}"
        return f"UPDATE {self.table} SET {self.assignments} WHERE loan_id = $1 AND {self.pending}"


REDACTIONS: tuple[Redaction, ...] = (
    # A queued message must not go out with a blank body: it is failed, with a reason that says why.
    Redaction(
        "messages",
        "(recipient <> '' OR body <> '' OR subject IS NOT NULL)",
        "recipient = '', subject = NULL, body = '', redacted_at = coalesce(redacted_at, now()), "
        "failure_reason = CASE WHEN status = 'queued' THEN 'erased' ELSE failure_reason END, "
        "status = CASE WHEN status = 'queued' THEN 'failed' ELSE status END",
    ),
    Redaction("portfolio", "borrower_name <> ''", "borrower_name = ''"),
    # Letters and validation notices carry the name and the postal address.
    Redaction("legal_documents", "content IS NOT NULL", "content = NULL, erased_at = now()"),
    Redaction("litigation_referrals", "summary <> ''", "summary = ''"),
    # Free text a collector may have typed a name or a number into.
    Redaction("collector_tasks", "note <> ''", "note = ''"),
    Redaction("journal_holds", "detail <> ''", "detail = ''"),
    Redaction("journal_collector_actions", "detail <> ''", "detail = ''"),
    # Entries no table could store, kept as received for a supervisor to fix: anything may be in them.
    Redaction("journal_dead_letters", "true", None),
)


@dataclass(frozen=True)
class LoanState:
    loan_id: str
    known: bool
    open: bool
    jurisdiction: str | None
    last_activity: datetime | None
    retention_years: int | None
    retention_ends: datetime | None  # None: cannot be told (no jurisdiction or no activity)
    now: datetime

    @property
    def within_retention(self) -> bool:
        return self.retention_ends is None or self.retention_ends > self.now


async def loan_state(connection: Connection, loan_id: str, years: Mapping[str, int]) -> LoanState:
    """Whether the loan is known, still in collection, and until when its record must be kept."""
    journal_jurisdiction = " UNION ALL ".join(
        f"(SELECT jurisdiction FROM {table} WHERE loan_id = $1 LIMIT 1)" for table in JOURNAL_TABLES
    )
    known = " OR ".join(f"EXISTS (SELECT 1 FROM {table} WHERE loan_id = $1)" for table in LOAN_TABLES)
    row = await connection.fetchrow(
        f"""
        SELECT now() AS now,
               ({known} OR EXISTS (SELECT 1 FROM journal_loan_activity WHERE loan_id = $1)) AS known,
               EXISTS (SELECT 1 FROM portfolio WHERE loan_id = $1 AND latest AND outcome IS NULL) AS open,
               coalesce(
                   (SELECT jurisdiction FROM portfolio WHERE loan_id = $1 ORDER BY latest DESC, cycle DESC
                    LIMIT 1),
                   (SELECT jurisdiction FROM ({journal_jurisdiction}) j LIMIT 1)
               ) AS jurisdiction,
               greatest(
                   (SELECT max(recorded_at) FROM journal_loan_activity WHERE loan_id = $1),
                   (SELECT max(updated_at) FROM portfolio WHERE loan_id = $1),
                   (SELECT max(created_at) FROM messages WHERE loan_id = $1)
               ) AS last_activity
        """,
        loan_id,
    )
    assert row is not None
    jurisdiction = row["jurisdiction"]
    kept_years = years.get(jurisdiction) if jurisdiction else None
    ends = None
    if kept_years is not None and row["last_activity"] is not None:
        ends = await connection.fetchval(
            "SELECT $1::timestamptz + make_interval(years => $2)", row["last_activity"], kept_years
        )
    return LoanState(
        loan_id, row["known"], row["open"], jurisdiction, row["last_activity"], kept_years, ends, row["now"]
    )


async def destroy_data_key(connection: Connection, loan_id: str) -> DataKeyOutcome:
    """Destroy the loan's data key in the caller's transaction; 'unavailable' where there is no key store."""
    if await connection.fetchval("SELECT to_regclass('loan_data_keys') IS NULL"):
        return "unavailable"
    from privacy.data_keys import destroy_loan_key

    # destroy_loan_key needs only fetchrow, which a connection has: the key goes in the same transaction as
    # the rows, so an erasure or a purge never half-happens.
    destroyed = await destroy_loan_key(cast(asyncpg.Pool, connection), loan_id)
    return "destroyed" if destroyed else "absent"


class ErasureRefused(Exception):
    """The loan cannot be erased as asked; the message says why and what would allow it."""


@dataclass(frozen=True)
class ErasureReport:
    loan_id: str
    state: LoanState
    counts: dict[str, int]  # table -> rows changed (or that would be)
    data_key: DataKeyOutcome
    applied: bool  # False: a dry run
    already_erased: datetime | None = None  # a previous erasure, when this run had nothing left to do
    cannot: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def erase_loan(
    connection: Connection,
    loan_id: str,
    *,
    years: Mapping[str, int],
    operator: str,
    reason: str,
    force_before_retention: bool = False,
    force_open: bool = False,
    apply: bool = True,
) -> ErasureReport:
    """Erase the loan's personal data in one transaction (see the module docstring); `apply=False` only
    counts. Raises ErasureRefused when the loan is unknown, open or within retention and not forced."""
    async with connection.transaction():
        # One erasure of a loan at a time: the second waits, then finds nothing left to do.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('overdue.erase:' || $1))", loan_id)
        state = await loan_state(connection, loan_id, years)
        previous = await connection.fetchval(
            "SELECT max(erased_at) FROM erasures WHERE loan_id = $1", loan_id
        )
        pending = {
            redaction.table: await connection.fetchval(
                f"SELECT count(*) FROM {redaction.table} WHERE loan_id = $1 AND {redaction.pending}", loan_id
            )
            for redaction in REDACTIONS
        }
        key_gone = await _key_gone(connection, loan_id)
        if previous is not None and not any(pending.values()) and (key_gone or state.open):
            data_key: DataKeyOutcome = "kept" if state.open else "absent"
            return ErasureReport(loan_id, state, pending, data_key, apply, already_erased=previous)
        if not state.known and previous is None:
            raise ErasureRefused(f"loan {loan_id}: no data of this loan in the database (check the loan id)")
        if state.open and not force_open:
            raise ErasureRefused(
                f"loan {loan_id} is still in collection: stop its collection first, or, on a lawful request, "
                "--force-open --reason '...' (its running workflow keeps the borrower's data)"
            )
        if state.known and state.within_retention and not force_before_retention:
            until = (
                f"until {state.retention_ends:%Y-%m-%d}" if state.retention_ends else "for an unknown period"
            )
            raise ErasureRefused(
                f"loan {loan_id} is within its legal retention ({state.jurisdiction or 'no jurisdiction'}, "
                f"{until}): erase it then, or on a lawful request: --force-before-retention --reason '...'"
            )
        counts = dict(pending)
        if apply:
            await connection.execute("SELECT set_config('overdue.erase', 'on', true)")
            for redaction in REDACTIONS:
                result = await connection.execute(redaction.statement(), loan_id)
                counts[redaction.table] = int(result.split()[-1])
            await connection.execute("SELECT set_config('overdue.erase', '', true)")
        cannot: list[str] = []
        if state.open:
            # The worker must still decrypt the history to replay it: the key goes once collection ends.
            data_key = "kept"
            cannot.append(
                "the loan's workflow is still running: its state holds the borrower's name and contacts, and "
                "it will write new messages and portfolio rows; its data key was kept so it can go on. Stop "
                "the collection, then run this erasure again to destroy the key."
            )
        elif apply:
            data_key = await destroy_data_key(connection, loan_id)
        elif await connection.fetchval("SELECT to_regclass('loan_data_keys') IS NULL"):
            data_key = "unavailable"
        else:
            data_key = "absent" if key_gone else "destroyed"
        if data_key == "unavailable":
            cannot.append("no data key store in this database: Temporal histories were not made unreadable")
        if apply:
            await connection.execute(
                "INSERT INTO erasures (loan_id, operator, reason, before_retention, loan_open, data_key, "
                "counts) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
                loan_id,
                operator,
                reason,
                state.known and state.within_retention,
                state.open,
                data_key,
                json.dumps(counts),
            )
    return ErasureReport(loan_id, state, counts, data_key, apply, cannot=cannot)


async def _key_gone(connection: Connection, loan_id: str) -> bool:
    if await connection.fetchval("SELECT to_regclass('loan_data_keys') IS NULL"):
        return True
    return bool(
        await connection.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM loan_data_keys WHERE loan_id = $1 AND destroyed_at IS NULL)",
            loan_id,
        )
    )


_KEY_TEXT: dict[str, str] = {
    "destroyed": "destroyed: the loan's Temporal histories can no longer be decrypted",
    "absent": "none live (destroyed before, or never made): nothing to destroy",
    "kept": "kept (the loan is still in collection)",
    "unavailable": "no key store: not destroyed",
}


def render_erasure(report: ErasureReport) -> str:
    state = report.state
    if report.already_erased is not None:
        return (
            f"loan {report.loan_id}: already erased on {report.already_erased:%Y-%m-%d %H:%M} UTC; "
            "nothing left to do"
        )
    verb = "changed" if report.applied else "would change"
    lines = [f"loan {report.loan_id}: {'erased' if report.applied else 'dry run, nothing changed'}"]
    if state.retention_ends is not None:
        lines.append(
            f"  retention: {state.jurisdiction}, {state.retention_years} years after the last activity, "
            f"until {state.retention_ends:%Y-%m-%d}"
            + (" (forced before it)" if state.within_retention else "")
        )
    width = max(len(table) for table in report.counts)
    lines.append(f"  {'table':<{width}}  rows {verb}")
    for table, count in report.counts.items():
        lines.append(f"  {table:<{width}}  {count}")
    key_text = _KEY_TEXT[report.data_key]
    if not report.applied and report.data_key == "destroyed":
        key_text = "would be destroyed: the loan's Temporal histories could no longer be decrypted"
    lines.append(f"  {'data key':<{width}}  {key_text}")
    lines.extend(f"  cannot: {text}" for text in report.cannot)
    if report.applied:
        lines.append("  recorded in table erasures (loan id, when, operator, reason, counts)")
    return "\n".join(lines)
