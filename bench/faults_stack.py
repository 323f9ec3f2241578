"""The stack the fault suite breaks: assembled as `make run` assembles it, with the worker in its own process.

Temporal dev server (headless, free ports), embedded PostgreSQL, the channel sandboxes and the sandbox agency
run here; `python worker.py` runs as a child so it can be SIGKILLed. The worker reaches the agency through
`Blackhole`, a TCP relay that can stop answering (an agency that accepts connections and never replies).
Everything lives in one temporary state dir; `stop()` ends every process this module started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psutil

from stack.embedded import EmbeddedPostgres, TemporalDevServer, free_port
from stack.sandbox import SANDBOX_API_KEY, ChannelSandboxes
from stack.settings import ROOT, Settings

# Environment names of the settings the worker needs pointed at this stack's sandboxes.
_ENV = {
    "smtp_host": "OVERDUE_SMTP_HOST",
    "smtp_port": "OVERDUE_SMTP_PORT",
    "smtp_tls": "OVERDUE_SMTP_TLS",
    "sms_gateway_url": "OVERDUE_SMS_GATEWAY_URL",
    "sms_api_key": "OVERDUE_SMS_API_KEY",
    "push_webhook_url": "OVERDUE_PUSH_WEBHOOK_URL",
    "push_webhook_secret": "OVERDUE_PUSH_WEBHOOK_SECRET",
}


class Blackhole:
    """A TCP relay to `target_port`; while `hanging`, new connections are accepted and never answered."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hanging = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hanging:
            self._held.append(writer)  # read nothing, answer nothing, until the caller times out
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
            self._server = None


class FaultStack:
    def __init__(self, state_dir: Path, day_seconds: float, worker_log: Path) -> None:
        self.state_dir = state_dir
        self.day_seconds = day_seconds
        self.worker_log = worker_log
        port = free_port()
        self.temporal = TemporalDevServer(state_dir, port=port, headless=True)
        self.postgres = EmbeddedPostgres(state_dir / "pgdata")
        self.settings = Settings(
            state_dir=state_dir,
            temporal_address=self.temporal.target,
            demo_day_seconds=day_seconds,
            sandbox_smtp_port=0,
            sandbox_mailbox_port=0,
            sandbox_sms_port=0,
            sandbox_push_port=0,
            sandbox_agency_port=0,  # a fixed free_port() can be taken by the dev server meanwhile
        )
        self.sandboxes: ChannelSandboxes | None = None
        self.agency: Any = None
        self.blackhole: Blackhole | None = None
        self.worker: asyncio.subprocess.Process | None = None
        self.pool: Any = None
        self.client: Any = None
        self.frozen: list[psutil.Process] = []
        self.worker_starts = 0

    # ------------------------------------------------------------------------------------ whole stack
    async def start(self) -> None:
        from activities.agency_http import report_agency_payment
        from activities.db import create_pool
        from authority.dev import prepare_stack
        from privacy.keyring import ensure_dev_keyring
        from stack.migrate import apply_migrations
        from stack.sandbox import agency
        from starter.connect import connect

        # Signing keys for this process, the trust ring for the worker: this scenario's own. prepare_stack
        # only sets them when unset (an operator's explicit files win in `make run`), so the previous
        # scenario's (whose state dir is gone) are dropped first: with them the next worker cannot start.
        for name in ("OVERDUE_SIGNING_KEY_FILES", "OVERDUE_TRUSTED_KEYS_FILE"):
            os.environ.pop(name, None)
        prepare_stack(self.state_dir)
        ensure_dev_keyring(self.state_dir)
        await asyncio.gather(self.temporal.start(), self.postgres.start())
        await apply_migrations(self.postgres.url)
        self.pool = await create_pool(self.postgres.url, max_size=4)
        self.client = await connect(self.settings, pool=self.pool)
        self.sandboxes = await ChannelSandboxes.start(self.settings)
        self.agency = await agency.start_for_stack(
            self.settings, lambda *a, **k: report_agency_payment(self.client, *a, **k), SANDBOX_API_KEY
        )
        if self.agency is not None and self.blackhole is None:
            self.blackhole = Blackhole(self.agency.port)
            await self.blackhole.start()
        elif self.agency is not None and self.blackhole is not None:
            self.blackhole.target_port = self.agency.port
        await self.start_worker()

    async def stop(self) -> None:
        """Everything, in `make run`'s order: worker, sandboxes, Temporal, PostgreSQL. Safe to call twice."""
        await self.thaw_postgres()
        await self.stop_worker(signal.SIGTERM)
        if self.pool is not None:
            await asyncio.wait_for(self.pool.close(), 30)
            self.pool = None
        if self.agency is not None:
            await self.agency.stop()
            self.agency = None
        if self.sandboxes is not None:
            await self.sandboxes.stop()
            self.sandboxes = None
        await self.temporal.stop()
        await self.postgres.stop()

    async def close(self) -> None:
        await self.stop()
        if self.blackhole is not None:
            await self.blackhole.stop()

    # ---------------------------------------------------------------------------------------- worker
    def worker_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OVERDUE_", "TEMPORAL_")) and k != "DATABASE_URL"
        }
        # The trust ring and signing keys prepare_stack put in this process's environment come along.
        for name in ("OVERDUE_TRUSTED_KEYS_FILE", "OVERDUE_SIGNING_KEY_FILES"):
            if name in os.environ:
                env[name] = os.environ[name]
        env |= {
            "TEMPORAL_ADDRESS": self.temporal.target,
            "DATABASE_URL": self.postgres.url,  # never let the worker start PostgreSQL itself
            "OVERDUE_STATE_DIR": str(self.state_dir),  # codec-keys.json
            "OVERDUE_DEMO_DAY_SECONDS": f"{self.day_seconds:g}",
            "OVERDUE_WORKER_STOP_GRACE_SECONDS": "15",
            "PYTHONUNBUFFERED": "1",
        }
        assert self.sandboxes is not None
        for field, value in self.sandboxes.settings_overrides().items():
            if field in _ENV and value is not None:
                env[_ENV[field]] = str(value)
        if self.blackhole is not None:
            env["OVERDUE_AGENCY_SANDBOX_URL"] = f"http://127.0.0.1:{self.blackhole.port}"
        return env

    async def start_worker(self) -> None:
        with self.worker_log.open("ab") as sink:
            self.worker = await asyncio.create_subprocess_exec(
                sys.executable, "worker.py", cwd=ROOT, env=self.worker_env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        self.worker_starts += 1

    async def stop_worker(self, sig: int = signal.SIGKILL, within: float = 30) -> int | None:
        worker, self.worker = self.worker, None
        if worker is None or worker.returncode is not None:
            return None if worker is None else worker.returncode
        worker.send_signal(sig)
        try:
            return await asyncio.wait_for(worker.wait(), within)
        except TimeoutError:
            worker.kill()
            return await worker.wait()

    # ------------------------------------------------------------------------------------ PostgreSQL
    def _postgres_processes(self) -> list[psutil.Process]:
        pid = self.postgres.postmaster_pid
        if pid is None:
            return []
        try:
            postmaster = psutil.Process(pid)
            return [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    async def freeze_postgres(self) -> None:
        self.frozen = self._postgres_processes()
        for proc in self.frozen:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGSTOP)

    async def thaw_postgres(self) -> None:
        for proc in self.frozen:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)
        self.frozen = []

    async def stop_postgres(self) -> None:
        await self.postgres.stop()

    async def start_postgres(self) -> None:
        await self.postgres.start()

    # ------------------------------------------------------------------------------------------ loans
    async def start_loans(self, count: int, seed: int = 7) -> dict[str, int]:
        from demo.portfolio import load_demo
        from domain.strategy import load_strategy
        from starter.api import CollectionsStarter

        starter = CollectionsStarter(
            self.client,
            task_queue=self.settings.task_queue,
            strategy=load_strategy(self.settings.strategy_file),
            demo_day_seconds=self.day_seconds,
            settings=self.settings,
        )
        return await load_demo(starter, count, seed, date.today(), progress=False)
