from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from activities.journal import TABLES
from stack import purge
from stack.migrate import apply_migrations
from stack.settings import ROOT
from tests.activities.test_journal import SAMPLES

RETENTION = {"cn": 5, "us": 3, "uk": 6}
DAY = timedelta(days=1)


def _years(n: float) -> timedelta:
    return timedelta(days=round(365.25 * n))


@pytest_asyncio.fixture
async def purge_db(postgres_url: str) -> AsyncIterator[str]:
    """A migrated database of this test's own: the purge looks at every row."""
    name = f"overdue_purge_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = postgres_url.replace("/postgres?", f"/{name}?")
        await apply_migrations(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture
async def connection(purge_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(purge_db)
    yield connection
    await connection.close()


async def _insert(
    connection: asyncpg.Connection, kind: str, loan_id: str, jurisdiction: str, age: timedelta
) -> None:
    """A journal row recorded `age` ago: an explicit recorded_at on INSERT is allowed (no UPDATE is)."""
    now = await connection.fetchval("SELECT now()")
    values = {
        "idempotency_key": f"{loan_id}:{kind}:{uuid.uuid4().hex[:8]}",
        "loan_id": loan_id,
        "jurisdiction": jurisdiction,
        "at": now - age,
        "recorded_at": now - age,
        **SAMPLES[kind].model_dump(),  # type: ignore[index]
    }
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await connection.execute(
        f"INSERT INTO {TABLES[kind]} ({', '.join(values)}) VALUES ({placeholders})",  # type: ignore[index]
        *values.values(),
    )


async def _rows(connection: asyncpg.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLES.values():
        for row in await connection.fetch(f"SELECT loan_id, count(*) AS n FROM {table} GROUP BY loan_id"):
            counts[row["loan_id"]] = counts.get(row["loan_id"], 0) + row["n"]
    return counts


async def _seed(connection: asyncpg.Connection) -> None:
    # cn: 5 years. Past retention: two rows of a quiet loan; within: one.
    await _insert(connection, "contact_attempt", "CN-OLD", "cn", _years(5) + 30 * DAY)
    await _insert(connection, "payment", "CN-OLD", "cn", _years(5.5))
    await _insert(connection, "contact_attempt", "CN-YOUNG", "cn", _years(5) - 30 * DAY)
    # us: 3 years. A quiet old loan goes; an old row of a loan active since stays (3 years after its last
    # activity).
    await _insert(connection, "promise", "US-OLD", "us", _years(3) + 30 * DAY)
    await _insert(connection, "hold", "US-OLD", "us", _years(4))
    await _insert(connection, "promise", "US-ACTIVE", "us", _years(4))
    await _insert(connection, "collector_action", "US-ACTIVE", "us", 2 * DAY)
    # uk: 6 years. Four years old is within retention (it would be past the us one).
    await _insert(connection, "stage_transition", "UK-YOUNG", "uk", _years(4))
    await _insert(connection, "deferral", "UK-OLD", "uk", _years(7))


EXPECTED = {
    ("journal_contact_attempts", "cn"): 1,
    ("journal_payments", "cn"): 1,
    ("journal_promises", "us"): 1,
    ("journal_holds", "us"): 1,
    ("journal_deferrals", "uk"): 1,
}
SEEDED = {"CN-OLD": 2, "CN-YOUNG": 1, "US-OLD": 2, "US-ACTIVE": 2, "UK-YOUNG": 1, "UK-OLD": 1}


def _nonzero(report: purge.PurgeReport) -> dict[tuple[str, str], int]:
    return {(t, j): n for t, by_j in report.counts.items() for j, n in by_j.items() if n}


async def test_dry_run_counts_rows_past_retention_and_deletes_nothing(connection: asyncpg.Connection) -> None:
    await _seed(connection)

    report = await purge.purge(connection, RETENTION)

    assert _nonzero(report) == EXPECTED
    assert (report.total, report.deleted) == (5, False)
    assert await _rows(connection) == SEEDED
    assert set(report.counts) == set(TABLES.values())


async def test_yes_deletes_only_rows_past_retention_per_jurisdiction(connection: asyncpg.Connection) -> None:
    await _seed(connection)

    report = await purge.purge(connection, RETENTION, delete=True)

    assert _nonzero(report) == EXPECTED
    assert report.deleted is True
    assert await _rows(connection) == {"CN-YOUNG": 1, "US-ACTIVE": 2, "UK-YOUNG": 1}
    # Nothing is left to purge, and the purge setting did not outlive its transaction.
    assert (await purge.purge(connection, RETENTION)).total == 0
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await connection.execute("DELETE FROM journal_contact_attempts")


async def test_retention_comes_from_the_settings(connection: asyncpg.Connection) -> None:
    await _seed(connection)

    report = await purge.purge(connection, {"cn": 10, "us": 10, "uk": 3})

    assert _nonzero(report) == {("journal_stage_transitions", "uk"): 1, ("journal_deferrals", "uk"): 1}


async def test_before_date_narrows_but_never_widens(connection: asyncpg.Connection) -> None:
    await _seed(connection)
    today = date.today()

    narrowed = await purge.purge(connection, RETENTION, before=today - _years(6.5))
    not_widened = await purge.purge(connection, RETENTION, before=today + DAY)

    assert _nonzero(narrowed) == {("journal_deferrals", "uk"): 1}
    assert _nonzero(not_widened) == EXPECTED


def _cli(*args: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OVERDUE_DATABASE_URL")}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "stack.purge", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_prints_what_it_would_delete_then_deletes_with_yes(
    purge_db: str, connection: asyncpg.Connection
) -> None:
    await _seed(connection)

    dry = _cli(database_url=purge_db)

    assert dry.returncode == 0, dry.stderr
    [header] = [line for line in dry.stdout.splitlines() if line.startswith("would delete")]
    columns = header.split()[2:]
    table = {
        line.split()[0]: dict(zip(columns, map(int, line.split()[1:]), strict=True))
        for line in dry.stdout.splitlines()
        if line.startswith("journal_")
    }
    assert set(table) == set(TABLES.values())
    assert table["journal_payments"] == {"cn": 1, "uk": 0, "us": 0, "total": 1}
    assert table["journal_holds"] == {"cn": 0, "uk": 0, "us": 1, "total": 1}
    assert table["journal_deferrals"] == {"cn": 0, "uk": 1, "us": 0, "total": 1}
    assert table["journal_collector_actions"]["total"] == 0
    assert "would delete" in dry.stdout and "dry run: nothing deleted" in dry.stdout
    assert await _rows(connection) == SEEDED

    done = _cli("--yes", database_url=purge_db)

    assert done.returncode == 0, done.stderr
    assert "deleted 5 row(s)" in done.stdout
    assert await _rows(connection) == {"CN-YOUNG": 1, "US-ACTIVE": 2, "UK-YOUNG": 1}


def test_cli_without_database_url_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("OVERDUE_DATABASE_URL", raising=False)

    assert purge.main([]) == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


def test_cli_rejects_a_malformed_date(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        purge.parse_args(["--before-date", "03/01/2020"])
    assert "expected YYYY-MM-DD" in capsys.readouterr().err


async def test_cli_on_an_unmigrated_database_says_to_migrate(postgres_url: str) -> None:
    result = _cli(database_url=postgres_url)

    assert result.returncode == 1
    assert "stack.migrate" in result.stderr


def test_render_lists_every_table_and_cutoff() -> None:
    cutoff = datetime.fromisoformat("2021-03-02T00:00:00+00:00")
    report = purge.PurgeReport(
        {"cn": 5}, {"cn": cutoff}, {t: {"cn": 0} for t in TABLES.values()}, deleted=False
    )

    text = purge.render(report)

    assert "cn  5 years  cutoff 2021-03-02 00:00 UTC" in text
    assert all(table in text for table in TABLES.values())
