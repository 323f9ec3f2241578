"""The payload codec: AES-256-GCM round trips, tampering refused, no personal data in what is stored."""

from __future__ import annotations

import base64
import json
import uuid

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext

from privacy.codec import ENCODING, CodecError, EncryptionCodec, KeyDestroyed, loan_of
from privacy.data_keys import DataKeyUnavailable, destroy_loan_key
from privacy.keyring import KeyRing

BORROWER = {"name": "Zhang Weiwei", "phone": "+8613912345678", "email": "zhang.weiwei@example.com"}


def _plain(text: str = json.dumps(BORROWER)) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def _loan_codec(codec: EncryptionCodec, loan_id: str) -> EncryptionCodec:
    return codec.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{loan_id}")
    )


def _pii_in(payload: Payload) -> list[str]:
    stored = payload.SerializeToString()
    return [value for value in BORROWER.values() if value.encode() in stored]


@pytest.mark.parametrize(
    ("workflow_id", "loan"),
    [
        ("collection-L-1", "L-1"),
        ("collection-L-1/2026-03-01/legal", "L-1"),
        ("collection-L-1/2026-03-01/placement-2", "L-1"),
        ("collection-L-1.legal", "L-1.legal"),  # a loan id of its own, not L-1's child
        ("xcollection-L-1", None),
        ("collection-", None),
        ("collection-L-1/", None),
        ("collection-L-1/legal", None),
        ("collection-L-1/2026-03-01/legal/extra", None),
        ("reports-L-1", None),
        (None, None),
    ],
)
def test_loan_of_workflow_ids(workflow_id: str | None, loan: str | None) -> None:
    assert loan_of(workflow_id) == loan


async def test_round_trip_with_the_master_key_without_context() -> None:
    codec = EncryptionCodec(KeyRing.generate("k1"))
    [encoded] = await codec.encode([_plain()])
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata["encryption-key-id"] == b"k1"
    assert "data-key-id" not in encoded.metadata
    assert _pii_in(encoded) == []
    [decoded] = await codec.decode([encoded])
    assert decoded == _plain()


async def test_two_encryptions_of_the_same_payload_differ() -> None:
    codec = EncryptionCodec(KeyRing.generate())
    first, second = await codec.encode([_plain(), _plain()])
    assert first.data != second.data  # a random nonce each: equal borrowers do not show as equal bytes


async def test_tampered_data_or_metadata_is_refused() -> None:
    ring = KeyRing(active="k1", keys={"k1": bytes(32), "k2": bytes(32)})  # same bytes, different ids
    codec = EncryptionCodec(ring)
    [encoded] = await codec.encode([_plain()])
    flipped = bytearray(encoded.data)
    flipped[-1] ^= 1
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([Payload(metadata=encoded.metadata, data=bytes(flipped))])
    # Relabelled to a key with identical bytes: the associated data binds the key id, so it still fails.
    relabelled = Payload(metadata={**encoded.metadata, "encryption-key-id": b"k2"}, data=encoded.data)
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([relabelled])
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([Payload(metadata=encoded.metadata, data=b"short")])


async def test_plaintext_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(KeyRing.generate())
    assert await codec.decode([_plain()]) == [_plain()]


async def test_rotation_old_payloads_decode_and_new_ones_use_the_new_key() -> None:
    old = KeyRing.generate("k1")
    [written_with_k1] = await EncryptionCodec(old).encode([_plain()])
    rotated = old.rotated()
    assert rotated.active_key_id == "k2" and rotated.key_ids == ["k1", "k2"]
    codec = EncryptionCodec(rotated)
    assert await codec.decode([written_with_k1]) == [_plain()]
    [written_now] = await codec.encode([_plain()])
    assert written_now.metadata["encryption-key-id"] == b"k2"
    # A ring that lost k1 says which key is missing instead of failing obscurely.
    k2_only = KeyRing(active="k2", keys={"k2": rotated.keys["k2"]})
    with pytest.raises(CodecError, match="'k1' is not in the key ring"):
        await EncryptionCodec(k2_only).decode([written_with_k1])


async def test_a_loan_without_a_database_is_a_clear_error() -> None:
    codec = _loan_codec(EncryptionCodec(KeyRing.generate()), "L-1")
    with pytest.raises(DataKeyUnavailable, match="DATABASE_URL"):
        await codec.encode([_plain()])


async def test_loan_payloads_use_the_loans_data_key(db_pool: asyncpg.Pool) -> None:
    loan_id = f"CODEC-{uuid.uuid4().hex[:8]}"
    codec = EncryptionCodec(KeyRing.generate(), db_pool)
    parent = _loan_codec(codec, loan_id)
    child = codec.with_context(
        ActivitySerializationContext(
            namespace="default",
            activity_id="1",
            activity_type="send",
            activity_task_queue="q",
            workflow_id=f"collection-{loan_id}/2026-03-01/legal",
            workflow_type="LegalCase",
            is_local=False,
        )
    )
    [from_parent] = await parent.encode([_plain()])
    [from_child] = await child.encode([_plain()])
    row = await db_pool.fetchrow("SELECT * FROM loan_data_keys WHERE loan_id = $1", loan_id)
    assert row is not None
    assert (
        from_parent.metadata["data-key-id"]
        == from_child.metadata["data-key-id"]
        == str(row["data_key_id"]).encode()
    )
    assert "encryption-key-id" not in from_parent.metadata
    # Metadata names a random key id only: nothing of the loan or the borrower.
    for payload in (from_parent, from_child):
        assert loan_id.encode() not in payload.SerializeToString()
        assert _pii_in(payload) == []
    # A codec without context (a codec server's) decodes from the payload alone.
    fresh = EncryptionCodec(KeyRing(active="k1", keys=codec.keys.keys), db_pool)  # type: ignore[attr-defined]
    assert await fresh.decode([from_parent, from_child]) == [_plain(), _plain()]


async def test_destroyed_key_stops_decoding_and_encoding(db_pool: asyncpg.Pool) -> None:
    loan_id = f"ERASE-{uuid.uuid4().hex[:8]}"
    ring = KeyRing.generate()
    codec = EncryptionCodec(ring, db_pool)
    [encoded] = await _loan_codec(codec, loan_id).encode([_plain()])
    other = EncryptionCodec(ring, db_pool)
    assert await other.decode([encoded]) == [_plain()]  # cached in `other` now
    assert await destroy_loan_key(db_pool, loan_id) is True
    assert await destroy_loan_key(db_pool, loan_id) is False  # already destroyed
    for reader in (codec, other, EncryptionCodec(ring, db_pool)):
        with pytest.raises(KeyDestroyed, match="destroyed"):
            await reader.decode([encoded])
    with pytest.raises(KeyDestroyed):
        await _loan_codec(codec, loan_id).encode([_plain()])
    row = await db_pool.fetchrow(
        "SELECT wrapped_key, destroyed_at FROM loan_data_keys WHERE loan_id = $1", loan_id
    )
    assert row is not None and row["wrapped_key"] is None and row["destroyed_at"] is not None


async def test_concurrent_first_use_creates_one_key(db_pool: asyncpg.Pool) -> None:
    import asyncio

    loan_id = f"RACE-{uuid.uuid4().hex[:8]}"
    ring = KeyRing.generate()
    codecs = [_loan_codec(EncryptionCodec(ring, db_pool), loan_id) for _ in range(6)]
    results = await asyncio.gather(*(c.encode([_plain()]) for c in codecs))
    assert len({r[0].metadata["data-key-id"] for r in results}) == 1
    count = await db_pool.fetchval("SELECT count(*) FROM loan_data_keys WHERE loan_id = $1", loan_id)
    assert count == 1


def test_keyring_json_round_trip() -> None:
    ring = KeyRing.generate("k1").rotated()
    again = KeyRing.parse(ring.to_json(), "test")
    assert again == ring and base64.b64decode(json.loads(ring.to_json())["keys"]["k2"]) == ring.keys["k2"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"encoding": ENCODING}, "names no key"),
        ({"encoding": ENCODING, "data-key-id": b"L-1"}, "data-key-id is not a uuid"),
        ({"encoding": ENCODING, "encryption-key-id": b"\xff"}, "failed authentication"),
    ],
)
async def test_malformed_encrypted_payloads_are_refused_clearly(
    metadata: dict[str, bytes], message: str
) -> None:
    with pytest.raises(CodecError, match=message):
        await EncryptionCodec(KeyRing.generate()).decode([Payload(metadata=metadata, data=bytes(40))])
