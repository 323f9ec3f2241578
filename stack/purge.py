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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import asyncpg

from activities.db import Connection
from activities.journal import TABLES
from stack.settings import Settings

JOURNAL_TABLES: tuple[str, ...] = tuple(TABLES.values())


@dataclass(frozen=True)
class PurgeReport:
    retention_years: dict[str, int]
    cutoffs: dict[str, datetime]  # by jurisdiction: rows recorded before this are past retention
    counts: dict[str, dict[str, int]]  # table -> jurisdiction -> rows (would be) deleted
    deleted: bool

    @property
    def total(self) -> int:
        return sum(sum(by_jurisdiction.values()) for by_jurisdiction in self.counts.values())


def _statement(delete: bool) -> str:
    """One statement over every journal table, so all of them are judged on the same snapshot.

    $1 jurisdictions, $2 their cutoffs. A row goes when it is older than its cutoff and its loan shows no
    activity (journal_loan_activity) since that cutoff.
    """
    parts = []
    for index, table in enumerate(JOURNAL_TABLES):
        condition = (
            "t.jurisdiction = c.jurisdiction AND t.recorded_at < c.before AND NOT EXISTS ("
            "SELECT 1 FROM journal_loan_activity a WHERE a.loan_id = t.loan_id AND a.recorded_at >= c.before)"
        )
        if delete:
            parts.append(
                f"d{index} AS (DELETE FROM {table} t USING cutoff c WHERE {condition} "
                "RETURNING t.jurisdiction)"
            )
        else:
            parts.append(f"d{index} AS (SELECT t.jurisdiction FROM {table} t JOIN cutoff c ON {condition})")
    counts = " UNION ALL ".join(
        f"SELECT '{table}' AS journal_table, jurisdiction, count(*) AS n FROM d{index} GROUP BY jurisdiction"
        for index, table in enumerate(JOURNAL_TABLES)
    )
    return (
        "WITH cutoff (jurisdiction, before) AS (SELECT * FROM unnest($1::text[], $2::timestamptz[])), "
        + ", ".join(parts)
        + f" {counts}"
    )


async def missing_tables(connection: Connection) -> list[str]:
    found = await connection.fetch(
        "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL", list(JOURNAL_TABLES)
    )
    return [row["name"] for row in found]


async def purge(
    connection: Connection,
    retention_years: Mapping[str, int],
    *,
    before: date | None = None,
    delete: bool = False,
) -> PurgeReport:
    """Count (and with `delete=True` delete, in one transaction) the journal rows past retention."""
    jurisdictions = sorted(retention_years)
    async with connection.transaction(readonly=not delete):
        cutoffs: dict[str, datetime] = {}
        for jurisdiction in jurisdictions:
            cutoff = await connection.fetchval(
                "SELECT now() - make_interval(years => $1)", retention_years[jurisdiction]
            )
            if before is not None:
                cutoff = min(cutoff, datetime.combine(before, time(), tzinfo=UTC))
            cutoffs[jurisdiction] = cutoff
        if delete:
            await connection.execute("SELECT set_config('overdue.purge', 'on', true)")
        rows = await connection.fetch(
            _statement(delete), jurisdictions, [cutoffs[jurisdiction] for jurisdiction in jurisdictions]
        )
    counts = {table: dict.fromkeys(jurisdictions, 0) for table in JOURNAL_TABLES}
    for row in rows:
        counts[row["journal_table"]][row["jurisdiction"]] = row["n"]
    return PurgeReport(dict(retention_years), cutoffs, counts, deleted=delete)


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
        f"{'total':<{width}}" + "".join(f"{totals[j]:>8}" for j in jurisdictions) + f"{report.total:>8}"
    )
    lines.append("")
    if report.deleted:
        lines.append(f"deleted {report.total} row(s) in one transaction")
    else:
        lines.append(f"dry run: nothing deleted; run again with --yes to delete these {report.total} row(s)")
    return "\n".join(lines)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack.purge",
        description="Delete collections-journal rows past their jurisdiction's retention "
        "(a dry run unless --yes).",
    )
    parser.add_argument(
        "--before-date",
        type=_parse_date,
        metavar="YYYY-MM-DD",
        help="only rows recorded before this date (UTC); never deletes rows still within retention",
    )
    parser.add_argument("--yes", action="store_true", help="delete the rows (default: only count them)")
    return parser.parse_args(argv)


async def _run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
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
        report = await purge(connection, settings.retention_years(), before=args.before_date, delete=args.yes)
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
    try:
        return asyncio.run(_run(settings.database_url, settings, args))
    except (OSError, asyncpg.PostgresError) as error:
        print(f"stack.purge: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
