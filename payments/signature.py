"""The webhook signature of the payment provider protocol (Stripe's scheme): a header

    Overdue-Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

signed with the webhook secret both sides share. The receiver checks the MAC over the exact bytes it got and
that `t` lies within a tolerance of its own clock, so a captured request cannot be replayed days later (and
a replay within the tolerance is stopped by the event id, payments/store.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Overdue-Payment-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class BadSignature(Exception):
    """The webhook is not from the provider, or not from now; the message says which (no secrets in it)."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for `body` at `timestamp` (default: now)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """The signed timestamp, or BadSignature: missing or malformed header, wrong MAC, or `t` outside the
    tolerance (either way: a clock far ahead is as suspect as an old capture)."""
    if not header:
        raise BadSignature(f"{SIGNATURE_HEADER} missing")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature(f"{SIGNATURE_HEADER}: no timestamp") from None
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Several v1 values are allowed (a provider rolling its secret signs with both).
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise BadSignature(f"{SIGNATURE_HEADER}: timestamp outside {tolerance_seconds}s of now")
    return timestamp
