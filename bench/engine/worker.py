"""One benchmark worker in its own process, so its RSS is its own: the product's (build_worker) or the null.

    python -m bench.engine.worker product|null --task-queue Q --target HOST:PORT --database-url URL
                                  [--max-cached N]

The key ring comes from OVERDUE_CODEC_KEYS (the harness passes the one its client uses). Prints "ready" once
polling. `--max-cached` sets the SDK's workflow cache (default 1,000, the product's) on both kinds alike.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

import stack.worker_runtime as runtime
from activities.db import create_pool
from bench.engine.null_workflow import NullActivities, NullWorkflow
from privacy.converter import data_converter
from privacy.keyring import CodecSettings, load_keyring
from stack.logs import LogContextInterceptor
from stack.settings import Settings


def _null_worker(settings: Settings, client: Client, pool: asyncpg.Pool, max_cached: int) -> Worker:
    """Built with the same settings as build_worker: concurrency, shutdown grace, interceptors."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[NullWorkflow],
        activities=[NullActivities(pool).step],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=runtime.GRACEFUL_SHUTDOWN,
        interceptors=[LogContextInterceptor()],
        max_cached_workflows=max_cached,
    )


async def _main(args: argparse.Namespace) -> None:
    settings = Settings(task_queue=args.task_queue)
    codec_settings = CodecSettings()
    pool = await create_pool(args.database_url, max_size=10)
    plain = await Client.connect(args.target)
    config = plain.config()
    config["data_converter"] = data_converter(load_keyring(codec_settings), pool, codec_settings)
    client = Client(**config)
    if args.kind == "null":
        worker = _null_worker(settings, client, pool, args.max_cached)
    else:
        # build_worker takes the SDK's default cache (1,000); the same size is set here explicitly so a small
        # run can go "beyond the cache" with both kinds of worker configured alike.
        runtime.Worker = functools.partial(Worker, max_cached_workflows=args.max_cached)  # type: ignore[misc,assignment]
        worker = runtime.build_worker(settings, client, pool)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = asyncio.create_task(worker.run())
    print("ready", flush=True)
    await stop.wait()
    await worker.shutdown()
    await asyncio.gather(running, return_exceptions=True)
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine.worker")
    parser.add_argument("kind", choices=("product", "null"))
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--max-cached", type=int, default=1000)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
