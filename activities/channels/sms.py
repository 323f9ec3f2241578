"""SMS through an HTTP gateway: one JSON POST per message, idempotent on the message's key.

    POST {url}
    Idempotency-Key: {idempotency_key}
    {api_key_header}: {api_key}
    {"to": "+8613800138000", "text": "...", "idempotency_key": "...", "sender": "Overdue"}

    200 {"id": "sms_4f2a..."}                      -> delivered, provider id "sms_4f2a..."
    422 {"error": "invalid_number"}                -> CONTACT_POINT_INVALID (non-retryable)
    429 / 5xx / timeout                            -> retried by Temporal (Retry-After honoured)

`stack/sandbox/sms.py` is a local gateway speaking the same protocol.
"""

from __future__ import annotations

import json

from activities.channels.http import HttpProvider, RecipientErrors
from activities.messaging import RenderedMessage

# Error codes a gateway answers (with 400, 404 or 422) for a number it can never deliver to.
INVALID_NUMBER_CODES = frozenset(
    {"invalid_number", "invalid_recipient", "unknown_number", "number_not_mobile"}
)


class HttpSmsAdapter:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        sender: str = "Overdue",
        timeout: float = 10.0,
    ) -> None:
        self._provider = HttpProvider(
            "sms", url, timeout=timeout, recipient_errors=RecipientErrors(codes=INVALID_NUMBER_CODES)
        )
        self._headers = {api_key_header: api_key} if api_key else {}
        self._sender = sender

    @property
    def url(self) -> str:
        return self._provider.url

    async def deliver(self, message: RenderedMessage) -> str:
        payload = {
            "to": message.recipient,
            "text": message.body,
            "idempotency_key": message.idempotency_key,
            "sender": self._sender,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        return await self._provider.post(message, body, self._headers)

    async def aclose(self) -> None:
        await self._provider.aclose()
