"""The pay button hands the borrower to the payment provider's hosted page (payments.PaymentService,
start_checkout) for an amount the service accepts, and brings them back to their link; without a provider
the page says online payment is unavailable."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from borrower.app import Services, create_app
from payments import WebhookRefused
from starter.api import CollectionsStarter
from starter.requests import InvalidRequest
from tests.borrower.conftest import SETTINGS, KeptCodes, cn_loan, csrf, message_link, running, verified

pytestmark = pytest.mark.asyncio


class FakePayments:
    def __init__(self) -> None:
        self.checkouts: list[tuple[str, int, str, str]] = []
        self.webhooks: list[bytes] = []

    async def handle_webhook(self, body: bytes, signature: str | None) -> None:
        self.webhooks.append(body)
        raise WebhookRefused(401, "signature missing")

    async def start_checkout(self, loan_id: str, amount_minor: int, currency: str, return_url: str) -> str:
        if amount_minor > 80_000:
            raise InvalidRequest([("amount_minor", "at most the amount overdue (80000)")])
        self.checkouts.append((loan_id, amount_minor, currency, return_url))
        return "https://provider.example/pay/cs_1"


async def test_pay_goes_to_the_providers_page_and_back(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    codes: KeptCodes,
) -> None:
    payments = FakePayments()
    app = create_app(Services(db_pool, starter, codes, payments, SETTINGS))
    async with (
        running(cn_loan(), local_client, task_queue, starter, db_pool) as loan,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        assert 'action="' + path + '/pay"' in page
        too_much = await client.post(f"{path}/pay", data={"csrf": csrf(page), "amount": "900"})
        assert too_much.status_code == 422 and "at most the amount overdue" in too_much.text
        assert 'id="pay-amount-error"' in too_much.text and not payments.checkouts
        paid = await client.post(f"{path}/pay", data={"csrf": csrf(page), "amount": "300"})
        assert paid.status_code == 303 and paid.headers["location"] == "https://provider.example/pay/cs_1"
        assert payments.checkouts == [(loan.loan_id, 30_000, "CNY", f"http://testserver{path}?paid=1")]
        back = await client.get(f"{path}?paid=1")
        assert back.status_code == 200 and "还款正在确认中" in back.text
        # The provider's webhooks come to this app (payments/webhook.py is mounted with the service).
        forged = await client.post("/payments/webhook", content=b"{}")
        assert forged.status_code == 401 and payments.webhooks == [b"{}"]


async def test_without_a_provider_there_is_no_pay_form(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    codes: KeptCodes,
    client: httpx.AsyncClient,
) -> None:
    async with running(cn_loan(), local_client, task_queue, starter, db_pool) as loan:
        path = await message_link(db_pool, loan)
        page = await verified(client, codes, path)
        assert f'action="{path}/pay"' not in page and "暂时无法在线还款" in page
        refused = await client.post(f"{path}/pay", data={"csrf": csrf(page), "amount": "300"})
        assert refused.status_code == 503


async def test_back_from_a_confirmed_payment_that_ended_the_collection_says_thank_you(
    local_client: Client,
    task_queue: str,
    starter: CollectionsStarter,
    db_pool: asyncpg.Pool,
    codes: KeptCodes,
) -> None:
    app = create_app(Services(db_pool, starter, codes, FakePayments(), SETTINGS))
    async with (
        running(cn_loan(), local_client, task_queue, starter, db_pool) as loan,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        path = await message_link(db_pool, loan)
        await verified(client, codes, path)
        intents = "INSERT INTO payment_intents (provider_id, loan_id, amount_minor, currency, status) "
        await db_pool.execute(intents + "VALUES ('cs_done', $1, 80000, 'CNY', 'confirmed')", loan.loan_id)
        await db_pool.execute(intents + "VALUES ('cs_other', 'BRW-other', 80000, 'CNY', 'confirmed')")
        await db_pool.execute(intents + "VALUES ('cs_open', $1, 100, 'CNY', 'pending')", loan.loan_id)
        # The whole arrears paid: the webhook ended the collection before the provider sent the borrower back.
        await db_pool.execute("UPDATE portfolio SET outcome = 'paid' WHERE loan_id = $1", loan.loan_id)

        thanks = await client.get(f"{path}?paid=1&checkout=cs_done&status=succeeded")
        assert thanks.status_code == 200 and "您的还款已收到" in thanks.text and "800.00" not in thanks.text
        # Anything but this loan's confirmed checkout is the ended link's page, as without the parameters.
        for checkout in ("cs_other", "cs_open", "cs_unknown"):
            ended = await client.get(f"{path}?paid=1&checkout={checkout}")
            assert ended.status_code == 410 and "该链接已失效" in ended.text
