"""The fault suite: break a running stack in the ways production breaks, then count what got lost or doubled.

    .venv/bin/python -m bench.faults                         # every scenario, 20 loans each, ~15 min
    .venv/bin/python -m bench.faults --only worker_kill --loans 50

Each scenario gets a fresh stack (bench/faults_stack.py: embedded Temporal and PostgreSQL, channel sandboxes,
sandbox agency, `python worker.py` as a child process) in a temporary state dir, starts N demo loans (their
first contacts are due at once; one collections day lasts --day-seconds), lets the burst begin, applies its
fault, heals it, then waits until the counts settle (bench/faults_checks.py) and prints them against what it
expects: every message the outbox marks sent delivered exactly once (e-mail aside: SMTP is at-least-once),
every delivery recorded as sent, one journal row per sent message, no failed workflow, no stuck loan.
Exits 1 if any scenario found a loss, a duplicate or a stuck loan. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from bench.faults_checks import Counts, count
from bench.faults_stack import FaultStack
from stack.logs import configure_logging
from stack.process import exit_process


async def worker_kill(stack: FaultStack, say: Callable[[str], None]) -> None:
    """SIGKILL the worker four times mid-burst, restarting it each time."""
    for round_ in range(4):
        await asyncio.sleep(6)
        await stack.stop_worker(signal.SIGKILL)
        say(f"worker SIGKILLed ({round_ + 1}/4)")
        await asyncio.sleep(1)
        await stack.start_worker()


async def stack_restart(stack: FaultStack, say: Callable[[str], None]) -> None:
    """Stop everything (worker, sandboxes, Temporal, PostgreSQL) mid-burst and start it again on its state."""
    await asyncio.sleep(10)
    await stack.stop()
    say("whole stack stopped")
    await asyncio.sleep(3)
    await stack.start()
    say("whole stack started again")


async def postgres_stop(stack: FaultStack, say: Callable[[str], None]) -> None:
    await asyncio.sleep(8)
    await stack.stop_postgres()
    say("PostgreSQL stopped for 30 s")
    await asyncio.sleep(30)
    await stack.start_postgres()
    say("PostgreSQL started again")


async def postgres_freeze(stack: FaultStack, say: Callable[[str], None]) -> None:
    await asyncio.sleep(8)
    await stack.freeze_postgres()
    say("PostgreSQL frozen (SIGSTOP) for 30 s")
    await asyncio.sleep(30)
    await stack.thaw_postgres()
    say("PostgreSQL thawed (SIGCONT)")


async def _sms_failing(stack: FaultStack, say: Callable[[str], None], status: int, seconds: float) -> None:
    assert stack.sandboxes is not None and stack.sandboxes.sms is not None
    sms = stack.sandboxes.sms
    await asyncio.sleep(3)
    before = sms.requests
    sms.fail_next(100_000, status)
    say(f"SMS gateway answers {status} to everything for {seconds:g} s")
    await asyncio.sleep(seconds)
    sms._failures.clear()  # the sandbox's own switch, in this process
    say(f"SMS gateway healthy again ({sms.requests - before} requests refused meanwhile)")


async def sms_outage(stack: FaultStack, say: Callable[[str], None]) -> None:
    """A provider outage: 503 (with Retry-After) for 40 s."""
    await _sms_failing(stack, say, 503, 40)


async def sms_rejecting(stack: FaultStack, say: Callable[[str], None]) -> None:
    """A provider rejecting our key for minutes (401: misconfigured, retried until fixed)."""
    await _sms_failing(stack, say, 401, 150)


async def agency_silent(stack: FaultStack, say: Callable[[str], None]) -> None:
    """An agency that accepts connections and never answers, for 90 s."""
    assert stack.blackhole is not None
    await asyncio.sleep(3)
    stack.blackhole.hanging = True
    say("sandbox agency silent (connections accepted, never answered) for 90 s")
    await asyncio.sleep(90)
    stack.blackhole.hanging = False
    say("sandbox agency answering again")


# Scenarios whose provider fails longer than a contact is retried: undelivered messages stay 'queued'.
PROVIDER_DOWN = ("sms_outage", "sms_rejecting")


def _tail(path: Path, lines: int = 12) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(f"    {line[:300]}" for line in text[-lines:])


SCENARIOS: dict[str, Callable[[FaultStack, Callable[[str], None]], Awaitable[None]]] = {
    "worker_kill": worker_kill,
    "stack_restart": stack_restart,
    "postgres_stop": postgres_stop,
    "postgres_freeze": postgres_freeze,
    "sms_outage": sms_outage,
    "sms_rejecting": sms_rejecting,
    "agency_silent": agency_silent,
}


async def run_scenario(
    name: str, loans: int, day_seconds: float, settle: float, slack: timedelta, keep: bool
) -> tuple[Counts | None, list[str]]:
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{name} {time.monotonic() - started:6.1f}s] {text}", flush=True)

    # Outside /tmp/pytest-of-*: pgdata must stay readable to the server's system user (tests/conftest.py).
    base = Path(tempfile.mkdtemp(prefix=f"overdue-faults-{name}-"))
    stack = FaultStack(base / "state", day_seconds, base / "worker.log")
    counts: Counts | None = None
    try:
        await stack.start()
        result = await stack.start_loans(loans)
        say(f"stack up, worker pid {stack.worker.pid if stack.worker else '?'}; loans: {result}")
        await SCENARIOS[name](stack, say)
        if stack.worker is None or stack.worker.returncode is not None:
            code = None if stack.worker is None else stack.worker.returncode
            say(f"worker had exited (code {code}): starting it again")  # as systemd or k8s would
            await stack.start_worker()
        # Settle: count until nothing is wrong, or `settle` seconds; never less than the slack, so a loan
        # that stopped moving has had time to show it.
        healed = time.monotonic()
        deadline = healed + max(settle, slack.total_seconds() + 20)
        while True:
            await asyncio.sleep(10)
            counts = await count(stack.state_dir, stack.pool, stack.client, slack)
            down = name in PROVIDER_DOWN
            problems = counts.problems(provider_down=down)
            watched = time.monotonic() - healed > slack.total_seconds() + 10
            settled = not problems and (down or not counts.outbox.get("queued"))
            if (watched and settled) or time.monotonic() > deadline:
                break
            say(f"settling: {problems or counts.outbox}")
        say(f"counted (worker started {stack.worker_starts} times):")
        for line in counts.lines():
            print(line, flush=True)
        if problems:
            print(f"  worker log tail ({stack.worker_log}):\n{_tail(stack.worker_log)}", flush=True)
        return counts, problems
    except Exception as error:
        say(f"scenario failed to run: {type(error).__name__}: {error} (worker log {stack.worker_log})")
        return counts, [f"did not run: {type(error).__name__}: {error}"]
    finally:
        print(f"[{name}] stopping the stack...", flush=True)
        await asyncio.shield(stack.close())
        if keep:
            say(f"state kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


async def main_async(args: argparse.Namespace) -> int:
    # Ctrl-C or SIGTERM cancels the scenario; its `finally` stops every process it started.
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)
    names = [args.only] if args.only else list(SCENARIOS)
    failed: dict[str, list[str]] = {}
    slack = timedelta(seconds=args.slack)
    for name in names:
        _, problems = await run_scenario(name, args.loans, args.day_seconds, args.settle, slack, args.keep)
        verdict = "OK" if not problems else "FAIL: " + "; ".join(problems)
        print(f"== {name}: {verdict}\n", flush=True)
        if problems:
            failed[name] = problems
    print(f"{len(names) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=20, help="demo loans per scenario (default 20)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run this scenario only")
    parser.add_argument("--day-seconds", type=float, default=4.0, help="one collections day (default 4 s)")
    parser.add_argument("--settle", type=float, default=240.0, help="max wait for counts to settle (s)")
    parser.add_argument("--slack", type=float, default=60.0, help="no progress this long past due: stuck")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's state dir")
    args = parser.parse_args(argv)
    if not 1 <= args.loans <= 2000:
        parser.error("--loans: 1..2000")
    configure_logging("WARNING")
    try:
        return asyncio.run(main_async(args))
    except asyncio.CancelledError:
        print("stopped: every process of the suite has been stopped", flush=True)
        return 130


if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
