"""What every engine benchmark shares: the embedded stack, worker processes, loans, and the report.

One throw-away Temporal dev server (stack.embedded.TemporalDevServer) and one embedded PostgreSQL (migrated),
the product's encrypting client (privacy.converter, a fresh key ring), and workers in their own processes
(bench/engine/worker.py: build_worker for the product, the same settings for the null workflow), so each
worker's RSS is its own and a product run never warms the null one. Each benchmark repeats its measure
(default 3), alternating product and baseline, and prints JSON then a table: min / median / max per side and
the ratio product / baseline of the same repetition.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import psutil
from temporalio.client import Client

from activities.db import create_pool
from authority import Signer, SigningKey, TrustedKeys
from bench.engine.null_workflow import MARKS_TABLE
from bench.seed_portfolio import migrated_database
from domain.loan import Borrower, Loan
from domain.strategy import default_strategy
from privacy.converter import data_converter
from privacy.keyring import KeyRing
from stack.embedded import TemporalDevServer, _die_with_parent, free_port
from starter.api import CollectionsStarter

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    temporal: TemporalDevServer
    database_url: str
    pool: asyncpg.Pool
    ring: KeyRing
    client: Client
    state: Path
    signer: Signer
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment of a child process (worker, CLI) that talks to this stack."""
        return {
            **os.environ,
            "OVERDUE_CODEC_KEYS": self.ring.to_json(),
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal.target,
            "OVERDUE_STATE_DIR": str(self.state),
            # the workers trust the benchmark's own servicing and operator keys (README "Who may act")
            "OVERDUE_TRUSTED_KEYS": json.dumps(
                TrustedKeys(key.public() for key in self.signer.keys).to_json()
            ),
            "PYTHONPATH": str(ROOT),
        }

    def starter(self, task_queue: str, **options: Any) -> CollectionsStarter:
        return CollectionsStarter(
            self.client, task_queue=task_queue, strategy=default_strategy(), signer=self.signer, **options
        )

    async def worker(self, kind: str, *, max_cached: int = 1000) -> WorkerProcess:
        worker = WorkerProcess(kind, f"bench-{kind}-{uuid.uuid4().hex[:8]}", max_cached)
        await worker.start(self)
        self.workers.append(worker)
        return worker

    async def database_bytes(self) -> int:
        return int(await self.pool.fetchval("SELECT pg_database_size(current_database())"))

    def temporal_bytes(self) -> int:
        """The dev server's SQLite file and its WAL."""
        return sum(p.stat().st_size for p in self.state.glob("temporal.db*") if p.is_file())


@dataclass
class WorkerProcess:
    kind: str
    task_queue: str
    max_cached: int
    process: asyncio.subprocess.Process | None = None
    log: Path | None = None
    _drainer: asyncio.Task[None] | None = None

    async def start(self, stack: Stack) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.engine.worker", self.kind,
            "--task-queue", self.task_queue, "--target", stack.temporal.target,
            "--database-url", stack.database_url, "--max-cached", str(self.max_cached),
            env=stack.env(), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,  # no orphan worker when the benchmark is killed
        )  # fmt: skip
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while True:  # the worker's logs may come first
            line = await asyncio.wait_for(self.process.stdout.readline(), max(1, deadline - time.monotonic()))
            if not line:
                raise RuntimeError(f"{self.kind} worker did not start (exit {await self.process.wait()})")
            if line.strip() == b"ready":
                break
        self.log = stack.state / f"{self.task_queue}.log"
        self._drainer = asyncio.create_task(self._drain(self.log))

    async def _drain(self, log: Path) -> None:
        """Keep reading the worker's stdout (its logs) into a file, so logging never blocks on a full pipe."""
        assert self.process is not None and self.process.stdout is not None
        with log.open("ab") as out:
            while line := await self.process.stdout.readline():
                out.write(line)
                out.flush()

    def rss(self) -> int:
        assert self.process is not None
        return int(psutil.Process(self.process.pid).memory_info().rss)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def embedded_stack(database_url: str | None = None) -> AsyncIterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="overdue-bench-engine-"))
    temporal = TemporalDevServer(state, port=free_port(), ui_port=free_port(), headless=True)
    await temporal.start()
    try:
        async with migrated_database(database_url) as url:
            pool = await create_pool(url, max_size=20)
            await pool.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKS_TABLE} "
                "(workflow_id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            ring = KeyRing.generate()
            plain = await Client.connect(temporal.target)
            config = plain.config()
            config["data_converter"] = data_converter(ring, pool)
            signer = Signer(
                [
                    SigningKey.generate("bench-servicing", "servicing", ("servicing",), "servicing"),
                    SigningKey.generate("bench-operator", "operator", ("operator",), "bench.operator"),
                ]
            )
            stack = Stack(temporal, url, pool, ring, Client(**config), state, signer)
            try:
                yield stack
            finally:
                for worker in stack.workers:
                    await worker.stop()
                await pool.close()
    finally:
        await temporal.stop()
        shutil.rmtree(state, ignore_errors=True)


# -- loans -------------------------------------------------------------------------------------------------


def due_now_zone(now: datetime | None = None) -> str:
    """A fixed-offset IANA zone where it is early afternoon now: a DPD-1 step due at 09:00 local is due at
    once and inside the contact window (08:00-22:00) whatever the hour the benchmark runs."""
    hour = (now or datetime.now(UTC)).hour
    offset = (13 - hour + 12) % 24 - 12  # -12..11
    # Etc/GMT signs are inverted: Etc/GMT-2 is UTC+2.
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def bench_loan(loan_id: str, *, zone: str, amount_minor: int = 150_000, days: int = 1) -> Loan:
    """A loan overdue since `days` ago in `zone`: with days=1 its first SMS (DPD 1 at 09:00) is due now."""
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    return Loan(
        loan_id=loan_id,
        borrower=Borrower(
            name="Bench Borrower", phone="+8613800138000", email="bench@example.com", timezone=zone
        ),
        currency="CNY",
        amount_overdue_minor=amount_minor,
        principal_outstanding_minor=amount_minor * 4,
        overdue_since=today - timedelta(days=days),
    )


def run_id() -> str:
    return uuid.uuid4().hex[:6].upper()


async def gather_limited(concurrency: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def wait_for_rows(pool: asyncpg.Pool, query: str, argument: str, expected: int, within: float) -> float:
    """Poll `query` (a count, given `argument`) until it reaches `expected`; returns time.time() of the
    newest row if the query's second column gives it, else of the poll that saw it."""
    deadline = time.monotonic() + within
    while True:
        row = await pool.fetchrow(query, argument)
        assert row is not None
        if row[0] >= expected:
            return row[1].timestamp() if len(row) > 1 and row[1] is not None else time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {row[0]} of {expected} after {within:.0f} s")
        await asyncio.sleep(0.2)


# -- figures -----------------------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@dataclass
class Measure:
    """One measure: a value per repetition for the product and for its baseline (None: no baseline)."""

    name: str
    unit: str
    product: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    target: str = ""

    def figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"unit": self.unit, "product": spread(self.product)}
        if self.baseline:
            figures["baseline"] = spread(self.baseline)
            ratios = [p / b for p, b in zip(self.product, self.baseline, strict=False) if b]
            if ratios:
                figures["ratio"] = spread(ratios)
        if self.target:
            figures["target"] = self.target
        return figures


def order(repetition: int) -> tuple[str, str]:
    """Product first on even repetitions, baseline first on odd: a slow moment hits both alike."""
    return ("product", "baseline") if repetition % 2 == 0 else ("baseline", "product")


def report(
    benchmark: str,
    parameters: dict[str, Any],
    measures: Sequence[Measure],
    out: Path | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the JSON (and write it to `out`) and a Markdown table; `extra` (e.g. running figures) goes into
    the JSON beside the measures, so the file holds everything the run printed."""
    document = {
        "benchmark": benchmark,
        "date": date.today().isoformat(),
        "parameters": parameters,
        "measures": {m.name: m.figures() for m in measures},
        **(extra or {}),
    }
    text = json.dumps(document, indent=2)
    if out:
        out.write_text(text)
    print(text)
    print()
    print("| measure (min / median / max) | product | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    for measure in measures:
        f = measure.figures()

        def cell(key: str, f: dict[str, Any] = f) -> str:
            s = f.get(key)
            return f"{s['min']:g} / {s['median']:g} / {s['max']:g}" if s else ""

        unit = f" {measure.unit}" if measure.unit else ""
        baseline = cell("baseline") + (unit if f.get("baseline") else "")
        print(
            f"| {measure.name} | {cell('product')}{unit} | {baseline} | {cell('ratio')} | {measure.target} |"
        )


def common_arguments(parser: Any, repeats: int = 3) -> None:
    parser.add_argument("--repeats", type=int, default=repeats, help=f"repetitions (default {repeats})")
    parser.add_argument("--json", type=Path, help="also write the JSON to this file")
    parser.add_argument("--database-url", help="a database to migrate and use (default: a throw-away one)")
