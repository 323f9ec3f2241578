"""Registered mail (挂号信) for the lawyer's letter: the adapter the dispatch activity calls, and its sandbox.

A carrier adapter posts a stored legal document to the borrower and returns the carrier's tracking reference
(a UPU S10 number such as RR123456785CN). Adapters are idempotent on the request's key: a retried activity
gets the first tracking reference back and nothing is posted twice.

`SandboxRegisteredMail` (the default) posts nothing: it records the dispatch in `legal_dispatches` with a
tracking reference derived from the idempotency key alone, so the same key always gives the same reference.
A real carrier (China Post / EMS, Royal Mail, USPS) plugs in as another `RegisteredMailAdapter`:
`RegisteredMail(pool, adapter=...)`.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Protocol

import asyncpg
import structlog
from temporalio import activity

from activities import contracts
from activities.contracts import RegisteredMailReceipt, RegisteredMailRequest
from activities.db import Connection, find_by_key, insert_once
from activities.errors import permanent, rejected_data_is_permanent, require_same_loan
from activities.heartbeats import heartbeating
from observability import activity_metrics

log = structlog.get_logger("overdue.activities")

REGISTERED = "RR"  # S10 service indicator of registered letter post
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_TRACKING_UNIQUE = "legal_dispatches_tracking_reference_key"
# Different keys may hash to one 8-digit serial (1 in 10^8); the sandbox then takes the key's next candidate.
_MAX_CANDIDATES = 8


class RegisteredMailAdapter(Protocol):
    """Posts a stored legal document by registered mail. Idempotent on `request.idempotency_key`."""

    async def dispatch(self, request: RegisteredMailRequest) -> RegisteredMailReceipt: ...


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial number."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError(f"an S10 serial has 8 digits, got {serial!r}")
    remainder = 11 - sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(remainder, remainder)


def tracking_reference(
    idempotency_key: str, *, service: str = REGISTERED, country: str = "CN", candidate: int = 0
) -> str:
    """An S10 tracking reference derived from the idempotency key: same key, same reference."""
    seed = idempotency_key if candidate == 0 else f"{idempotency_key}#{candidate}"
    serial = f"{int.from_bytes(hashlib.sha256(seed.encode('utf-8')).digest()[:8], 'big') % 10**8:08d}"
    return f"{service}{serial}{s10_check_digit(serial)}{country}"


def is_tracking_reference(text: str) -> bool:
    """Well formed S10 (two letters, 8 digits, the right check digit, two letters)."""
    return (
        len(text) == 13
        and text[:2].isalpha()
        and text[:2].isupper()
        and text[2:11].isdigit()
        and text[11:].isalpha()
        and text[11:].isupper()
        and s10_check_digit(text[2:10]) == int(text[10])
    )


async def require_loan_document(connection: Connection, loan_id: str, document_id: str) -> None:
    """The document must be a stored document of this loan: never post another borrower's letter."""
    try:
        key = uuid.UUID(document_id)
    except ValueError:
        raise permanent(
            contracts.UNKNOWN_DOCUMENT, f"document_id: {document_id!r} is not a document id"
        ) from None
    owner = await connection.fetchval("SELECT loan_id FROM legal_documents WHERE id = $1", key)
    if owner != loan_id:
        raise permanent(
            contracts.UNKNOWN_DOCUMENT,
            f"document_id: {document_id} not found among loan {loan_id}'s documents",
        )


class SandboxRegisteredMail:
    """Records dispatches in `legal_dispatches` without posting anything (demo, tests, `make run`)."""

    carrier = "sandbox"

    def __init__(self, pool: asyncpg.Pool, *, country: str = "CN") -> None:
        self._pool = pool
        self._country = country

    async def dispatch(self, request: RegisteredMailRequest) -> RegisteredMailReceipt:
        async with self._pool.acquire() as connection:
            existing = await find_by_key(connection, "legal_dispatches", request.idempotency_key)
            if existing is not None:
                return _receipt(existing, request, duplicate=True)
            await require_loan_document(connection, request.loan_id, request.document_id)
            for candidate in range(_MAX_CANDIDATES):
                reference = tracking_reference(
                    request.idempotency_key, country=self._country, candidate=candidate
                )
                with rejected_data_is_permanent("registered mail dispatch"):
                    try:
                        row, duplicate = await insert_once(
                            connection,
                            "legal_dispatches",
                            {
                                "idempotency_key": request.idempotency_key,
                                "loan_id": request.loan_id,
                                "document_id": uuid.UUID(request.document_id),
                                "locale": request.locale,
                                "carrier": self.carrier,
                                "tracking_reference": reference,
                            },
                        )
                    except asyncpg.UniqueViolationError as error:
                        if error.constraint_name != _TRACKING_UNIQUE:
                            raise
                        continue  # another key's reference: take this key's next candidate
                return _receipt(row, request, duplicate=duplicate)
        raise RuntimeError(f"no free tracking reference among {_MAX_CANDIDATES} candidates; retrying")


def _receipt(
    row: asyncpg.Record, request: RegisteredMailRequest, *, duplicate: bool
) -> RegisteredMailReceipt:
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "registered mail dispatch")
    return RegisteredMailReceipt(tracking_reference=row["tracking_reference"], duplicate=duplicate)


class RegisteredMail:
    """The `dispatch_registered_mail` activity; `adapter=None` uses the sandbox."""

    def __init__(self, pool: asyncpg.Pool, adapter: RegisteredMailAdapter | None = None) -> None:
        self._adapter = adapter if adapter is not None else SandboxRegisteredMail(pool)

    @activity.defn(name=contracts.DISPATCH_REGISTERED_MAIL)
    @heartbeating
    async def dispatch_registered_mail(self, request: RegisteredMailRequest) -> RegisteredMailReceipt:
        receipt = await self._adapter.dispatch(request)
        activity_metrics.mail_dispatched(first_time=not receipt.duplicate)
        fields: dict[str, object] = {"loan_id": request.loan_id}
        if activity.in_activity():
            info = activity.info()
            fields.update(activity=info.activity_type, attempt=info.attempt, workflow_id=info.workflow_id)
        log.info(
            "registered_mail_dispatched",
            **fields,
            document_id=request.document_id,
            tracking_reference=receipt.tracking_reference,
            duplicate=receipt.duplicate,
        )
        return receipt
