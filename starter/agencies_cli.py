"""`python -m starter agencies`: the collection agencies, their load, and the CSV hand-over of file agencies.

    python -m starter agencies list [--json]                        agencies and their placements
    python -m starter agencies export --agency ID [--out FILE.csv]  an agency's active placements as CSV
    python -m starter agencies check [--file FILE.toml]             validate an agencies file

`export` is how an agency without an API (endpoint "file") receives its accounts: loan id, amounts, currency,
DPD, placed and expiry dates; the borrower's name and phone only for an agency marked
`receives_contact_details = true`, read from the loan's workflow in Temporal, which keeps the current contact
points (PostgreSQL holds borrower data too: the portfolio's names, the outbox's recipients and texts, letters;
docs/personal-data.md says where and for how long). The file is written readable by its owner only; it holds
personal data and is the operator's to delete once the agency has it (no retention job knows about it).
`list` shows what the worker last synced from OVERDUE_AGENCIES_FILE; `check` validates a file before you
deploy it.

The database is DATABASE_URL, or else the embedded PostgreSQL of `make run` (in OVERDUE_STATE_DIR).
Exit codes: 0 done; 1 unknown agency, database or Temporal unreachable; 2 invalid input or agencies file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import AbstractAsyncContextManager
from datetime import UTC
from pathlib import Path

import asyncpg
from temporalio.service import RPCError, RPCStatusCode

from activities.agency import (
    AgencyExportError,
    ContactLookup,
    ExportSummary,
    agency_overview,
    export_placements,
)
from domain.agencies import AgencyConfigError, load_agencies
from stack.settings import Settings
from starter.connect import TemporalUnreachable, connect
from starter.database import CommandFailed, command_database
from workflows.messages import CollectionInput, workflow_id

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


_Failed = CommandFailed


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agencies = commands.add_parser(
        "agencies", help="collection agencies: list them, export a file agency's placements as CSV"
    )
    actions = agencies.add_subparsers(dest="agencies_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every agency with its active, pending and recalled placements")
    listing.add_argument("--json", action="store_true", help="one JSON object per agency")
    export = actions.add_parser("export", help="an agency's active placements as CSV")
    export.add_argument("--agency", required=True, metavar="ID", help="the agency's id (agencies.toml)")
    export.add_argument(
        "--out", metavar="PATH", help="where to write it ('-': standard output; default ID-placements.csv)"
    )
    check = actions.add_parser("check", help="validate an agencies file (no database needed)")
    check.add_argument("--file", metavar="PATH", help="default: OVERDUE_AGENCIES_FILE")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.agencies_command == "check":
            return _check(Path(args.file) if args.file else settings.agencies_file)
        if args.agencies_command == "list":
            return await _list(args, settings)
        return await _export(args, settings)
    except _Failed as error:
        print(str(error), file=sys.stderr)
        return error.code


def _check(path: Path) -> int:
    try:
        book = load_agencies(path)
    except AgencyConfigError as error:
        raise _Failed(str(error), EXIT_INVALID) from None
    active = [a for a in book.agencies if a.active]
    print(f"{path}: {len(book.agencies)} agencies, {len(active)} active: {', '.join(a.id for a in active)}")
    return EXIT_OK


def _database(settings: Settings) -> AbstractAsyncContextManager[asyncpg.Pool]:
    return command_database(settings, missing_schema="predates agency placements")


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as pool:
        rows = await agency_overview(pool)
    if args.json:
        for row in rows:
            data = dict(row)
            data["last_assigned_at"] = (
                row["last_assigned_at"].isoformat() if row["last_assigned_at"] else None
            )
            print(json.dumps(data, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no agencies (a worker syncs them from OVERDUE_AGENCIES_FILE when it starts)")
        return EXIT_OK
    header = (
        "AGENCY",
        "ACTIVE",
        "ENDPOINT",
        "PLACED",
        "CAPACITY",
        "PENDING",
        "SEGMENTS",
        "LAST ASSIGNED",
        "NOTE",
    )
    table = [header]
    for row in rows:
        notes = []
        if row["recalls_refused"]:
            notes.append(f"{row['recalls_refused']} recall(s) refused by the agency")
        if row["recalls_pending"]:
            notes.append(f"{row['recalls_pending']} recall(s) not confirmed yet")
        if row["rejected"]:
            notes.append(f"{row['rejected']} placement(s) rejected")
        if row["receives_contact_details"]:
            notes.append("export includes contact details")
        table.append(
            (
                row["id"],
                "yes" if row["active"] else "no",
                _endpoint(row["endpoint"]),
                str(row["placed"]),
                str(row["capacity"]),
                str(row["pending"]),
                ",".join(row["segments"]) or "any",
                f"{row['last_assigned_at'].astimezone(UTC):%Y-%m-%d %H:%M}"
                if row["last_assigned_at"]
                else "-",
                "; ".join(notes),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return EXIT_OK


def _endpoint(endpoint: str) -> str:
    if endpoint in ("file", "sandbox"):
        return endpoint
    return endpoint.split("://", 1)[-1].split("/", 1)[0]  # host only: a URL may carry a token


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    agency_id = args.agency.strip()
    if not agency_id:
        raise _Failed("agency (--agency): an agency id is required", EXIT_INVALID)
    buffer = io.StringIO()
    async with _database(settings) as pool:
        receives = await pool.fetchval(
            "SELECT receives_contact_details FROM agencies WHERE id = $1", agency_id
        )
        contacts = await temporal_contacts(settings) if receives else None
        try:
            summary = await export_placements(pool, agency_id, buffer, contacts)
        except AgencyExportError as error:
            raise _Failed(f"error: {error}") from None
    out = args.out or f"{agency_id}-placements.csv"
    if out == "-":
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
        report = sys.stderr
    else:
        _write_private(Path(out), buffer.getvalue())
        report = sys.stdout
    print(_describe(out, summary), file=report)
    for loan_id in summary.contacts_missing:
        print(
            f"warning: loan {loan_id}: contact details not found in Temporal (cells left empty)",
            file=sys.stderr,
        )
    return EXIT_OK


def _describe(out: str, summary: ExportSummary) -> str:
    contacts = " with borrower name and phone" if summary.contact_details else ", no borrower contact data"
    return f"wrote {out}: {summary.rows} active placement(s) of {summary.agency_id}{contacts}"


async def temporal_contacts(settings: Settings) -> ContactLookup:
    """Borrower name and phone by loan id, from the input of the loan's workflow (its latest run)."""
    try:
        client = await connect(settings)
    except TemporalUnreachable as error:
        raise _Failed(
            f"error: this agency receives contact details, read from the loans' workflows: {error}"
        ) from None

    async def lookup(loan_id: str) -> tuple[str, str] | None:
        handle = client.get_workflow_handle(workflow_id(loan_id))
        try:
            async for event in handle.fetch_history_events():
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                [started] = await client.data_converter.decode(payloads, [CollectionInput])
                borrower = started.loan.borrower
                return borrower.name, borrower.phone
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise _Failed(f"error: Temporal refused the history of {loan_id}: {error.message}") from None
        return None

    return lookup


def _write_private(path: Path, text: str) -> None:
    """Write through a temporary file (mode 0600: it may hold borrower data) and rename into place."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise _Failed(f"error: cannot write {path}: {error.strerror or error}") from error
