"""Payment -> completed latency: a full payment until the loan's workflow completes, vs a null workflow
completed by a signal.

    python -m bench.engine.latency --loans 200 [--repeats 3] [--concurrency 10] [--json out.json]

Each repetition starts `--loans` loans (first SMS due at once) and as many null workflows, waits until every
first step is done (so each workflow sits on its timer, cached), then, alternating product and null one by
one, `--concurrency` at a time: the product's `CollectionsStarter.pay` of the whole arrears (currency given)
until the run's result; the null's `finish` signal until its result. Reported per repetition: p50 and p99 in
ms. Target (issue 12): p99 <= 1.5x the null's.
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
    percentile,
    report,
    run_id,
    wait_for_rows,
)
from bench.engine.null_workflow import FINISH_SIGNAL, MARKS_TABLE, NULL_WORKFLOW

AMOUNT = 150_000


async def one_repetition(
    stack: Stack, product_queue: str, null_queue: str, loans: int, concurrency: int
) -> tuple[list[float], list[float]]:
    tag = run_id()
    zone = due_now_zone()
    starter = stack.starter(product_queue)
    batch = [bench_loan(f"LAT-{tag}-{n}", zone=zone, amount_minor=AMOUNT) for n in range(loans)]
    await starter.start_many(batch, concurrency=concurrency, progress=False)
    null_ids = [f"collection-NULL-LAT-{tag}-{n}" for n in range(loans)]
    await gather_limited(
        concurrency,
        [
            lambda i=i: stack.client.start_workflow(NULL_WORKFLOW, "null", id=i, task_queue=null_queue)  # type: ignore[misc]
            for i in null_ids
        ],
    )
    count = "SELECT count(DISTINCT loan_id), max(created_at) FROM messages WHERE loan_id LIKE $1"
    await wait_for_rows(stack.pool, count, f"LAT-{tag}-%", loans, 60 + loans)
    marks = f"SELECT count(*), max(at) FROM {MARKS_TABLE} WHERE workflow_id LIKE $1"
    await wait_for_rows(stack.pool, marks, f"collection-NULL-LAT-{tag}-%", loans, 60 + loans)
    await asyncio.sleep(2)  # the last first steps' tasks settle

    product: list[float] = []
    null: list[float] = []

    async def pay(loan_id: str) -> None:
        began = time.perf_counter()
        await starter.pay(loan_id, AMOUNT, payment_id=f"PAY-{loan_id}", currency="CNY")
        await starter.handle(loan_id).result()
        product.append((time.perf_counter() - began) * 1000)

    async def finish(workflow_id: str) -> None:
        began = time.perf_counter()
        handle = stack.client.get_workflow_handle(workflow_id)
        await handle.signal(FINISH_SIGNAL)
        await handle.result()
        null.append((time.perf_counter() - began) * 1000)

    jobs = []
    for n in range(loans):
        pair = [lambda n=n: pay(batch[n].loan_id), lambda n=n: finish(null_ids[n])]
        jobs += pair if n % 2 == 0 else pair[::-1]
    await gather_limited(concurrency, jobs)
    return product, null


async def run(args: argparse.Namespace) -> list[Measure]:
    p50 = Measure("full payment -> completed, p50", "ms")
    p99 = Measure("full payment -> completed, p99", "ms", target="p99 <= 1.5x")
    async with embedded_stack(args.database_url) as stack:
        product_worker = await stack.worker("product")
        null_worker = await stack.worker("null")
        for _ in range(args.repeats):
            product, null = await one_repetition(
                stack, product_worker.task_queue, null_worker.task_queue, args.loans, args.concurrency
            )
            p50.product.append(percentile(product, 0.5))
            p50.baseline.append(percentile(null, 0.5))
            p99.product.append(percentile(product, 0.99))
            p99.baseline.append(percentile(null, 0.99))
    return [p50, p99]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", type=int, default=200, help="loans (and null workflows) per repetition")
    parser.add_argument("--concurrency", type=int, default=10, help="payments in flight (default 10)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    parameters = {"loans": args.loans, "concurrency": args.concurrency, "repeats": args.repeats}
    report("latency", parameters, asyncio.run(run(args)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
