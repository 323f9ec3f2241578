"""`make run`'s inbound app: served beside the sandboxes, which learn where to send and the secret."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, cast

import aiohttp
import asyncpg
import pytest
from temporalio.client import Client

from inbound.runtime import start_for_stack
from stack.sandbox import SANDBOX_SECRET, SmsGatewaySandbox
from stack.settings import Settings


async def test_start_for_stack_serves_the_webhooks_and_connects_the_sandboxes(
    tmp_path: Path, own_db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERDUE_INBOUND_PORT", "0")
    gateway = SmsGatewaySandbox(tmp_path / "sms.jsonl")
    await gateway.start()
    cleanups: list[tuple[str, Any]] = []
    try:
        sandboxes = types.SimpleNamespace(sms=gateway, mailbox=None, push=None)
        settings = Settings.model_validate({"state_dir": tmp_path, "sms_gateway_url": gateway.url})
        lines = await start_for_stack(settings, cast(Client, None), own_db_pool, sandboxes, cleanups)
        assert gateway.inbound is not None and gateway.inbound.secret == SANDBOX_SECRET
        assert lines and gateway.inbound.url in lines[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(gateway.inbound.url + "/healthz") as health:
                assert health.status == 200
            async with http.post(gateway.inbound.url + "/inbound/sms/replies", data=b"{}") as unsigned:
                assert unsigned.status == 401
        status = await gateway.inbound.send("/inbound/sms/replies", {"from": "+12125550100", "text": "STOP"})
        assert status == 200  # signed by the sandbox: accepted (an unknown number: nothing happens)
    finally:
        for _, cleanup in reversed(cleanups):
            await cleanup()
        await gateway.stop()
    assert [name for name, _ in cleanups] == ["inbound", "inbound channels"]
