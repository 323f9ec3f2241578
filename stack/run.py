"""`make run`: the whole product on one machine, with nothing to install but the Python package.

Starts the embedded Temporal dev server (unless TEMPORAL_ADDRESS is set) and the embedded PostgreSQL (unless
DATABASE_URL is set), applies migrations, runs the worker in this process, loads the demo portfolio, and
prints where to look. Ctrl-C (or SIGTERM) stops the worker, then Temporal, then PostgreSQL, and exits 0.
State lives in OVERDUE_STATE_DIR (.state/): running again resumes every loan where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
from pydantic import Field

from stack.admin_ui import AdminUIError
from stack.embedded import (
    DEFAULT_PORT,
    DEFAULT_UI_PORT,
    EmbeddedServerError,
    ResolvedDatabase,
    ResolvedTemporal,
    redact_url,
    resolve_database_url,
    resolve_temporal,
)
from stack.logs import configure_logging, get_logger
from stack.process import ShutdownSettings
from stack.settings import ROOT, Settings
from stack.worker_runtime import install_metrics_runtime, run_worker

if TYPE_CHECKING:
    from starter.api import CollectionsStarter

log = get_logger("overdue.stack")

EXAMPLE_QUERY = 'CollectionStage="reminder"'
EXAMPLE_LOAN = "DEMO-0001"


class StackSettings(Settings):
    """Settings of `make run` only (same OVERDUE_ prefix)."""

    temporal_port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="embedded Temporal's gRPC")
    temporal_ui_port: int = Field(default=DEFAULT_UI_PORT, ge=1, le=65535, description="embedded Web UI")
    demo_loans: int = Field(default=300, ge=0, le=9999, description="demo portfolio size (0: none)")
    demo_seed: int = 7
    admin_ui: bool = Field(default=True, description="serve the admin UI (OVERDUE_ADMIN_PORT, default 8000)")


class StackError(RuntimeError):
    pass


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _elapsed_since_process_start() -> float:
    try:
        return time.time() - psutil.Process().create_time()
    except psutil.Error:
        return time.process_time()


def _shown(path: Path) -> str:
    """A path relative to the project when inside it (shorter to read and to paste)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _lock_state_dir(state_dir: Path) -> IO[str]:
    """One `make run` per state dir: a second one would share (and stop) the first one's servers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / "run.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "?"
        handle.close()
        raise StackError(
            f"another `make run` (pid {other}) is already using {_shown(state_dir)}: stop it first "
            "(Ctrl-C in its terminal), or give this one its own OVERDUE_STATE_DIR and ports"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def describe_demo_result(counts: dict[str, int], failed: int = 0) -> str:
    """'300 started, 0 already running, 0 already closed' from demo.portfolio.load_demo's counts."""
    parts = [f"{value} {key.replace('_', ' ')}" for key, value in counts.items() if key != "loans"]
    if failed:
        parts.append(f"{failed} failed to start (see the log; make run again retries them)")
    return ", ".join(parts)


def _starter(settings: StackSettings, client: Any) -> CollectionsStarter:
    """How `make run` starts loans and acts on them (demo portfolio, admin UI): the configured strategy and
    demo time scale."""
    from domain.strategy import load_strategy
    from starter.api import CollectionsStarter

    return CollectionsStarter(
        client,
        task_queue=settings.task_queue,
        strategy=load_strategy(settings.strategy_file),
        demo_day_seconds=settings.demo_day_seconds,
        settings=settings,
    )


async def _load_demo(settings: StackSettings, client: Any) -> str:
    from demo.portfolio import load_demo
    from starter.api import StartFailed, summarize

    starter = _starter(settings, client)
    try:
        counts = await load_demo(starter, settings.demo_loans, settings.demo_seed, date.today())
    except StartFailed as error:
        for loan_id, failure in error.failures.items():
            log.error("demo loan not started", loan_id=loan_id, error=str(failure))
        return describe_demo_result(dict(summarize(error.results)), failed=len(error.failures))
    return describe_demo_result(counts)


def banner(
    settings: StackSettings,
    temporal: ResolvedTemporal,
    database: ResolvedDatabase,
    demo: str,
    timings: dict[str, float],
    ready_after: float,
    log_file: Path,
    channels: Sequence[str] = (),
) -> str:
    ns = settings.temporal_namespace
    py = ".venv/bin/python"
    address = temporal.server.display_target if temporal.server is not None else temporal.address
    env = ""
    if temporal.server is not None and temporal.server.port != DEFAULT_PORT:
        env = f"TEMPORAL_ADDRESS={address} "
    lines = ["", "=" * 100]
    order = ["Temporal", "PostgreSQL", "migrations", "demo portfolio"]
    steps = ", ".join(f"{name} {timings[name]:.1f}s" for name in order if name in timings)
    lines.append(f" Overdue is ready in {ready_after:.1f}s wall time from start ({steps})")
    lines.append("-" * 100)
    if temporal.ui_url:
        workflows = f"{temporal.ui_url}/namespaces/{ns}/workflows"
        lines.append(f" Temporal Web UI   {workflows}")
        lines.append(f" Example query     {EXAMPLE_QUERY}   (paste into the Web UI's search box)")
        lines.append(f"                   {workflows}?query={quote(EXAMPLE_QUERY)}")
    else:
        lines.append(f" Temporal Web UI   your cluster's Web UI (TEMPORAL_ADDRESS={temporal.address})")
        lines.append(f" Example query     {EXAMPLE_QUERY}")
    lines.append(f" Temporal gRPC     {address}   namespace {ns}, task queue {settings.task_queue}")
    lines.append(f" DATABASE_URL      {redact_url(database.url)}")
    lines.append(f" Demo portfolio    {settings.demo_loans} loans (seed {settings.demo_seed}): {demo}")
    lines.extend(channels)  # where messages go: sandbox mailbox / SMS and push logs, or the real providers
    if settings.demo_day_seconds:
        lines.append("!" * 100)
        lines.append(
            f" DEMO TIME SCALE ON: one collections day = {settings.demo_day_seconds:g} real seconds. "
            "Demo only: never set it in production."
        )
        lines.append(
            " Loans started by this run use it; loans already running keep the scale they started with "
            "(make reset for a fresh demo)."
        )
        lines.append("!" * 100)
    else:
        lines.append(
            " Demo time scale   off: a collections day is a real day "
            "(make run DEMO_DAY_SECONDS=10 for one day per 10 s)"
        )
    lines.append(f" Logs              {_shown(log_file)} (JSON)")
    lines.append("")
    lines.append(" Try:")
    lines.append(f"   {env}{py} -m starter status {EXAMPLE_LOAN}")
    promise_date = (date.today() + timedelta(days=7)).isoformat()
    lines.append(f"   {env}{py} -m starter pay {EXAMPLE_LOAN} --amount 10000 --payment-id P-1  # minor units")
    lines.append(f"   {env}{py} -m starter promise {EXAMPLE_LOAN} --amount 50000 --date {promise_date}")
    lines.append(f"   {env}{py} -m starter --help")
    lines.append(
        f"   .venv/bin/temporal workflow list --address {address} --namespace {ns} --query '{EXAMPLE_QUERY}'"
    )
    lines.append("")
    state = _shown(settings.state_dir)
    lines.append(f" Press Ctrl-C to stop. State is kept in {state}/: make run resumes it.")
    lines.append("=" * 100)
    return "\n".join(lines)


async def _start_admin_ui(
    settings: StackSettings,
    client: Any,
    pool: Any,
    temporal: ResolvedTemporal,
    database: ResolvedDatabase,
    cleanups: list[tuple[str, Callable[[], Awaitable[Any]]]],
) -> list[str]:
    """Serve the admin UI; the banner lines that say where, and who can log in."""
    from stack.admin_ui import AdminUI, ensure_demo_users

    if not settings.admin_ui:
        return [" Admin UI          off (OVERDUE_ADMIN_UI=false)"]
    starter = _starter(settings, client)
    ui = await AdminUI.start(pool, starter, settings.state_dir, temporal.ui_url)
    cleanups.append(("admin UI", ui.stop))
    lines = [f" Admin UI          {ui.url}/"]
    if database.server is None:
        lines.append(
            "                   users: python -m admin.users create NAME --role collector (no demo users)"
        )
        return lines
    segments = ["standard", *(segment.name for segment in starter.strategy.segments)]
    for user in await ensure_demo_users(pool, settings.state_dir, segments):
        lines.append(
            f"                   {user.role:<10} {user.username} / {user.password}   ({user.locale})"
        )
    return lines


async def _timed(timings: dict[str, float], name: str, work: Awaitable[Any]) -> Any:
    started = time.monotonic()
    try:
        return await work
    finally:
        timings[name] = time.monotonic() - started


async def _first_of(*waitables: asyncio.Task[Any] | asyncio.Event) -> None:
    """Wait until one task finishes or one event is set."""
    waiting = [w if isinstance(w, asyncio.Task) else asyncio.create_task(w.wait()) for w in waitables]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter, original in zip(waiting, waitables, strict=True):
            if waiter is not original:
                waiter.cancel()


# How often `make run` checks that its embedded servers are still there.
WATCH_INTERVAL = 1.0


async def watch_servers(
    temporal: ResolvedTemporal, database: ResolvedDatabase, interval: float = WATCH_INTERVAL
) -> str:
    """Return (a sentence naming it) once an embedded server this run owns has died; never otherwise.

    Without it, a Temporal or PostgreSQL killed from outside left `make run` up and useless: the worker
    retries for ever and the killed child stays a zombie."""
    servers: list[tuple[str, Any]] = []
    if temporal.server is not None:
        servers.append(("Temporal dev server", temporal.server))
    if database.server is not None:
        servers.append(("PostgreSQL", database.server))
    while True:
        for name, server in servers:
            how = server.exited()
            if how is not None:
                pid = getattr(server, "pid", None) or getattr(server, "postmaster_pid", None)
                return f"the embedded {name} (pid {pid}) died ({how}): stopping everything else"
        await asyncio.sleep(interval)


# A server killed from outside breaks its clients' connections before it has finished dying (PostgreSQL's
# postmaster stops its backends first), so the worker or the agency sync can fail first with a bare
# "connection closed". Before reporting such a failure, wait this long for the cause to show.
CAUSE_WAIT = 5.0


async def died_meanwhile(temporal: ResolvedTemporal | None, database: ResolvedDatabase | None) -> str | None:
    """The sentence naming an embedded server that died within CAUSE_WAIT seconds, or None."""
    if temporal is None or database is None:
        return None
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(watch_servers(temporal, database, interval=CAUSE_WAIT / 20), CAUSE_WAIT)
    return None


async def serve(settings: StackSettings) -> int:
    from activities.db import create_pool
    from privacy.keyring import ensure_dev_keyring
    from stack.migrate import apply_migrations
    from stack.sandbox import ChannelSandboxes
    from starter.connect import connect

    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            _say("\nStopping (the worker finishes in-flight activities first)...")
        else:
            _say("Still stopping: waiting for the worker, then Temporal, then PostgreSQL...")
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    cleanups: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    timings: dict[str, float] = {}
    log_file = settings.state_dir / "logs" / "overdue.log"
    exit_code = 0
    temporal: ResolvedTemporal | None = None
    database: ResolvedDatabase | None = None
    try:
        install_metrics_runtime(settings, host="127.0.0.1")
        from authority.dev import prepare_stack

        prepare_stack(settings.state_dir)  # dev signing keys (.state/authority/) and the worker's trust ring
        _say(
            f"Starting Overdue: "
            f"{'embedded Temporal' if settings.embedded_temporal else settings.temporal_address}, "
            f"{'embedded PostgreSQL' if settings.embedded_postgres else 'DATABASE_URL'}, state in "
            f"{_shown(settings.state_dir)}/ ..."
        )
        results = await asyncio.gather(
            _timed(
                timings,
                "Temporal",
                resolve_temporal(settings, port=settings.temporal_port, ui_port=settings.temporal_ui_port),
            ),
            _timed(timings, "PostgreSQL", resolve_database_url(settings)),
            return_exceptions=True,
        )
        # Whatever started gets stopped, in reverse order: PostgreSQL last.
        temporal_result, database_result = results
        if isinstance(database_result, ResolvedDatabase) and database_result.server is not None:
            cleanups.append(("PostgreSQL", database_result.server.stop))
        if isinstance(temporal_result, ResolvedTemporal) and temporal_result.server is not None:
            cleanups.append(("Temporal", temporal_result.server.stop))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        assert isinstance(temporal_result, ResolvedTemporal) and isinstance(database_result, ResolvedDatabase)
        temporal, database = temporal_result, database_result

        applied = await _timed(timings, "migrations", apply_migrations(database.url))
        log.info("database ready", migrations_applied=applied)

        pool = await create_pool(database.url, max_size=settings.db_pool_max)
        cleanups.append(("database pool", pool.close))
        from observability.serve import start_business_metrics  # here: `stack` imports without the product

        if (business := start_business_metrics(pool, host="127.0.0.1")) is not None:
            cleanups.append(("business metrics", business.aclose))
        # Payload encryption keys: .state/codec-keys.json unless OVERDUE_CODEC_KEYS(_FILE) is set; the CLI
        # finds the same file through OVERDUE_STATE_DIR. The pool holds the loans' data keys.
        ensure_dev_keyring(settings.state_dir)
        temporal_settings = settings.model_copy(update={"temporal_address": temporal.address})
        client = await connect(temporal_settings, pool=pool)

        # Channels without a provider deliver to local sandboxes (mailbox, SMS and push logs); see README.
        sandboxes = await ChannelSandboxes.start(settings)
        cleanups.append(("channel sandboxes", sandboxes.stop))
        worker_settings = settings.model_copy(update=sandboxes.settings_overrides())
        channels = sandboxes.describe(settings, _shown)
        # A sandbox payment provider unless one is configured; before the borrower page reads its settings.
        from stack.sandbox import payments as payment_sandbox

        channels += await payment_sandbox.start_for_stack(settings, cleanups)

        # --- Agencies with endpoint "sandbox" place with a local sandbox agency (README "Agencies"); its
        # "report payment" button signals the loan's workflow through the product's agency payment path.
        from activities.agency_http import report_agency_payment
        from stack.sandbox import SANDBOX_API_KEY, agency

        agency_sandbox = await agency.start_for_stack(
            settings, functools.partial(report_agency_payment, client), SANDBOX_API_KEY
        )
        if agency_sandbox is not None:
            cleanups.append(("sandbox agency", agency_sandbox.stop))
            worker_settings = worker_settings.model_copy(
                update={"agency_sandbox_url": agency_sandbox.base_url}
            )
        channels += agency.describe(settings, agency_sandbox, _shown)
        # --- end agencies

        from borrower.serve import start_for_stack as start_borrower_page  # the link in every message

        worker_settings, page = await start_borrower_page(settings, worker_settings, client, pool, cleanups)
        channels += page
        from inbound.runtime import start_for_stack as start_inbound  # replies, receipts, bounces

        channels += await start_inbound(worker_settings, client, pool, sandboxes, cleanups)
        worker = asyncio.create_task(run_worker(worker_settings, client, pool, stop), name="worker")
        watcher = asyncio.create_task(watch_servers(temporal, database), name="server-watch")
        cleanups.append(("server watch", functools.partial(_cancel, watcher)))

        async def stop_worker() -> None:
            stop.set()
            # A worker that died was reported already; here only its shutdown matters, and it is bounded:
            # with a server gone or frozen it could wait for ever (then Temporal and PostgreSQL still stop).
            grace = ShutdownSettings().worker_stop_grace_seconds
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(worker), grace)
            if not worker.done():
                log.error("worker stop grace expired: abandoning it", grace_seconds=grace)

        cleanups.append(("worker", stop_worker))

        # --- The collectors' admin UI (admin/), in this process; demo users only on the embedded database.
        admin_lines = await _start_admin_ui(settings, client, pool, temporal, database, cleanups)
        channels = [*channels, *admin_lines]

        demo = "none (OVERDUE_DEMO_LOANS=0)"
        if settings.demo_loans > 0:
            _say(f"Loading the demo portfolio ({settings.demo_loans} loans, seed {settings.demo_seed})...")
            loading = asyncio.create_task(_timed(timings, "demo portfolio", _load_demo(settings, client)))
            await _first_of(loading, worker, stop, watcher)
            if not loading.done():  # Ctrl-C while loading, or the worker died
                loading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loading
            else:
                demo = loading.result()

        if not stop.is_set() and not worker.done() and not watcher.done():
            ready_after = _elapsed_since_process_start()
            _say(banner(settings, temporal, database, demo, timings, ready_after, log_file, channels))
            log.info("ready", ready_seconds=round(ready_after, 2), **timings)
            await _first_of(worker, stop, watcher)
        if watcher.done() and not stop.is_set():
            died = watcher.result()
            log.error("embedded server died", what=died)
            raise StackError(died)
        if worker.done() and not stop.is_set():
            worker.result()  # raises what killed it
            raise StackError(await died_meanwhile(temporal, database) or "the worker stopped on its own")
    except (EmbeddedServerError, StackError, AdminUIError) as error:
        _say(f"\nmake run: {error}")
        exit_code = 1
    except Exception as error:
        log.exception("make run failed")
        if (cause := await died_meanwhile(temporal, database)) is not None:
            log.error("embedded server died", what=cause)
            _say(f"\nmake run: {cause}\n(it broke: {type(error).__name__}: {error})")
        else:
            _say(f"\nmake run failed: {type(error).__name__}: {error}\n(details in {_shown(log_file)})")
        exit_code = 1
    finally:
        for name, cleanup in reversed(cleanups):
            try:
                await cleanup()
                if name in ("worker", "admin UI", "channel sandboxes", "Temporal", "PostgreSQL"):
                    _say(f"  {name} stopped")
            except Exception as error:
                exit_code = 1
                log.exception("stop failed", component=name)
                _say(f"  {name}: stop failed: {error}")
    return exit_code


def main() -> int:
    settings = StackSettings()
    try:
        lock = _lock_state_dir(settings.state_dir)
    except StackError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    try:
        configure_logging(settings.log_level, file=settings.state_dir / "logs" / "overdue.log")
        code = asyncio.run(serve(settings))
        if code == 0:
            _say("Overdue stopped.")
        return code
    finally:
        lock.close()
