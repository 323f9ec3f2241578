"""Local stand-ins for the message providers, so `make run` delivers for real without any account.

For each channel whose provider is not configured (OVERDUE_SMTP_HOST, OVERDUE_SMS_GATEWAY_URL,
OVERDUE_PUSH_WEBHOOK_URL unset) `make run` starts a sandbox on 127.0.0.1 and points the worker at it:

- e-mail: an SMTP server that keeps each mail under .state/mailbox/ and shows them on a web page;
- SMS: an HTTP gateway that logs each SMS to .state/sms.jsonl, once per idempotency key;
- app push: a signed-webhook receiver that logs each push to .state/push.jsonl.

Collection agencies whose endpoint is "sandbox" (strategies/agencies.toml) place with a local sandbox agency
(stack/sandbox/agency.py, log .state/agency.jsonl), started by `make run` beside these.

The worker talks to them with the same adapters, protocols and error handling as to real providers.
OVERDUE_SANDBOX_CHANNELS=false turns them off (messages of unconfigured channels then stay queued).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack.sandbox.agency import AgencySandbox
from stack.sandbox.common import HOST, SandboxError
from stack.sandbox.mailbox import MailCapture
from stack.sandbox.push import PushWebhookSandbox
from stack.sandbox.sms import SmsGatewaySandbox
from stack.settings import Settings

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_SECRET",
    "AgencySandbox",
    "ChannelSandboxes",
    "MailCapture",
    "PushWebhookSandbox",
    "SandboxError",
    "SmsGatewaySandbox",
]

# Fixed and documented, so a second `python worker.py` can be pointed at the same sandboxes. Local only.
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_SECRET = "sandbox-secret"


@dataclass
class ChannelSandboxes:
    mailbox: MailCapture | None = None
    sms: SmsGatewaySandbox | None = None
    push: PushWebhookSandbox | None = None

    @classmethod
    async def start(cls, settings: Settings, host: str = HOST) -> ChannelSandboxes:
        """Start a sandbox for every channel without a provider (none when OVERDUE_SANDBOX_CHANNELS=false)."""
        sandboxes = cls()
        if not settings.sandbox_channels:
            return sandboxes
        state = settings.state_dir
        try:
            if not settings.smtp_host:
                sandboxes.mailbox = MailCapture(
                    state / "mailbox",
                    host=host,
                    smtp_port=settings.sandbox_smtp_port,
                    http_port=settings.sandbox_mailbox_port,
                )
                await sandboxes.mailbox.start()
            if not settings.sms_gateway_url:
                sandboxes.sms = SmsGatewaySandbox(
                    state / "sms.jsonl",
                    host=host,
                    port=settings.sandbox_sms_port,
                    api_key=SANDBOX_API_KEY,
                    api_key_header=settings.sms_api_key_header,
                )
                await sandboxes.sms.start()
            if not settings.push_webhook_url:
                sandboxes.push = PushWebhookSandbox(
                    state / "push.jsonl", host=host, port=settings.sandbox_push_port, secret=SANDBOX_SECRET
                )
                await sandboxes.push.start()
        except BaseException:
            await sandboxes.stop()
            raise
        return sandboxes

    def settings_overrides(self) -> dict[str, Any]:
        """What to change in the worker's settings so the sandboxed channels deliver to the sandboxes."""
        update: dict[str, Any] = {}
        if self.mailbox is not None:
            update |= {
                "smtp_host": self.mailbox.host,
                "smtp_port": self.mailbox.smtp_port,
                "smtp_tls": "none",
                "smtp_username": None,
                "smtp_password": None,
            }
        if self.sms is not None:
            update |= {"sms_gateway_url": self.sms.url, "sms_api_key": SANDBOX_API_KEY}
        if self.push is not None:
            update |= {"push_webhook_url": self.push.url, "push_webhook_secret": SANDBOX_SECRET}
        return update

    def describe(self, settings: Settings, shown: Callable[[Path], str]) -> list[str]:
        """Banner lines of `make run`: where each channel's messages go and where to see them."""
        lines = []
        if self.mailbox is not None:
            lines.append(
                f" Mailbox           {self.mailbox.url}   e-mails (sandbox SMTP {self.mailbox.host}:"
                f"{self.mailbox.smtp_port}, files in {shown(self.mailbox.directory)}/)"
            )
        else:
            lines.append(f" E-mail            {_provider(settings.smtp_host, f'SMTP {settings.smtp_host}')}")
        if self.sms is not None:
            lines.append(f" SMS log           {shown(self.sms.log.path)}   (sandbox gateway {self.sms.url})")
        else:
            lines.append(f" SMS               {_provider(settings.sms_gateway_url, 'gateway')}")
        if self.push is not None:
            lines.append(
                f" App push log      {shown(self.push.log.path)}   (sandbox webhook {self.push.url})"
            )
        else:
            lines.append(f" App push          {_provider(settings.push_webhook_url, 'webhook')}")
        return lines

    async def stop(self) -> None:
        for sandbox in (self.push, self.sms, self.mailbox):
            if sandbox is not None:
                await sandbox.stop()


def _provider(configured: str | None, what: str) -> str:
    if not configured:
        return "no provider: queued in the outbox (messages table)"
    if "://" in configured:
        return f"{what} {urlsplit(configured).netloc}"  # host only: a URL may carry a token
    return what
