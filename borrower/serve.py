"""Serving the borrower page: `python -m borrower` (production) and `make run` (stack/run.py), both with
uvicorn; the page signs as the borrower (its own key), sends codes through the configured channels and, when
a payment provider is configured, starts checkouts and receives its webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import uvicorn
from temporalio.client import Client

from activities.channels import build_router
from authority import Signer, SigningKey
from authority.keys import read_json
from authority.settings import DEV_DIR, AuthoritySettings
from borrower.app import Services, create_app
from borrower.settings import BorrowerSettings
from stack.embedded import EmbeddedServerError
from stack.settings import DEFAULT_PAY_URL, Settings
from starter.api import CollectionsStarter

Cleanups = list[tuple[str, Callable[[], Awaitable[Any]]]]
S = TypeVar("S", bound=Settings)  # make run's StackSettings stays itself
SECRET_FILE = "borrower-link-secret"


def borrower_signer(settings: AuthoritySettings | None = None) -> Signer:
    """The page's own key (OVERDUE_SIGNING_KEY_FILES / OVERDUE_SIGNING_KEY), acting as the borrower only."""
    signer = Signer.from_settings(settings)
    if not any("borrower" in key.roles for key in signer.keys):
        raise SystemExit(
            "the borrower page needs a signing key with role borrower (OVERDUE_SIGNING_KEY_FILES); README "
            "'Borrower page'"
        )
    return signer


def payments_for(pool: asyncpg.Pool, client: Client, settings: Settings) -> Any | None:
    """K2's PaymentService when a provider is configured (OVERDUE_PAYMENT_PROVIDER_URL), else None. Its
    starter signs payments as servicing, with this process's servicing key."""
    try:
        from payments import PaymentService, PaymentSettings
    except ImportError:  # a build without the payments package: the page shows no pay button
        return None
    if not PaymentSettings().payment_provider_url:
        return None
    return PaymentService.from_settings(pool, CollectionsStarter(client, settings=settings))


def dev_link_secret(state_dir: Path) -> str:
    """`make run`: the link secret kept in the state dir (links in sent messages keep working on restart)."""
    path = state_dir / SECRET_FILE
    if path.exists() and len(text := path.read_text().strip()) >= 32:
        return text
    text = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return text


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `make run` owns Ctrl-C and stops the page in its order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_app(app: Any, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    # Bound here, so a busy port is a clear error naming the setting, not uvicorn exiting the process.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise EmbeddedServerError(
            f"the borrower page cannot listen on {host}:{port} ({error.strerror}): stop what uses it, or set "
            "OVERDUE_BORROWER_PORT to another port"
        ) from None
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="borrower page")
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the borrower page stopped before it started")
            await asyncio.sleep(0.02)
    return server, task


async def start_for_stack(
    settings: Settings, worker_settings: S, client: Client, pool: asyncpg.Pool, cleanups: Cleanups
) -> tuple[S, list[str]]:
    """`make run`: the page on OVERDUE_BORROWER_PORT (8010), the dev link secret, and messages linking to it
    (unless OVERDUE_PAY_URL names another page). Returns the worker's settings and the banner lines."""
    os.environ.setdefault("OVERDUE_BORROWER_LINK_SECRET", dev_link_secret(settings.state_dir))
    page = BorrowerSettings()
    key = settings.state_dir / DEV_DIR / "borrower.key"
    signer = Signer([SigningKey.from_json(read_json(key, "dev key"), f"dev key {key}")])
    services = Services(
        pool,
        CollectionsStarter(client, task_queue=settings.task_queue, settings=settings, signer=signer),
        build_router(worker_settings),
        payments_for(pool, client, settings),
        page,
    )
    server, task = await serve_app(create_app(services), page.host, page.port)

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)

    cleanups.append(("borrower page", stop))
    url = f"http://{page.host}:{page.port}"
    if worker_settings.pay_url == DEFAULT_PAY_URL:
        worker_settings = worker_settings.model_copy(update={"pay_url": f"{url}/l/{{token}}"})
    return worker_settings, [
        f" Borrower page     {url}/l/<token>   (the link in every message; code by SMS/e-mail)"
    ]
