"""Scale: K open loans on the embedded stack: start rate, storage per loan, worker RSS; vs K null workflows.

    python -m bench.engine.scale --loans 100000 [--concurrency 50] [--max-cached 1000] [--repeats 1]

A run at the default K = 100,000 takes hours on a 2-core machine (two sides of K starts, each workflow's
first step, then the storage figures); try `--loans 2000` first. Per side (its own fresh worker process):
the loans (first SMS due at once) or null workflows are started `--concurrency` at a time, every first step
awaited; reported: starts per second (first start to last start returned), first steps per second, bytes
per loan added to PostgreSQL (the product's rows: outbox, journal, data keys) and to the Temporal dev server's
SQLite file, and the worker's RSS at the end (flat beyond the cache when the cache works). Each side of a
repetition uses new ids; the database is shared, so byte figures are deltas. Target (issue 12): 100,000 open
loans without a task timeout, figures recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

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

CHUNK = 1000  # loans built and started per slice, so 100,000 loans never sit in memory as models at once


async def one_side(
    stack: Stack, kind: str, loans: int, concurrency: int, max_cached: int
) -> dict[str, float]:
    worker = await stack.worker(kind, max_cached=max_cached)
    tag = run_id()
    zone = due_now_zone()
    starter = stack.starter(worker.task_queue)
    database_before, temporal_before = await stack.database_bytes(), stack.temporal_bytes()
    began = time.time()
    for first in range(0, loans, CHUNK):
        numbers = range(first, min(loans, first + CHUNK))
        if kind == "product":
            batch = [bench_loan(f"SCALE-{tag}-{n}", zone=zone) for n in numbers]
            await starter.start_many(batch, concurrency=concurrency, progress=False)
        else:
            await gather_limited(
                concurrency,
                [
                    lambda n=n: stack.client.start_workflow(  # type: ignore[misc]
                        NULL_WORKFLOW,
                        "null",
                        id=f"collection-NULL-SCALE-{tag}-{n}",
                        task_queue=worker.task_queue,
                    )
                    for n in numbers
                ],
            )
    started = time.time()
    if kind == "product":
        query = "SELECT count(DISTINCT loan_id), max(created_at) FROM messages WHERE loan_id LIKE $1"
        pattern = f"SCALE-{tag}-%"
    else:
        query = f"SELECT count(*), max(at) FROM {MARKS_TABLE} WHERE workflow_id LIKE $1"
        pattern = f"collection-NULL-SCALE-{tag}-%"
    done = await wait_for_rows(stack.pool, query, pattern, loans, 120 + loans * 0.5)
    await asyncio.sleep(3)
    figures = {
        "start rate": loans / (started - began),
        "first steps": loans / (done - began),
        "PostgreSQL": (await stack.database_bytes() - database_before) / loans,
        "Temporal": (stack.temporal_bytes() - temporal_before) / loans,
        "RSS": worker.rss() / 2**20,
    }
    await worker.stop()
    return figures


async def run(args: argparse.Namespace) -> list[Measure]:
    measures = {
        "start rate": Measure(f"{args.loans} starts, {args.concurrency} in flight", "/s"),
        "first steps": Measure("first steps done per second (from first start)", "/s"),
        "PostgreSQL": Measure("PostgreSQL bytes per loan", "B"),
        "Temporal": Measure("Temporal SQLite bytes per loan (first step, one timer)", "B"),
        "RSS": Measure(f"worker RSS with {args.loans} open (cache {args.max_cached})", "MiB", target="flat"),
    }
    async with embedded_stack(args.database_url) as stack:
        for repetition in range(args.repeats):
            for side in order(repetition):
                kind = "product" if side == "product" else "null"
                figures = await one_side(stack, kind, args.loans, args.concurrency, args.max_cached)
                for name, value in figures.items():
                    getattr(measures[name], side).append(round(value, 1))
    return list(measures.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", type=int, default=100_000, help="open loans K (default 100,000: hours)")
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight (default 50)")
    parser.add_argument("--max-cached", type=int, default=1000, help="worker cache size (default 1,000)")
    common_arguments(parser, repeats=1)
    args = parser.parse_args(argv)
    parameters = {"loans": args.loans, "concurrency": args.concurrency, "repeats": args.repeats}
    report("scale", parameters, asyncio.run(run(args)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
