"""History events: one loan's full lifecycle (DPD 1 to write-off), and runs under many payment signals.

    python -m bench.engine.events [--day-seconds 0.1] [--payments 1000,3000] [--repeats 1] [--json out.json]

Lifecycle: a loan below the litigation threshold, on the demo clock (`--day-seconds` real seconds per
collections day), runs from its DPD-1 SMS to its write-off (DPD 180); counted: events of every run of
`collection-{loan}` (continue-as-new chain) and, separately, of its children (placement, legal). Payments: a
loan whose arrears outlast them gets P payment signals of 1 minor unit each (distinct payment ids, 20 in
flight); then every payment must be in the workflow's paid total and in `journal_payments`, and each run's
event count is reported (the largest must stay below Temporal's 10,240 suggested limit). No baseline: the
figures are absolute. Targets (issue 12): <= 400 events per lifecycle; every run < 10,240 with 3,000
payments, none lost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from temporalio.client import Client

from bench.engine.harness import (
    Measure,
    Stack,
    bench_loan,
    common_arguments,
    due_now_zone,
    embedded_stack,
    gather_limited,
    report,
    run_id,
)


async def events_of(client: Client, query: str) -> list[int]:
    """Event counts of every run (open or closed) the visibility query finds."""
    counts = []
    async for execution in client.list_workflows(query):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        counts.append(len(history.events))
    return counts


async def lifecycle(stack: Stack, queue: str, day_seconds: float) -> tuple[int, int, int, str]:
    loan = bench_loan(f"LIFE-{run_id()}", zone=due_now_zone(), amount_minor=150_000)
    starter = stack.starter(queue, demo_day_seconds=day_seconds)
    await starter.start_loan(loan)
    handle = starter.handle(loan.loan_id)
    result = await asyncio.wait_for(handle.result(), 240 * day_seconds + 300)
    outcome = result.get("outcome") if isinstance(result, dict) else getattr(result, "outcome", result)
    await asyncio.sleep(2)  # visibility catches up with the last run's close
    wid = f"collection-{loan.loan_id}"
    runs = await events_of(stack.client, f"WorkflowId = '{wid}'")
    children = await events_of(stack.client, f"WorkflowId STARTS_WITH '{wid}/'")
    return sum(runs), len(runs), sum(children), str(outcome)


async def payments(stack: Stack, queue: str, count: int) -> tuple[int, int, int, int]:
    """(largest run's events, runs, payments in the paid total, payments journaled)."""
    loan = bench_loan(f"PAYS-{run_id()}", zone=due_now_zone(), amount_minor=10_000_000)
    starter = stack.starter(queue)
    await starter.start_loan(loan)
    await gather_limited(
        20,
        [
            lambda n=n: starter.pay(loan.loan_id, 1, payment_id=f"P-{n}", currency="CNY")  # type: ignore[misc]
            for n in range(count)
        ],
    )
    deadline = time.monotonic() + 120 + count * 0.2
    while True:
        paid = (await starter.status(loan.loan_id)).paid_total_minor
        journaled = await stack.pool.fetchval(
            "SELECT count(DISTINCT payment_id) FROM journal_payments WHERE loan_id = $1", loan.loan_id
        )
        if (paid >= count and journaled >= count) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(2)
    runs = await events_of(stack.client, f"WorkflowId = 'collection-{loan.loan_id}'")
    await starter.handle(loan.loan_id).terminate("benchmark done")
    return max(runs), len(runs), paid, int(journaled)


async def run(args: argparse.Namespace, sizes: list[int]) -> list[Measure]:
    life = Measure("events of one lifecycle, DPD 1 to write-off (all runs)", "", target="<= 400")
    life_runs = Measure("runs of that lifecycle", "")
    life_children = Measure("events of its children (placement, legal)", "")
    measures = [life, life_runs, life_children]
    outcomes: list[str] = []
    per_size = {
        size: (
            Measure(f"{size} payments: events of the largest run", "", target="< 10,240"),
            Measure(f"{size} payments: runs", ""),
            Measure(f"{size} payments: lost (sent - in paid total)", "", target="0"),
            Measure(f"{size} payments: not journaled (sent - journal rows)", "", target="0"),
        )
        for size in sizes
    }
    async with embedded_stack(args.database_url) as stack:
        worker = await stack.worker("product")
        for _ in range(args.repeats):
            if args.day_seconds > 0:
                total, runs, children, outcome = await lifecycle(stack, worker.task_queue, args.day_seconds)
                life.product.append(total)
                life_runs.product.append(runs)
                life_children.product.append(children)
                outcomes.append(outcome)
            for size in sizes:
                largest, runs, paid, journaled = await payments(stack, worker.task_queue, size)
                events, run_count, lost, unjournaled = per_size[size]
                events.product.append(largest)
                run_count.product.append(runs)
                lost.product.append(size - paid)
                unjournaled.product.append(size - journaled)
    if outcomes:
        print(f"lifecycle outcomes: {', '.join(outcomes)}", file=sys.stderr)
    else:
        measures = []
    for group in per_size.values():
        measures += group
    return measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.events", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--day-seconds", type=float, default=0.1, help="demo clock (0: skip the lifecycle)")
    parser.add_argument("--payments", default="1000,3000", help="payment counts, comma-separated ('': none)")
    common_arguments(parser, repeats=1)
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.payments.split(",") if size.strip()]
    except ValueError:
        parser.error("--payments: comma-separated whole numbers, e.g. 1000,3000")
    parameters = {"day_seconds": args.day_seconds, "payments": sizes, "repeats": args.repeats}
    report("events", parameters, asyncio.run(run(args, sizes)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
