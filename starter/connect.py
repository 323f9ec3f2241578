"""One way to reach Temporal, the same for the CLI, the demo and servicing integrations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from privacy.converter import data_converter
from privacy.data_keys import DataKeyUnavailable
from privacy.keyring import CodecSettings, KeyRingError, load_keyring
from stack.settings import Settings

# How long one TCP connection attempt may take: an unroutable address fails in seconds, not minutes.
CONNECT_TIMEOUT = timedelta(seconds=10)


class TemporalUnreachable(RuntimeError):
    """The Temporal server at `address` could not be reached (down, wrong address, TLS or key refused)."""

    def __init__(self, address: str, namespace: str, detail: str) -> None:
        self.address = address
        self.namespace = namespace
        self.detail = detail
        super().__init__(f"cannot reach Temporal at {address} (namespace {namespace}): {detail}")


class EncryptionKeysUnavailable(TemporalUnreachable):
    """No usable payload encryption keys. A TemporalUnreachable so that every caller reporting an unreachable
    Temporal (one line, exit 1) reports this the same way: the client could not be made either way."""

    def __init__(self, address: str, namespace: str, detail: str) -> None:
        super().__init__(address, namespace, detail)
        self.args = (f"payload encryption: {detail}",)

    def __str__(self) -> str:
        return str(self.args[0])


def database_opener(settings: Settings) -> Callable[[], Awaitable[asyncpg.Pool]]:
    """How a client without a pool reaches the loans' data keys, on first need only (a `status` of a loan
    opens a two-connection pool; a command that never touches a loan's payloads opens nothing): DATABASE_URL,
    else the embedded PostgreSQL of `make run` in OVERDUE_STATE_DIR when it is running."""

    async def open_pool() -> asyncpg.Pool:
        url = settings.database_url or await _running_embedded_url(settings.state_dir)
        pool = await asyncpg.create_pool(url, min_size=0, max_size=2, command_timeout=30)
        assert pool is not None
        return pool

    return open_pool


_NO_DATABASE = (
    "a loan's payloads are encrypted with its data key, kept in PostgreSQL: set DATABASE_URL, or start "
    "`make run` (its embedded database in {}/pgdata is not running)"
)


def _embedded_running(state_dir: Path) -> bool:
    from stack.embedded import EmbeddedPostgres

    return EmbeddedPostgres(state_dir / "pgdata").running


async def _running_embedded_url(state_dir: Path) -> str:
    from stack.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(state_dir / "pgdata")
    if not embedded.running:  # stopped since connect() looked
        raise DataKeyUnavailable(_NO_DATABASE.format(state_dir))
    return await embedded.start()  # attaches to the running server, starts nothing


def _short_reason(error: BaseException) -> str:
    text = str(error)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("dns error", "host name not found"),
        ("failed to lookup address", "host name not found"),
        ("timed out", "connection timed out"),
        ("Timeout", "connection timed out"),
        ("certificate", "TLS certificate problem"),
        ("Unauthenticated", "API key rejected"),
        ("PermissionDenied", "permission denied"),
    ):
        if marker in text:
            return reason
    return (
        text.removeprefix("Failed client connect: ").splitlines()[0][:200] if text else type(error).__name__
    )


async def connect(settings: Settings | None = None, *, pool: asyncpg.Pool | None = None) -> Client:
    """A client for `settings.temporal_target` speaking pydantic: every message of the product is a model,
    every payload encrypted (privacy.converter: the key ring from OVERDUE_CODEC_KEYS(_FILE), else
    `.state/codec-keys.json`; loans' data keys in `pool`, else opened on first need by `database_opener`).

    TLS is used when TEMPORAL_TLS is set, and automatically when an API key is given (Temporal Cloud).
    Raises `TemporalUnreachable` (one readable line naming the address) instead of the SDK's transport error,
    and its subclass `EncryptionKeysUnavailable` when there is no valid key ring.
    """
    settings = settings or Settings()
    # Temporal first, so an unreachable server is reported as such whatever the keys.
    client = await _connect_plain(settings)
    codec_settings = CodecSettings(state_dir=settings.state_dir)
    try:
        keys = load_keyring(codec_settings)
    except KeyRingError as error:
        raise EncryptionKeysUnavailable(
            settings.temporal_target, settings.temporal_namespace, str(error)
        ) from None
    if pool is None and not settings.database_url and not _embedded_running(settings.state_dir):
        # Every command of the product touches a loan's payloads: say it now, in one line, not mid-query.
        raise EncryptionKeysUnavailable(
            settings.temporal_target, settings.temporal_namespace, _NO_DATABASE.format(settings.state_dir)
        )
    config = client.config()
    config["data_converter"] = data_converter(
        keys, pool if pool is not None else database_opener(settings), codec_settings
    )
    return Client(**config)


async def _connect_plain(settings: Settings) -> Client:
    try:
        return await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key or None,
            tls=True if settings.temporal_tls else None,
            data_converter=pydantic_data_converter,
            connect_timeout=CONNECT_TIMEOUT,
        )
    except RuntimeError as error:
        raise TemporalUnreachable(
            settings.temporal_target, settings.temporal_namespace, _short_reason(error)
        ) from error
