"""The payload codec: AES-256-GCM on every payload the product's clients and workers write to Temporal.

An encrypted payload is self-describing, so a codec server without any workflow context (the Web UI's) can
decode it:

    metadata  encoding=binary/encrypted
              data-key-id=<uuid>          the loan's data key (privacy/data_keys.py): payloads of a loan's
                                          workflows, children included. A random id, never the loan id.
           or encryption-key-id=<key id>  a master key of the ring: payloads with no loan context
    data      nonce (12 bytes) || ciphertext || tag, of the original Payload (metadata and data) serialised

The GCM associated data binds the codec's metadata (encoding and key id), so a payload moved to another key
id or relabelled does not open. Decoding passes through payloads without `binary/encrypted` (old plaintext
histories replay), and raises `KeyDestroyed` for a payload whose loan key was erased.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from privacy.data_keys import CodecError, DataKeyStore, DataKeyUnavailable, KeyDestroyed, PoolSource
from privacy.keyring import DEFAULT_KEY_CACHE_SECONDS, KeyProvider, UnknownKey, open_sealed, seal

__all__ = ["ENCODING", "CodecError", "DataKeyUnavailable", "EncryptionCodec", "KeyDestroyed", "loan_of"]

ENCODING = b"binary/encrypted"
DATA_KEY_ID = "data-key-id"
MASTER_KEY_ID = "encryption-key-id"
_BOUND = ("encoding", DATA_KEY_ID, MASTER_KEY_ID)

# The loan's own workflow `collection-{loan_id}` and its children `collection-{loan_id}/{cycle}/{child}`
# (workflows/messages.py). Loan ids cannot contain "/" (domain.loan.LoanId), so a full match is unambiguous:
# `collection-A/2026-01-01/legal` is loan A's, while `collection-A/x`, `xcollection-A` or `collection-A/`
# are not loans at all (and get the master key).
_LOAN_WORKFLOW = re.compile(
    r"collection-(?P<loan>[A-Za-z0-9][A-Za-z0-9_.\-]{0,63})(?:/\d{4}-\d{2}-\d{2}/[a-z][a-z0-9-]{0,31})?"
)


def loan_of(workflow_id: str | None) -> str | None:
    """The loan a workflow belongs to, or None for any other workflow id."""
    if not workflow_id:
        return None
    match = _LOAN_WORKFLOW.fullmatch(workflow_id)
    return match.group("loan") if match else None


def _associated_data(metadata: dict[str, bytes]) -> bytes:
    bound = [name.encode() + b"=" + metadata[name] for name in _BOUND if name in metadata]
    return b"overdue/payload/v1\n" + b"\n".join(bound)


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts with the loan's data key when the context names a loan's workflow, else the active master key.

    `pool` (or a coroutine function opening one) reaches `loan_data_keys`; without it, payloads of a loan can
    be neither encrypted nor decrypted (`DataKeyUnavailable` says so), the others still work.
    """

    def __init__(
        self,
        keys: KeyProvider,
        pool: PoolSource | None = None,
        *,
        cache_seconds: float = DEFAULT_KEY_CACHE_SECONDS,
        cache_size: int = 10_000,
        _store: DataKeyStore | None = None,
        _loan_id: str | None = None,
    ) -> None:
        self.keys = keys
        self.store = _store
        if self.store is None and pool is not None:
            self.store = DataKeyStore(pool, keys, ttl=cache_seconds, size=cache_size)
        self.loan_id = _loan_id

    def with_context(self, context: SerializationContext) -> Self:
        """The same keys and cache, encrypting for the loan the context's workflow belongs to (if any)."""
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        loan_id = loan_of(workflow_id)
        if loan_id == self.loan_id:
            return self
        return type(self)(self.keys, _store=self.store, _loan_id=loan_id)

    def _require_store(self) -> DataKeyStore:
        if self.store is None:
            raise DataKeyUnavailable(
                "payloads of a loan are encrypted with its data key, kept in PostgreSQL: this client has no "
                "database (set DATABASE_URL, or run beside `make run`)"
            )
        return self.store

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not payloads:
            return []
        if self.loan_id is not None:
            data_key = await self._require_store().for_loan(self.loan_id)
            metadata = {"encoding": ENCODING, DATA_KEY_ID: str(data_key.id).encode()}
            aad = _associated_data(metadata)
            return [
                Payload(metadata=metadata, data=seal(data_key.key, p.SerializeToString(), aad))
                for p in payloads
            ]
        encoded = []
        for payload in payloads:
            metadata = {"encoding": ENCODING, MASTER_KEY_ID: self.keys.active_key_id.encode()}
            key_id, sealed = await self.keys.wrap(payload.SerializeToString(), _associated_data(metadata))
            # A provider rotating under our feet: say so rather than label the payload with the wrong key.
            if key_id != self.keys.active_key_id:
                raise CodecError(f"key provider encrypted with {key_id!r}, not the active key")
            encoded.append(Payload(metadata=metadata, data=sealed))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [await self._decode_one(p) for p in payloads]

    async def _decode_one(self, payload: Payload) -> Payload:
        metadata = dict(payload.metadata)
        if metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on (or by a plain client): replays as it is
        aad = _associated_data(metadata)
        try:
            if DATA_KEY_ID in metadata:
                try:
                    data_key_id = uuid.UUID(metadata[DATA_KEY_ID].decode())
                except (ValueError, UnicodeDecodeError):
                    raise CodecError("encrypted payload: data-key-id is not a uuid") from None
                data_key = await self._require_store().by_id(data_key_id)
                plaintext = open_sealed(data_key.key, payload.data, aad)
            elif MASTER_KEY_ID in metadata:
                plaintext = await self.keys.unwrap(metadata[MASTER_KEY_ID].decode(), payload.data, aad)
            else:
                raise CodecError("encrypted payload names no key (neither data-key-id nor encryption-key-id)")
        except (InvalidTag, ValueError):  # ValueError: data too short to hold a nonce
            raise CodecError(
                "encrypted payload failed authentication: altered, relabelled, or a different key with the "
                "same id"
            ) from None
        except UnknownKey as error:
            raise CodecError(str(error)) from None
        return Payload.FromString(plaintext)
