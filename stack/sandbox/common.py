"""What the sandbox servers share: binding a local port, an aiohttp site, and an idempotent JSONL log."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from stack.embedded import EmbeddedServerError

HOST = "127.0.0.1"


class SandboxError(EmbeddedServerError):
    """A sandbox server could not start; the message says which setting to change."""


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket on host:port (0: any free port), or a SandboxError naming the setting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise SandboxError(
            f"cannot listen on {host}:{port} ({error.strerror}): another program uses it; "
            f"set {setting} to a free port (0 picks one)"
        ) from None
    sock.setblocking(False)
    return sock


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class HttpSandbox:
    """An aiohttp application on 127.0.0.1; subclasses add routes in `routes()`."""

    def __init__(self, *, host: str = HOST, port: int = 0, setting: str) -> None:
        self.host = host
        self._wanted_port = port
        self._setting = setting
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = bind(self.host, self._wanted_port, self._setting)
        self.port = int(sock.getsockname()[1])
        app = web.Application()
        app.add_routes(self.routes())
        # Sandboxes answer at once: nothing in flight is worth waiting a minute for on Ctrl-C.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class JsonLines:
    """An append-only JSON-lines file; each line one accepted request, as the sandbox logged it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: skip it, keep the rest
            if isinstance(entry, dict):
                entries.append(entry)
        return entries
