"""`python -m starter documents get|list`: the stored letter comes back byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from activities.collection_activities import CollectionActivities
from activities.contracts import LawyerLetterReceipt
from activities.db import create_pool
from starter.cli import main
from tests.activities.builders import letter_request


def _store_letters(database_url: str, loan_id: str) -> list[LawyerLetterReceipt]:
    """A zh-CN and an en letter of the loan, stored the way the activity stores them."""

    async def store() -> list[LawyerLetterReceipt]:
        pool = await create_pool(database_url, max_size=2)
        try:
            activities = CollectionActivities(pool)
            return [
                await activities.generate_lawyer_letter(letter_request(loan_id, locale="zh-CN")),
                await activities.generate_lawyer_letter(
                    letter_request(loan_id, idempotency_key=f"{loan_id}:en", borrower_name="Li Na")
                ),
            ]
        finally:
            await pool.close()

    return asyncio.run(store())


@pytest.fixture
def database(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    return migrated_db


@pytest.fixture
def loan() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"


def test_get_writes_the_stored_bytes(
    database: str, loan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zh, _ = _store_letters(database, loan)
    out = tmp_path / "letter.pdf"

    assert main(["documents", "get", zh.document_id, "--out", str(out)]) == 0

    content = out.read_bytes()
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == zh.sha256
    assert f"sha256 {zh.sha256}" in capsys.readouterr().out


def test_list_shows_the_loans_documents(database: str, loan: str, capsys: pytest.CaptureFixture[str]) -> None:
    zh, en = _store_letters(database, loan)
    _store_letters(database, f"{loan}-other")
    capsys.readouterr()  # the activities' log lines

    assert main(["documents", "list", loan]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["DOCUMENT", "ID", "KIND"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [zh.document_id, "lawyer_letter", "zh-CN"],
        [en.document_id, "lawyer_letter", "en"],
    ]


def test_list_as_json_has_the_full_hashes(
    database: str, loan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    zh, en = _store_letters(database, loan)
    capsys.readouterr()  # the activities' log lines

    assert main(["documents", "list", loan, "--json"]) == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["document_id"], r["sha256"], r["loan_id"]) for r in rows] == [
        (zh.document_id, zh.sha256, loan),
        (en.document_id, en.sha256, loan),
    ]


def test_list_of_a_loan_without_documents_says_so(
    database: str, loan: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["documents", "list", loan]) == 0

    assert capsys.readouterr().out.strip() == f"loan {loan} has no documents"


def test_unknown_document_fails_and_writes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(uuid.uuid4())

    assert main(["documents", "get", missing, "--out", str(tmp_path / "x.pdf")]) == 1

    assert f"no document {missing}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_document_id_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["documents", "get", "letter-1"]) == 2

    assert "document_id (DOCUMENT_ID): not a document id" in capsys.readouterr().err


def test_without_a_database_it_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("OVERDUE_DATABASE_URL", raising=False)
    monkeypatch.setenv("OVERDUE_STATE_DIR", str(tmp_path))

    assert main(["documents", "list", "LN-1"]) == 1

    assert "set DATABASE_URL" in capsys.readouterr().err
    assert not (tmp_path / "pgdata").exists()  # no database was created for a read


def test_python_dash_m_starter_writes_the_letter(database: str, loan: str, tmp_path: Path) -> None:
    _, en = _store_letters(database, loan)
    out = tmp_path / "letter.pdf"

    result = subprocess.run(
        [sys.executable, "-m", "starter", "documents", "get", en.document_id, "--out", str(out)],
        env={**os.environ, "DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == en.sha256
