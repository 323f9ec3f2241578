"""Worker memory per cached loan: open loans on long timers vs null workflows, below and beyond the cache.

    python -m bench.engine.memory --loans 500,2000 [--max-cached 1000] [--repeats 3] [--json out.json]

For each size N and repetition, per side (alternating which goes first): a fresh worker process, one warm-up
workflow (imports, sandbox, connections), its RSS; then N loans whose first SMS is due at once (the null: N
null workflows), until every first step is done and each sits on its next (long) timer; RSS again. Reported:
(RSS after - RSS before) / N in KiB. Below the cache every workflow stays cached; beyond it (N > the cache,
default the SDK's and the product's 1,000) the worker holds at most the cache, so per-loan memory should fall
as N grows: RSS flat. Target (issue 12): <= 100 KiB per cached loan, flat beyond the cache at 20,000.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

from bench.engine.harness import (
    Measure,
    Stack,
    bench_loan,
    common_arguments,
    due_now_zone,
    embedded_stack,
    gather_limited,
    order,
    report,
    run_id,
    wait_for_rows,
)
from bench.engine.null_workflow import MARKS_TABLE, NULL_WORKFLOW

CONCURRENCY = 50
SETTLE_SECONDS = 3.0  # after the last first step: the last tasks finish, the worker's heap settles


async def fill(stack: Stack, kind: str, loans: int, max_cached: int) -> tuple[float, int]:
    """KiB per workflow of the worker's RSS growth from one warm workflow to `loans + 1`; final RSS."""
    worker = await stack.worker(kind, max_cached=max_cached)
    tag = run_id()
    zone = due_now_zone()
    starter = stack.starter(worker.task_queue)
    if kind == "product":
        query = "SELECT count(DISTINCT loan_id), max(created_at) FROM messages WHERE loan_id LIKE $1"
        prefix = f"MEM-{tag}-"

        async def start(numbers: range) -> None:
            batch = [bench_loan(f"{prefix}{n}", zone=zone) for n in numbers]
            await starter.start_many(batch, concurrency=CONCURRENCY, progress=False)

    else:
        query = f"SELECT count(*), max(at) FROM {MARKS_TABLE} WHERE workflow_id LIKE $1"
        prefix = f"collection-NULL-MEM-{tag}-"

        async def start(numbers: range) -> None:
            jobs = [
                lambda n=n: stack.client.start_workflow(
                    NULL_WORKFLOW, "null", id=f"{prefix}{n}", task_queue=worker.task_queue
                )
                for n in numbers
            ]
            await gather_limited(CONCURRENCY, jobs)

    await start(range(1))
    await wait_for_rows(stack.pool, query, prefix + "%", 1, 60)
    await asyncio.sleep(SETTLE_SECONDS)
    before = worker.rss()
    await start(range(1, loans + 1))
    await wait_for_rows(stack.pool, query, prefix + "%", loans + 1, 60 + loans * 0.5)
    await asyncio.sleep(SETTLE_SECONDS)
    after = worker.rss()
    await worker.stop()
    gc.collect()
    return (after - before) / 1024 / loans, after


async def run(args: argparse.Namespace, sizes: list[int]) -> list[Measure]:
    measures: list[Measure] = []
    async with embedded_stack(args.database_url) as stack:
        for size in sizes:
            where = "all cached" if size <= args.max_cached else f"beyond the cache of {args.max_cached}"
            per_loan = Measure(
                f"worker RSS growth per open loan, {size} open ({where})", "KiB", target="<= 100 KiB cached"
            )
            total = Measure(f"worker RSS with {size} open", "MiB", target="flat beyond the cache")
            for repetition in range(args.repeats):
                for side in order(repetition):
                    kib, rss = await fill(
                        stack, "product" if side == "product" else "null", size, args.max_cached
                    )
                    getattr(per_loan, side).append(round(kib, 1))
                    getattr(total, side).append(round(rss / 2**20, 1))
            measures += [per_loan, total]
    return measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.memory", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", default="500,2000", help="sizes, comma-separated (default 500,2000)")
    parser.add_argument("--max-cached", type=int, default=1000, help="worker cache size (default 1,000)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.loans.split(",")]
    except ValueError:
        parser.error("--loans: comma-separated whole numbers, e.g. 500,2000")
    parameters = {"loans": sizes, "max_cached": args.max_cached, "repeats": args.repeats}
    report("memory", parameters, asyncio.run(run(args, sizes)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
