from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from activities.db import create_pool
from activities.journal import TABLES
from domain.contact_profiles import PROFILES_FILE
from privacy.codec import EncryptionCodec, KeyDestroyed
from privacy.erasure import LOAN_TABLES, RetentionSettings
from privacy.keyring import KeyRing
from stack import purge
from stack.migrate import apply_migrations
from stack.settings import ROOT
from tests.activities.test_journal import SAMPLES
from tests.privacy.loan_rows import borrower, personal_data_left, seed_loan

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
    assert (report.journal_total, report.deleted) == (5, False)
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


def _cli(
    *args: str, database_url: str | None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OVERDUE_DATABASE_URL")}
    env.update(extra_env or {})
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
        if line.split() and line.split()[0] in TABLES.values()
    }
    assert set(table) == set(TABLES.values())
    assert table["journal_payments"] == {"cn": 1, "uk": 0, "us": 0, "total": 1}
    assert table["journal_holds"] == {"cn": 0, "uk": 0, "us": 1, "total": 1}
    assert table["journal_deferrals"] == {"cn": 0, "uk": 1, "us": 0, "total": 1}
    assert table["journal_collector_actions"]["total"] == 0
    assert "would delete" in dry.stdout and "dry run: nothing changed" in dry.stdout
    assert await _rows(connection) == SEEDED

    done = _cli("--yes", database_url=purge_db)

    assert done.returncode == 0, done.stderr
    assert "deleted or blanked 5 row(s)" in done.stdout
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


# --- Every kind of personal data (tests/privacy/loan_rows.py seeds a loan's rows in every table) ---------

PERIODS = RetentionSettings(
    outbox_retention_days=30,
    session_retention_days=30,
    read_audit_retention_days=400,
    codec_audit_retention_days=400,
)


async def _loan_rows(connection: asyncpg.Connection, loan_id: str) -> dict[str, int]:
    counts = {}
    for table in (*LOAN_TABLES, *TABLES.values()):
        counts[table] = await connection.fetchval(f"SELECT count(*) FROM {table} WHERE loan_id = $1", loan_id)
    return {table: n for table, n in counts.items() if n}


async def _seed_staff_rows(connection: asyncpg.Connection) -> dict[str, int]:
    """An old and a recent row in each table of the admin UI's own personal data (sessions, audits);
    returns the old rows by table. Tables another change has not added yet are left out."""
    now = await connection.fetchval("SELECT now()")
    old = now - timedelta(days=800)
    user_id = await connection.fetchval(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, 'x', 'collector') RETURNING id",
        f"purge-{uuid.uuid4().hex[:6]}",
    )
    seeded: dict[str, int] = {}
    if await connection.fetchval("SELECT to_regclass('admin_sessions') IS NOT NULL"):
        for at in (old, now):
            await connection.execute(
                "INSERT INTO admin_sessions (id_hash, user_id, created_at, last_seen_at, expires_at, "
                "client_address, user_agent) "
                "VALUES ($1, $2, $3, $3, $3::timestamptz + interval '10 hours', "
                "'203.0.113.9', 'Mozilla/5.0')",
                os.urandom(32),
                user_id,
                at,
            )
        seeded["admin_sessions"] = 1
    if await connection.fetchval("SELECT to_regclass('read_audit') IS NOT NULL"):
        for at in (old, now):
            await connection.execute(
                "INSERT INTO read_audit (at, user_id, username, role, action, loan_id) "
                "VALUES ($1, $2, 'c', 'collector', 'dossier_view', 'L-1')",
                at,
                user_id,
            )
        seeded["read_audit"] = 1
    if await connection.fetchval("SELECT to_regclass('codec_audit') IS NOT NULL"):
        for at in (old, now):
            await connection.execute(
                "INSERT INTO codec_audit (at, operation, outcome, user_id, username, role, payload_count) "
                "VALUES ($1, 'decode', 'allowed', $2, 'c', 'supervisor', 3)",
                at,
                user_id,
            )
        seeded["codec_audit"] = 1
    return seeded


async def test_retention_covers_every_table_holding_personal_data(
    purge_db: str, connection: asyncpg.Connection
) -> None:
    pool = await create_pool(purge_db, max_size=2)
    try:
        codec = EncryptionCodec(KeyRing.generate(), pool)
        people = {loan: borrower(loan.split("-")[0]) for loan in ("OLD-1", "RECENT-1", "OPEN-1", "FRESH-1")}
        # A closed loan past the uk period (6 years); one closed a year ago; one open for 7 years; a new one.
        await seed_loan(connection, "OLD-1", people["OLD-1"], age=_years(7))
        await seed_loan(connection, "RECENT-1", people["RECENT-1"], age=_years(1))
        await seed_loan(connection, "OPEN-1", people["OPEN-1"], age=_years(7), closed=False)
        await seed_loan(connection, "FRESH-1", people["FRESH-1"], age=2 * DAY, closed=False)
        history = {}
        for loan in ("OLD-1", "OPEN-1"):
            context = WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{loan}")
            [history[loan]] = await codec.with_context(context).encode([_payload(loan)])
        staff = await _seed_staff_rows(connection)
        before = {loan: await _loan_rows(connection, loan) for loan in people}
        left_before = {loan: await personal_data_left(connection, who.values) for loan, who in people.items()}

        dry = await purge.purge(connection, RETENTION, periods=PERIODS)

        # The dry run counted by doing the work in a transaction it rolled back: nothing changed.
        assert {loan: await _loan_rows(connection, loan) for loan in people} == before
        assert {
            loan: await personal_data_left(connection, who.values) for loan, who in people.items()
        } == left_before
        done = await purge.purge(connection, RETENTION, periods=PERIODS, delete=True)

        for report in (dry, done):
            assert report.loans == ("OLD-1",)
            assert report.records == {
                table: n for table, n in before["OLD-1"].items() if table in LOAN_TABLES
            }
            assert report.journal_total == sum(n for t, n in before["OLD-1"].items() if t in TABLES.values())
            assert report.data_keys == 1
            # The messages of RECENT-1 and OPEN-1 went out more than 30 days ago: their texts are blanked.
            assert report.personal["messages (texts blanked)"] == 4
            assert {t: report.personal[t] for t in staff} == staff
        assert await _loan_rows(connection, "OLD-1") == {}
        assert await personal_data_left(connection, people["OLD-1"].values) == []
        with pytest.raises(KeyDestroyed):
            await EncryptionCodec(codec.keys, pool).decode([history["OLD-1"]])
        # Kept: the closed loan within its period and the open loans (an open loan's journal whatever its
        # age), without the texts of messages sent long ago.
        for loan in ("RECENT-1", "OPEN-1"):
            assert await _loan_rows(connection, loan) == before[loan]
            assert await personal_data_left(connection, people[loan].values) == [
                c for c in left_before[loan] if not c.startswith("messages.")
            ]
        assert await personal_data_left(connection, people["FRESH-1"].values) == left_before["FRESH-1"]
        assert await EncryptionCodec(codec.keys, pool).decode([history["OPEN-1"]]) == [_payload("OPEN-1")]
        # Idempotent: nothing is left to do.
        again = await purge.purge(connection, RETENTION, periods=PERIODS, delete=True)
        assert (again.total, again.loans) == (0, ())
        text = purge.render(done)
        assert all(table in text for table in (*LOAN_TABLES, "loan_data_keys", "messages (texts blanked)"))
    finally:
        await pool.close()


def _payload(loan: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'{{"loan": "{loan}"}}'.encode())


async def test_cli_takes_the_periods_from_the_contact_profiles(
    purge_db: str, connection: asyncpg.Connection, tmp_path: Path
) -> None:
    await _seed(connection)
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES_FILE.read_text().replace("retention_years = 6", "retention_years = 3"))

    shorter = _cli(database_url=purge_db, extra_env={"OVERDUE_CONTACT_PROFILES_FILE": str(profiles)})
    moved = _cli(database_url=purge_db, extra_env={"OVERDUE_RETENTION_YEARS_UK": "3"})

    assert shorter.returncode == 0, shorter.stderr
    assert "uk  3 years" in shorter.stdout
    [stage] = [line for line in shorter.stdout.splitlines() if line.startswith("journal_stage_transitions")]
    assert stage.split()[-1] == "1"  # UK-YOUNG's 4-year-old row is past a 3-year period
    assert moved.returncode == 2 and "OVERDUE_RETENTION_YEARS_UK no longer apply" in moved.stderr
    assert "retention_years" in moved.stderr
