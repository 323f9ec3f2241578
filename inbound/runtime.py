"""Serving the inbound app: `python -m inbound` in production, `start_for_stack` inside `make run`."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import SecretStr
from temporalio.client import Client

from activities.channels import build_router
from activities.channels.router import ChannelRouter
from activities.messaging import OutboxAdapter
from authority.keys import SigningKey, read_json
from authority.settings import DEV_DIR
from authority.signer import Signer
from inbound.app import build_app
from inbound.desk import ReplySender, WorkflowDesk
from inbound.service import InboundService
from inbound.settings import PROVIDERS, InboundSettings
from stack.settings import Settings
from starter.api import CollectionsStarter


def build_service(
    settings: Settings, inbound: InboundSettings, pool: asyncpg.Pool, starter: CollectionsStarter
) -> tuple[InboundService, ChannelRouter]:
    """The service and the channel router it answers through (close it with `aclose`)."""
    router = build_router(settings)
    sms = router.adapter_for("sms")
    service = InboundService(
        pool,
        WorkflowDesk(starter),
        ReplySender(OutboxAdapter(pool), sms),
        confirm_in=inbound.confirming_jurisdictions(),
    )
    return service, router


class InboundServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self._wanted = app, host, port
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._wanted))
        except OSError as error:
            sock.close()
            raise RuntimeError(
                f"inbound: cannot listen on {self.host}:{self._wanted} ({error.strerror}); "
                "set OVERDUE_INBOUND_PORT to a free port (0 picks one)"
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        # No access log: nothing in these requests is worth a line, and a provider's query may carry PII.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


Cleanups = list[tuple[str, Callable[[], Awaitable[Any]]]]


def borrower_signer(state_dir: Path) -> Signer:
    """This process's keys, plus `make run`'s dev borrower key when it holds no borrower key of its own."""
    signer = Signer.from_settings()
    if not any("borrower" in key.roles for key in signer.keys):
        path = state_dir / DEV_DIR / "borrower.key"
        if path.exists():
            signer = Signer([*signer.keys, SigningKey.from_json(read_json(path, "dev key"), str(path))])
    return signer


async def start_for_stack(
    settings: Settings, client: Client, pool: asyncpg.Pool, sandboxes: Any, cleanups: Cleanups
) -> list[str]:
    """`make run`: the inbound app on 127.0.0.1:OVERDUE_INBOUND_PORT, acting for borrowers with the dev
    borrower key; providers without a credential of their own use the sandboxes' shared secret, and each
    channel sandbox learns where to send replies, receipts and bounces. `settings` are the worker's (sandbox
    URLs). Banner lines."""
    from stack.sandbox import SANDBOX_SECRET

    starter = CollectionsStarter(
        client, task_queue=settings.task_queue, settings=settings, signer=borrower_signer(settings.state_dir)
    )

    inbound = InboundSettings()
    defaults = {
        f"inbound_{p}_secret": SecretStr(SANDBOX_SECRET)
        for p in PROVIDERS
        if inbound.secret(p) is None and inbound.api_key(p) is None
    }
    inbound = inbound.model_copy(update=defaults)
    service, router = build_service(settings, inbound, pool, starter)
    server = InboundServer(build_app(service, inbound), "127.0.0.1", inbound.inbound_port)
    await server.start()
    cleanups.append(("inbound", server.stop))
    cleanups.append(("inbound channels", router.aclose))
    for provider in PROVIDERS:
        sandbox = getattr(sandboxes, "mailbox" if provider == "email" else provider, None)
        secret = inbound.secret(provider)
        if sandbox is None or secret is None:
            continue
        if provider == "email":  # mail to the lender's own address is the borrower replying
            sandbox.connect_inbound(server.url, secret, reply_address=parseaddr(settings.smtp_from)[1])
        else:
            sandbox.connect_inbound(server.url, secret)
    return [f" Inbound webhooks  {server.url}/inbound/...   (replies, receipts, bounces)"]
