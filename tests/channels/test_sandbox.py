"""The sandbox servers of `make run`: the web mailbox, the gateway protocol, start/stop and the banner."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from activities.channels import build_router
from activities.collection_activities import CollectionActivities
from activities.messaging import TemplateCatalogue
from stack.embedded import port_in_use
from stack.sandbox import ChannelSandboxes, MailCapture, SandboxError, SmsGatewaySandbox
from stack.settings import Settings
from tests.channels.conftest import (
    API_KEY,
    PHONE,
    email_request,
    push_request,
    sms_adapter,
    sms_request,
    smtp_adapter,
)

CATALOGUE = TemplateCatalogue.load()


def _settings(tmp_path: Path, **values: object) -> Settings:
    ports = {"sandbox_smtp_port": 0, "sandbox_mailbox_port": 0, "sandbox_sms_port": 0, "sandbox_push_port": 0}
    return Settings.model_validate({"state_dir": tmp_path, **ports, **values})


async def test_web_mailbox_lists_and_shows_mails(mailbox: MailCapture, loan_id: str) -> None:
    adapter_mail = CATALOGUE.render(email_request(loan_id))
    await smtp_adapter(mailbox).deliver(adapter_mail)
    [stored] = mailbox.messages()

    async with aiohttp.ClientSession(base_url=mailbox.base_url) as http:
        async with http.get("/") as page:
            index = await page.text()
        async with http.get("/api/messages") as listing:
            summaries = await listing.json()
        async with http.get(f"/messages/{stored['id']}") as view:
            shown = await view.text()
        async with http.get(f"/api/messages/{stored['id']}") as one:
            detail = await one.json()
        async with http.get(f"/messages/{stored['id']}.eml") as raw:
            eml = await raw.text()
        async with http.get("/messages/1234567890123456789-deadbeef") as missing:
            missing_status = missing.status
        async with http.post("/api/messages") as write:
            write_status = write.status

    assert page.status == 200 and f'href="/messages/{stored["id"]}"' in index
    assert [s["id"] for s in summaries] == [stored["id"]]
    assert view.status == 200 and "CNY 1,234.50" in shown
    assert detail["text"] == stored["text"] and detail["headers"]["To"] == adapter_mail.recipient
    assert "X-Overdue-Idempotency-Key: " + adapter_mail.idempotency_key in eml
    assert (missing_status, write_status) == (404, 405)  # read-only


async def test_gateway_requires_an_idempotency_key_and_replays_the_first_answer(
    sms_gateway: SmsGatewaySandbox,
) -> None:
    body = {"to": PHONE, "text": "hello", "sender": "Overdue"}
    headers = {"X-API-Key": API_KEY}
    async with aiohttp.ClientSession() as http:
        async with http.post(sms_gateway.url, json=body, headers=headers) as no_key:
            assert (no_key.status, (await no_key.json())["error"]) == (400, "missing_idempotency_key")
        keyed = headers | {"Idempotency-Key": "K-1"}
        async with http.post(sms_gateway.url, json=body, headers=keyed) as first:
            first_answer = await first.json()
        async with http.post(sms_gateway.url, json=body, headers=keyed) as again:
            again_answer = await again.json()
            replayed = again.headers.get("Idempotent-Replayed")
        async with http.post(sms_gateway.url, json=body, headers=keyed | {"X-Sandbox-Fail": "503"}) as down:
            assert down.status == 503 and down.headers["Retry-After"] == "1"
        async with http.get(sms_gateway.url) as log:
            listed = await log.json()

    assert first.status == again.status == 200
    assert again_answer == first_answer and replayed == "true"
    assert [e["id"] for e in listed] == [first_answer["id"]]


async def test_gateway_remembers_keys_across_a_restart(tmp_path: Path, loan_id: str) -> None:
    log_file = tmp_path / "sms.jsonl"
    message = CATALOGUE.render(sms_request(loan_id))
    ids = []
    for _ in range(2):  # two `make run`s on the same state dir
        gateway = SmsGatewaySandbox(log_file, api_key=API_KEY)
        await gateway.start()
        adapter = sms_adapter(gateway)
        try:
            ids.append(await adapter.deliver(message))
        finally:
            await adapter.aclose()
            await gateway.stop()

    assert ids[0] == ids[1]
    assert len(log_file.read_text().splitlines()) == 1
    assert json.loads(log_file.read_text())["idempotency_key"] == message.idempotency_key


async def test_fail_next_over_http_for_demos(sms_gateway: SmsGatewaySandbox, loan_id: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sms_gateway.base_url}/sandbox/fail-next?count=2&status=502") as told:
            assert (await told.json()) == {"failing_next": 2, "status": 502}
    adapter = sms_adapter(sms_gateway)
    outcomes = []
    try:
        for _ in range(3):
            try:
                outcomes.append(await adapter.deliver(CATALOGUE.render(sms_request(loan_id))))
            except Exception as error:
                outcomes.append(type(error).__name__)
    finally:
        await adapter.aclose()

    assert outcomes[:2] == ["ApplicationError", "ApplicationError"]
    assert outcomes[2].startswith("sms_")


async def test_make_run_sandboxes_deliver_every_channel_and_stop_cleanly(
    tmp_path: Path, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    settings = _settings(tmp_path)
    sandboxes = await ChannelSandboxes.start(settings)
    assert sandboxes.mailbox and sandboxes.sms and sandboxes.push
    ports = [sandboxes.mailbox.smtp_port, sandboxes.mailbox.port, sandboxes.sms.port, sandboxes.push.port]
    router = build_router(settings.model_copy(update=sandboxes.settings_overrides()))
    try:
        activities = CollectionActivities(db_pool, channel=router)
        receipts = [
            await activities.send_message(request(loan_id))
            for request in (email_request, sms_request, push_request)
        ]
        lines = sandboxes.describe(settings, str)
    finally:
        await router.aclose()
        await sandboxes.stop()

    assert [r.status for r in receipts] == ["sent", "sent", "sent"]
    assert len(list((tmp_path / "mailbox").glob("*.eml"))) == 1
    assert len((tmp_path / "sms.jsonl").read_text().splitlines()) == 1
    assert len((tmp_path / "push.jsonl").read_text().splitlines()) == 1
    banner = "\n".join(lines)
    assert f"http://127.0.0.1:{ports[1]}/" in banner
    assert str(tmp_path / "sms.jsonl") in banner and str(tmp_path / "push.jsonl") in banner
    assert not any(port_in_use("127.0.0.1", port) for port in ports)


async def test_configured_providers_get_no_sandbox(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, smtp_host="smtp.lender.test", sms_gateway_url="https://sms.lender.test/v1?t=x"
    )
    sandboxes = await ChannelSandboxes.start(settings)
    try:
        assert (sandboxes.mailbox, sandboxes.sms) == (None, None) and sandboxes.push is not None
        overrides = sandboxes.settings_overrides()
        lines = "\n".join(sandboxes.describe(settings, str))
    finally:
        await sandboxes.stop()

    assert set(overrides) == {"push_webhook_url", "push_webhook_secret"}
    assert "SMTP smtp.lender.test" in lines
    assert "gateway sms.lender.test" in lines and "t=x" not in lines


async def test_sandboxes_off_means_none_started(tmp_path: Path) -> None:
    sandboxes = await ChannelSandboxes.start(_settings(tmp_path, sandbox_channels=False))

    assert sandboxes.settings_overrides() == {}
    assert "queued in the outbox" in "\n".join(sandboxes.describe(_settings(tmp_path), str))


async def test_a_busy_port_names_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SandboxError, match="OVERDUE_SANDBOX_SMS_PORT"):
            await ChannelSandboxes.start(_settings(tmp_path, sandbox_sms_port=port))
