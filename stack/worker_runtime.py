"""The worker, as a reusable piece: `python worker.py` runs it alone, `make run` runs it in-process.

Workers are stateless: everything a loan needs is in its workflow history and in PostgreSQL, so any number of
them can poll the same task queue (scale by starting more), and one that stops hands its work to the others.
Concurrency comes from settings, not code.
"""

from __future__ import annotations

import asyncio
import compileall
import importlib.util
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from stack.logs import LogContextInterceptor, get_logger
from stack.settings import Settings
from stack.versioning import deployment_config

if TYPE_CHECKING:
    from activities.agency import AgencyAdapter
    from activities.channels import ChannelRouter

log = get_logger("overdue.worker")

# How long in-flight activities get to finish once shutdown starts, before they are cancelled (and retried
# by Temporal on another worker). Workflow tasks are short and always finish.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


# The packages the workflow sandbox re-imports for every new (or evicted and replayed) workflow, and those the
# workflows pass through (compiled once, cheaper start).
PRECOMPILED = ("workflows", "domain", "activities", "authority", "privacy")
PROJECT = Path(__file__).resolve().parent.parent


def precompile(packages: tuple[str, ...] = PRECOMPILED, root: Path = PROJECT) -> Path | None:
    """Compile `packages` to bytecode, even under PYTHONDONTWRITEBYTECODE=1.

    The sandbox imports the workflow module afresh for each workflow instance; without a .pyc the import
    compiles it from source every time (about a quarter of the worker's CPU in a due-date burst, issue 12).
    PYTHONDONTWRITEBYTECODE only stops the import system from writing; the loaders still read a valid .pyc,
    and py_compile writes regardless. In place when the tree is writable; on a read-only tree whose .pyc
    files are missing (an image built without compileall), into a private `sys.pycache_prefix`, which the
    loaders consult instead of `__pycache__`. Returns that prefix, or None when compiled in place.
    """
    directories = [root / name for name in packages if (root / name).is_dir()]
    writable = all(os.access(d, os.W_OK) for d in directories) and all(
        os.access(p, os.W_OK) for d in directories for p in d.rglob("__pycache__")
    )
    if writable or sys.pycache_prefix is not None:
        for directory in directories:
            compileall.compile_dir(directory, quiet=1, workers=1)
        return None
    sources = [p for d in directories for p in d.rglob("*.py")]
    if all(Path(importlib.util.cache_from_source(str(p))).exists() for p in sources):
        return None  # compiled when the image was built
    sys.pycache_prefix = tempfile.mkdtemp(prefix="overdue-pycache-")
    for directory in directories:
        compileall.compile_dir(directory, quiet=1, workers=1)
    return Path(sys.pycache_prefix)


def install_metrics_runtime(settings: Settings, host: str = "0.0.0.0") -> str | None:
    """Serve the SDK's Prometheus metrics on `host:settings.metrics_port` (clients created after this call).

    Must run before the first client connects (the runtime belongs to the client). Returns the address, or
    None when OVERDUE_METRICS_PORT is unset.
    """
    if settings.metrics_port is None:
        return None
    address = f"{host}:{settings.metrics_port}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    Runtime.set_default(runtime, error_if_already_set=False)
    return address


def build_worker(
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool,
    channel: ChannelRouter | None = None,
    agencies: AgencyAdapter | None = None,
) -> Worker:
    """The worker; `channel` delivers messages (None: every message stays queued in the outbox);
    `agencies` places accounts (None: the agencies table as it is, without agency API keys)."""
    # Imported here so `stack` stays importable (for `make run`'s error messages) even if a module the
    # worker needs is broken; the import error then names the module.
    from activities.collection_activities import CollectionActivities
    from authority.worker import install_trust
    from workflows.registry import WORKFLOWS

    install_trust()  # the public keys the workflows verify actors against (README "Who may act")
    prefix = precompile()  # before the first workflow task: each new instance re-imports the workflow code
    if prefix is not None:
        log.info("bytecode compiled into a private cache", pycache_prefix=str(prefix))

    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=CollectionActivities(
            pool, channel=channel, agencies=agencies, pay_url=settings.pay_url
        ).all(),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        interceptors=[LogContextInterceptor()],
        deployment_config=deployment_config(settings),  # None: unversioned (stack/versioning.py)
    )


def _version_label(worker: Worker) -> str | None:
    config = worker.config().get("deployment_config")
    return config.version.to_canonical_string() if config else None


async def store_configured_definitions(settings: Settings, pool: asyncpg.Pool) -> dict[str, str]:
    """The configured strategy and profiles stored by reference, so loans started by reference resolve them
    on any worker (domain/definitions.py); their references by name (`strategy:default`, `profile:cn`).

    A broken file must not keep the worker from running the loans already started (the starter refuses it):
    it is logged and nothing is stored."""
    from activities.definitions import save_definitions
    from domain.config_file import ConfigError
    from domain.contact_profiles import ContactProfile, load_profiles
    from domain.strategy import Strategy, load_strategy

    try:
        configured: list[Strategy | ContactProfile] = [
            load_strategy(settings.strategy_file),
            *load_profiles(settings.contact_profiles_file).values(),
        ]
    except ConfigError as error:
        log.warning("configured strategy or profiles not stored", error=str(error))
        return {}
    return await save_definitions(pool, configured)


async def run_worker(settings: Settings, client: Client, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Poll `settings.task_queue` until `stop` is set (then shut down gracefully) or the worker fails.

    Messages go out through the providers the settings configure (activities/channels); the others queue.
    """
    from activities.agency import start_agencies
    from activities.channels import build_router
    from activities.definitions import install_fetcher

    await store_configured_definitions(settings, pool)
    install_fetcher(pool, asyncio.get_running_loop())
    channels = build_router(settings)  # HTTP sessions open on first use; closed below
    agencies = await start_agencies(settings, pool)  # agencies file validated and synced into the table
    worker = build_worker(settings, client, pool, channels, agencies)
    log.info(
        "worker started",
        task_queue=settings.task_queue,
        namespace=settings.temporal_namespace,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        delivering=channels.channels,
        deployment_version=_version_label(worker),
    )
    running = asyncio.create_task(worker.run(), name="temporal-worker")
    stopping = asyncio.create_task(stop.wait(), name="worker-stop-signal")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not running.done():
            log.info("worker shutting down", grace_seconds=GRACEFUL_SHUTDOWN.total_seconds())
            await worker.shutdown()
        try:
            await running  # re-raises a fatal worker error
        finally:
            await channels.aclose()
            await agencies.aclose()
        log.info("worker stopped")
