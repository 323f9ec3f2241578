"""`make run` starts the sandbox provider when no provider is configured, and points the process at it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments.settings import PaymentSettings
from stack.sandbox.common import SandboxError, bind
from stack.sandbox.payments import SANDBOX_WEBHOOK_SECRET, start_for_stack
from stack.settings import Settings


async def test_without_a_provider_make_run_starts_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("PAYMENT_PROVIDER_URL", "PAYMENT_API_KEY", "PAYMENT_WEBHOOK_SECRET", "PAYMENT_WEBHOOK_URL"):
        # set, then unset: the monkeypatch restores each to what it was, whatever start_for_stack sets
        monkeypatch.setenv(f"OVERDUE_{name}", "")
        monkeypatch.delenv(f"OVERDUE_{name}")
    monkeypatch.setenv("OVERDUE_SANDBOX_PAYMENTS_PORT", "0")
    monkeypatch.setenv("OVERDUE_BORROWER_PORT", "8111")
    cleanups: list[tuple[str, Any]] = []

    lines = await start_for_stack(Settings(state_dir=tmp_path), cleanups)
    try:
        settings = PaymentSettings()
        assert settings.payment_provider_url and settings.payment_webhook_secret
        assert settings.payment_webhook_secret.get_secret_value() == SANDBOX_WEBHOOK_SECRET
        assert "http://127.0.0.1:8111/payments/webhook" in lines[0]
        async with httpx.AsyncClient() as http:
            events = await http.get(settings.payment_provider_url + "/v1/events")
        assert events.status_code == 200 and events.json() == []
    finally:
        for _, stop in cleanups:
            await stop()
    # Stopped, it leaves nothing behind: a later start in this process starts a sandbox again.
    assert "OVERDUE_PAYMENT_PROVIDER_URL" not in os.environ
    assert "OVERDUE_PAYMENT_WEBHOOK_SECRET" not in os.environ


async def test_a_busy_default_port_picks_another(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PAYMENT_PROVIDER_URL", "SANDBOX_PAYMENTS_PORT"):
        monkeypatch.setenv(f"OVERDUE_{name}", "")
        monkeypatch.delenv(f"OVERDUE_{name}")
    default = PaymentSettings().sandbox_payments_port
    busy = bind("127.0.0.1", default, "test") if _free(default) else None  # busy either way now
    cleanups: list[tuple[str, Any]] = []
    try:
        await start_for_stack(Settings(state_dir=tmp_path), cleanups)
        url = os.environ["OVERDUE_PAYMENT_PROVIDER_URL"]
        assert not url.endswith(f":{default}")
        async with httpx.AsyncClient() as http:
            assert (await http.get(url + "/v1/events")).status_code == 200
        for _, stop in cleanups:
            await stop()
        # Asked for explicitly, a busy port is an error naming the setting.
        monkeypatch.setenv("OVERDUE_SANDBOX_PAYMENTS_PORT", str(default))
        with pytest.raises(SandboxError, match="OVERDUE_SANDBOX_PAYMENTS_PORT"):
            await start_for_stack(Settings(state_dir=tmp_path), [])
    finally:
        if busy is not None:
            busy.close()


def _free(port: int) -> bool:
    try:
        bind("127.0.0.1", port, "test").close()
    except SandboxError:
        return False
    return True


async def test_a_configured_provider_starts_no_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OVERDUE_PAYMENT_PROVIDER_URL", "https://api.provider.example/v1?key=x")
    cleanups: list[tuple[str, Any]] = []

    lines = await start_for_stack(Settings(state_dir=tmp_path), cleanups)

    assert cleanups == [] and lines == [" Payments          provider api.provider.example"]
    assert os.environ["OVERDUE_PAYMENT_PROVIDER_URL"] == "https://api.provider.example/v1?key=x"
