"""Due-date burst: N loans whose first SMS is due at once vs N null workflows.

    python -m bench.engine.burst --loans 1000 [--repeats 3] [--concurrency 50] [--json out.json]

Measured: from the first start to every first step done (the product: each loan's SMS row in the outbox,
`messages`, as the worker's send activity writes it with no provider configured; the null: each workflow's
no-op activity's mark). Loans are started `--concurrency` at a time through CollectionsStarter.start_many;
the null workflows through start_workflow at the same concurrency. A fresh worker process per run.
Target (issue 12): product <= 1.3x null at N = 1,000 and 5,000.
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

TIMEOUT_PER_LOAN = 0.5  # seconds allowed per loan before a run is declared stuck (plus a minute)


async def product_run(stack: Stack, loans: int, concurrency: int) -> float:
    worker = await stack.worker("product")
    prefix = f"BURST-{run_id()}-"
    zone = due_now_zone()
    batch = [bench_loan(f"{prefix}{n}", zone=zone) for n in range(loans)]
    starter = stack.starter(worker.task_queue)
    started = time.time()
    await starter.start_many(batch, concurrency=concurrency, progress=False)
    done = await wait_for_rows(
        stack.pool,
        "SELECT count(DISTINCT loan_id), max(created_at) FROM messages WHERE loan_id LIKE $1",
        prefix + "%",
        loans,
        60 + loans * TIMEOUT_PER_LOAN,
    )
    await worker.stop()
    return done - started


async def null_run(stack: Stack, loans: int, concurrency: int) -> float:
    worker = await stack.worker("null")
    prefix = f"collection-NULL-{run_id()}-"
    started = time.time()
    await gather_limited(
        concurrency,
        [
            lambda n=n: stack.client.start_workflow(  # type: ignore[misc]
                NULL_WORKFLOW, "null", id=f"{prefix}{n}", task_queue=worker.task_queue
            )
            for n in range(loans)
        ],
    )
    done = await wait_for_rows(
        stack.pool,
        f"SELECT count(*), max(at) FROM {MARKS_TABLE} WHERE workflow_id LIKE $1",
        prefix + "%",
        loans,
        60 + loans * TIMEOUT_PER_LOAN,
    )
    await worker.stop()
    return done - started


async def run(args: argparse.Namespace) -> list[Measure]:
    measure = Measure(
        f"{args.loans} first steps due at once: first start -> every first step done",
        "s",
        target="<= 1.3x at N = 1,000 and 5,000",
    )
    async with embedded_stack(args.database_url) as stack:
        for repetition in range(args.repeats):
            for side in order(repetition):
                if side == "product":
                    measure.product.append(await product_run(stack, args.loans, args.concurrency))
                else:
                    measure.baseline.append(await null_run(stack, args.loans, args.concurrency))
    return [measure]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.burst", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", type=int, default=1000, help="loans (and null workflows) per run")
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight (default 50)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    measures = asyncio.run(run(args))
    parameters = {"loans": args.loans, "concurrency": args.concurrency, "repeats": args.repeats}
    report("burst", parameters, measures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
