"""`python worker.py`: one collections worker, configured from the environment.

Production runs several of these against a Temporal cluster and PostgreSQL (TEMPORAL_ADDRESS, DATABASE_URL;
see deploy/). Without DATABASE_URL it uses the embedded PostgreSQL in OVERDUE_STATE_DIR/pgdata (starting it
if `make run` has not), and without TEMPORAL_ADDRESS it connects to localhost:7233 — e.g. a second worker
beside `make run`. SIGTERM / SIGINT stop it gracefully: no new tasks, in-flight activities get time to
finish; past OVERDUE_WORKER_STOP_GRACE_SECONDS (20) it exits anyway (code 1), logging what it abandoned.
"""

from __future__ import annotations

import asyncio
import functools
import signal

from stack.embedded import EmbeddedPostgres, redact_url
from stack.logs import configure_logging, get_logger
from stack.process import ShutdownSettings, abandon_after, exit_process, pending_tasks
from stack.settings import Settings
from stack.worker_runtime import install_metrics_runtime, run_worker

log = get_logger("overdue.worker")


async def main(settings: Settings) -> int:
    from activities.db import create_pool
    from observability.serve import start_business_metrics
    from stack.migrate import apply_migrations
    from starter.connect import TemporalUnreachable, connect

    metrics = install_metrics_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    grace = ShutdownSettings().worker_stop_grace_seconds

    def on_signal() -> None:
        if not stop.is_set():
            # Bounded: a hung dependency (frozen PostgreSQL) would otherwise hold the exit for ever.
            abandon_after(grace, functools.partial(pending_tasks, loop), log)
            log.info("worker stopping", grace_seconds=grace)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    embedded: EmbeddedPostgres | None = None
    database_url = settings.database_url
    if not database_url:
        embedded = EmbeddedPostgres(settings.state_dir / "pgdata")
        database_url = await embedded.start()
        log.info("embedded postgres", pgdata=str(embedded.pgdata), started_here=embedded.started_here)
    try:
        applied = await apply_migrations(database_url)
        log.info("database ready", database=redact_url(database_url), migrations_applied=applied)
        pool = await create_pool(database_url, max_size=settings.db_pool_max)
        business = start_business_metrics(pool)  # OVERDUE_BUSINESS_METRICS_PORT, beside the SDK's (README)
        try:
            try:
                # The pool also holds the loans' data keys of the payload codec (privacy/).
                client = await connect(settings, pool=pool)
            except TemporalUnreachable as error:
                log.error("temporal unreachable", error=str(error))
                return 1
            log.info("connected", temporal=settings.temporal_target, metrics=metrics)
            await run_worker(settings, client, pool, stop)
        finally:
            if business is not None:
                await business.aclose()
            await pool.close()
    finally:
        # Stop the embedded PostgreSQL only if this process started it (not when `make run` owns it).
        if embedded is not None and embedded.started_here:
            await embedded.stop()
    return 0


if __name__ == "__main__":
    settings = Settings()
    configure_logging(settings.log_level)
    exit_process(asyncio.run(main(settings)))
