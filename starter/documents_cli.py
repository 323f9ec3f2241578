"""`python -m starter documents`: list a loan's legal documents and download one, from PostgreSQL.

    python -m starter documents list LOAN_ID [--json]
    python -m starter documents get DOCUMENT_ID [--out letter.pdf]   (--out -: to standard output)

The database is DATABASE_URL, or else the embedded PostgreSQL of `make run` (in OVERDUE_STATE_DIR): attached
to when it runs, otherwise started for the command and stopped again. `get` writes the stored bytes only
when they still hash to the SHA-256 recorded at generation, so the copy is the one the borrower was sent.

Exit codes: 0 done; 1 no such document, database unreachable or a stored copy that fails its hash;
2 invalid input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC
from pathlib import Path

import asyncpg

from activities.legal import DocumentSummary, LegalDocument, fetch_document, list_documents
from stack.settings import Settings
from starter.api import InvalidRequest, check_loan_id
from starter.database import CommandFailed, command_database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


_Failed = CommandFailed


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    documents = commands.add_parser(
        "documents", help="list a loan's legal documents (lawyer's letters) and download one"
    )
    actions = documents.add_subparsers(dest="documents_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="a loan's documents, oldest first")
    listing.add_argument("loan_id", metavar="LOAN_ID")
    listing.add_argument("--json", action="store_true", help="one JSON object per document, full SHA-256")
    get = actions.add_parser("get", help="write a stored document to a file (checked against its SHA-256)")
    get.add_argument("document_id", metavar="DOCUMENT_ID")
    get.add_argument(
        "--out", metavar="PATH", help="where to write it ('-': standard output; default LOAN_KIND_ID.pdf)"
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.documents_command == "list":
            return await _list(args, settings)
        return await _get(args, settings)
    except _Failed as error:
        print(str(error), file=sys.stderr)
        return error.code


def _database(settings: Settings) -> AbstractAsyncContextManager[asyncpg.Pool]:
    return command_database(settings, missing_schema="has no legal documents tables")


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        loan_id = check_loan_id(args.loan_id)
    except InvalidRequest as error:
        raise _Failed(f"loan_id (LOAN_ID): {error}", EXIT_INVALID) from None
    async with _database(settings) as pool:
        documents = await list_documents(pool, loan_id)
    if args.json:
        for document in documents:
            print(json.dumps(_as_json(document), ensure_ascii=False))
        return EXIT_OK
    if not documents:
        print(f"loan {loan_id} has no documents")
        return EXIT_OK
    print(format_documents(documents))
    return EXIT_OK


def _as_json(document: DocumentSummary) -> dict[str, object]:
    return {
        "document_id": document.document_id,
        "loan_id": document.loan_id,
        "kind": document.kind,
        "locale": document.locale,
        "size_bytes": document.size_bytes,
        "sha256": document.sha256,
        "created_at": document.created_at.isoformat(),
        "tracking_reference": document.tracking_reference,
    }


def format_documents(documents: list[DocumentSummary]) -> str:
    """A table an operator reads in a terminal: one line per document."""
    header = ("DOCUMENT ID", "KIND", "LOCALE", "BYTES", "CREATED (UTC)", "SHA-256", "REGISTERED MAIL")
    rows = [
        (
            d.document_id,
            d.kind,
            d.locale,
            f"{d.size_bytes:,}",
            f"{d.created_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            d.sha256[:16] + "…",
            d.tracking_reference or "-",
        )
        for d in documents
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


async def _get(args: argparse.Namespace, settings: Settings) -> int:
    try:
        document_id = str(uuid.UUID(args.document_id))
    except ValueError:
        raise _Failed(
            f"document_id (DOCUMENT_ID): not a document id (a UUID), got {args.document_id!r}", EXIT_INVALID
        ) from None
    async with _database(settings) as pool:
        document = await fetch_document(pool, document_id)
    if document is None:
        raise _Failed(f"error: no document {document_id}")
    digest = hashlib.sha256(document.content).hexdigest()
    if digest != document.sha256:
        raise _Failed(
            f"error: document {document_id} is damaged: its bytes hash to {digest}, "
            f"not the recorded {document.sha256}; nothing written"
        )
    out = args.out or _default_name(document)
    if out == "-":
        sys.stdout.buffer.write(document.content)
        sys.stdout.buffer.flush()
        report = sys.stderr
    else:
        _write(Path(out), document.content)
        report = sys.stdout
    print(
        f"wrote {out}: {document.kind} ({document.locale}) of loan {document.loan_id}, "
        f"{len(document.content):,} bytes, sha256 {digest}",
        file=report,
    )
    return EXIT_OK


def _default_name(document: LegalDocument) -> str:
    extension = ".pdf" if document.content_type == "application/pdf" else ".bin"
    return f"{document.loan_id}_{document.kind}_{document.document_id[:8]}{extension}"


def _write(path: Path, content: bytes) -> None:
    """Write through a temporary file and rename, so a failed write never leaves half a PDF at `path`."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise _Failed(f"error: cannot write {path}: {error.strerror or error}") from error
