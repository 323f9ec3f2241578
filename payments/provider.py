"""The payment provider's API as the product calls it: create a checkout session (a payment intent with a
hosted page), read one back. The sandbox provider (stack/sandbox/payments.py) speaks the same protocol:

    POST {base}/v1/checkout_sessions   Authorization: Bearer <key>, Idempotency-Key: <key>
         {"amount_minor": 5000, "currency": "CNY", "reference": "ovd-…", "return_url": "https://…"}
      -> 201 {"id": "cs_…", "url": "<hosted page>", "status": "open", "amount_minor", "currency", "reference"}
    GET  {base}/v1/checkout_sessions/{id}  -> the same object, status open | succeeded | declined | expired

The provider then POSTs signed events (payments/signature.py) to the product's webhook:
    {"id": "evt_…", "type": "checkout.succeeded" | "checkout.declined" | "checkout.expired",
     "created": <unix seconds>, "data": {<the checkout session>}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

SESSIONS_PATH = "/v1/checkout_sessions"
# The payment id "provider:<id>" must fit Payment.payment_id (128 characters): see migrations/0024.
MAX_ID_LENGTH = 119


class ProviderError(RuntimeError):
    """The provider refused or could not be reached; the message names the status, never the key."""


@dataclass(frozen=True)
class Checkout:
    provider_id: str
    url: str
    amount_minor: int
    currency: str


class ProviderClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: a provider answering what they need
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._transport = transport

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def create_checkout(
        self, amount_minor: int, currency: str, reference: str, return_url: str
    ) -> Checkout:
        """A new checkout session. `reference` doubles as the idempotency key: a retried call after a
        timeout gets the same session, not a second one."""
        body = {
            "amount_minor": amount_minor,
            "currency": currency,
            "reference": reference,
            "return_url": return_url,
        }
        data = await self._call("POST", SESSIONS_PATH, json=body, idempotency_key=reference)
        try:
            checkout = Checkout(
                provider_id=str(data["id"]),
                url=str(data["url"]),
                amount_minor=int(data["amount_minor"]),
                currency=str(data["currency"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ProviderError("the provider answered without id, url, amount_minor or currency") from None
        if not 0 < len(checkout.provider_id) <= MAX_ID_LENGTH or not checkout.provider_id.isprintable():
            raise ProviderError(f"the provider's session id is not 1 to {MAX_ID_LENGTH} printable characters")
        if (checkout.amount_minor, checkout.currency) != (amount_minor, currency):
            raise ProviderError("the provider's session is for another amount or currency")
        return checkout

    async def session(self, provider_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{SESSIONS_PATH}/{provider_id}")

    async def _call(
        self, method: str, path: str, *, json: Any = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
                response = await http.request(
                    method, self.base_url + path, json=json, headers=self._headers(idempotency_key)
                )
        except httpx.HTTPError as error:
            raise ProviderError(f"payment provider unreachable ({type(error).__name__})") from None
        if response.status_code >= 300:
            raise ProviderError(f"payment provider answered {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise ProviderError("payment provider answered with no JSON") from None
        if not isinstance(data, dict):
            raise ProviderError("payment provider answered with no JSON object")
        return data
