"""App push through a webhook: the lender's push service receives a signed JSON POST per message.

    POST {url}
    Idempotency-Key: {idempotency_key}
    X-Overdue-Signature: sha256={hex HMAC-SHA256 of the raw body with the shared secret}
    {"to": "LN-1", "title": "...", "body": "...", "idempotency_key": "...", "locale": "en"}

The receiver recomputes the HMAC over the exact bytes it received and compares in constant time
(`hmac.compare_digest`), so only a holder of the secret can make it push. A 410, or a 404 / 400 / 422 with
the code `no_device` (or `unknown_account`, `invalid_recipient`), means the borrower has no app to push to:
CONTACT_POINT_INVALID, and the workflow falls back to SMS. Everything else maps as for the SMS gateway.
`stack/sandbox/push.py` is a local receiver speaking the same protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from activities.channels.http import HttpProvider, RecipientErrors
from activities.messaging import RenderedMessage

SIGNATURE_HEADER = "X-Overdue-Signature"
NO_DEVICE_CODES = frozenset({"no_device", "unknown_account", "invalid_recipient"})


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookPushAdapter:
    def __init__(self, url: str, *, secret: str, timeout: float = 10.0) -> None:
        if not secret:
            raise ValueError("push: the webhook needs a shared secret to sign its requests")
        self._provider = HttpProvider(
            "push",
            url,
            timeout=timeout,
            recipient_errors=RecipientErrors(codes=NO_DEVICE_CODES, always=frozenset({410})),
        )
        self._secret = secret

    @property
    def url(self) -> str:
        return self._provider.url

    async def deliver(self, message: RenderedMessage) -> str:
        payload = {
            "to": message.recipient,
            "title": message.subject or "",
            "body": message.body,
            "idempotency_key": message.idempotency_key,
            "locale": message.locale,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        return await self._provider.post(message, body, {SIGNATURE_HEADER: sign(self._secret, body)})

    async def aclose(self) -> None:
        await self._provider.aclose()
