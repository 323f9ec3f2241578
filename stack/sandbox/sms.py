"""A local SMS gateway speaking the protocol of activities/channels/sms.py; logs each SMS to a JSONL file.

    POST /messages   (Idempotency-Key and, when configured, the API key header required)
    GET  /messages   every SMS it accepted, as JSON
    GET  /           the log as a page; connected to the inbound app (make run), with buttons that send a
                     delivery receipt or a reply back (stack/sandbox/inbound_controls.py)

Numbers that are not E.164, or end in 0000, get 422 {"error": "invalid_number"}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from domain.loan import E164
from stack.sandbox.common import HOST
from stack.sandbox.gateway import INVALID_SUFFIX, IdempotentGateway, error
from stack.sandbox.inbound_controls import SMS_RECEIPTS, GatewayControls


class SmsGatewaySandbox(GatewayControls, IdempotentGateway):
    channel = "sms"
    path = "/messages"
    id_prefix = "sms"
    receipt_path = SMS_RECEIPTS
    failure_code = "unknown_subscriber"
    replies = True

    def __init__(
        self,
        log_file: Path,
        *,
        host: str = HOST,
        port: int = 0,
        api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        setting: str = "OVERDUE_SANDBOX_SMS_PORT",
    ) -> None:
        super().__init__(log_file, host=host, port=port, setting=setting)
        self.api_key = api_key
        self.api_key_header = api_key_header

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), *self.control_routes()]

    def authorize(self, request: web.Request, body: bytes) -> web.Response | None:
        if self.api_key is not None and request.headers.get(self.api_key_header) != self.api_key:
            return error(401, "unauthorized", f"missing or wrong {self.api_key_header}")
        return None

    def refuse(self, payload: dict[str, Any]) -> web.Response | None:
        to, text = payload.get("to"), payload.get("text")
        if not isinstance(text, str) or not text:
            return error(400, "invalid_request", "text: a non-empty string is required")
        if not isinstance(to, str) or not E164.match(to) or to.endswith(INVALID_SUFFIX):
            return error(422, "invalid_number", "to: not a number this gateway can deliver to")
        return None

    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"to": payload["to"], "sender": payload.get("sender"), "text": payload["text"]}
