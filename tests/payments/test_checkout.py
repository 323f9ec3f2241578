"""Paying from the borrower page: checkout at the sandbox provider → the borrower confirms on the hosted page
→ the provider's signed webhook → the loan's workflow (the real one) receives exactly one payment. Declined,
expired, forged and replayed webhooks pay nothing (a second time)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from payments.service import payment_id
from payments.signature import SIGNATURE_HEADER, sign
from stack.sandbox.payments import SANDBOX_WEBHOOK_SECRET
from starter.requests import InvalidRequest
from tests.payments.conftest import Rig

RETURN_URL = "https://borrower.example/after-payment"


async def paid_total(rig: Rig, loan_id: str, expected: int) -> int:
    """The workflow's paid total once it reaches `expected` (a signal is applied asynchronously), or the
    total after a bounded number of status queries."""
    total = -1
    for _ in range(100):
        total = (await rig.starter.status(loan_id)).paid_total_minor
        if total == expected:
            return total
        await asyncio.sleep(0.05)
    return total


async def intent(rig: Rig, provider_id: str) -> tuple[str, int]:
    row = await rig.pool.fetchrow(
        "SELECT i.status, (SELECT count(*) FROM payment_webhook_events e WHERE e.provider_id = i.provider_id)"
        " FROM payment_intents i WHERE i.provider_id = $1",
        provider_id,
    )
    assert row is not None
    return row[0], row[1]


def session_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_a_confirmed_payment_reaches_the_loan_once(rig: Rig) -> None:
    loan = await rig.loan(amount=80_000)

    url = await rig.service.start_checkout(loan.loan_id, 30_000, "CNY", RETURN_URL)

    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and "CNY 300.00" in page.text
        back = await browser.post(url + "/confirm")
    assert back.status_code == 303
    returned = urlsplit(back.headers["location"])
    assert returned.netloc == "borrower.example"
    assert parse_qs(returned.query)["status"] == ["succeeded"]
    assert await paid_total(rig, loan.loan_id, 30_000) == 30_000
    provider_id = session_id(url)
    assert rig.starter.paid == [(loan.loan_id, 30_000, payment_id(provider_id))]
    assert payment_id(provider_id) == f"provider:{provider_id}"
    assert await intent(rig, provider_id) == ("confirmed", 1)
    status = await rig.starter.status(loan.loan_id)
    assert status.amount_overdue_minor == 50_000

    # The provider retries the same event (same bytes, signed anew), and again confirms from the page.
    async with httpx.AsyncClient() as browser:
        (event,) = (await browser.get(rig.provider.base_url + "/v1/events")).json()
        resent = await browser.post(f"{rig.provider.base_url}/v1/events/{event['id']}/resend")
        again = await browser.post(url + "/confirm")
    assert resent.json() == {"delivered": 200}
    assert again.status_code == 303
    assert await paid_total(rig, loan.loan_id, 30_000) == 30_000
    assert len(rig.starter.paid) == 1
    assert await intent(rig, provider_id) == ("confirmed", 1)


async def test_a_second_event_about_the_same_payment_signals_nothing(rig: Rig) -> None:
    loan = await rig.loan()
    url = await rig.service.start_checkout(loan.loan_id, 10_000, "CNY", RETURN_URL)
    async with httpx.AsyncClient() as browser:
        await browser.post(url + "/confirm")
    provider_id = session_id(url)
    (sent,) = rig.provider.events.values()
    data = json.loads(sent)["data"]

    # The same payment under a new event id (a provider that re-emits): known as confirmed, not paid again.
    body = json.dumps({"id": "evt_other", "type": "checkout.succeeded", "created": 0, "data": data}).encode()
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            rig.webhook_url, content=body, headers={SIGNATURE_HEADER: sign(SANDBOX_WEBHOOK_SECRET, body)}
        )
    assert answer.status_code == 200 and answer.json()["outcome"] == "already_confirmed"
    assert len(rig.starter.paid) == 1
    assert await paid_total(rig, loan.loan_id, 10_000) == 10_000
    assert await intent(rig, provider_id) == ("confirmed", 2)


async def test_a_declined_payment_pays_nothing(rig: Rig) -> None:
    loan = await rig.loan()
    url = await rig.service.start_checkout(loan.loan_id, 30_000, "CNY", RETURN_URL)

    async with httpx.AsyncClient() as browser:
        back = await browser.post(url + "/decline")
        late = await browser.post(url + "/confirm")  # the page is done: confirming now changes nothing
    assert parse_qs(urlsplit(back.headers["location"]).query)["status"] == ["declined"]
    assert parse_qs(urlsplit(late.headers["location"]).query)["status"] == ["declined"]
    assert await intent(rig, session_id(url)) == ("declined", 1)
    assert rig.starter.paid == []
    assert (await rig.starter.status(loan.loan_id)).paid_total_minor == 0


async def test_an_expired_checkout_pays_nothing(rig: Rig) -> None:
    loan = await rig.loan()
    url = await rig.service.start_checkout(loan.loan_id, 30_000, "CNY", RETURN_URL)
    rig.provider.clock = lambda: time.time() + rig.provider.ttl_seconds + 1

    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        late = await browser.post(url + "/confirm")
    assert "expired" in page.text
    assert parse_qs(urlsplit(late.headers["location"]).query)["status"] == ["expired"]
    assert await intent(rig, session_id(url)) == ("expired", 1)
    assert rig.starter.paid == []


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong secret", 401),
        ("old timestamp", 401),
        ("unsigned", 401),
        ("tampered body", 401),
        ("not json", 400),
    ],
)
async def test_a_forged_webhook_changes_nothing(rig: Rig, case: str, status: int) -> None:
    loan = await rig.loan()
    url = await rig.service.start_checkout(loan.loan_id, 30_000, "CNY", RETURN_URL)
    provider_id = session_id(url)
    data = {"id": provider_id, "status": "succeeded", "amount_minor": 30_000, "currency": "CNY"}
    body = json.dumps({"id": "evt_forged", "type": "checkout.succeeded", "created": 0, "data": data}).encode()
    headers = {SIGNATURE_HEADER: sign(SANDBOX_WEBHOOK_SECRET, body)}
    if case == "wrong secret":
        headers = {SIGNATURE_HEADER: sign("guessed", body)}
    elif case == "old timestamp":
        headers = {SIGNATURE_HEADER: sign(SANDBOX_WEBHOOK_SECRET, body, int(time.time()) - 3600)}
    elif case == "unsigned":
        headers = {}
    elif case == "tampered body":
        body = body.replace(b"30000", b"80000")
    elif case == "not json":
        body = b"paid!"
        headers = {SIGNATURE_HEADER: sign(SANDBOX_WEBHOOK_SECRET, body)}

    async with httpx.AsyncClient() as http:
        answer = await http.post(rig.webhook_url, content=body, headers=headers)

    assert answer.status_code == status
    assert await intent(rig, provider_id) == ("pending", 0)
    assert rig.starter.paid == []
    assert (
        await rig.pool.fetchval("SELECT count(*) FROM payment_webhook_events WHERE event_id = 'evt_forged'")
        == 0
    )


async def test_an_amount_outside_the_bounds_starts_nothing(rig: Rig) -> None:
    loan = await rig.loan(amount=80_000)

    for amount, currency, field in [
        (80_001, "CNY", "amount_minor"),
        (99, "CNY", "amount_minor"),
        (0, "CNY", "amount_minor"),
        (1_000, "USD", "currency"),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            await rig.service.start_checkout(loan.loan_id, amount, currency, RETURN_URL)
        assert [p[0] for p in refused.value.problems] == [field]
    with pytest.raises(InvalidRequest) as refused:
        await rig.service.start_checkout(loan.loan_id, 1_000, "CNY", "javascript:alert(1)")
    assert [p[0] for p in refused.value.problems] == ["return_url"]

    assert (
        await rig.pool.fetchval("SELECT count(*) FROM payment_intents WHERE loan_id = $1", loan.loan_id) == 0
    )
    assert rig.provider.sessions == {}
    # The whole arrears is payable at once.
    assert (await rig.service.bounds(loan.loan_id))[:2] == (100, 80_000)


async def test_a_webhook_that_cannot_reach_the_loan_is_retried_and_applied_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = await rig.loan()
    url = await rig.service.start_checkout(loan.loan_id, 20_000, "CNY", RETURN_URL)
    real_pay = rig.starter.pay
    answers: list[str] = []

    async def down_once(*args: Any, **kwargs: Any) -> Any:
        if not answers:
            answers.append("down")
            raise RuntimeError("Temporal unreachable")
        answers.append("up")
        return await real_pay(*args, **kwargs)

    monkeypatch.setattr(rig.starter, "pay", down_once)

    async with httpx.AsyncClient() as browser:
        await browser.post(url + "/confirm")  # the sandbox's first delivery gets 503, its retry 200

    assert answers == ["down", "up"]
    assert await paid_total(rig, loan.loan_id, 20_000) == 20_000
    assert len(rig.starter.paid) == 1
    assert await intent(rig, session_id(url)) == ("confirmed", 1)
