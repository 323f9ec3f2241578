"""The key ring: settings, clear errors for a bad file, the dev file of `make run`, the keys CLI, rewrap."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

from privacy import keys as keys_cli
from privacy.codec import EncryptionCodec
from privacy.data_keys import rewrap_all
from privacy.keyring import CodecSettings, KeyRing, KeyRingError, ensure_dev_keyring, load_keyring
from stack.settings import Settings

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OVERDUE_CODEC_KEYS", "OVERDUE_CODEC_KEYS_FILE", "OVERDUE_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", 'expected an object {"active"'),
        (json.dumps({"active": "k1"}), "keys: expected a non-empty object"),
        (json.dumps({"active": "k1", "keys": {}}), "keys: expected a non-empty object"),
        (json.dumps({"active": "k1", "keys": {"k1": KEY}, "extra": 1}), "unknown field(s) extra"),
        (json.dumps({"active": "k1", "keys": {"k 1": KEY}}), "key id 'k 1' must be"),
        (json.dumps({"active": "k1", "keys": {"k1": 5}}), "keys.k1: expected a base64 string"),
        (json.dumps({"active": "k1", "keys": {"k1": "not base64!"}}), "keys.k1: not valid base64"),
        (
            json.dumps({"active": "k1", "keys": {"k1": base64.b64encode(bytes(16)).decode()}}),
            "keys.k1: decodes to 16 bytes",
        ),
        (json.dumps({"keys": {"k1": KEY}}), "active: expected the id of one of the keys (k1)"),
        (json.dumps({"active": "k9", "keys": {"k1": KEY}}), "active: key id 'k9' is not in keys (k1)"),
    ],
)
def test_malformed_rings_say_which_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ring.json"
    path.write_text(text)
    with pytest.raises(KeyRingError) as error:
        load_keyring(CodecSettings(codec_keys_file=path))
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert KEY not in str(error.value)  # never the key bytes


def test_environment_wins_over_file_and_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_dev_keyring(tmp_path)
    from_env = KeyRing(active="env", keys={"env": bytes(32)})
    monkeypatch.setenv("OVERDUE_CODEC_KEYS", from_env.to_json())
    monkeypatch.setenv("OVERDUE_STATE_DIR", str(tmp_path))
    assert load_keyring().active_key_id == "env"
    monkeypatch.delenv("OVERDUE_CODEC_KEYS")
    assert load_keyring().key_ids == ["k1"]  # the state dir's file
    with pytest.raises(KeyRingError, match="no payload encryption keys"):
        load_keyring(CodecSettings(state_dir=tmp_path / "empty"))


def test_dev_keyring_is_created_once_private_and_not_when_keys_are_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_dev_keyring(tmp_path)
    assert path == tmp_path / "codec-keys.json" and path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    assert ensure_dev_keyring(tmp_path) == path and path.read_text() == first  # kept: old payloads readable
    monkeypatch.setenv("OVERDUE_CODEC_KEYS_FILE", str(tmp_path / "prod.json"))
    assert ensure_dev_keyring(tmp_path / "other") is None
    assert not (tmp_path / "other" / "codec-keys.json").exists()


def test_keys_cli_rotate_show_add_activate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ring.json"
    assert keys_cli.main(["--file", str(path), "rotate"]) == 0
    first = KeyRing.parse(path.read_text(), "t")
    assert keys_cli.main(["--file", str(path), "rotate"]) == 0
    second = KeyRing.parse(path.read_text(), "t")
    assert second.active_key_id == "k2" and second.keys["k1"] == first.keys["k1"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys_cli.main(["--file", str(path), "add", "--id", "next"]) == 0
    assert KeyRing.parse(path.read_text(), "t").active_key_id == "k2"
    assert keys_cli.main(["--file", str(path), "activate", "next"]) == 0
    capsys.readouterr()
    assert keys_cli.main(["--file", str(path), "show"]) == 0
    shown = capsys.readouterr().out
    assert "active  next" in shown and "keys    k1, k2, next" in shown
    for key in KeyRing.parse(path.read_text(), "t").keys.values():
        assert base64.b64encode(key).decode() not in shown
    before = path.read_text()
    assert keys_cli.main(["--file", str(path), "activate", "nope"]) == 1
    assert "'nope' is not in keys" in capsys.readouterr().err and path.read_text() == before


def test_keys_cli_refuses_to_rotate_a_ring_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OVERDUE_CODEC_KEYS", KeyRing.generate().to_json())
    assert keys_cli.main(["rotate"]) == 1
    assert "OVERDUE_CODEC_KEYS" in capsys.readouterr().err


async def test_rewrap_moves_data_keys_to_the_active_key_and_payloads_still_open(
    own_db_pool: asyncpg.Pool,
) -> None:
    db_pool = own_db_pool  # a database of its own: rewrap touches every row
    old = KeyRing.generate("k1")
    loan_id = f"REWRAP-{uuid.uuid4().hex[:8]}"
    context = WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{loan_id}")
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    [encoded] = await EncryptionCodec(old, db_pool).with_context(context).encode([plain])
    rotated = old.rotated()
    assert await rewrap_all(db_pool, rotated) == 1
    assert await rewrap_all(db_pool, rotated) == 0  # nothing left under k1
    row = await db_pool.fetchrow("SELECT master_key_id FROM loan_data_keys WHERE loan_id = $1", loan_id)
    assert row is not None and row["master_key_id"] == "k2"
    k2_only = KeyRing(active="k2", keys={"k2": rotated.keys["k2"]})  # k1 retired: the loan still opens
    assert await EncryptionCodec(k2_only, db_pool).decode([encoded]) == [plain]
    # A loan first seen after the rotation gets its data key wrapped under k2 straight away.
    new_loan = f"NEW-{uuid.uuid4().hex[:8]}"
    new_context = WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{new_loan}")
    await EncryptionCodec(rotated, db_pool).with_context(new_context).encode([plain])
    row = await db_pool.fetchrow("SELECT master_key_id FROM loan_data_keys WHERE loan_id = $1", new_loan)
    assert row is not None and row["master_key_id"] == "k2"


async def test_connect_without_keys_is_one_clear_line(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    from starter.connect import EncryptionKeysUnavailable, TemporalUnreachable, connect

    target = local_env.client.service_client.config.target_host
    with pytest.raises(TemporalUnreachable) as error:
        await connect(Settings(temporal_address=target, state_dir=tmp_path))
    assert isinstance(error.value, EncryptionKeysUnavailable)
    assert str(error.value).startswith(
        "payload encryption: no payload encryption keys: set OVERDUE_CODEC_KEYS_FILE"
    )


async def test_connect_without_a_database_is_one_clear_line(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from starter.connect import EncryptionKeysUnavailable, connect

    ensure_dev_keyring(tmp_path)
    target = local_env.client.service_client.config.target_host
    with pytest.raises(EncryptionKeysUnavailable, match="kept in PostgreSQL: set DATABASE_URL"):
        await connect(Settings(temporal_address=target, state_dir=tmp_path, database_url=None))


async def test_a_cli_client_opens_its_database_on_first_need(
    local_env: WorkflowEnvironment, tmp_path: Path, migrated_db: str
) -> None:
    from starter.connect import connect

    ensure_dev_keyring(tmp_path)
    target = local_env.client.service_client.config.target_host
    client = await connect(Settings(temporal_address=target, state_dir=tmp_path, database_url=migrated_db))
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec) and codec.store is not None
    assert codec.store._pool is None  # nothing opened by connect() itself
    loan_id = f"CLI-{uuid.uuid4().hex[:8]}"
    context = WorkflowSerializationContext(namespace="default", workflow_id=f"collection-{loan_id}")
    [encoded] = await client.data_converter.with_context(context).encode(["x"])
    assert "data-key-id" in encoded.metadata
    assert await client.data_converter.decode([encoded]) == ["x"]
    await (await codec.store.pool()).close()
