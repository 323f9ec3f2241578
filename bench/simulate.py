"""Whole-portfolio simulation: generated loan lifetimes through the real workflows, then the invariants.

    python -m bench.simulate --loans 10000 --seed 1 [--concurrency N] [--horizon-days 400] [--json]

Starts a time-skipping test server (temporal-test-server from the dev extras), runs every generated lifetime
through LoanCollectionWorkflow and its children with recording activities (bench/sim_driver.py), checks what
was recorded with bench/invariants.py, and prints the figures: lifetimes, events, violations by kind (with a
few example loans each) and wall time. Exit status 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import pickle
import sys
import time as wallclock
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.invariants import Report, check
from bench.sim_activities import RecordingActivities
from bench.sim_driver import Driver, server_binary
from bench.sim_facts import Facts
from bench.sim_scenario import LoanScenario, generate
from workflows.registry import WORKFLOWS
from workflows.search_attributes import register as register_search_attributes


@dataclass
class RunFigures:
    lifetimes: int
    client_events: int  # starts, signals and updates the driver sent (rejected ones included)
    activity_calls: int  # every activity attempt the workflows made
    ticks: int  # clock steps of the global timeline
    outcomes: dict[str, int]
    wall_seconds: float


async def simulate(
    scenarios: list[LoanScenario],
    env: WorkflowEnvironment,
    *,
    start: datetime,
    horizon_days: int = 400,
    concurrency: int = 64,
    tick: timedelta = timedelta(minutes=15),
    progress: Callable[[str], None] | None = None,
    sandboxed: bool = True,
) -> tuple[Facts, RunFigures]:
    """Run every scenario to its end (or the horizon) on `env`, whose clock must be at `start` or before."""
    began = wallclock.perf_counter()
    facts = Facts()
    await register_search_attributes(env.client)
    recording = RecordingActivities(facts, {s.loan_id: s for s in scenarios})
    task_queue = f"sim-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=recording.all(),
        max_cached_workflows=max(1000, len(scenarios) + 200),
        max_concurrent_activities=256,
        # No deadlock detection: on a busy 2-core machine a workflow task (the sandbox's first imports
        # especially) can take over its 2 s, and the spurious retries only slow the run.
        debug_mode=True,
        # Unsandboxed only when asked (--unsandboxed): somewhat faster; the product's worker runs sandboxed.
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
    ):
        driver = Driver(env, scenarios, facts, task_queue=task_queue, concurrency=concurrency, tick=tick)
        driver.progress = progress
        driver.recording = recording
        for scenario in scenarios:
            for event in scenario.events:
                driver.push(event)
        ticks = await driver.run(start + timedelta(days=horizon_days))
        await driver.collect_endings()
    outcomes = Counter(e.outcome or e.status for e in facts.endings.values())
    figures = RunFigures(
        lifetimes=len(scenarios),
        client_events=driver.events_sent,
        activity_calls=facts.activity_calls,
        ticks=ticks,
        outcomes=dict(sorted(outcomes.items())),
        wall_seconds=round(wallclock.perf_counter() - began, 1),
    )
    return facts, figures


def quiet_runtime() -> Runtime:
    """The SDK core's warnings go to stdout; only errors, so `--json` prints JSON alone."""
    level = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=level)))


async def run_portfolio(
    loans: int,
    seed: int,
    *,
    horizon_days: int = 400,
    concurrency: int = 64,
    progress: Callable[[str], None] | None = None,
    sandboxed: bool = True,
) -> tuple[list[LoanScenario], Facts, RunFigures, Report]:
    """Generate `loans` lifetimes from `seed`, run them on a fresh time-skipping server, check them."""
    # Injected provider faults make the SDK log every failed attempt; the facts record them already. The
    # levels are put back afterwards: a caller (the test suite) keeps its own logging.
    quiet = {name: logging.getLogger(name) for name in ("temporalio.activity", "temporalio.workflow")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.ERROR)
    try:
        return await _run_portfolio(loans, seed, horizon_days, concurrency, progress, sandboxed)
    finally:
        for name, logger in quiet.items():
            logger.setLevel(levels[name])


async def _run_portfolio(
    loans: int,
    seed: int,
    horizon_days: int,
    concurrency: int,
    progress: Callable[[str], None] | None,
    sandboxed: bool,
) -> tuple[list[LoanScenario], Facts, RunFigures, Report]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=server_binary(),
        runtime=quiet_runtime(),
    )
    try:
        now = await env.get_current_time()
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        scenarios = generate(loans, seed, start)
        facts, figures = await simulate(
            scenarios,
            env,
            start=start,
            horizon_days=horizon_days,
            concurrency=concurrency,
            progress=progress,
            sandboxed=sandboxed,
        )
    finally:
        await env.shutdown()
    return scenarios, facts, figures, check(scenarios, facts)


def table(figures: RunFigures, report: Report, examples: int = 2) -> str:
    lines = [
        f"lifetimes        {figures.lifetimes}",
        f"client events    {figures.client_events}",
        f"activity calls   {figures.activity_calls}",
        f"clock ticks      {figures.ticks}",
        f"outcomes         {', '.join(f'{k} {v}' for k, v in figures.outcomes.items())}",
        f"wall time        {figures.wall_seconds:.1f} s",
        "",
        f"{'violation':34} {'count':>7}",
    ]
    shown = report.examples(examples)
    for kind, count in report.counts().items():
        lines.append(f"{kind:34} {count:>7}")
        lines += [f"    {example}" for example in shown.get(kind, [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1000, help="lifetimes to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed: same seed, same lifetimes")
    parser.add_argument("--concurrency", type=int, default=64, help="client calls in flight at once")
    parser.add_argument("--horizon-days", type=int, default=400, help="stop the clock after this many days")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--unsandboxed", action="store_true", help="run workflows without the sandbox")
    parser.add_argument("--progress", action="store_true", help="print the simulated date as it goes")
    parser.add_argument(
        "--dump", metavar="FILE", help="pickle the scenarios and recorded facts to FILE (to study a loan)"
    )
    args = parser.parse_args(argv)
    if args.loans < 1 or args.concurrency < 1 or args.horizon_days < 1:
        parser.error("--loans, --concurrency and --horizon-days must be at least 1")

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    scenarios, facts, figures, report = asyncio.run(
        run_portfolio(
            args.loans,
            args.seed,
            horizon_days=args.horizon_days,
            concurrency=args.concurrency,
            progress=say if args.progress else None,
            sandboxed=not args.unsandboxed,
        )
    )
    if args.dump:
        with open(args.dump, "wb") as file:
            pickle.dump((scenarios, facts), file)
    if args.json:
        out = {**asdict(figures), "violations": report.counts(), "examples": report.examples(3)}
        print(json.dumps(out, indent=2, default=str))
    else:
        print(table(figures, report))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
