"""A local push webhook speaking the protocol of activities/channels/push.py; logs each push to a JSONL file.

    POST /push   (Idempotency-Key and, when a secret is set, a valid X-Overdue-Signature required)
    GET  /push   every push it accepted, as JSON
    GET  /       the log as a page; connected to the inbound app (make run), with buttons that send a
                 delivery receipt back (stack/sandbox/inbound_controls.py)

App accounts ending in 0000 have no device: 410 {"error": "no_device"}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from activities.channels.push import SIGNATURE_HEADER, signature_valid
from stack.sandbox.common import HOST
from stack.sandbox.gateway import INVALID_SUFFIX, IdempotentGateway, error
from stack.sandbox.inbound_controls import PUSH_RECEIPTS, GatewayControls


class PushWebhookSandbox(GatewayControls, IdempotentGateway):
    channel = "push"
    path = "/push"
    id_prefix = "push"
    receipt_path = PUSH_RECEIPTS
    failure_code = "no_device"

    def __init__(
        self,
        log_file: Path,
        *,
        host: str = HOST,
        port: int = 0,
        secret: str | None = None,
        setting: str = "OVERDUE_SANDBOX_PUSH_PORT",
    ) -> None:
        super().__init__(log_file, host=host, port=port, setting=setting)
        self.secret = secret

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), *self.control_routes()]

    def authorize(self, request: web.Request, body: bytes) -> web.Response | None:
        if self.secret is not None and not signature_valid(
            self.secret, body, request.headers.get(SIGNATURE_HEADER)
        ):
            return error(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")
        return None

    def refuse(self, payload: dict[str, Any]) -> web.Response | None:
        to, body = payload.get("to"), payload.get("body")
        if not isinstance(body, str) or not body:
            return error(400, "invalid_request", "body: a non-empty string is required")
        if not isinstance(to, str) or not to:
            return error(422, "invalid_recipient", "to: an app account id is required")
        if to.endswith(INVALID_SUFFIX):
            return error(410, "no_device", "this account has no device registered")
        return None

    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "to": payload["to"],
            "title": payload.get("title"),
            "body": payload["body"],
            "locale": payload.get("locale"),
        }
