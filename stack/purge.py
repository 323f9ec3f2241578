"""Delete collections-journal rows past their jurisdiction's retention: `python -m stack.purge [--yes]`.

Retention is in years per jurisdiction (OVERDUE_RETENTION_YEARS_CN / _US / _UK, default 5 / 3 / 6) and
counts from `recorded_at`. A row is due when it was recorded before its jurisdiction's cutoff (now minus
the retention) *and* its loan has no journal row of any kind recorded since that cutoff: records are kept
N years after the last activity on the loan, and a loan's history is deleted whole, never in part.
`--before-date` narrows the purge to rows recorded before that date (UTC); it never widens it.

Without `--yes` it prints, per table and jurisdiction, how many rows would be deleted, and deletes nothing.
With `--yes` it deletes exactly those in one transaction (the only place that sets `overdue.purge = 'on'`,
which the journal's append-only trigger requires for a DELETE) and prints what it deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from activities.db import Connection
from activities.journal import TABLES
from domain.config_file import ConfigError
from privacy.erasure import LOAN_TABLES, RetentionSettings, destroy_data_key, retention_years
from stack.settings import Settings

JOURNAL_TABLES: tuple[str, ...] = tuple(TABLES.values())
# The settings this purge read before the contact profiles became the one source of the periods.
MOVED_SETTINGS = ("OVERDUE_RETENTION_YEARS_CN", "OVERDUE_RETENTION_YEARS_US", "OVERDUE_RETENTION_YEARS_UK")


@dataclass(frozen=True)
class PurgeReport:
    retention_years: dict[str, int]
    cutoffs: dict[str, datetime]  # by jurisdiction: rows recorded before this are past retention
    counts: dict[str, dict[str, int]]  # journal table -> jurisdiction -> rows (would be) deleted
    deleted: bool
    loans: tuple[str, ...] = ()  # closed loans past retention: every row of theirs (would be) deleted
    records: dict[str, int] = field(default_factory=dict)  # their rows outside the journal, by table
    data_keys: int = 0  # their data keys (would be) destroyed
    personal: dict[str, int] = field(default_factory=dict)  # shorter periods: rows blanked or deleted

    @property
    def journal_total(self) -> int:
        return sum(sum(by_jurisdiction.values()) for by_jurisdiction in self.counts.values())

    @property
    def total(self) -> int:
        return self.journal_total + sum(self.records.values()) + sum(self.personal.values()) + self.data_keys


def _statement() -> str:
    """One statement over every journal table, so all of them are judged on the same snapshot.

    $1 jurisdictions, $2 their cutoffs. A row goes when it is older than its cutoff, its loan shows no
    activity (journal_loan_activity) since that cutoff, and its loan is not in collection.
    """
    parts = []
    for index, table in enumerate(JOURNAL_TABLES):
        condition = (
            "t.jurisdiction = c.jurisdiction AND t.recorded_at < c.before AND NOT EXISTS ("
            "SELECT 1 FROM journal_loan_activity a WHERE a.loan_id = t.loan_id "
            f"AND a.recorded_at >= c.before) AND NOT ({OPEN_LOAN.format(loan='t.loan_id')})"
        )
        parts.append(
            f"d{index} AS (DELETE FROM {table} t USING cutoff c WHERE {condition} RETURNING t.jurisdiction)"
        )
    counts = " UNION ALL ".join(
        f"SELECT '{table}' AS journal_table, jurisdiction, count(*) AS n FROM d{index} GROUP BY jurisdiction"
        for index, table in enumerate(JOURNAL_TABLES)
    )
    return (
        "WITH cutoff (jurisdiction, before) AS (SELECT * FROM unnest($1::text[], $2::timestamptz[])), "
        + ", ".join(parts)
        + f" {counts}"
    )


# A loan still in collection: its latest portfolio cycle has no outcome.
OPEN_LOAN = "EXISTS (SELECT 1 FROM portfolio p WHERE p.loan_id = {loan} AND p.latest AND p.outcome IS NULL)"


def _due_loans_statement() -> str:
    """Closed loans whose last activity (journal, portfolio snapshot, message) is before their jurisdiction's
    cutoff ($1 jurisdictions, $2 cutoffs). The jurisdiction is the latest portfolio cycle's, else the
    journal's."""
    journal = " UNION ALL ".join(
        f"SELECT loan_id, jurisdiction, recorded_at FROM {table}" for table in JOURNAL_TABLES
    )
    return f"""
        WITH cutoff (jurisdiction, before) AS (SELECT * FROM unnest($1::text[], $2::timestamptz[])),
        journal AS (
            SELECT loan_id, min(jurisdiction) AS jurisdiction, max(recorded_at) AS last
            FROM ({journal}) j GROUP BY loan_id
        ),
        latest AS (
            SELECT DISTINCT ON (loan_id) loan_id, jurisdiction FROM portfolio
            ORDER BY loan_id, latest DESC, cycle DESC
        ),
        loans AS (
            SELECT loan_id FROM journal UNION SELECT loan_id FROM portfolio UNION SELECT loan_id FROM messages
        )
        SELECT l.loan_id
        FROM loans l
        LEFT JOIN journal j USING (loan_id)
        LEFT JOIN latest p USING (loan_id)
        JOIN cutoff c ON c.jurisdiction = coalesce(p.jurisdiction, j.jurisdiction)
        WHERE NOT ({OPEN_LOAN.format(loan="l.loan_id")})
          AND greatest(
                j.last,
                (SELECT max(updated_at) FROM portfolio x WHERE x.loan_id = l.loan_id),
                (SELECT max(created_at) FROM messages m WHERE m.loan_id = l.loan_id)
              ) < c.before
        ORDER BY l.loan_id
    """


async def missing_tables(connection: Connection) -> list[str]:
    found = await connection.fetch(
        "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL", list(JOURNAL_TABLES)
    )
    return [row["name"] for row in found]


class _DryRun(Exception):
    """Rolls the dry run's transaction back: it counts by doing the work, so its counts are the real ones."""


async def purge(
    connection: Connection,
    retention_years: Mapping[str, int],
    *,
    before: date | None = None,
    delete: bool = False,
    periods: RetentionSettings | None = None,
) -> PurgeReport:
    """Count (and with `delete=True` delete or blank, in one transaction) what is past its retention: the
    records of closed loans past their jurisdiction's period and, with `periods`, the personal data of
    shorter periods (the outbox's texts, sessions, audits)."""
    jurisdictions = sorted(retention_years)
    result: PurgeReport | None = None
    try:
        async with connection.transaction():
            cutoffs: dict[str, datetime] = {}
            for jurisdiction in jurisdictions:
                cutoff = await connection.fetchval(
                    "SELECT now() - make_interval(years => $1)", retention_years[jurisdiction]
                )
                if before is not None:
                    cutoff = min(cutoff, datetime.combine(before, time(), tzinfo=UTC))
                cutoffs[jurisdiction] = cutoff
            cutoff_list = [cutoffs[jurisdiction] for jurisdiction in jurisdictions]
            # Before the journal goes: it is part of what tells when a loan was last active.
            due = await connection.fetch(_due_loans_statement(), jurisdictions, cutoff_list)
            loans = [row["loan_id"] for row in due]
            await connection.execute("SELECT set_config('overdue.purge', 'on', true)")
            rows = await connection.fetch(_statement(), jurisdictions, cutoff_list)
            counts = {table: dict.fromkeys(jurisdictions, 0) for table in JOURNAL_TABLES}
            for row in rows:
                counts[row["journal_table"]][row["jurisdiction"]] = row["n"]
            records = {
                table: _count(
                    await connection.execute(f"DELETE FROM {table} WHERE loan_id = ANY($1::text[])", loans)
                )
                for table in LOAN_TABLES
            }
            data_keys = 0
            for loan_id in loans:
                data_keys += await destroy_data_key(connection, loan_id) == "destroyed"
            personal = await _shorter_periods(connection, periods) if periods is not None else {}
            result = PurgeReport(
                dict(retention_years), cutoffs, counts, delete, tuple(loans), records, data_keys, personal
            )
            if not delete:
                raise _DryRun
    except _DryRun:
        pass
    assert result is not None
    return result


async def _shorter_periods(connection: Connection, periods: RetentionSettings) -> dict[str, int]:
    """Personal data kept for days, not years: the outbox's texts once sent, sessions, audits."""
    now: datetime = await connection.fetchval("SELECT now()")
    done: dict[str, int] = {}
    done["messages (texts blanked)"] = _count(
        await connection.execute(
            "UPDATE messages SET recipient = '', subject = NULL, body = '', redacted_at = now() "
            "WHERE redacted_at IS NULL AND status IN ('sent', 'failed', 'superseded') "
            "AND coalesce(sent_at, created_at) < $1",
            now - timedelta(days=periods.outbox_retention_days),
        )
    )
    sessions_before = now - timedelta(days=periods.session_retention_days)
    if await _exists(connection, "admin_sessions"):
        from admin.sessions import purge_login_throttle, purge_sessions

        done["admin_sessions"] = await purge_sessions(connection, sessions_before)
        done["login_throttle"] = await purge_login_throttle(connection, sessions_before)
    if await _exists(connection, "read_audit"):
        # read_audit is append-only: its own SECURITY DEFINER function is the only way rows leave it.
        done["read_audit"] = await connection.fetchval(
            "SELECT read_audit_purge($1)", now - timedelta(days=periods.read_audit_retention_days)
        )
    if await _exists(connection, "codec_audit"):
        done["codec_audit"] = _count(
            await connection.execute(
                "DELETE FROM codec_audit WHERE at < $1",
                now - timedelta(days=periods.codec_audit_retention_days),
            )
        )
    return done


def _count(status: str) -> int:
    return int(status.split()[-1])


async def _exists(connection: Connection, table: str) -> bool:
    return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


def render(report: PurgeReport) -> str:
    jurisdictions = list(report.cutoffs)
    lines = ["retention (rows recorded before the cutoff, of loans with no journal activity since):"]
    for jurisdiction, cutoff in report.cutoffs.items():
        years = report.retention_years[jurisdiction]
        lines.append(f"  {jurisdiction}  {years} years  cutoff {cutoff.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    width = max(len(table) for table in JOURNAL_TABLES)
    header = "deleted" if report.deleted else "would delete"
    lines.append("")
    lines.append(f"{header:<{width}}" + "".join(f"{j:>8}" for j in jurisdictions) + f"{'total':>8}")
    totals = dict.fromkeys(jurisdictions, 0)
    for table, by_jurisdiction in report.counts.items():
        cells = "".join(f"{by_jurisdiction[j]:>8}" for j in jurisdictions)
        lines.append(f"{table:<{width}}{cells}{sum(by_jurisdiction.values()):>8}")
        for j in jurisdictions:
            totals[j] += by_jurisdiction[j]
    lines.append(
        f"{'total':<{width}}"
        + "".join(f"{totals[j]:>8}" for j in jurisdictions)
        + f"{report.journal_total:>8}"
    )
    if report.records or report.data_keys:
        lines.append("")
        lines.append(f"closed loans past retention: {len(report.loans)}; their other rows")
        for table, n in report.records.items():
            lines.append(f"{table:<{width}}{n:>8}")
        lines.append(f"{'loan_data_keys (destroyed)':<{width}}{report.data_keys:>8}")
    if report.personal:
        lines.append("")
        lines.append("personal data past its shorter period (privacy.erasure.RetentionSettings)")
        for table, n in report.personal.items():
            lines.append(f"{table:<{width}}{n:>8}")
    lines.append("")
    if report.deleted:
        lines.append(f"deleted or blanked {report.total} row(s) in one transaction")
    else:
        lines.append(
            f"dry run: nothing changed; run again with --yes to delete or blank these {report.total} row(s)"
        )
    return "\n".join(lines)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack.purge",
        description="Delete or blank personal data past its retention: the records of closed loans past "
        "their jurisdiction's period, the outbox's texts, sessions and audits (a dry run unless --yes).",
    )
    parser.add_argument(
        "--before-date",
        type=_parse_date,
        metavar="YYYY-MM-DD",
        help="only rows recorded before this date (UTC); never deletes rows still within retention",
    )
    parser.add_argument("--yes", action="store_true", help="do it (default: only count)")
    return parser.parse_args(argv)


async def _run(
    database_url: str, years: Mapping[str, int], periods: RetentionSettings, args: argparse.Namespace
) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        missing = await missing_tables(connection)
        if missing:
            print(
                f"stack.purge: the journal tables are missing ({', '.join(missing)}): "
                "run `python -m stack.migrate` first",
                file=sys.stderr,
            )
            return 1
        report = await purge(connection, years, before=args.before_date, delete=args.yes, periods=periods)
    finally:
        await connection.close()
    print(render(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings()
    if not settings.database_url:
        print(
            "stack.purge: DATABASE_URL is not set. Set it (or OVERDUE_DATABASE_URL) to the PostgreSQL whose "
            "journal to purge, e.g. postgresql://overdue:secret@db:5432/overdue. The purge never picks a "
            "database by itself.",
            file=sys.stderr,
        )
        return 2
    moved = [name for name in MOVED_SETTINGS if name in os.environ]
    if moved:
        print(
            f"stack.purge: {', '.join(moved)} no longer apply: the retention of each jurisdiction is its "
            f"contact profile's retention_years ({settings.contact_profiles_file}). Set it there and unset "
            "these.",
            file=sys.stderr,
        )
        return 2
    try:
        years = retention_years(settings.contact_profiles_file)
        periods = RetentionSettings()
    except (ConfigError, ValueError) as error:
        print(f"stack.purge: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(settings.database_url, years, periods, args))
    except (OSError, asyncpg.PostgresError) as error:
        print(f"stack.purge: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
