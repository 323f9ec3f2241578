"""One way to reach Temporal, the same for the CLI, the demo and servicing integrations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

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


class TemporalTLSSettingsError(TemporalUnreachable):
    """A TLS setting names a file that cannot be used (missing, unreadable, not PEM) or lacks its pair. A
    TemporalUnreachable so every caller reports it in one line and exits 1, as for a refused connection;
    `setting` is the environment variable to fix."""

    def __init__(self, address: str, namespace: str, setting: str, detail: str) -> None:
        super().__init__(address, namespace, f"{setting}: {detail}")
        self.setting = setting
        self.args = (f"{setting}: {detail}",)

    def __str__(self) -> str:
        return str(self.args[0])


# Settings field -> the environment variable an operator sets (the `temporal` CLI's names).
_TLS_ENV = {
    "temporal_tls_server_ca_cert_path": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "temporal_tls_client_cert_path": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "temporal_tls_client_key_path": "TEMPORAL_TLS_CLIENT_KEY_PATH",
}


def tls_config(settings: Settings) -> TLSConfig | bool | None:
    """What `Client.connect(tls=...)` gets: a TLSConfig when a CA bundle, client certificate or server name
    is set (each file read now, so a wrong path fails at start naming its setting, not at the first
    handshake); True for TEMPORAL_TLS alone (default roots); None otherwise (the SDK turns TLS on by itself
    for an API key). Raises `TemporalTLSSettingsError`."""

    def fail(field: str, detail: str) -> TemporalTLSSettingsError:
        return TemporalTLSSettingsError(
            settings.temporal_target, settings.temporal_namespace, _TLS_ENV[field], detail
        )

    def read_pem(field: str) -> bytes | None:
        path: Path | None = getattr(settings, field)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise fail(field, f"no such file {path}") from None
        except IsADirectoryError:
            raise fail(field, f"{path} is a directory, not a PEM file") from None
        except OSError as error:  # permissions (a Secret mounted without the pod's group), I/O
            raise fail(field, f"cannot read {path}: {error.strerror or type(error).__name__}") from None
        if b"-----BEGIN " not in data:
            # Checked here because the SDK's own error for a DER or empty file does not say which file.
            raise fail(field, f"{path} is not PEM (no -----BEGIN line)")
        return data

    ca = read_pem("temporal_tls_server_ca_cert_path")
    cert = read_pem("temporal_tls_client_cert_path")
    key = read_pem("temporal_tls_client_key_path")
    if (cert is None) != (key is None):
        missing = "temporal_tls_client_key_path" if key is None else "temporal_tls_client_cert_path"
        raise fail(missing, "not set; mTLS needs both the client certificate and its key")
    if ca is None and cert is None and settings.temporal_tls_server_name is None:
        return True if settings.temporal_tls else None
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name,
        client_cert=cert,
        client_private_key=key,
    )


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
        # rustls's words: which TLS setting to look at, the server's certificate or ours.
        ("UnknownIssuer", "server certificate not signed by a trusted CA (TEMPORAL_TLS_SERVER_CA_CERT_PATH)"),
        ("NotValidForName", "server certificate is for another name (TEMPORAL_TLS_SERVER_NAME)"),
        ("CertificateRequired", "the server requires a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)"),
        ("KeyMismatch", "the client certificate and key do not match (TEMPORAL_TLS_CLIENT_KEY_PATH)"),
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

    TLS is used when TEMPORAL_TLS is set, automatically when an API key is given (Temporal Cloud), and with a
    private CA / client certificate (mTLS) / server name when the TEMPORAL_TLS_* paths are set (`tls_config`).
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
    tls = tls_config(settings)  # before dialling: a wrong file is a settings error, not a network one
    try:
        return await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key or None,
            tls=tls,
            data_converter=pydantic_data_converter,
            connect_timeout=CONNECT_TIMEOUT,
        )
    except RuntimeError as error:
        reason = _short_reason(error)
        text = str(error)
        if tls and "after connection" in text and ("transport error" in text or "connection closed" in text):
            # A TLS 1.3 server refuses a client certificate after the handshake, by dropping the connection
            # (EOF, reset, broken pipe or cancel on the first call): say where to look.
            reason = "the server closed the TLS connection: client certificate missing or not trusted (mTLS: "
            reason += "TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)"
        raise TemporalUnreachable(settings.temporal_target, settings.temporal_namespace, reason) from error
