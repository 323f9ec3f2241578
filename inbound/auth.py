"""Who may call an inbound endpoint: a provider holding its secret (HMAC) or its API key.

    X-Overdue-Timestamp: 1764761234                       (unix seconds)
    X-Overdue-Signature: sha256={hex HMAC-SHA256(secret, timestamp + "." + raw body)}
or
    X-API-Key: {the provider's key}

The signature covers the timestamp, so a captured request cannot be replayed after `max_skew` seconds; within
that window the provider's event id makes a replay change nothing (inbound/store.py). Comparisons are
constant-time; a refusal says only "unauthorized", never which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Overdue-Timestamp"
SIGNATURE_HEADER = "X-Overdue-Signature"
API_KEY_HEADER = "X-API-Key"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (what a provider, or a sandbox, sends)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def authentic(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    api_key: str | None,
    max_skew: int,
    now: float | None = None,
) -> bool:
    """True when the request carries a valid signature (fresh timestamp) or the provider's API key."""
    if secret is not None:
        stamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        if stamp is not None and signature is not None and stamp.isdigit() and len(stamp) <= 12:
            fresh = abs((time.time() if now is None else now) - int(stamp)) <= max_skew
            if fresh and hmac.compare_digest(sign(secret, stamp, body), signature):
                return True
    if api_key is not None:
        given = headers.get(API_KEY_HEADER)
        if given is not None and hmac.compare_digest(given.encode(), api_key.encode()):
            return True
    return False
