"""Scale: K open loans on the embedded stack: start rate, storage per loan, worker RSS; vs K null workflows.

    python -m bench.engine.scale --loans 100000 --sides product [--checkpoints 1000,5000,20000,50000]
    python -m bench.engine.scale --loans 2000                     # both sides, a few minutes

Per side (its own fresh worker process), loans are started `--concurrency` at a time in chunks of 1,000. By
default (`--first-step tomorrow`) a product loan is overdue since today, so its first workflow task sets the
timer of tomorrow's first SMS and writes its portfolio snapshot: the state a real book is in between contact
hours (the due-date burst measures first steps). `--first-step now` makes every first SMS due at once. The
null workflow always runs its one no-op activity. Reported: starts per second (first start to last start
returned), loans per second to their first task (product) or first step (null), bytes per loan added to
PostgreSQL and to the Temporal dev server's SQLite file, the worker's RSS at each checkpoint and at the end
(flat beyond the cache when the cache works), and workflow task timeouts and failures in 200 sampled
histories. Each side of a repetition uses new ids; the database is shared, so byte figures are deltas.
`--sides product` skips the null side (at 100,000 it doubles a run of about 90 minutes on 2 cores). Target
(issue 12): 100,000 open loans without a task timeout, figures recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from temporalio.api.enums.v1 import EventType

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
SAMPLE = 200  # histories read at the end to look for workflow task timeouts and failures


async def task_problems(stack: Stack, ids: list[str]) -> dict[str, int]:
    """Workflow task timeouts and failures in a random sample of the side's histories (reading 100,000
    histories would take longer than the run)."""
    counts = {"sampled": 0, "task timeouts": 0, "task failures": 0}
    for workflow_id in random.sample(ids, min(SAMPLE, len(ids))):
        history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
        counts["sampled"] += 1
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                counts["task timeouts"] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                counts["task failures"] += 1
    return counts


async def one_side(
    stack: Stack, kind: str, args: argparse.Namespace, checkpoints: list[int]
) -> tuple[dict[str, float], dict[int, float], dict[str, int]]:
    loans = args.loans
    worker = await stack.worker(kind, max_cached=args.max_cached)
    tag = run_id()
    zone = due_now_zone()
    # Tomorrow: overdue since today (DPD 0), the first SMS is due at DPD 1, so each loan's first workflow task
    # sets its timer and writes its portfolio snapshot: the state a real book is in most of the time.
    due_tomorrow = kind == "product" and args.first_step == "tomorrow"
    starter = stack.starter(worker.task_queue)
    if kind == "product" and due_tomorrow:
        query = "SELECT count(*), max(updated_at) FROM portfolio WHERE loan_id LIKE $1"
        pattern = f"SCALE-{tag}-%"
    elif kind == "product":
        query = "SELECT count(DISTINCT loan_id), max(created_at) FROM messages WHERE loan_id LIKE $1"
        pattern = f"SCALE-{tag}-%"
    else:
        query = f"SELECT count(*), max(at) FROM {MARKS_TABLE} WHERE workflow_id LIKE $1"
        pattern = f"collection-NULL-SCALE-{tag}-%"
    database_before, temporal_before = await stack.database_bytes(), stack.temporal_bytes()
    rss: dict[int, float] = {}
    ids: list[str] = []
    began = time.time()
    for first in range(0, loans, CHUNK):
        numbers = range(first, min(loans, first + CHUNK))
        if kind == "product":
            days = 0 if due_tomorrow else 1
            batch = [bench_loan(f"SCALE-{tag}-{n}", zone=zone, days=days) for n in numbers]
            await starter.start_many(batch, concurrency=args.concurrency, progress=False)
            ids += [f"collection-SCALE-{tag}-{n}" for n in numbers]
        else:
            ids += [f"collection-NULL-SCALE-{tag}-{n}" for n in numbers]
            await gather_limited(
                args.concurrency,
                [
                    lambda workflow_id=workflow_id: stack.client.start_workflow(  # type: ignore[misc]
                        NULL_WORKFLOW, "null", id=workflow_id, task_queue=worker.task_queue
                    )
                    for workflow_id in ids[first:]
                ],
            )
        if numbers.stop in checkpoints:  # RSS once every loan so far has had its first task
            await wait_for_rows(stack.pool, query, pattern, numbers.stop, 120 + numbers.stop * 0.5)
            await asyncio.sleep(1)
            rss[numbers.stop] = round(worker.rss() / 2**20, 1)
            # Also the running figures, so a long run stopped early still says what it measured.
            open_loans, elapsed = numbers.stop, time.time() - began
            database = (await stack.database_bytes() - database_before) / open_loans
            temporal = (stack.temporal_bytes() - temporal_before) / open_loans
            print(
                f"  {kind}: {open_loans} open after {elapsed:.0f} s ({open_loans / elapsed:.1f} loans/s), "
                f"worker RSS {rss[open_loans]} MiB, per loan PostgreSQL {database:.0f} B, "
                f"Temporal {temporal:.0f} B",
                file=sys.stderr,
            )
    started = time.time()
    done = await wait_for_rows(stack.pool, query, pattern, loans, 120 + loans * 0.5)
    await asyncio.sleep(3)
    figures = {
        "start rate": loans / (started - began),
        "first tasks": loans / (done - began),
        "PostgreSQL": (await stack.database_bytes() - database_before) / loans,
        "Temporal": (stack.temporal_bytes() - temporal_before) / loans,
        "RSS": worker.rss() / 2**20,
    }
    problems = await task_problems(stack, ids)
    await worker.stop()
    return figures, rss, problems


async def run(args: argparse.Namespace) -> tuple[list[Measure], dict[str, Any]]:
    first = "first SMS sent" if args.first_step == "now" else "first task done (timer set, snapshot written)"
    measures = {
        "start rate": Measure(f"{args.loans} starts, {args.concurrency} in flight", "/s"),
        "first tasks": Measure(f"loans per second, first start to {first} (null: first step)", "/s"),
        "PostgreSQL": Measure("PostgreSQL bytes per loan", "B"),
        "Temporal": Measure("Temporal SQLite bytes per loan", "B"),
        "RSS": Measure(f"worker RSS with {args.loans} open (cache {args.max_cached})", "MiB", target="flat"),
    }
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if c} | {args.loans})
    extra: dict[str, Any] = {"rss_by_open_loans": {}, "workflow_task_problems": {}}
    async with embedded_stack(args.database_url) as stack:
        for repetition in range(args.repeats):
            sides = order(repetition) if args.sides == "both" else ("product",)
            for side in sides:
                kind = "product" if side == "product" else "null"
                figures, rss, problems = await one_side(stack, kind, args, checkpoints)
                for name, value in figures.items():
                    getattr(measures[name], side).append(round(value, 1))
                extra["rss_by_open_loans"].setdefault(kind, []).append(rss)
                extra["workflow_task_problems"].setdefault(kind, []).append(problems)
    return list(measures.values()), extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", type=int, default=100_000, help="open loans K (default 100,000: hours)")
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight (default 50)")
    parser.add_argument("--max-cached", type=int, default=1000, help="worker cache size (default 1,000)")
    parser.add_argument(
        "--first-step",
        choices=("tomorrow", "now"),
        default="tomorrow",
        help="product loans' first SMS: due tomorrow (default: open loans on their timers) or now",
    )
    parser.add_argument("--sides", choices=("both", "product"), default="both", help="skip the null side")
    parser.add_argument(
        "--checkpoints",
        default="1000,5000,20000,50000",
        help="open-loan counts at which the worker's RSS is read (multiples of 1,000)",
    )
    common_arguments(parser, repeats=1)
    args = parser.parse_args(argv)
    parameters = {
        "loans": args.loans,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "first_step": args.first_step,
        "sides": args.sides,
    }
    measures, extra = asyncio.run(run(args))
    report("scale", parameters, measures, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
