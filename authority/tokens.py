"""Signed actor assertions: who acts, with which role, on which workflow, by which update or signal, on
exactly which request.

A token is three dot-separated parts, ASCII only:

    ova1.<payload>.<signature>

`payload` is base64url (no padding) of compact JSON with sorted keys:

    {"act": "hold_stage",            update or signal name
     "dig": "<base64url sha256>",    digest of the request's canonical JSON (see `canonical`)
     "exp": 1767225600,              expiry, Unix seconds (at most MAX_LIFETIME after iat)
     "iat": 1767225000,              issued at, Unix seconds
     "kid": "admin-2026a",           the signing key's id (looked up in the trust ring)
     "nonce": "<24 hex>",            random: two tokens for the same request never coincide
     "role": "supervisor",           collector | supervisor | admin | operator | servicing
     "sub": "wang.boss",             the acting username or service name
     "wf": "collection-L-1"}         the workflow id

`signature` is base64url of the Ed25519 signature over the ASCII bytes `ova1.<payload>`. Verification is
pure (no clock, no I/O: `now` is passed in), so the workflow runs it on `workflow.now()` and replays it alike.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from authority.keys import ROLES, Role, SigningKey, TrustedKeys, b64, unb64

PREFIX = "ova1"
DEFAULT_TTL = timedelta(minutes=10)
MAX_LIFETIME = timedelta(minutes=15)  # a token minted for longer is refused whatever its expiry says
CLOCK_SKEW = timedelta(seconds=60)  # a minter's clock slightly ahead of the workflow's is tolerated
MAX_TOKEN = 2048


class Refused(ValueError):
    """The assertion does not authorise this request; `reason` says why ('expired', 'bad signature')."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"assertion: {reason}")


@dataclass(frozen=True)
class Assertion:
    actor: str
    role: Role
    workflow_id: str
    action: str
    issued_at: datetime
    expires_at: datetime
    nonce: str
    kid: str
    digest: str


def canonical(request: BaseModel | Any) -> bytes:
    """The request as the digest sees it: its JSON form (pydantic's), keys sorted, no spaces. The workflow
    gets the request decoded back into the same model, so both sides compute the same bytes."""
    data = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(request: BaseModel | Any) -> str:
    return b64(hashlib.sha256(canonical(request)).digest())


def mint(
    key: SigningKey,
    *,
    actor: str,
    role: Role,
    workflow_id: str,
    action: str,
    request: BaseModel | Any,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """A token for one request. `now`: the issuing time (default the wall clock; a time-skipping test or
    simulation passes its server's time)."""
    issued = now or datetime.now(UTC)
    payload = {
        "act": action,
        "dig": digest(request),
        "exp": int((issued + ttl).timestamp()),
        "iat": int(issued.timestamp()),
        "kid": key.kid,
        "nonce": secrets.token_hex(12),
        "role": role,
        "sub": actor,
        "wf": workflow_id,
    }
    body = f"{PREFIX}.{b64(json.dumps(payload, sort_keys=True, separators=(',', ':')).encode())}"
    return f"{body}.{b64(key.sign(body.encode('ascii')))}"


def _parse(token: str) -> tuple[bytes, dict[str, Any], bytes]:
    parts = token.split(".")
    if len(token) > MAX_TOKEN or len(parts) != 3 or parts[0] != PREFIX:
        raise Refused(f"malformed (expected {PREFIX}.<payload>.<signature>)")
    try:
        payload = json.loads(unb64(parts[1]))
        signature = unb64(parts[2])
    except ValueError:
        raise Refused("malformed (payload or signature is not base64url JSON)") from None
    if not isinstance(payload, dict):
        raise Refused("malformed (payload is not an object)")
    return f"{parts[0]}.{parts[1]}".encode("ascii"), payload, signature


def _claims(payload: dict[str, Any]) -> Assertion:
    texts = ("act", "dig", "kid", "nonce", "sub", "wf")
    if not all(isinstance(payload.get(n), str) and payload[n] for n in texts):
        raise Refused(f"malformed (needs {', '.join(texts)})")
    if not all(type(payload.get(n)) is int for n in ("iat", "exp")):
        raise Refused("malformed (iat and exp are Unix seconds)")
    if payload.get("role") not in ROLES:
        raise Refused(f"malformed (role is one of {', '.join(ROLES)})")
    return Assertion(
        actor=payload["sub"],
        role=payload["role"],
        workflow_id=payload["wf"],
        action=payload["act"],
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        nonce=payload["nonce"],
        kid=payload["kid"],
        digest=payload["dig"],
    )


def claims_of(token: str) -> Assertion:
    """What a token says, unverified: for a handler whose validator verified it already (validators do not
    run on replay, so the handler must not depend on the trust ring)."""
    return _claims(_parse(token)[1])


def verify(
    token: str | None,
    trusted: TrustedKeys,
    *,
    workflow_id: str,
    action: str,
    request: BaseModel | Any,
    now: datetime,
) -> Assertion:
    """The assertion the token makes for exactly this request, or `Refused` with the first reason."""
    if not token:
        raise Refused("missing (sign the request: admin UI, CLI with an operator key, or servicing key)")
    if not isinstance(token, str):
        raise Refused("malformed (not a string)")
    signed, payload, signature = _parse(token)
    claims = _claims(payload)
    key = trusted.get(claims.kid)
    if key is None:
        raise Refused(f"unknown key {claims.kid!r} (not in the trusted keys)")
    if not key.verifies(signature, signed):
        raise Refused(f"bad signature (not signed by key {claims.kid!r})")
    if claims.role not in key.roles:
        raise Refused(f"key {claims.kid!r} may not assert role {claims.role}")
    if key.identity is not None and claims.actor != key.identity:
        raise Refused(f"key {claims.kid!r} acts only as {key.identity}")
    if claims.workflow_id != workflow_id:
        raise Refused("issued for another workflow")
    if claims.action != action:
        raise Refused(f"issued for {claims.action}, not {action}")
    if claims.digest != digest(request):
        raise Refused("does not match the request (issued for other content)")
    if claims.expires_at - claims.issued_at > MAX_LIFETIME:
        raise Refused("lifetime longer than allowed")
    if claims.issued_at > now + CLOCK_SKEW:
        raise Refused("issued in the future")
    if claims.expires_at <= now:
        raise Refused("expired")
    return claims
