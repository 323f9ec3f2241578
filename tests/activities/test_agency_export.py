"""The CSV hand-over of file agencies and `python -m starter agencies`: what an agency gets, and no more."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from activities.agency import (
    CONTACT_COLUMNS,
    EXPORT_COLUMNS,
    AgencyExportError,
    export_placements,
    major_units,
)
from activities.db import create_pool
from domain.loan import Loan
from domain.strategy import default_strategy
from privacy.converter import data_converter
from privacy.keyring import KeyRing
from stack.settings import Settings
from starter import agencies_cli
from starter.api import CollectionsStarter
from starter.cli import main
from tests.starter.samples import loan_record

PLACED_AT = datetime(2026, 2, 19, 1, 0, tzinfo=UTC)


async def _agency(pool: asyncpg.Pool, agency_id: str, *, contacts: bool = False) -> None:
    await pool.execute(
        "INSERT INTO agencies (id, name, capacity, segments, commission_bps, receives_contact_details) "
        "VALUES ($1, $2, 10, '{}', 2500, $3)",
        agency_id,
        f"Agency {agency_id}",
        contacts,
    )


async def _placement(
    pool: asyncpg.Pool,
    agency_id: str,
    loan: str,
    *,
    days: int = 0,
    recalled: bool = False,
    **values: object,
) -> str:
    """A stored placement of loan `{agency_id}-{loan}` (loan ids are unique on the shared database)."""
    loan_id = f"{agency_id}-{loan}"
    row = {
        "idempotency_key": f"{loan_id}:{uuid.uuid4().hex[:6]}",
        "loan_id": loan_id,
        "agency_id": agency_id,
        "segment": "high_balance",
        "dpd": 45 + days,
        "amount_overdue_minor": 6_000_000,
        "principal_outstanding_minor": 20_000_050,
        "currency": "CNY",
        "placed_at": PLACED_AT + timedelta(days=days),
        "expires_at": PLACED_AT + timedelta(days=days + 60),
        "status": "accepted",
        **values,
    }
    if recalled:
        row |= {"recalled_at": PLACED_AT + timedelta(days=days + 1), "recall_reason": "paid"}
    columns = ", ".join(row)
    marks = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return str(
        await pool.fetchval(
            f"INSERT INTO agency_placements ({columns}) VALUES ({marks}) RETURNING id", *row.values()
        )
    )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _agency_id() -> str:
    return f"ag-{uuid.uuid4().hex[:8]}"


async def test_export_lists_active_placements_without_contact_data(db_pool: asyncpg.Pool) -> None:
    agency = _agency_id()
    await _agency(db_pool, agency)
    await _agency(db_pool, f"{agency}-other")
    later = await _placement(db_pool, agency, "L-2", days=3)
    first = await _placement(db_pool, agency, "L-1", agency_reference="REF-1")
    await _placement(db_pool, agency, "L-3", recalled=True)
    await _placement(db_pool, agency, "L-4", status="rejected")
    await _placement(db_pool, f"{agency}-other", "L-5")
    out = io.StringIO()

    summary = await export_placements(db_pool, agency, out)

    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    rows = _rows(text)
    assert [r["placement_id"] for r in rows] == [first, later]  # oldest first; recalled, rejected left out
    assert rows[0] == {
        "placement_id": first,
        "loan_id": f"{agency}-L-1",
        "agency_reference": "REF-1",
        "segment": "high_balance",
        "currency": "CNY",
        "amount_overdue_minor": "6000000",
        "amount_overdue": "60000.00",
        "principal_outstanding_minor": "20000050",
        "principal_outstanding": "200000.50",
        "dpd": "45",
        "placed_at": "2026-02-19T01:00:00+00:00",
        "expires_at": "2026-04-20T01:00:00+00:00",
    }
    assert (summary.rows, summary.contact_details, summary.contacts_missing) == (2, False, [])


async def test_contact_details_only_for_an_agency_marked_so(db_pool: asyncpg.Pool) -> None:
    agency = _agency_id()
    await _agency(db_pool, agency, contacts=True)
    await _placement(db_pool, agency, "L-1")
    await _placement(db_pool, agency, "L-2", days=1)
    await _placement(db_pool, agency, "L-3", days=2)
    asked: list[str] = []

    async def contacts(loan_id: str) -> tuple[str, str] | None:
        asked.append(loan_id)
        known = {"L-1": ("Li Na", "+8613800138000"), "L-2": ("=HYPERLINK(1)", "+8613900139000")}
        return known.get(loan_id.removeprefix(f"{agency}-"))

    out = io.StringIO()
    summary = await export_placements(db_pool, agency, out, contacts)

    rows = _rows(out.getvalue())
    assert list(rows[0]) == [*EXPORT_COLUMNS, *CONTACT_COLUMNS]
    assert [(r["borrower_name"], r["borrower_phone"]) for r in rows] == [
        ("Li Na", "+8613800138000"),
        ("'=HYPERLINK(1)", "+8613900139000"),  # a spreadsheet shows it, never runs it
        ("", ""),
    ]
    assert asked == [f"{agency}-L-1", f"{agency}-L-2", f"{agency}-L-3"]
    assert (summary.contact_details, summary.contacts_missing) == (True, [f"{agency}-L-3"])
    with pytest.raises(AgencyExportError, match="receives contact details"):
        await export_placements(db_pool, agency, io.StringIO())


async def test_export_of_an_unknown_agency(db_pool: asyncpg.Pool) -> None:
    with pytest.raises(AgencyExportError, match="no agency 'nobody'"):
        await export_placements(db_pool, "nobody", io.StringIO())


def test_major_units() -> None:
    assert [major_units(v, c) for v, c in [(5, "CNY"), (123450, "USD"), (7, "JPY"), (-150, "EUR")]] == [
        "0.05",
        "1234.50",
        "7",
        "-1.50",
    ]


# ------------------------------------------------------------------------------------------------ the CLI


def _setup(database_url: str, contacts: bool = False) -> tuple[str, str]:
    async def setup() -> tuple[str, str]:
        pool = await create_pool(database_url, max_size=1)
        try:
            agency = _agency_id()
            await _agency(pool, agency, contacts=contacts)
            return agency, await _placement(pool, agency, "L-1")
        finally:
            await pool.close()

    return asyncio.run(setup())


@pytest.fixture
def database(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    return migrated_db


def test_cli_export_writes_a_private_csv(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agency, placement = _setup(database)
    out = tmp_path / "placements.csv"

    assert main(["agencies", "export", "--agency", agency, "--out", str(out)]) == 0

    [row] = _rows(out.read_text(encoding="utf-8"))
    assert (row["placement_id"], row["loan_id"]) == (placement, f"{agency}-L-1")
    assert "borrower_name" not in row
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (
        f"wrote {out}: 1 active placement(s) of {agency}, no borrower contact data" in capsys.readouterr().out
    )


def test_cli_export_with_contact_details_asks_temporal(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agency, _ = _setup(database, contacts=True)

    async def fake_temporal(settings: Settings) -> agencies_cli.ContactLookup:
        async def lookup(loan_id: str) -> tuple[str, str] | None:
            return ("Li Na", "+8613800138000")

        return lookup

    monkeypatch.setattr(agencies_cli, "temporal_contacts", fake_temporal)

    assert main(["agencies", "export", "--agency", agency, "--out", "-"]) == 0

    captured = capsys.readouterr()
    [row] = _rows(captured.out)
    assert (row["borrower_name"], row["borrower_phone"]) == ("Li Na", "+8613800138000")
    assert "with borrower name and phone" in captured.err


def test_cli_export_of_an_unknown_agency_fails(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agencies", "export", "--agency", "nobody", "--out", "-"]) == 1
    assert "no agency 'nobody'" in capsys.readouterr().err


def test_cli_list_shows_the_load(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    agency, _ = _setup(database, contacts=True)

    assert main(["agencies", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["AGENCY", "ACTIVE", "ENDPOINT"]
    [line] = [line for line in table if line.startswith(agency)]
    assert line.split()[1:5] == ["yes", "file", "1", "10"]
    assert "export includes contact details" in line

    assert main(["agencies", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [mine] = [a for a in listed if a["id"] == agency]
    assert (mine["placed"], mine["capacity"], mine["receives_contact_details"]) == (1, 10, True)


def test_cli_check_validates_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agencies", "check"]) == 0
    assert "3 agencies, 3 active: east-recovery, north-credit, west-field" in capsys.readouterr().out

    broken = tmp_path / "agencies.toml"
    broken.write_text('[[agencies]]\nid = "x"\nname = "X"\nendpoint = "file"\ncapacity = 1\n')
    assert main(["agencies", "check", "--file", str(broken)]) == 2
    assert "agencies[0 id=x].commission_bps: Field required" in capsys.readouterr().err


async def test_contacts_come_from_the_loans_workflow(
    local_client: Client,
    task_queue: str,
    db_pool: asyncpg.Pool,
    migrated_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loan's input is encrypted (privacy/): the export's client decrypts it with the same key ring and the
    # database holding the loan's data key, as the CLI beside a running product does.
    ring = KeyRing.generate()
    monkeypatch.setenv("OVERDUE_CODEC_KEYS", ring.to_json())
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    config = local_client.config()
    config["data_converter"] = data_converter(ring, db_pool)
    product_client = Client(**config)
    loan = Loan.model_validate(loan_record(f"T-{uuid.uuid4().hex[:12]}"))
    starter = CollectionsStarter(product_client, task_queue=task_queue, strategy=default_strategy())
    await starter.start_loan(loan)  # no worker: the started event is all the lookup reads
    address = local_client.service_client.config.target_host
    settings = Settings.model_validate({"TEMPORAL_ADDRESS": address, "DATABASE_URL": migrated_db})
    try:
        lookup = await agencies_cli.temporal_contacts(settings)
        found = await lookup(loan.loan_id)
        missing = await lookup(f"NOPE-{uuid.uuid4().hex[:8]}")
    finally:
        await starter.handle(loan.loan_id).terminate("test over")

    assert found == (loan.borrower.name, loan.borrower.phone)
    assert missing is None
