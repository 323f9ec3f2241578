"""App push through the signed webhook to the sandbox receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.channels import ChannelRouter, WebhookPushAdapter, errors
from activities.channels.push import SIGNATURE_HEADER, sign, signature_valid
from activities.collection_activities import CollectionActivities
from activities.messaging import TemplateCatalogue
from stack.sandbox import PushWebhookSandbox
from stack.sandbox.common import HttpSandbox
from tests.channels.conftest import ACCOUNT, NO_DEVICE_ACCOUNT, outbox_row, push_adapter, push_request

CATALOGUE = TemplateCatalogue.load()


async def test_push_is_signed_logged_once_and_marked_sent(
    activities: CollectionActivities, push_webhook: PushWebhookSandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = push_request(loan_id)

    await activities.send_message(request)
    await activities.send_message(request)

    [push] = push_webhook.entries()  # the sandbox accepts only correctly signed requests
    assert (push["to"], push["idempotency_key"], push["locale"]) == (ACCOUNT, request.idempotency_key, "en")
    assert push["title"] and "CNY 1,234.50" in push["body"]
    row = await outbox_row(db_pool, request.idempotency_key)
    assert (row["status"], row["provider_id"]) == ("sent", push["id"])


async def test_wrong_secret_is_refused_and_retryable(push_webhook: PushWebhookSandbox, loan_id: str) -> None:
    adapter = push_adapter(push_webhook, secret="not-the-secret")

    try:
        with pytest.raises(ApplicationError) as error:
            await adapter.deliver(CATALOGUE.render(push_request(loan_id)))
    finally:
        await adapter.aclose()

    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_MISCONFIGURED, False)
    assert push_webhook.entries() == []


async def test_account_without_device_410_is_permanent_and_marks_failed(
    activities: CollectionActivities, push_webhook: PushWebhookSandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = push_request(loan_id, recipient=NO_DEVICE_ACCOUNT)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)

    assert (error.value.type, error.value.non_retryable) == (contracts.CONTACT_POINT_INVALID, True)
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == "failed"
    assert push_webhook.entries() == []


class _Answering(HttpSandbox):
    """A webhook receiver that answers every push with one fixed status and JSON body."""

    def __init__(self, status: int, body: dict[str, str]) -> None:
        super().__init__(setting="test")
        self.status, self.body = status, body

    def routes(self) -> list[web.RouteDef]:
        async def answer(request: web.Request) -> web.Response:
            return web.json_response(self.body, status=self.status)

        return [web.post("/push", answer)]


@pytest_asyncio.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[_Answering]:
    status, body = request.param
    server = _Answering(status, body)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    ("receiver", "error_type", "non_retryable"),
    [
        ((404, {"error": "no_device"}), contracts.CONTACT_POINT_INVALID, True),
        ((404, {"error": {"code": "unknown_account"}}), contracts.CONTACT_POINT_INVALID, True),
        ((410, {}), contracts.CONTACT_POINT_INVALID, True),
        (
            (404, {"error": "not_found"}),
            errors.PROVIDER_MISCONFIGURED,
            False,
        ),  # a wrong URL, not the borrower
        ((503, {}), errors.PROVIDER_UNAVAILABLE, False),
    ],
    indirect=["receiver"],
)
async def test_no_device_answers_are_permanent_other_404s_are_not(
    receiver: _Answering, loan_id: str, error_type: str, non_retryable: bool
) -> None:
    adapter = WebhookPushAdapter(receiver.base_url + "/push", secret="s", timeout=5)

    try:
        with pytest.raises(ApplicationError) as error:
            await adapter.deliver(CATALOGUE.render(push_request(loan_id)))
    finally:
        await adapter.aclose()

    assert (error.value.type, error.value.non_retryable) == (error_type, non_retryable)


@pytest.mark.parametrize("receiver", [(202, {})], indirect=True)
async def test_accepted_without_an_id_counts_as_delivered(receiver: _Answering, loan_id: str) -> None:
    adapter = WebhookPushAdapter(receiver.base_url + "/push", secret="s", timeout=5)
    request = push_request(loan_id)

    try:
        provider_id = await adapter.deliver(CATALOGUE.render(request))
    finally:
        await adapter.aclose()

    assert provider_id == f"push:{request.idempotency_key}"


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = json.dumps({"to": "LN-1", "body": "hi"}).encode()
    header = sign("secret", body)

    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert signature_valid("secret", body, header)
    assert not signature_valid("secret", body + b" ", header)
    assert not signature_valid("other", body, header)
    assert not signature_valid("secret", body, None)
    assert SIGNATURE_HEADER == "X-Overdue-Signature"


def test_push_without_a_secret_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookPushAdapter("http://127.0.0.1:1/push", secret="")


async def test_router_keeps_push_on_its_own_adapter(push_webhook: PushWebhookSandbox) -> None:
    router = ChannelRouter({"push": push_adapter(push_webhook)})
    try:
        assert router.channels == ["push"]
    finally:
        await router.aclose()
