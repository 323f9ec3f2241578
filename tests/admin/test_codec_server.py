"""The codec server (admin/codec_server.py) over ASGI: who may decode, what the audit keeps, CORS for the Web
UI's origin only, and the protocol's JSON shape both ways."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from google.protobuf import json_format
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec, WorkflowSerializationContext

from admin.app import Services, create_app
from admin.codec_server import ERASED_NOTE, CodecServerSettings, ui_codec_endpoint
from privacy.codec import ENCODING, EncryptionCodec
from privacy.data_keys import destroy_loan_key
from privacy.keyring import KeyRing
from stack.embedded import TemporalDevServer, resolve_temporal
from stack.run import StackSettings
from starter.api import CollectionsStarter
from tests.admin.conftest import SETTINGS, MakeUser, login

WEB_UI = "http://localhost:8233"
SECRET = "Zhang Wei Test"
KEYS = KeyRing.generate("codec-server-test")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def json_payload(value: Any) -> dict[str, Any]:
    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(value).encode())}


async def encrypted(codec: PayloadCodec, value: Any) -> dict[str, Any]:
    """`value` as the product's codec writes it (the master key: no loan context)."""
    inner = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())
    [payload] = await codec.encode([inner])
    return dict(json_format.MessageToDict(payload))


def data_of(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


@pytest.fixture
def codec(db_pool: asyncpg.Pool) -> EncryptionCodec:
    return EncryptionCodec(KEYS, db_pool)


@pytest.fixture
def app(db_pool: asyncpg.Pool, starter: CollectionsStarter, codec: EncryptionCodec) -> FastAPI:
    app = create_app(SETTINGS, services=Services(db_pool, starter))
    app.state.payload_codec = codec
    app.state.codec_settings = CodecServerSettings(web_ui_origin=WEB_UI, codec_max_body_bytes=2048)
    return app


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as opened:
        yield opened


async def decode(client: httpx.AsyncClient, *payloads: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(
        "/codec/decode",
        json={"payloads": list(payloads)},
        headers={"X-Namespace": "default", "Origin": WEB_UI, **headers},
    )


async def audit_rows(db_pool: asyncpg.Pool, since: int) -> list[asyncpg.Record]:
    return await db_pool.fetch("SELECT * FROM codec_audit WHERE id > $1 ORDER BY id", since)


async def last_audit_id(db_pool: asyncpg.Pool) -> int:
    return int(await db_pool.fetchval("SELECT coalesce(max(id), 0) FROM codec_audit"))


async def test_decode_without_a_login_is_refused_and_audited(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, codec: EncryptionCodec
) -> None:
    before = await last_audit_id(db_pool)
    response = await decode(client, await encrypted(codec, {"name": SECRET}))
    assert response.status_code == 401
    assert SECRET not in response.text
    # the Web UI can read the refusal (and show the ciphertext) because its origin is allowed
    assert response.headers["access-control-allow-origin"] == WEB_UI
    [row] = await audit_rows(db_pool, before)
    assert (row["operation"], row["outcome"], row["reason"]) == ("decode", "refused", "not logged in")
    assert (row["user_id"], row["namespace"], row["client_address"]) == (None, "default", "203.0.113.7")
    assert row["payload_count"] is None  # an unauthenticated body is never read


async def test_a_collector_may_not_decode(
    client: httpx.AsyncClient, make_user: MakeUser, db_pool: asyncpg.Pool, codec: EncryptionCodec
) -> None:
    collector = await make_user("collector")
    await login(client, collector.username)
    before = await last_audit_id(db_pool)
    response = await decode(client, await encrypted(codec, {"name": SECRET}))
    assert response.status_code == 403
    assert SECRET not in response.text
    [row] = await audit_rows(db_pool, before)
    assert (row["outcome"], row["user_id"], row["username"], row["role"]) == (
        "refused",
        collector.id,
        collector.username,
        "collector",
    )
    assert row["reason"] == "role collector may not decode"


async def test_a_supervisor_decodes_and_the_audit_says_who_when_and_how_many(
    client: httpx.AsyncClient, make_user: MakeUser, db_pool: asyncpg.Pool, codec: EncryptionCodec
) -> None:
    supervisor = await make_user("supervisor")
    await login(client, supervisor.username)
    before = await last_audit_id(db_pool)
    plain = json_payload({"loan_id": "L-1"})  # not encrypted: passes through unchanged
    response = await decode(client, await encrypted(codec, {"name": SECRET}), plain)
    assert response.status_code == 200, response.text
    answer = response.json()["payloads"]
    assert [data_of(p) for p in answer] == [{"name": SECRET}, {"loan_id": "L-1"}]
    assert base64.b64decode(answer[0]["metadata"]["encoding"]) == b"json/plain"
    [row] = await audit_rows(db_pool, before)
    assert (row["operation"], row["outcome"], row["reason"]) == ("decode", "allowed", None)
    assert (row["user_id"], row["username"], row["role"]) == (
        supervisor.id,
        supervisor.username,
        "supervisor",
    )
    assert (row["namespace"], row["payload_count"], row["client_address"]) == ("default", 2, "203.0.113.7")
    assert row["at"] is not None
    # no payload contents anywhere in the row
    assert SECRET not in json.dumps({key: str(value) for key, value in dict(row).items()})


async def test_the_audit_is_append_only(db_pool: asyncpg.Pool) -> None:
    row_id = await db_pool.fetchval(
        "INSERT INTO codec_audit (operation, outcome, reason) VALUES ('decode', 'refused', 'x') RETURNING id"
    )
    try:
        await db_pool.execute("UPDATE codec_audit SET username = 'someone else' WHERE id = $1", row_id)
    except asyncpg.RaiseError as error:
        assert "append-only" in str(error)
    else:
        raise AssertionError("an audit row was rewritten")


async def test_encode_then_decode_round_trips(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await login(client, (await make_user("admin")).username)
    original = json_payload({"approver": "li.na", "note": SECRET})
    encoded = await client.post("/codec/encode", json={"payloads": [original]}, headers={"Origin": WEB_UI})
    assert encoded.status_code == 200, encoded.text
    [ciphertext] = encoded.json()["payloads"]
    assert base64.b64decode(ciphertext["metadata"]["encoding"]) == ENCODING
    assert SECRET.encode() not in base64.b64decode(ciphertext["data"])
    decoded = await decode(client, ciphertext)
    assert decoded.json()["payloads"] == [original]


async def test_a_payload_whose_loan_key_was_erased_decodes_to_a_note_not_a_500(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_pool: asyncpg.Pool,
    codec: EncryptionCodec,
) -> None:
    erased_loan, kept_loan = (f"CODEC-{uuid.uuid4().hex[:8].upper()}" for _ in range(2))
    payloads = []
    for loan_id in (erased_loan, kept_loan):
        of_loan = codec.with_context(WorkflowSerializationContext("default", f"collection-{loan_id}"))
        payloads.append(await encrypted(of_loan, {"name": SECRET, "loan": loan_id}))
    assert await destroy_loan_key(db_pool, erased_loan)
    await login(client, (await make_user("supervisor")).username)
    before = await last_audit_id(db_pool)
    # a codec of its own: the encoding one still holds the erased key in its cache (for up to a minute)
    app.state.payload_codec = EncryptionCodec(KEYS, db_pool)
    response = await decode(client, *payloads)
    assert response.status_code == 200, response.text
    erased, kept = response.json()["payloads"]
    assert data_of(erased) == {"erased": True, "note": ERASED_NOTE}
    assert data_of(kept) == {"name": SECRET, "loan": kept_loan}
    [row] = await audit_rows(db_pool, before)
    assert (row["payload_count"], row["erased_count"]) == (2, 1)


async def test_encode_needs_the_decode_role_too(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await login(client, (await make_user("collector")).username)
    response = await client.post("/codec/encode", json={"payloads": [json_payload(1)]})
    assert response.status_code == 403


async def test_preflight_is_answered_for_the_web_ui_origin_only(client: httpx.AsyncClient) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    allowed = await client.options("/codec/decode", headers={"Origin": WEB_UI, **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == WEB_UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")} >= {
        "content-type",
        "x-namespace",
    }
    assert "POST" in allowed.headers["access-control-allow-methods"]

    for origin in ("http://evil.example", "http://localhost:8234", "null"):
        refused = await client.options("/codec/decode", headers={"Origin": origin, **asked})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers


async def test_another_origin_gets_no_cors_headers_and_no_decode(
    client: httpx.AsyncClient, make_user: MakeUser, db_pool: asyncpg.Pool, codec: EncryptionCodec
) -> None:
    await login(client, (await make_user("supervisor")).username)
    before = await last_audit_id(db_pool)
    response = await decode(client, await encrypted(codec, {"name": SECRET}), Origin="http://evil.example")
    assert response.status_code == 403
    assert SECRET not in response.text
    assert "access-control-allow-origin" not in response.headers
    [row] = await audit_rows(db_pool, before)
    assert (row["outcome"], row["reason"]) == ("refused", "origin not allowed")
    # and never a wildcard, even for the allowed origin
    allowed = await decode(client, await encrypted(codec, {"name": SECRET}))
    assert allowed.headers["access-control-allow-origin"] == WEB_UI


async def test_a_bad_or_large_body_names_the_field_decodes_nothing_and_is_audited(
    client: httpx.AsyncClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    await login(client, (await make_user("supervisor")).username)
    before = await last_audit_id(db_pool)
    for body, field in (
        ({"payload": []}, "payloads"),
        ({"payloads": ["x"]}, "payloads[0]"),
        ({"payloads": [{"data": "not base64 !!"}]}, "payloads[0]"),
    ):
        response = await client.post("/codec/decode", json=body)
        assert response.status_code == 400, body
        assert response.json()["detail"].startswith(f"{field}:")
    not_json = await client.post("/codec/decode", content=b"{}", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 415
    too_large = await client.post("/codec/decode", json={"payloads": [json_payload("x" * 2000)]})
    assert too_large.status_code == 413
    rows = await audit_rows(db_pool, before)
    assert [(row["outcome"], row["reason"], row["payload_count"]) for row in rows] == [
        ("refused", "bad request (400)", None),
        ("refused", "bad request (400)", None),
        ("refused", "bad request (400)", None),
        ("refused", "bad request (415)", None),
        ("refused", "bad request (413)", None),
    ]


# -- make run: the Web UI is started with the codec endpoint ------------------------------------------------


def test_the_default_endpoint_is_the_admin_ui_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OVERDUE_UI_CODEC_ENDPOINT", "OVERDUE_ADMIN_HOST", "OVERDUE_ADMIN_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert ui_codec_endpoint() == "http://localhost:8000/codec"
    monkeypatch.setenv("OVERDUE_ADMIN_PORT", "8100")
    assert ui_codec_endpoint() == "http://localhost:8100/codec"
    monkeypatch.setenv("OVERDUE_UI_CODEC_ENDPOINT", "https://codec.example/codec/")
    assert ui_codec_endpoint() == "https://codec.example/codec"


def test_the_web_ui_origin_is_one_origin() -> None:
    for bad in ("*", "http://localhost:8233/", "localhost:8233", "http://*.example"):
        with pytest.raises(ValidationError, match="web_ui_origin"):
            CodecServerSettings(web_ui_origin=bad)


async def test_make_run_starts_the_web_ui_with_the_codec_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OVERDUE_UI_CODEC_ENDPOINT", "OVERDUE_ADMIN_HOST", "OVERDUE_ADMIN_PORT", "TEMPORAL_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    started: list[list[str]] = []

    async def start(server: TemporalDevServer) -> None:
        started.append(server.command())

    monkeypatch.setattr(TemporalDevServer, "start", start)
    await resolve_temporal(StackSettings(state_dir=tmp_path, temporal_address=None))
    [command] = started
    assert command[command.index("--ui-codec-endpoint") + 1] == "http://localhost:8000/codec"

    started.clear()
    await resolve_temporal(StackSettings(state_dir=tmp_path, temporal_address=None, admin_ui=False))
    assert "--ui-codec-endpoint" not in started[0]  # no admin UI, no codec server to ask
    headless = TemporalDevServer(tmp_path, headless=True, ui_codec_endpoint="http://localhost:8000/codec")
    assert "--ui-codec-endpoint" not in headless.command()
