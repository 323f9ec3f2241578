"""Robustness of the stack's processes: `make run` notices a dead embedded server, and a worker's SIGTERM exit
is bounded even when PostgreSQL hangs. (The slow fault suite is bench/faults.py, outside the tests.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from privacy.keyring import KeyRing
from stack.embedded import EmbeddedPostgres, TemporalDevServer, free_port
from stack.migrate import apply_migrations
from stack.settings import ROOT


@pytest.fixture
def state_base() -> Iterator[Path]:
    """Outside pytest's tmp dirs: pgdata must stay readable to the server's system user (see
    tests/test_stack_embedded.py: pg_base)."""
    base = Path(tempfile.mkdtemp(prefix="overdue-faults-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OVERDUE_", "TEMPORAL_")) and key != "DATABASE_URL"
    }


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def _wait_for_line(path: Path, text: str, proc: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if text in _read(path):
            return
        assert proc.returncode is None, f"exited {proc.returncode}:\n{_read(path)}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {text!r} within {within}s:\n{_read(path)}")


def _descendants_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


class _Server:
    """Stands in for an embedded server handle: dies `after` seconds from now (never when None)."""

    def __init__(self, pid: int, after: float | None) -> None:
        self.pid = pid
        self._dies_at = None if after is None else time.monotonic() + after

    def exited(self) -> str | None:
        return "gone" if self._dies_at is not None and time.monotonic() >= self._dies_at else None


async def test_a_failure_is_blamed_on_a_server_that_dies_just_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL's postmaster closes its backends' connections before it exits itself: the worker's
    # "connection closed" arrives first, and `make run` must still name the dead server.
    from stack import run
    from stack.embedded import ResolvedDatabase, ResolvedTemporal

    temporal = ResolvedTemporal("localhost:1", _Server(11, after=None))  # type: ignore[arg-type]
    dying = ResolvedDatabase("postgresql://x", _Server(22, after=0.5))  # type: ignore[arg-type]
    assert await run.died_meanwhile(temporal, dying) == (
        "the embedded PostgreSQL (pid 22) died (gone): stopping everything else"
    )
    monkeypatch.setattr(run, "CAUSE_WAIT", 0.3)
    healthy = ResolvedDatabase("postgresql://x", _Server(22, after=None))  # type: ignore[arg-type]
    started = time.monotonic()
    assert await run.died_meanwhile(temporal, healthy) is None  # a plain failure is reported as itself
    assert time.monotonic() - started < 2
    assert await run.died_meanwhile(None, None) is None  # failed before the servers were resolved


@pytest.mark.parametrize("victim", ["temporal", "postgres"])
async def test_make_run_stops_cleanly_when_an_embedded_server_dies(state_base: Path, victim: str) -> None:
    state = state_base / "state"
    env = _clean_env() | {
        "OVERDUE_STATE_DIR": str(state),
        "OVERDUE_TEMPORAL_PORT": str(free_port()),
        "OVERDUE_TEMPORAL_UI_PORT": str(free_port()),
        "OVERDUE_DEMO_LOANS": "0",
        "OVERDUE_ADMIN_UI": "false",
        "OVERDUE_SANDBOX_SMTP_PORT": "0",
        "OVERDUE_SANDBOX_MAILBOX_PORT": "0",
        "OVERDUE_SANDBOX_SMS_PORT": "0",
        "OVERDUE_SANDBOX_PUSH_PORT": "0",
        "OVERDUE_SANDBOX_AGENCY_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    out = state_base / "run.out"
    with out.open("wb") as sink:
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stack", cwd=ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        await _wait_for_line(out, "Overdue is ready", run, 120)
        children = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
        temporal_pid = int((state / "temporal.pid").read_text())
        postmaster_pid = int((state / "pgdata" / "postmaster.pid").read_text().split()[0])

        if victim == "temporal":
            os.kill(temporal_pid, signal.SIGKILL)
            said = f"the embedded Temporal dev server (pid {temporal_pid}) died (exit code -9)"
        else:  # SIGQUIT: PostgreSQL's immediate shutdown, as when the server crashes or is OOM-killed
            os.kill(postmaster_pid, signal.SIGQUIT)
            said = f"the embedded PostgreSQL (pid {postmaster_pid}) died"
        code = await asyncio.wait_for(run.wait(), 60)
        text = _read(out)
        assert code == 1, text
        assert said in text, text
        assert "Temporal stopped" in text and "PostgreSQL stopped" in text, text
        # Nothing left behind: not the PostgreSQL it started, not a zombie of the killed Temporal.
        await asyncio.sleep(1)
        assert _descendants_alive([*children, temporal_pid, postmaster_pid]) == [], text
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
        leftover = EmbeddedPostgres(state / "pgdata")
        if leftover.running:
            await leftover.start()
            await leftover.stop()


async def test_worker_sigterm_exits_within_its_grace_while_postgres_is_frozen(
    state_base: Path, tmp_path: Path
) -> None:
    temporal = TemporalDevServer(state_base / "state", port=free_port(), headless=True)
    postgres = EmbeddedPostgres(state_base / "pgdata")
    await asyncio.gather(temporal.start(), postgres.start())
    frozen: list[psutil.Process] = []
    worker: asyncio.subprocess.Process | None = None
    grace = 3.0
    log = tmp_path / "worker.log"
    try:
        await apply_migrations(postgres.url)
        env = _clean_env() | {
            "TEMPORAL_ADDRESS": temporal.target,
            "DATABASE_URL": postgres.url,
            "OVERDUE_TASK_QUEUE": f"faults-{uuid.uuid4().hex}",
            "OVERDUE_STATE_DIR": str(state_base / "state"),
            "OVERDUE_CODEC_KEYS": KeyRing.generate().to_json(),
            "OVERDUE_WORKER_STOP_GRACE_SECONDS": str(grace),
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("wb") as sink:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "worker.py", cwd=ROOT, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        await _wait_for_line(log, "worker started", worker, 60)

        # Freeze PostgreSQL whole (postmaster and backends): connections stay open and nothing answers.
        assert postgres.postmaster_pid is not None
        postmaster = psutil.Process(postgres.postmaster_pid)
        frozen = [postmaster, *postmaster.children(recursive=True)]
        for proc in frozen:
            proc.send_signal(signal.SIGSTOP)

        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), grace + 20)
        took = time.monotonic() - started
        text = _read(log)
        assert took < grace + 5, f"took {took:.1f}s\n{text}"
        # Either it finished in time (code 0) or the grace expired and it said what it abandoned.
        assert code == 0 or ("shutdown grace expired" in text and "abandoned" in text), f"{code}\n{text}"
    finally:
        for proc in frozen:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)
        if worker is not None and worker.returncode is None:
            worker.kill()
            await worker.wait()
        await temporal.stop()
        await postgres.stop()
