"""The product's endpoint for the payment provider's webhooks, a router the borrower app includes:

    app.state.payments = PaymentService.from_settings(pool, starter)
    app.include_router(payments.webhook.router)      # POST /payments/webhook

Answers 200 {"outcome": ...} once an event is applied or known (a duplicate), 401 for a missing, wrong or
stale signature and 400 for a body that is not an event (nothing changes either way), 503 when the loan's
workflow or the database cannot be reached (nothing recorded: the provider retries).
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from payments.service import PaymentService, WebhookRefused
from payments.signature import SIGNATURE_HEADER

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/payments/webhook"

router = APIRouter()


def service_of(request: Request) -> PaymentService:
    service: PaymentService = request.app.state.payments
    return service


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def payment_webhook(request: Request) -> JSONResponse:
    body = await request.body()  # the raw bytes: the signature covers them exactly
    try:
        outcome = await service_of(request).handle_webhook(body, request.headers.get(SIGNATURE_HEADER))
    except WebhookRefused as refused:
        log.warning("payment_webhook_refused", status=refused.status, reason=refused.reason)
        return JSONResponse({"error": refused.reason}, status_code=refused.status)
    except Exception as error:  # Temporal or PostgreSQL down: the provider retries later
        log.error("payment_webhook_failed", error=type(error).__name__)
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
    return JSONResponse({"event": outcome.event_id, "outcome": outcome.outcome})
