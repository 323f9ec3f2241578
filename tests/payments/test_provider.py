"""The provider adapter refuses answers that would make a wrong payment: another amount or currency, an id
that cannot become a payment id, no answer at all — and never puts the API key in its errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from payments.provider import ProviderClient, ProviderError

KEY = "sk_live_secret"


def provider(answer: dict[str, Any] | None = None, status: int = 201) -> ProviderClient:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        data = {"id": "cs_1", "url": "https://pay.example/cs_1", **body, **(answer or {})}
        return httpx.Response(status, json=data)

    client = ProviderClient("https://api.provider.example/", KEY, transport=httpx.MockTransport(handle))
    client.seen = seen  # type: ignore[attr-defined]
    return client


async def test_a_checkout_is_created_with_the_key_and_an_idempotency_key() -> None:
    client = provider()
    checkout = await client.create_checkout(5_000, "CNY", "ovd-abc", "https://back.example/")
    assert (checkout.provider_id, checkout.url, checkout.amount_minor) == (
        "cs_1",
        "https://pay.example/cs_1",
        5_000,
    )
    (request,) = client.seen  # type: ignore[attr-defined]
    assert str(request.url) == "https://api.provider.example/v1/checkout_sessions"
    assert (
        request.headers["Authorization"] == f"Bearer {KEY}"
        and request.headers["Idempotency-Key"] == "ovd-abc"
    )


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        ({"amount_minor": 50_000}, 201, "another amount"),
        ({"currency": "USD"}, 201, "another amount or currency"),
        ({"id": "x" * 120}, 201, "printable"),
        ({"id": "cs\n1"}, 201, "printable"),
        ({}, 402, "answered 402"),
    ],
)
async def test_a_wrong_answer_is_a_provider_error(answer: dict[str, Any], status: int, reason: str) -> None:
    with pytest.raises(ProviderError, match=reason) as error:
        await provider(answer, status).create_checkout(5_000, "CNY", "ovd-abc", "https://back.example/")
    assert KEY not in str(error.value)


async def test_an_unreachable_provider_is_a_provider_error() -> None:
    client = ProviderClient("http://127.0.0.1:9", KEY, timeout=2)
    with pytest.raises(ProviderError, match="unreachable"):
        await client.create_checkout(5_000, "CNY", "ovd-abc", "https://back.example/")
