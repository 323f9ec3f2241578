"""The codec server: Temporal's remote codec protocol, so the Temporal Web UI shows an authorised operator the
decoded payloads of a history and everyone else the ciphertext.

    POST /codec/decode   {"payloads": [{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}, ...]}
    POST /codec/encode   the same shape both ways

The Web UI (another origin: http://localhost:8233) calls these with `fetch(..., credentials: "include")`, so
the admin UI's own session cookie says who asks: the cookie is SameSite=Lax, and the two origins are the same
*site* (ports do not count), so the browser sends it. Only a logged-in user whose role may decode is served;
anyone else gets 401 (no login) or 403 (role, origin), and the Web UI falls back to showing the ciphertext.
CORS answers only the configured Web UI origin (never `*`, which browsers refuse with credentials anyway), so
no other page in the browser can read a decoded answer. Every request, allowed or refused, is a row of
`codec_audit` (who, when, namespace, how many payloads, client address), never payload contents.

A payload whose per-loan key was destroyed (erasure) decodes to a small JSON note saying so instead of
failing the whole batch; a payload that cannot be decoded for another reason is left as it is (ciphertext).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Error as ProtobufError
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from admin.users import User
from admin.web import optional_user, services_of

log = structlog.get_logger("overdue.admin.codec")

# Roles that may read decoded histories. "operator" is listed for a deployment whose users table has it;
# roles are compared by name, not by rank: a decode right is not implied by other rights.
DECODE_ROLES = frozenset({"supervisor", "admin", "operator"})
ERASED_NOTE = "personal data erased: the key of this payload was destroyed"
ALLOWED_HEADERS = "Content-Type, X-Namespace"


class CodecServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    web_ui_origin: str = Field(
        default="http://localhost:8233",
        description="the Temporal Web UI's origin (scheme://host:port): the one origin CORS lets in",
    )
    ui_codec_endpoint: str | None = Field(
        default=None,
        description="the codec endpoint `make run` gives the Web UI (default: the admin UI's /codec)",
    )
    codec_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="largest request body the codec server reads"
    )

    @field_validator("web_ui_origin")
    @classmethod
    def _one_origin(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest or "*" in rest:
            raise ValueError("one origin such as http://localhost:8233: scheme, host and port, no path, no *")
        return value


def ui_codec_endpoint(settings: CodecServerSettings | None = None) -> str:
    """The endpoint `make run` gives the Web UI: the admin UI's /codec, named by `localhost` like the Web UI
    (http://localhost:8233): the two are then one site, and the admin UI's SameSite=Lax cookie goes along."""
    settings = settings or CodecServerSettings()
    if settings.ui_codec_endpoint:
        return settings.ui_codec_endpoint.rstrip("/")
    from admin.settings import AdminSettings

    admin = AdminSettings()
    host = "localhost" if admin.host in ("127.0.0.1", "localhost", "0.0.0.0") else admin.host
    return f"http://{host}:{admin.port}/codec"


def settings_of(request: Request) -> CodecServerSettings:
    """The app's codec settings (`app.state.codec_settings`, e.g. a test's), else from the environment."""
    found = getattr(request.app.state, "codec_settings", None)
    if not isinstance(found, CodecServerSettings):
        found = CodecServerSettings()
        request.app.state.codec_settings = found
    return found


def codec_of(request: Request) -> PayloadCodec | None:
    """The codec of the admin UI's own Temporal client (the same keys as the workers), unless the app was
    given one (`app.state.payload_codec`). None: encryption is off, payloads pass through unchanged."""
    given = getattr(request.app.state, "payload_codec", None)
    if isinstance(given, PayloadCodec):
        return given
    codec: PayloadCodec | None = services_of(request).starter.client.data_converter.payload_codec
    return codec


def may_decode(user: User) -> bool:
    return user.active and str(user.role) in DECODE_ROLES


# -- the wire format -----------------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A body that is not `{"payloads": [...]}` in JSON, or too large; the message names the field."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_payloads(request: Request) -> list[Payload]:
    """The request's payloads, reading at most `codec_max_body_bytes` (only ever after the login check)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # also what makes a cross-origin call need a preflight, which only the Web UI's origin passes
        raise BadRequest("content-type: application/json expected", 415)
    limit = settings_of(request).codec_max_body_bytes
    declared = request.headers.get("content-length", "")
    body = bytearray()
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"body: larger than {limit} bytes", 413)
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"body: larger than {limit} bytes", 413)
    return parse_payloads(bytes(body))


def parse_payloads(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"body: not JSON ({error.__class__.__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("payloads"), list):
        raise BadRequest('payloads: expected {"payloads": [...]}')
    payloads: list[Payload] = []
    for index, item in enumerate(document["payloads"]):
        if not isinstance(item, dict):
            raise BadRequest(f"payloads[{index}]: expected an object with metadata and data")
        try:
            payloads.append(json_format.ParseDict(item, Payload(), ignore_unknown_fields=True))
        except (json_format.Error, ProtobufError, ValueError, TypeError) as error:
            # protobuf's message names the field and the reason (bad base64, wrong type), not the value
            raise BadRequest(f"payloads[{index}]: {str(error).splitlines()[0][:200]}") from None
    return payloads


def payloads_json(payloads: Sequence[Payload]) -> dict[str, Any]:
    message = Payloads(payloads=list(payloads))
    found: dict[str, Any] = json_format.MessageToDict(message)
    found.setdefault("payloads", [])
    return found


def erased_marker() -> Payload:
    """What the Web UI shows for a payload whose key erasure destroyed: readable, and saying why."""
    note = json.dumps({"erased": True, "note": ERASED_NOTE}).encode()
    return Payload(metadata={"encoding": b"json/plain"}, data=note)


def _is_key_destroyed(error: BaseException) -> bool:
    try:
        from privacy.data_keys import KeyDestroyed
    except ImportError:  # encryption not installed in this checkout: no key can have been destroyed
        return False
    return isinstance(error, KeyDestroyed)


@dataclass
class Decoded:
    payloads: list[Payload]
    erased: int = 0
    undecodable: int = 0


async def decode_each(codec: PayloadCodec, payloads: list[Payload]) -> Decoded:
    """The whole batch in one call when it works; else payload by payload, so one erased or damaged
    payload does not hide the others."""
    try:
        return Decoded(list(await codec.decode(payloads)))
    except Exception:  # retried one by one below, which tells erased from damaged
        pass
    result = Decoded([])
    for payload in payloads:
        try:
            result.payloads.extend(await codec.decode([payload]))
        except Exception as error:  # the Web UI shows the ciphertext rather than a 500
            if _is_key_destroyed(error):
                result.erased += 1
                result.payloads.append(erased_marker())
            else:
                result.undecodable += 1
                result.payloads.append(payload)
                log.warning("codec payload not decodable", error_type=type(error).__name__)
    return result


# -- CORS ----------------------------------------------------------------------------------------------------


def cors_headers(request: Request) -> dict[str, str]:
    """CORS headers for the configured Web UI origin only; nothing for any other origin."""
    origin = request.headers.get("origin")
    if origin is None or origin != settings_of(request).web_ui_origin:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def origin_allowed(request: Request) -> bool:
    """A browser always names the calling page's origin on a cross-origin POST: the Web UI's, or the admin
    UI's own (same origin). No Origin header: not a browser (curl, tests), nothing to protect against."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin in (settings_of(request).web_ui_origin, own)


# -- the audit -----------------------------------------------------------------------------------------------


async def audit(
    request: Request,
    operation: str,
    user: User | None,
    *,
    reason: str | None = None,
    payload_count: int | None = None,
    erased_count: int = 0,
) -> None:
    namespace = (request.headers.get("x-namespace") or "")[:255] or None
    client = request.client.host if request.client is not None else None
    await services_of(request).pool.execute(
        "INSERT INTO codec_audit (operation, outcome, reason, user_id, username, role, namespace,"
        " payload_count, erased_count, client_address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        operation,
        "refused" if reason else "allowed",
        reason,
        user.id if user is not None else None,
        user.username if user is not None else None,
        str(user.role) if user is not None else None,
        namespace,
        payload_count,
        erased_count,
        client,
    )


# -- the routes ----------------------------------------------------------------------------------------------

router = APIRouter(prefix="/codec")


def _json(request: Request, content: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=cors_headers(request))


async def _serve(request: Request, operation: str) -> Response:
    user = await optional_user(request)
    refusal: tuple[int, str] | None = None
    if not origin_allowed(request):
        refusal = (403, "origin not allowed")
    elif user is None:
        refusal = (401, "not logged in")
    elif not may_decode(user):
        refusal = (403, f"role {user.role} may not decode")
    if refusal is not None:
        status, reason = refusal
        await audit(request, operation, user, reason=reason)
        user_id = user.id if user is not None else None
        log.info("codec request refused", operation=operation, user_id=user_id, reason=reason)
        return _json(request, {"detail": reason}, status)
    assert user is not None

    try:
        payloads = await read_payloads(request)
    except BadRequest as error:
        # audited as a refusal by its kind only: the message may quote the body, which stays out of the table
        await audit(request, operation, user, reason=f"bad request ({error.status})")
        return _json(request, {"detail": str(error)}, error.status)

    codec = codec_of(request)
    erased = 0
    if codec is None:
        answer = payloads
    elif operation == "decode":
        decoded = await decode_each(codec, payloads)
        answer, erased = decoded.payloads, decoded.erased
    else:
        answer = list(await codec.encode(payloads))
    # Audited before answering: no decoded payload leaves without its row.
    await audit(request, operation, user, payload_count=len(payloads), erased_count=erased)
    log.info("codec request served", operation=operation, user_id=user.id, payloads=len(payloads))
    return _json(request, payloads_json(answer))


@router.post("/decode")
async def decode(request: Request) -> Response:
    return await _serve(request, "decode")


@router.post("/encode")
async def encode(request: Request) -> Response:
    return await _serve(request, "encode")


@router.options("/decode")
@router.options("/encode")
async def preflight(request: Request) -> Response:
    """The browser's preflight before the Web UI's credentialed JSON POST: answered for its origin only."""
    if request.headers.get("origin") != settings_of(request).web_ui_origin:
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = cors_headers(request) | {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)
