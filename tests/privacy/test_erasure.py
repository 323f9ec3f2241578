"""Erasure of one loan: no personal data left in any PostgreSQL column, the loan's Temporal payloads
undecodable, refusals that change nothing, a non-personal record, and a second run that finds it done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from activities.legal import fetch_document
from domain.contact_profiles import PROFILES_FILE
from privacy import erase
from privacy.codec import EncryptionCodec, KeyDestroyed
from privacy.erasure import ErasureRefused, ErasureReport, erase_loan, render_erasure, retention_years
from privacy.keyring import KeyRing
from stack.settings import ROOT
from tests.privacy.loan_rows import Borrower, borrower, personal_data_left, seed_loan, years

YEARS = retention_years(PROFILES_FILE)  # cn 5, us 3, uk 6: the shipped contact profiles
# Every column of the schema in which the product (and seed_loan) puts a borrower's data.
PERSONAL_COLUMNS = [
    "collector_tasks.note",
    "journal_collector_actions.detail",
    "journal_dead_letters.entry",
    "journal_holds.detail",
    "legal_documents.content",
    "litigation_referrals.summary",
    "messages.body",
    "messages.recipient",
    "messages.subject",
    "portfolio.borrower_name",
]


@pytest_asyncio.fixture
async def connection(db_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with db_pool.acquire() as connection:
        yield connection  # type: ignore[misc]


def _loan(tag: str) -> str:
    return f"ERASE-{tag}-{uuid.uuid4().hex[:8]}"


async def _erase(
    connection: asyncpg.Connection,
    loan_id: str,
    *,
    force_before_retention: bool = False,
    force_open: bool = False,
) -> ErasureReport:
    return await erase_loan(
        connection,
        loan_id,
        years=YEARS,
        operator="dpo",
        reason="retention period over",
        force_before_retention=force_before_retention,
        force_open=force_open,
    )


async def test_erasure_leaves_no_personal_data_in_any_postgresql_column(
    connection: asyncpg.Connection, db_pool: asyncpg.Pool
) -> None:
    loan_id, other_loan = _loan("A"), _loan("B")
    who, other = borrower("A"), borrower("B")
    await seed_loan(connection, loan_id, who, age=years(7))
    await seed_loan(connection, other_loan, other, age=years(7))
    assert await personal_data_left(connection, who.values) == PERSONAL_COLUMNS  # the scan sees them all
    journal_before = await _journal_rows(connection, loan_id)

    report = await _erase(connection, loan_id)

    assert await personal_data_left(connection, who.values) == []
    # Only that loan: the other borrower's data is untouched.
    assert await personal_data_left(connection, other.values) == PERSONAL_COLUMNS
    assert report.counts == {
        "messages": 2,
        "portfolio": 1,
        "legal_documents": 2,
        "litigation_referrals": 1,
        "collector_tasks": 1,
        "journal_holds": 1,
        "journal_collector_actions": 1,
        "journal_dead_letters": 1,
    }
    assert report.data_key == "absent"  # this loan never had a key; none can be made for it now
    # What is not personal stays: the journal's rows, the letters' hashes and sizes, the placement.
    assert await _journal_rows(connection, loan_id) == journal_before
    letters = await connection.fetch(
        "SELECT sha256, size_bytes, content, erased_at FROM legal_documents WHERE loan_id = $1", loan_id
    )
    assert [(r["sha256"], r["content"]) for r in letters] == [("0" * 64, None)] * 2
    assert all(r["erased_at"] is not None and r["size_bytes"] > 0 for r in letters)
    # The admin UI's download finds no document to serve (a 404, not a 500 on the missing bytes).
    erased_ids = await connection.fetch("SELECT id FROM legal_documents WHERE loan_id = $1", loan_id)
    assert [await fetch_document(db_pool, str(r["id"])) for r in erased_ids] == [None, None]
    assert (
        await connection.fetchval("SELECT count(*) FROM agency_placements WHERE loan_id = $1", loan_id) == 1
    )
    record = await connection.fetchrow("SELECT * FROM erasures WHERE loan_id = $1", loan_id)
    assert record is not None
    assert (record["operator"], record["reason"], record["before_retention"], record["loan_open"]) == (
        "dpo",
        "retention period over",
        False,
        False,
    )
    assert json.loads(record["counts"]) == report.counts
    text = render_erasure(report)
    assert all(table in text for table in report.counts) and "recorded in table erasures" in text


async def _journal_rows(connection: asyncpg.Connection, loan_id: str) -> int:
    return await connection.fetchval("SELECT count(*) FROM journal_loan_activity WHERE loan_id = $1", loan_id)


def _payload(who: Borrower) -> Payload:
    data = json.dumps({"name": who.name, "phone": who.phone, "email": who.email}).encode()
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def _in_history_of(codec: EncryptionCodec, loan_id: str) -> EncryptionCodec:
    return codec.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{loan_id}")
    )


async def test_erasure_makes_the_loans_temporal_payloads_undecodable(
    connection: asyncpg.Connection, db_pool: asyncpg.Pool
) -> None:
    loan_id, other_loan = _loan("H"), _loan("K")
    who = borrower("H")
    await seed_loan(connection, loan_id, who, age=years(7))
    ring = KeyRing.generate()
    codec = EncryptionCodec(ring, db_pool)
    [stored] = await _in_history_of(codec, loan_id).encode([_payload(who)])
    [other_stored] = await _in_history_of(codec, other_loan).encode([_payload(who)])
    assert await codec.decode([stored]) == [_payload(who)]  # readable, and cached in this codec

    report = await _erase(connection, loan_id)

    assert report.data_key == "destroyed"
    for reader in (codec, EncryptionCodec(ring, db_pool)):  # this process's cache, and a fresh process
        with pytest.raises(KeyDestroyed):
            await reader.decode([stored])
    assert await codec.decode([other_stored]) == [_payload(who)]  # another loan's history stays readable
    assert "can no longer be decrypted" in render_erasure(report)


async def test_a_second_run_says_already_erased_and_records_nothing(connection: asyncpg.Connection) -> None:
    loan_id = _loan("T")
    await seed_loan(connection, loan_id, borrower("T"), jurisdiction="us", age=years(4))
    first = await _erase(connection, loan_id)

    second = await _erase(connection, loan_id)

    assert first.total > 0 and first.already_erased is None
    assert second.already_erased is not None and second.total == 0
    assert "already erased" in render_erasure(second)
    assert await connection.fetchval("SELECT count(*) FROM erasures WHERE loan_id = $1", loan_id) == 1


async def test_within_retention_is_refused_unless_forced_on_a_lawful_request(
    connection: asyncpg.Connection,
) -> None:
    loan_id = _loan("R")
    who = borrower("R")
    await seed_loan(connection, loan_id, who, jurisdiction="cn", age=years(2))

    with pytest.raises(
        ErasureRefused, match=r"within its legal retention \(cn, until .*--force-before-retention"
    ):
        await _erase(connection, loan_id)
    assert await personal_data_left(connection, who.values) == PERSONAL_COLUMNS  # nothing changed
    assert await connection.fetchval("SELECT count(*) FROM erasures WHERE loan_id = $1", loan_id) == 0

    report = await _erase(connection, loan_id, force_before_retention=True)

    assert report.state.within_retention and report.state.retention_years == 5
    assert await personal_data_left(connection, who.values) == []
    assert await connection.fetchval("SELECT before_retention FROM erasures WHERE loan_id = $1", loan_id)
    assert "(forced before it)" in render_erasure(report)


async def test_an_open_loan_is_refused_unless_forced_and_then_it_says_what_it_cannot_do(
    connection: asyncpg.Connection, db_pool: asyncpg.Pool
) -> None:
    loan_id = _loan("O")
    who = borrower("O")
    await seed_loan(connection, loan_id, who, age=years(7), closed=False)
    codec = EncryptionCodec(KeyRing.generate(), db_pool)
    [stored] = await _in_history_of(codec, loan_id).encode([_payload(who)])

    with pytest.raises(ErasureRefused, match="still in collection"):
        await _erase(connection, loan_id)
    forced = await _erase(connection, loan_id, force_open=True)

    assert await personal_data_left(connection, who.values) == []
    assert forced.data_key == "kept" and "workflow is still running" in forced.cannot[0]
    assert "cannot:" in render_erasure(forced)
    # The running workflow can still read its history (its worker must replay it) ...
    assert await EncryptionCodec(codec.keys, db_pool).decode([stored]) == [_payload(who)]
    # ... until the collection ends: the next run destroys the key, not "already erased".
    await connection.execute("UPDATE portfolio SET outcome = 'stopped' WHERE loan_id = $1", loan_id)
    closed = await _erase(connection, loan_id)
    assert closed.already_erased is None and closed.data_key == "destroyed"
    with pytest.raises(KeyDestroyed):
        await EncryptionCodec(codec.keys, db_pool).decode([stored])
    queued = await connection.fetchval(
        "SELECT count(*) FROM messages WHERE loan_id = $1 AND status = 'queued'", loan_id
    )
    assert queued == 0


async def test_an_unknown_loan_is_refused(connection: asyncpg.Connection) -> None:
    with pytest.raises(ErasureRefused, match="no data of this loan"):
        await _erase(connection, _loan("U"))


async def test_the_journal_allows_only_blanking_its_free_text_and_only_during_an_erasure(
    connection: asyncpg.Connection,
) -> None:
    loan_id = _loan("J")
    await seed_loan(connection, loan_id, borrower("J"))
    async with connection.transaction():
        await connection.execute("SELECT set_config('overdue.erase', 'on', true)")
        await connection.execute("UPDATE journal_holds SET detail = '' WHERE loan_id = $1", loan_id)
    for refused in (
        "UPDATE journal_collector_actions SET collector = 'x', detail = '' WHERE loan_id = $1",
        "UPDATE journal_collector_actions SET detail = 'other text' WHERE loan_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with connection.transaction():
                await connection.execute("SELECT set_config('overdue.erase', 'on', true)")
                await connection.execute(refused, loan_id)
    # Outside an erasure's transaction the journal is append-only as before.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await connection.execute(
            "UPDATE journal_collector_actions SET detail = '' WHERE loan_id = $1", loan_id
        )
    assert await connection.fetchval("SELECT detail FROM journal_holds WHERE loan_id = $1", loan_id) == ""


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OVERDUE_DATABASE_URL")}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "privacy.erase", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_dry_run_then_erase_then_already_erased(
    connection: asyncpg.Connection, migrated_db: str
) -> None:
    loan_id = _loan("C")
    who = borrower("C")
    await seed_loan(connection, loan_id, who, jurisdiction="us", age=timedelta(days=30))

    refused = _cli("--loan", loan_id, database_url=migrated_db)
    dry = _cli(
        "--loan",
        loan_id,
        "--dry-run",
        "--force-before-retention",
        "--reason",
        "GDPR art. 17",
        database_url=migrated_db,
    )
    assert await personal_data_left(connection, who.values) == PERSONAL_COLUMNS
    done = _cli(
        "--loan",
        loan_id,
        "--force-before-retention",
        "--reason",
        "GDPR art. 17 request 2026-114",
        "--operator",
        "dpo",
        database_url=migrated_db,
    )
    again = _cli("--loan", loan_id, database_url=migrated_db)

    assert refused.returncode == 1 and "within its legal retention" in refused.stderr
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed" in dry.stdout and "messages" in dry.stdout
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert (lines["messages"], lines["portfolio"], lines["legal_documents"]) == ("2", "1", "2")
    assert await personal_data_left(connection, who.values) == []
    assert again.returncode == 0 and "already erased" in again.stdout
    record = await connection.fetchrow("SELECT operator, reason FROM erasures WHERE loan_id = $1", loan_id)
    assert record is not None and tuple(record) == ("dpo", "GDPR art. 17 request 2026-114")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--loan", "L-1", "--force-open"], "--reason: required"),
        (["--loan", "L-1", "--reason", "asked by xiuying@example.com"], "looks like an e-mail"),
        (["--loan", "L-1", "--reason", "call +86 138 0013 8000"], "phone number"),
        (["--loan", " "], "--loan: must be a loan id"),
    ],
)
def test_cli_refuses_bad_input_with_the_field(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_code:
        erase.parse_args(args)
    assert exit_code.value.code == 2
    assert problem in capsys.readouterr().err
