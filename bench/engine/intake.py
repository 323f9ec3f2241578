"""Intake: `starter start --file` of N loans vs a raw `start_workflow` loop, same concurrency.

    python -m bench.engine.intake --loans 2000 [--concurrency 20] [--repeats 3] [--json out.json]

Both are whole processes timed from launch to exit (interpreter start, imports, reading the file, connecting
are in both): the product is `python -m starter start --file loans.jsonl --concurrency C --no-progress`, the
baseline `python -m bench.engine.raw_start` (bench/engine/raw_start.py). Each run starts fresh loan ids on the
same task queue, where one product worker runs the started loans, as in production. The ratio reported is
product time / baseline time; throughput is its inverse. Target (issue 12): throughput >= 0.9x the raw loop,
i.e. a time ratio <= 1.11.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bench.engine.harness import (
    Measure,
    Stack,
    bench_loan,
    common_arguments,
    due_now_zone,
    embedded_stack,
    order,
    report,
    run_id,
)


def write_file(path: Path, loans: int, days: int) -> Path:
    zone = due_now_zone()
    prefix = f"IN-{run_id()}-"
    path.write_text(
        "".join(
            bench_loan(f"{prefix}{n}", zone=zone, days=days).model_dump_json() + "\n" for n in range(loans)
        )
    )
    return path


async def timed_process(stack: Stack, task_queue: str, *command: str) -> float:
    env = {**stack.env(), "OVERDUE_TASK_QUEUE": task_queue}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command[1]} exited {process.returncode}: {err.decode()[-2000:]}")
    print(f"  {command[1]}: {out.decode().strip().splitlines()[-1]} in {elapsed:.1f} s", file=sys.stderr)
    return elapsed


async def run(args: argparse.Namespace) -> list[Measure]:
    measure = Measure(
        f"start {args.loans} loans, {args.concurrency} in flight (process launch to exit)",
        "s",
        target="throughput >= 0.9x (time ratio <= 1.11)",
    )
    async with embedded_stack(args.database_url) as stack:
        worker = await stack.worker("product")
        for repetition in range(args.repeats):
            for side in order(repetition):
                # DPD 20: the loans' steps are not due at once, so the worker's load stays alike on both sides
                path = write_file(stack.state / f"loans-{side}-{repetition}.jsonl", args.loans, days=20)
                command: tuple[str, ...]
                if side == "product":
                    command = ("-m", "starter", "start", "--file", str(path), "--no-progress")
                    measure.product.append(
                        await timed_process(
                            stack, worker.task_queue, *command, "--concurrency", str(args.concurrency)
                        )
                    )
                else:
                    command = ("-m", "bench.engine.raw_start", str(path))
                    measure.baseline.append(
                        await timed_process(
                            stack, worker.task_queue, *command, "--concurrency", str(args.concurrency)
                        )
                    )
    return [measure]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.intake", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loans", type=int, default=2000, help="loans per run (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=20, help="starts in flight (default 20)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    measures = asyncio.run(run(args))
    parameters = {"loans": args.loans, "concurrency": args.concurrency, "repeats": args.repeats}
    report("intake", parameters, measures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
