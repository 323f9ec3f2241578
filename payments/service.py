"""Payments from the borrower page: start a checkout at the provider, and turn the provider's signed
"succeeded" webhook into the loan's `payment` signal, once.

    # starter: a CollectionsStarter whose key may act as servicing
    service = PaymentService.from_settings(pool, starter)
    url = await service.start_checkout("L-1", 5_000, "CNY", "https://pay.example.com/done")   # redirect there
    outcome = await service.handle_webhook(raw_body, request.headers.get(SIGNATURE_HEADER))

Only an event the provider signed, within the tolerance, about an intent this product created, with the
intent's own amount and currency, and saying the money was taken, signals a payment. Its payment id is
`provider:<provider id>`: the workflow applies a payment id once, and `payment_webhook_events` keeps every
event id, so a retried or replayed webhook changes nothing a second time.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import structlog

from activities.db import Connection
from payments.provider import ProviderClient
from payments.settings import PaymentSettings
from payments.signature import BadSignature, verify
from starter.api import CollectionClosed, CollectionsStarter
from starter.requests import InvalidRequest, check_loan_id

log = structlog.get_logger(__name__)

PAYMENT_ID_PREFIX = "provider:"
SUCCEEDED, DECLINED, EXPIRED = "checkout.succeeded", "checkout.declined", "checkout.expired"
FINAL_STATUS = {DECLINED: "declined", EXPIRED: "expired"}


def payment_id(provider_id: str) -> str:
    """The `Payment.payment_id` of a provider payment: the workflow's idempotency key."""
    return PAYMENT_ID_PREFIX + provider_id


class WebhookRefused(Exception):
    """The webhook changes nothing: `status` 401 (not signed by the provider, or not from now) or 400
    (not an event)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    outcome: str  # signalled | duplicate | already_confirmed | declined | expired | loan_closed | ignored


class PaymentService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        starter: CollectionsStarter,
        provider: ProviderClient,
        *,
        webhook_secret: str | None,
        tolerance_seconds: int = 300,
        minimum_minor: int = 100,
    ) -> None:
        self.pool = pool
        self.starter = starter
        self.provider = provider
        self._secret = webhook_secret
        self.tolerance_seconds = tolerance_seconds
        self.minimum_minor = minimum_minor

    @classmethod
    def from_settings(
        cls, pool: asyncpg.Pool, starter: CollectionsStarter, settings: PaymentSettings | None = None
    ) -> PaymentService:
        settings = settings or PaymentSettings()
        if not settings.payment_provider_url:
            raise InvalidRequest([("OVERDUE_PAYMENT_PROVIDER_URL", "not set: no payment provider")])
        key = settings.payment_api_key
        secret = settings.payment_webhook_secret
        return cls(
            pool,
            starter,
            ProviderClient(
                settings.payment_provider_url,
                key.get_secret_value() if key else None,
                timeout=settings.payment_timeout_seconds,
            ),
            webhook_secret=secret.get_secret_value() if secret else None,
            tolerance_seconds=settings.payment_webhook_tolerance_seconds,
            minimum_minor=settings.payment_minimum_minor,
        )

    # -- the borrower page starts a payment ------------------------------------------------------------------

    async def bounds(self, loan_id: str) -> tuple[int, int, str]:
        """(least, most, currency) the borrower may pay now: at most the arrears, at least the minimum (or
        the whole arrears when they are smaller). InvalidRequest on `loan` for a closed or paid-up loan."""
        status = await self.starter.status(loan_id)
        if status.outcome is not None:
            raise InvalidRequest([("loan", "this collection has ended: nothing to pay here")])
        most = status.amount_overdue_minor
        if most <= 0:
            raise InvalidRequest([("loan", "nothing is overdue")])
        return min(self.minimum_minor, most), most, status.currency

    async def start_checkout(self, loan_id: str, amount_minor: int, currency: str, return_url: str) -> str:
        """The provider's hosted payment page for this amount (redirect the borrower there). Field-level
        InvalidRequest (amount_minor, currency, return_url, loan) before anything is created; ProviderError
        when the provider refuses or cannot be reached."""
        check_loan_id(loan_id)
        least, most, loan_currency = await self.bounds(loan_id)
        problems: list[tuple[str, str]] = []
        if currency != loan_currency:
            problems.append(("currency", f"this loan is paid in {loan_currency}, not {currency}"))
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
            problems.append(("amount_minor", "must be a whole number of minor units"))
        elif amount_minor > most:
            problems.append(("amount_minor", f"at most the amount overdue ({most})"))
        elif amount_minor < least:
            problems.append(("amount_minor", f"at least {least}"))
        url = urlsplit(return_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            problems.append(("return_url", "must be an absolute http(s) URL"))
        if problems:
            raise InvalidRequest(problems)
        reference = "ovd-" + secrets.token_hex(12)  # opaque to the provider: no loan id leaves the product
        checkout = await self.provider.create_checkout(amount_minor, currency, reference, return_url)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO payment_intents (provider_id, loan_id, amount_minor, currency)"
                " VALUES ($1, $2, $3, $4)",
                checkout.provider_id,
                loan_id,
                amount_minor,
                currency,
            )
        log.info("payment_checkout_started", loan_id=loan_id, provider_id=checkout.provider_id)
        return checkout.url

    async def intent_status(self, provider_id: str) -> str | None:
        """pending | confirmed | declined | expired (None: unknown), for the page the borrower returns to."""
        async with self.pool.acquire() as conn:
            status: str | None = await conn.fetchval(
                "SELECT status FROM payment_intents WHERE provider_id = $1", provider_id
            )
        return status

    # -- the provider tells us what happened -----------------------------------------------------------------

    def _event(self, body: bytes, signature: str | None) -> dict[str, Any]:
        if not self._secret:
            raise WebhookRefused(401, "no webhook secret configured (OVERDUE_PAYMENT_WEBHOOK_SECRET)")
        try:
            verify(self._secret, body, signature, tolerance_seconds=self.tolerance_seconds)
        except BadSignature as error:
            raise WebhookRefused(401, str(error)) from None
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRefused(400, "body: not JSON") from None
        if not isinstance(event, dict):
            raise WebhookRefused(400, "body: not an event object")
        data = event.get("data")
        for field, value in (("id", event.get("id")), ("type", event.get("type"))):
            if not isinstance(value, str) or not 0 < len(value) <= 200:
                raise WebhookRefused(400, f"{field}: a string is required")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise WebhookRefused(400, "data.id: the checkout session id is required")
        return event

    async def handle_webhook(self, body: bytes, signature: str | None) -> WebhookOutcome:
        """Apply one provider event. Raises WebhookRefused (nothing changed) for a forged or stale one.
        Any other exception (Temporal or PostgreSQL down) leaves nothing recorded: the provider retries."""
        event = self._event(body, signature)
        event_id, kind, data = event["id"], event["type"], event["data"]
        provider_id = data["id"]
        async with self.pool.acquire() as conn, conn.transaction():
            # The intent's row lock serialises concurrent deliveries of events about one payment.
            intent = await conn.fetchrow(
                "SELECT loan_id, amount_minor, currency, status, signalled_at FROM payment_intents"
                " WHERE provider_id = $1 FOR UPDATE",
                provider_id,
            )
            if await conn.fetchval("SELECT 1 FROM payment_webhook_events WHERE event_id = $1", event_id):
                return WebhookOutcome(event_id, "duplicate")
            outcome = await self._apply(conn, kind, data, provider_id, intent)
            await conn.execute(
                "INSERT INTO payment_webhook_events (event_id, provider_id, kind, outcome)"
                " VALUES ($1, $2, $3, $4)",
                event_id,
                provider_id if intent is not None else None,
                kind[:64],
                outcome,
            )
        log.info("payment_webhook", event_kind=kind[:64], provider_id=provider_id, outcome=outcome)
        return WebhookOutcome(event_id, outcome)

    async def _apply(
        self,
        conn: Connection,
        kind: str,
        data: dict[str, Any],
        provider_id: str,
        intent: asyncpg.Record | None,
    ) -> str:
        if intent is None:
            return "ignored"  # not a payment this product asked for
        if kind in FINAL_STATUS:
            status = FINAL_STATUS[kind]
            await conn.execute(
                "UPDATE payment_intents SET status = $2 WHERE provider_id = $1 AND status = 'pending'",
                provider_id,
                status,
            )
            return status
        if kind != SUCCEEDED or data.get("status") != "succeeded":
            return "ignored"
        if (data.get("amount_minor"), data.get("currency")) != (intent["amount_minor"], intent["currency"]):
            log.warning("payment_webhook_mismatch", provider_id=provider_id)
            return "ignored"  # the provider took another amount than we asked: a person must look
        if intent["signalled_at"] is not None:
            return "already_confirmed"
        try:
            await self.starter.pay(
                intent["loan_id"],
                intent["amount_minor"],
                payment_id(provider_id),
                currency=intent["currency"],
                received_at=datetime.now(UTC),
                source="borrower",
            )
            outcome = "signalled"
        except CollectionClosed:
            # The money was taken after the collection ended: servicing refunds or books it elsewhere.
            log.warning("payment_after_collection_closed", provider_id=provider_id)
            outcome = "loan_closed"
        await conn.execute(
            "UPDATE payment_intents SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()),"
            " signalled_at = CASE WHEN $2 THEN now() END WHERE provider_id = $1",
            provider_id,
            outcome == "signalled",
        )
        return outcome
