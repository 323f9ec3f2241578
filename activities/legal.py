"""Legal stage: the lawyer's letter (律师函) stored once per key, and litigation referrals.

The letter is rendered by activities/lawyer_letter.py (deterministic PDF bytes, embedded CJK font); this
module validates the request, stores the document once per idempotency key, lists and fetches documents,
and files litigation referrals that cite only the loan's own documents.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities import contracts
from activities.contracts import (
    LawyerLetterReceipt,
    LawyerLetterRequest,
    LitigationReferralReceipt,
    LitigationReferralRequest,
)
from activities.db import Connection, find_by_key, insert_once
from activities.errors import (
    invalid,
    permanent,
    rejected_data_is_permanent,
    require_currency,
    require_non_negative,
    require_same_loan,
)
from activities.lawyer_letter import CJK_FONT as CJK_FONT  # re-exported: older imports
from activities.lawyer_letter import CJK_FONT_PACKAGE as CJK_FONT_PACKAGE
from activities.lawyer_letter import cjk_font as cjk_font
from activities.lawyer_letter import law_firm_name
from activities.lawyer_letter import render_lawyer_letter as render_lawyer_letter

# What fits the addressee block of a letter (and a window envelope).
_ADDRESS_MAX_LINES = 8
_ADDRESS_MAX_CHARS = 400


def _validate_letter(request: LawyerLetterRequest) -> None:
    require_currency(request.currency)
    require_non_negative(
        amount_overdue_minor=request.amount_overdue_minor,
        principal_outstanding_minor=request.principal_outstanding_minor,
        dpd=request.dpd,
    )
    if request.respond_by < request.issued_on:
        raise invalid(f"respond_by: {request.respond_by} is before issued_on {request.issued_on}")
    if not request.borrower_name.strip():
        raise invalid("borrower_name: must not be empty")
    if request.postal_address is not None:
        lines = [line for line in request.postal_address.splitlines() if line.strip()]
        if not lines:
            raise invalid("postal_address: must not be empty when given (None: no address)")
        if len(lines) > _ADDRESS_MAX_LINES or len(request.postal_address) > _ADDRESS_MAX_CHARS:
            raise invalid(
                f"postal_address: at most {_ADDRESS_MAX_LINES} lines and {_ADDRESS_MAX_CHARS} characters"
            )
    if any(reminder.sent_on > request.issued_on for reminder in request.reminders):
        raise invalid("reminders: a reminder is dated after the letter's issued_on")


async def generate_lawyer_letter(pool: asyncpg.Pool, request: LawyerLetterRequest) -> LawyerLetterReceipt:
    """Render the letter and store it once; a repeated key returns the stored document without rendering."""
    _validate_letter(request)
    row, duplicate = await store_document_once(
        pool,
        idempotency_key=request.idempotency_key,
        loan_id=request.loan_id,
        kind="lawyer_letter",
        locale=request.locale,
        render=lambda: render_lawyer_letter(request, law_firm=law_firm_name()),
        what="lawyer's letter",
    )
    return _letter_receipt(row, request, duplicate=duplicate)


async def store_document_once(
    pool: asyncpg.Pool,
    *,
    idempotency_key: str,
    loan_id: str,
    kind: str,
    locale: str,
    render: Callable[[], bytes],
    what: str,
) -> tuple[asyncpg.Record, bool]:
    """A legal document stored once per key: (row, duplicate). A repeated key returns the stored row without
    rendering again; rendering is CPU work, run in a thread so other activities' heartbeats keep going."""
    async with pool.acquire() as connection:
        existing = await find_by_key(connection, "legal_documents", idempotency_key)
    if existing is not None:
        return existing, True
    content = await asyncio.to_thread(render)
    async with pool.acquire() as connection:
        with rejected_data_is_permanent(what):
            return await insert_once(
                connection,
                "legal_documents",
                {
                    "idempotency_key": idempotency_key,
                    "loan_id": loan_id,
                    "kind": kind,
                    "locale": locale,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size_bytes": len(content),
                    "content": content,
                },
            )


def _letter_receipt(
    row: asyncpg.Record, request: LawyerLetterRequest, *, duplicate: bool
) -> LawyerLetterReceipt:
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "lawyer's letter")
    return LawyerLetterReceipt(
        document_id=str(row["id"]), sha256=row["sha256"], size_bytes=row["size_bytes"], duplicate=duplicate
    )


@dataclass(frozen=True)
class LegalDocument:
    document_id: str
    loan_id: str
    kind: str
    locale: str
    content_type: str
    sha256: str
    content: bytes


async def fetch_document(pool: asyncpg.Pool, document_id: str) -> LegalDocument | None:
    """A stored document by id (for the admin UI's download link); None when there is no such document."""
    try:
        key = uuid.UUID(document_id)
    except ValueError:
        return None
    async with pool.acquire() as connection:
        row = await connection.fetchrow("SELECT * FROM legal_documents WHERE id = $1", key)
    if row is None or row["content"] is None:  # erased (privacy/erasure.py): only its hash is kept
        return None
    return LegalDocument(
        document_id=str(row["id"]),
        loan_id=row["loan_id"],
        kind=row["kind"],
        locale=row["locale"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        content=bytes(row["content"]),
    )


@dataclass(frozen=True)
class DocumentSummary:
    """A stored document without its bytes, with the registered-mail dispatch if it went out."""

    document_id: str
    loan_id: str
    kind: str
    locale: str
    sha256: str
    size_bytes: int
    created_at: datetime
    tracking_reference: str | None


async def list_documents(pool: asyncpg.Pool, loan_id: str) -> list[DocumentSummary]:
    """A loan's documents, oldest first (for `python -m starter documents list` and the admin UI)."""
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            """
            SELECT d.id, d.loan_id, d.kind, d.locale, d.sha256, d.size_bytes, d.created_at,
                   (SELECT string_agg(x.tracking_reference, ', ' ORDER BY x.created_at)
                    FROM legal_dispatches x WHERE x.document_id = d.id) AS tracking_reference
            FROM legal_documents d
            WHERE d.loan_id = $1
            ORDER BY d.created_at, d.id
            """,
            loan_id,
        )
    return [
        DocumentSummary(
            document_id=str(row["id"]),
            loan_id=row["loan_id"],
            kind=row["kind"],
            locale=row["locale"],
            sha256=row["sha256"],
            size_bytes=row["size_bytes"],
            created_at=row["created_at"],
            tracking_reference=row["tracking_reference"],
        )
        for row in rows
    ]


# -- litigation ----------------------------------------------------------------------------------------------


async def refer_to_litigation(
    pool: asyncpg.Pool, request: LitigationReferralRequest
) -> LitigationReferralReceipt:
    """File the referral once: the loan's own documents, the ledger summary, and whether to ask the court
    for property preservation (财产保全). A repeated key returns the first case."""
    require_currency(request.currency)
    require_non_negative(
        amount_overdue_minor=request.amount_overdue_minor,
        principal_outstanding_minor=request.principal_outstanding_minor,
        dpd=request.dpd,
    )
    async with pool.acquire() as connection:
        await _require_documents(connection, request)
        with rejected_data_is_permanent("litigation referral"):
            row, duplicate = await insert_once(
                connection,
                "litigation_referrals",
                {
                    "idempotency_key": request.idempotency_key,
                    "loan_id": request.loan_id,
                    "currency": request.currency,
                    "amount_overdue_minor": request.amount_overdue_minor,
                    "principal_outstanding_minor": request.principal_outstanding_minor,
                    "dpd": request.dpd,
                    "document_ids": list(request.document_ids),
                    "summary": request.summary,
                    "property_preservation": request.property_preservation,
                },
            )
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "litigation referral")
    return LitigationReferralReceipt(case_id=str(row["id"]), duplicate=duplicate)


async def _require_documents(connection: Connection, request: LitigationReferralRequest) -> None:
    """Every document id must be a stored document of this loan: a court file never cites a missing paper."""
    ids: list[uuid.UUID] = []
    for document_id in request.document_ids:
        try:
            ids.append(uuid.UUID(document_id))
        except ValueError:
            raise permanent(
                contracts.UNKNOWN_DOCUMENT, f"document_ids: {document_id!r} is not a document id"
            ) from None
    found = {
        str(r["id"])
        for r in await connection.fetch(
            "SELECT id FROM legal_documents WHERE loan_id = $1 AND id = ANY($2::uuid[])", request.loan_id, ids
        )
    }
    missing = [str(i) for i in ids if str(i) not in found]
    if missing:
        raise permanent(
            contracts.UNKNOWN_DOCUMENT,
            f"document_ids: {', '.join(missing)} not found among loan {request.loan_id}'s documents",
        )
