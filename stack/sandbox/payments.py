"""A local payment provider speaking the protocol of payments/provider.py, for `make run` and tests.

    POST /v1/checkout_sessions        create (Authorization: Bearer <key>; Idempotency-Key: same key,
                                      same session)
    GET  /v1/checkout_sessions/{id}   read one
    GET  /pay/{id}                    the hosted page: the amount, "Pay" and "Decline"
    POST /pay/{id}/confirm | /decline the borrower's choice: a signed webhook to the product, then back to
                                      the session's return_url with ?checkout=<id>&status=<status>
    GET  /v1/events                   every event it sent (JSON); POST /v1/events/{id}/resend sends one again
                                      (the same bytes, freshly signed: a provider's retry)

Webhooks are signed as payments/signature.py says, with the shared secret, and go to `webhook_url`. A session
not paid within `ttl_seconds` expires (checkout.expired) the next time anyone looks at it.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from domain.loan import format_money
from payments.provider import SESSIONS_PATH
from payments.settings import PaymentSettings
from payments.signature import SIGNATURE_HEADER, sign
from payments.webhook import WEBHOOK_PATH
from stack.sandbox.common import HOST, HttpSandbox, JsonLines, SandboxError
from stack.settings import Settings

Cleanups = list[tuple[str, Callable[[], Awaitable[Any]]]]

SANDBOX_PAYMENT_KEY = "sandbox-payment-key"
SANDBOX_WEBHOOK_SECRET = "sandbox-webhook-secret"


class PaymentProviderSandbox(HttpSandbox):
    def __init__(
        self,
        log_file: Path,
        *,
        webhook_url: str | None,
        webhook_secret: str = SANDBOX_WEBHOOK_SECRET,
        api_key: str | None = SANDBOX_PAYMENT_KEY,
        host: str = HOST,
        port: int = 0,
        ttl_seconds: float = 1800,
        setting: str = "OVERDUE_SANDBOX_PAYMENTS_PORT",
    ) -> None:
        super().__init__(host=host, port=port, setting=setting)
        self.log = JsonLines(log_file)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.ttl_seconds = ttl_seconds
        self.clock: Callable[[], float] = time.time
        self.sessions: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}
        self.events: dict[str, bytes] = {}  # event id -> the exact body sent

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(SESSIONS_PATH, self._create),
            web.get(SESSIONS_PATH + "/{id}", self._read),
            web.get("/pay/{id}", self._page),
            web.post("/pay/{id}/confirm", self._confirm),
            web.post("/pay/{id}/decline", self._decline),
            web.get("/v1/events", self._events),
            web.post("/v1/events/{id}/resend", self._resend),
        ]

    # -- API -------------------------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "missing or wrong Authorization: Bearer key")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request", "body: not JSON")
        amount, currency = body.get("amount_minor"), body.get("currency")
        return_url, reference = body.get("return_url"), body.get("reference")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return _error(400, "invalid_request", "amount_minor: a positive integer is required")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
            return _error(400, "invalid_request", "currency: an ISO 4217 code is required")
        if not isinstance(return_url, str) or not return_url.startswith(("http://", "https://")):
            return _error(400, "invalid_request", "return_url: an absolute URL is required")
        key = request.headers.get("Idempotency-Key")
        if key and key in self._by_key:
            return web.json_response(self.sessions[self._by_key[key]], status=200)
        session_id = "cs_" + secrets.token_hex(12)
        session = {
            "id": session_id,
            "url": f"{self.base_url}/pay/{session_id}",
            "status": "open",
            "amount_minor": amount,
            "currency": currency,
            "reference": reference,
            "return_url": return_url,
            "expires_at": int(self.clock() + self.ttl_seconds),
        }
        self.sessions[session_id] = session
        if key:
            self._by_key[key] = session_id
        return web.json_response(session, status=201)

    async def _read(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return _error(404, "not_found", "no such checkout session")
        return web.json_response(session)

    async def _events(self, request: web.Request) -> web.Response:
        return web.json_response([json.loads(body) for body in self.events.values()])

    async def _resend(self, request: web.Request) -> web.Response:
        body = self.events.get(request.match_info["id"])
        if body is None:
            return _error(404, "not_found", "no such event")
        status = await self.deliver(body)
        return web.json_response({"delivered": status})

    # -- the hosted page -------------------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return _page("Payment not found", "<p>This payment link is not valid.</p>", status=404)
        if session["status"] != "open":
            back = html.escape(_return(session))
            return _page(
                "Payment " + session["status"],
                f'<p>This payment is {session["status"]}.</p><p><a href="{back}">Back</a></p>',
            )
        sid = html.escape(session["id"])
        amount = html.escape(format_money(session["amount_minor"], session["currency"]))
        return _page(
            "Sandbox payment",
            f'<p>Pay <strong data-amount="{session["amount_minor"]}">{amount}</strong> '
            f"(sandbox: no money moves).</p>"
            f'<form method="post" action="/pay/{sid}/confirm">'
            f'<button type="submit">Pay {amount}</button></form>'
            f'<form method="post" action="/pay/{sid}/decline"><button type="submit">Decline</button></form>',
        )

    async def _confirm(self, request: web.Request) -> web.Response:
        return await self._finish(request, "succeeded")

    async def _decline(self, request: web.Request) -> web.Response:
        return await self._finish(request, "declined")

    async def _finish(self, request: web.Request, status: str) -> web.Response:
        session = await self._session(request)
        if session is None:
            return _page("Payment not found", "<p>This payment link is not valid.</p>", status=404)
        if session["status"] == "open":
            await self._settle(session, status)
        raise web.HTTPSeeOther(_return(session))

    # -- sessions and webhooks -------------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> dict[str, Any] | None:
        session = self.sessions.get(request.match_info["id"])
        if session is not None and session["status"] == "open" and self.clock() > session["expires_at"]:
            await self._settle(session, "expired")
        return session

    async def _settle(self, session: dict[str, Any], status: str) -> None:
        session["status"] = status
        event_id = "evt_" + secrets.token_hex(12)
        event = {
            "id": event_id,
            "type": f"checkout.{status}",
            "created": int(self.clock()),
            "data": {k: v for k, v in session.items() if k != "return_url"},
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        self.events[event_id] = body
        self.log.append({"event": event_id, "type": event["type"], "session": session["id"]})
        await self.deliver(body)

    async def deliver(self, body: bytes, attempts: int = 3) -> int | None:
        """POST one event to the webhook, signed now; a few quick retries on 5xx or no answer, as a real
        provider retries (for hours, there). The last HTTP status, or None when never reached."""
        if not self.webhook_url:
            return None
        status: int | None = None
        for attempt in range(attempts):
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.webhook_secret, body)}
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                    async with http.post(self.webhook_url, data=body, headers=headers) as response:
                        status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = None
            if status is not None and status < 500:
                return status
            await asyncio.sleep(0.2 * (attempt + 1))
        return status


def _return(session: dict[str, Any]) -> str:
    query = urlencode({"checkout": session["id"], "status": session["status"]})
    url: str = session["return_url"]
    return url + ("&" if "?" in url else "?") + query


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _page(title: str, content: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
            "button{font-size:1.1rem;padding:.7rem 1.2rem;margin:.4rem 0;width:100%}</style></head>"
            f"<body><main><h1>{html.escape(title)}</h1>{content}</main></body></html>"
        ),
    )


async def start_for_stack(settings: Settings, cleanups: Cleanups) -> list[str]:
    """`make run`: without OVERDUE_PAYMENT_PROVIDER_URL, start the sandbox provider and point this process
    (and the borrower page it starts, which reads PaymentSettings) at it through the environment, as
    authority/dev.py does with the dev keys. Its webhooks go to the borrower page's /payments/webhook
    (OVERDUE_PAYMENT_WEBHOOK_URL overrides). Returns the banner lines."""
    own = PaymentSettings()
    if own.payment_provider_url:
        return [f" Payments          provider {own.payment_provider_url.split('://')[-1].split('/')[0]}"]
    webhook_url = own.payment_webhook_url or _borrower_webhook_url()
    log_file = settings.state_dir / "payments.jsonl"
    sandbox = PaymentProviderSandbox(log_file, webhook_url=webhook_url, port=own.sandbox_payments_port)
    try:
        await sandbox.start()
    except SandboxError:
        if "OVERDUE_SANDBOX_PAYMENTS_PORT" in os.environ:
            raise
        # Only this process needs the URL (set below): a busy default port is no reason to stop.
        sandbox = PaymentProviderSandbox(log_file, webhook_url=webhook_url, port=0)
        await sandbox.start()
    values = {
        "OVERDUE_PAYMENT_PROVIDER_URL": sandbox.base_url,
        "OVERDUE_PAYMENT_API_KEY": os.environ.get("OVERDUE_PAYMENT_API_KEY", SANDBOX_PAYMENT_KEY),
        "OVERDUE_PAYMENT_WEBHOOK_SECRET": os.environ.get(
            "OVERDUE_PAYMENT_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET
        ),
    }
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    async def stop() -> None:
        await sandbox.stop()
        for name, value in before.items():  # a later start in this process must not find a dead sandbox
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    cleanups.append(("sandbox payment provider", stop))
    return [f" Payment sandbox   {sandbox.base_url}/v1/events   (webhooks to {webhook_url})"]


def _borrower_webhook_url() -> str:
    try:
        from borrower.settings import BorrowerSettings  # the page that hosts payments/webhook.py
    except ImportError:  # pragma: no cover - the borrower page is part of the product
        return f"http://{HOST}:8010{WEBHOOK_PATH}"
    page = BorrowerSettings()
    host = HOST if page.host in ("0.0.0.0", "::", "") else page.host
    return f"http://{host}:{page.port}{WEBHOOK_PATH}"
