"""The admin UI inside `make run`: served by uvicorn in the stack's event loop, with demo users.

Demo users exist only in the embedded demo database (never when DATABASE_URL points at a real one). Their
passwords are random per state directory, kept in .state/admin-demo-users.json so a resumed `make run`
prints the same ones, and written to the database at each start (so the printed password always works).
The session signing key is kept in .state/admin-secret-key: a restart does not log everyone out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import uvicorn

from admin.app import Services, create_app
from admin.passwords import check_password
from admin.settings import AdminSettings
from admin.users import generated_password, hash_password
from starter.api import CollectionsStarter


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    locale: str
    password: str


DEMO_USERS = (
    ("demo.collector", "collector", "Demo Collector 王敏", "zh-CN"),
    ("demo.supervisor", "supervisor", "Demo Supervisor", "en"),
)


class AdminUIError(RuntimeError):
    pass


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def secret_key(state_dir: Path) -> str:
    """This state directory's session key (created once, readable by its owner only)."""
    path = state_dir / "admin-secret-key"
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= 32:
            return key
    key = secrets.token_urlsafe(48)
    _private_file(path, key)
    return key


def demo_passwords(state_dir: Path) -> dict[str, str]:
    path = state_dir / "admin-demo-users.json"
    stored: dict[str, str] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                stored = {k: v for k, v in loaded.items() if isinstance(v, str) and not check_password(v)}
    wanted = {name: stored.get(name) or generated_password(name) for name, *_ in DEMO_USERS}
    if wanted != stored:
        _private_file(path, json.dumps(wanted, indent=2))
    return wanted


async def ensure_demo_users(
    pool: asyncpg.Pool, state_dir: Path, work_pools: Sequence[str] = ("default",)
) -> list[DemoUser]:
    """Create (or reset the password of) the demo collector and supervisor. Both work every pool of the
    demo (`work_pools`: the strategy's segments, which is how the workflow pools its call tasks)."""
    passwords = demo_passwords(state_dir)
    pools = sorted({*work_pools, "default"})
    users = []
    for username, role, display_name, locale in DEMO_USERS:
        password = passwords[username]
        await pool.execute(
            "INSERT INTO users (username, password_hash, role, display_name, locale, pools) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO UPDATE SET "
            "password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, pools = EXCLUDED.pools, "
            "active = true, failed_logins = 0, locked_until = NULL",
            username,
            hash_password(password),
            role,
            display_name,
            locale,
            pools,
        )
        users.append(DemoUser(username, role, display_name, locale, password))
    return users


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise AdminUIError(
                f"the admin UI cannot listen on {host}:{port} ({error.strerror}): stop what uses it, or set "
                "OVERDUE_ADMIN_PORT to another port"
            ) from None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `make run` owns Ctrl-C and stops the UI in its order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminUI:
    """uvicorn serving the admin app as a task of the running loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = server
        self._task = task
        self.url = url

    @classmethod
    async def start(
        cls,
        pool: asyncpg.Pool,
        starter: CollectionsStarter,
        state_dir: Path,
        temporal_ui_url: str | None,
    ) -> AdminUI:
        settings = AdminSettings()
        settings = settings.model_copy(
            update={
                "secret_key": settings.secret_key or secret_key(state_dir),
                "temporal_ui_url": settings.temporal_ui_url or temporal_ui_url,
            }
        )
        _check_port_free(settings.host, settings.port)
        app = create_app(settings, services=Services(pool, starter))
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", lifespan="off", access_log=False
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(), name="admin-ui")
        while not server.started:
            if task.done():
                task.result()
                raise AdminUIError(f"the admin UI did not start on {settings.host}:{settings.port}")
            await asyncio.sleep(0.02)
        # `localhost`, as the Web UI's address says: a login there is also the codec server's (same host name)
        host = "localhost" if settings.host == "127.0.0.1" else settings.host
        return cls(server, task, f"http://{host}:{settings.port}")

    async def stop(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
