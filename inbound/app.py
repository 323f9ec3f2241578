"""The inbound webhooks over HTTP (aiohttp): authenticate, validate, hand to `InboundService`.

    POST /inbound/sms/replies      {"event_id", "from", "text"}                          SMS gateway
    POST /inbound/sms/receipts     {"event_id", "message_id", "status", "code"?, "at"?}  SMS gateway
    POST /inbound/email/events     {"event_id", "type": reply|bounce|delivered|complaint, mail provider
                                    "message_id"?, "from"?, "subject"?, "text"?, "bounce_type"?, "code"?}
    POST /inbound/push/receipts    as the SMS receipts                                    push service
    GET  /healthz

Answers: 401 {"error": "unauthorized"} without a valid signature or key (nothing read, nothing changed);
400 {"error": "invalid_request", "problems": [{"field", "message"}]} for a body that does not fit (nothing
changed); otherwise 200 {"status": "accepted"}, the same whether the number, address or message is known,
new or a replay, so the endpoint reveals nothing about who the lender's borrowers are. Only an opt-out the
loan's workflow cannot take now (Temporal down) answers 503 with Retry-After, for the provider to retry.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from inbound.auth import authentic
from inbound.models import EmailEvent, Receipt, SmsReply
from inbound.service import InboundService
from inbound.settings import InboundSettings

MAX_BODY = 256 * 1024
ACCEPTED = {"status": "accepted"}
RETRY = {"error": "retry_later"}

SERVICE: web.AppKey[InboundService] = web.AppKey("service", InboundService)
SETTINGS: web.AppKey[InboundSettings] = web.AppKey("settings", InboundSettings)


def build_app(service: InboundService, settings: InboundSettings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICE] = service
    app[SETTINGS] = settings
    app.add_routes(
        [
            web.post("/inbound/sms/replies", _endpoint("sms", SmsReply, _sms_reply)),
            web.post("/inbound/sms/receipts", _endpoint("sms", Receipt, _receipt("sms"))),
            web.post("/inbound/email/events", _endpoint("email", EmailEvent, _email)),
            web.post("/inbound/push/receipts", _endpoint("push", Receipt, _receipt("push"))),
            web.get("/healthz", _health),
        ]
    )
    return app


Handler = Callable[[InboundService, Any], Awaitable[str]]


def _endpoint(
    provider: str, model: type[BaseModel], handle: Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def endpoint(request: web.Request) -> web.Response:
        settings = request.app[SETTINGS]
        body = await request.read()
        if not authentic(
            request.headers,
            body,
            secret=settings.secret(provider),
            api_key=settings.api_key(provider),
            max_skew=settings.inbound_max_skew_seconds,
        ):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            payload = json.loads(body)
            parsed = model.model_validate(payload)
        except ValueError as error:  # JSON and pydantic errors alike
            return web.json_response({"error": "invalid_request", "problems": _problems(error)}, status=400)
        if await handle(request.app[SERVICE], parsed) == "pending":
            # The loan's workflow could not take the opt-out now: the provider retries this event later
            # (callers are authenticated providers, so this answer tells no one else anything).
            return web.json_response(RETRY, status=503, headers={"Retry-After": "60"})
        return web.json_response(ACCEPTED)

    return endpoint


def _problems(error: ValueError) -> list[dict[str, str]]:
    """Field and message per problem; never the value received (it may be a phone number)."""
    if isinstance(error, ValidationError):
        return [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors(include_input=False, include_url=False)
        ]
    return [{"field": "body", "message": "not a JSON object"}]


async def _sms_reply(service: InboundService, reply: SmsReply) -> str:
    return await service.sms_reply(reply)


async def _email(service: InboundService, event: EmailEvent) -> str:
    return await service.email_event(event)


def _receipt(provider: str) -> Handler:
    async def handle(service: InboundService, receipt: Receipt) -> str:
        return await service.receipt("push" if provider == "push" else "sms", receipt)

    return handle


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
