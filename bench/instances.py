"""Workflow-instance creation cost in the sandbox: `python -m bench.instances [--n 200] [--precompile]`.

Each new (or evicted and replayed) workflow re-imports its workflow module inside the sandbox; this times that
creation the way the worker does it (`SandboxedWorkflowRunner.prepare_workflow`), per workflow class, and
prints JSON. Run it with PYTHONDONTWRITEBYTECODE=1 and no `__pycache__` under workflows/ to see the cost the
worker paid before it precompiled (stack.worker_runtime.precompile), and with --precompile to see it after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from temporalio import workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner


async def measure(n: int) -> dict[str, dict[str, float]]:
    from workflows.registry import WORKFLOWS

    runner = SandboxedWorkflowRunner()
    figures: dict[str, dict[str, float]] = {}
    for cls in WORKFLOWS:
        defn = workflow._Definition.must_from_class(cls)
        samples: list[float] = []
        for _ in range(n):
            # CPU time of this thread, not wall time: the figure stays meaningful on a machine shared with
            # other work (creation is CPU-bound: imports, compiles, class creation).
            started = time.thread_time()
            runner.prepare_workflow(defn)
            samples.append((time.thread_time() - started) * 1000)
        figures[defn.name or cls.__name__] = {
            "cpu_min_ms": round(min(samples), 3),
            "cpu_median_ms": round(statistics.median(samples), 3),
            "cpu_max_ms": round(max(samples), 3),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--precompile", action="store_true")
    args = parser.parse_args()
    if args.precompile:
        from stack.worker_runtime import precompile

        precompile()
    print(
        json.dumps(
            {"n": args.n, "precompiled": args.precompile, "instances": asyncio.run(measure(args.n))}, indent=2
        )
    )


if __name__ == "__main__":
    main()
