"""Drives generated loan lifetimes through the real workflows on the time-skipping test server.

One worker runs every loan's LoanCollectionWorkflow (and their children) with the recording activities. The
time-skipping server only skips time when every workflow is idle, so all loans share one global clock: the
driver merges every loan's events into one timeline, advances the server with `env.sleep(delta)` to each tick
(events are grouped into ticks of `tick` so thousands of loans need few sleeps), sends that tick's signals and
updates (one loan's in order, loans concurrently), then sleeps on. A simulated collector works some call tasks
the workflow creates (an outcome update shortly after the task is due), which adds events as the run goes.
After the last event the clock runs to the horizon and every workflow's end is collected.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from authority import Actor, Signer, SigningKey, TrustedKeys, trust
from authority.client import SigningInterceptor, named_actor, signing_client
from bench.sim_activities import RecordingActivities
from bench.sim_facts import ClientAction, Ending, Facts, Task
from bench.sim_scenario import Event, LoanScenario
from domain import arrangements, holds
from domain.contact_profiles import default_profiles
from domain.definitions import REGISTRY
from domain.loan import Borrower, Loan, Payment
from domain.promise import PromiseRequest
from domain.strategy import default_strategy
from workflows import messages as m

COLLECTOR = "sim.collector"
MAX_SLEEP = timedelta(days=1)
# The sleep RPC's own deadline: far past `stall_seconds`, so stalls are handled there, not by a timeout.
SLEEP_RPC_DEADLINE = timedelta(hours=1)
# Outcomes the simulated collector records on the call tasks it works, with their weights.
CALL_OUTCOMES = (
    ("no_answer", 40),
    ("right_party", 20),
    ("callback_requested", 15),
    ("promise_given", 10),
    ("refused", 10),
    ("wrong_number", 3),
    ("dispute_raised", 2),
)


def server_binary() -> str:
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("temporal-test-server not found: install the dev extras (make test does)")
    return found


def to_loan(s: LoanScenario) -> Loan:
    borrower: dict[str, Any] = {
        "name": f"Borrower {s.loan_id}",
        "phone": s.phone,
        "email": s.email,
        "locale": s.locale,
        "timezone": s.timezone,
    }
    # The postal address arrives with the workflow rewrite; until then no borrower has one.
    postal_field = next((f for f in ("postal_address", "address") if f in Borrower.model_fields), None)
    if postal_field is not None and s.postal is not None:
        borrower[postal_field] = s.postal
    return Loan(
        loan_id=s.loan_id,
        borrower=Borrower(**borrower),
        currency=s.currency,
        amount_overdue_minor=s.amount_minor,
        principal_outstanding_minor=s.principal_minor,
        overdue_since=s.overdue_since,
        risk_grade=s.risk_grade,
        jurisdiction=s.jurisdiction,
    )


def postal_given(s: LoanScenario) -> bool:
    """Whether the workflow was told a postal address (the checker's fact, not the scenario's wish)."""
    return s.postal is not None and any(f in Borrower.model_fields for f in ("postal_address", "address"))


class Driver:
    def __init__(
        self,
        env: WorkflowEnvironment,
        scenarios: list[LoanScenario],
        facts: Facts,
        *,
        task_queue: str,
        concurrency: int,
        tick: timedelta,
    ) -> None:
        self.env = env
        # Every signal and update goes out signed, as the collector, supervisor or servicing it names, with
        # a key of this run that the in-process worker trusts (authority; README "Who may act").
        key = SigningKey.generate("sim", "simulation", ("collector", "supervisor", "servicing"))
        trust.install(TrustedKeys([key.public()]))
        signing = SigningInterceptor(
            Signer([key]), named_actor(Actor("servicing", "servicing")), env.get_current_time
        )
        self.client: Client = signing_client(env.client, signing)
        self.scenarios = {s.loan_id: s for s in scenarios}
        self.facts = facts
        self.task_queue = task_queue
        self.limit = asyncio.Semaphore(concurrency)
        self.tick = tick
        self.profiles = default_profiles()
        self.strategy = default_strategy()
        self.timeline: list[tuple[datetime, int, Event]] = []
        self.seq = 0
        self.tasks_seen = 0
        self.events_sent = 0
        self.progress: Callable[[str], None] | None = None
        self.recording: RecordingActivities | None = None
        self.stall_seconds = 60.0
        self.stuck: set[str] = set()
        self._sleeping: asyncio.Future[None] | None = None

    def push(self, event: Event) -> None:
        self.seq += 1
        heapq.heappush(self.timeline, (event.at, self.seq, event))

    def handle(self, loan_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(m.workflow_id(loan_id), result_type=m.CollectionStatus)

    async def run(self, horizon: datetime) -> int:
        ticks = 0
        while self.timeline and self.timeline[0][0] < horizon:
            now = await self.env.get_current_time()
            due = self.timeline[0][0]
            if due > now:
                # Round up to the tick so the events of one tick go together.
                step = self.tick.total_seconds()
                wait = timedelta(seconds=-(-(due - now).total_seconds() // step) * step)
                # At most a day at a time: tasks the workflows create meanwhile are worked soon after.
                await self._sleep(min(wait, MAX_SLEEP))
                now = await self.env.get_current_time()
            batch: dict[str, list[Event]] = {}
            while self.timeline and self.timeline[0][0] <= now:
                _, _, event = heapq.heappop(self.timeline)
                batch.setdefault(event.loan_id, []).append(event)
            await asyncio.gather(*(self._loan_events(events) for events in batch.values()))
            self._collector_works_new_tasks()
            ticks += 1
            if self.progress is not None and ticks % 20 == 0:
                self.progress(f"{now:%Y-%m-%d %H:%M} events {self.events_sent} pending {len(self.timeline)}")
        while (now := await self.env.get_current_time()) < horizon:
            await self._sleep(min(horizon - now, timedelta(days=30)))
        return ticks

    async def _sleep(self, delta: timedelta) -> None:
        """The server skips time only while every workflow is idle: one whose workflow task keeps failing
        holds the clock for ever. Past `stall_seconds` of wall time such loans are ended and recorded."""
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self._pending_sleep(delta)), self.stall_seconds)
                self._sleeping = None
                return
            except TimeoutError:
                await self._end_stuck_workflows()

    def _pending_sleep(self, delta: timedelta) -> asyncio.Future[None]:
        if self._sleeping is None:
            self._sleeping = asyncio.ensure_future(self._server_sleep(delta))
        return self._sleeping

    async def _server_sleep(self, delta: timedelta) -> None:
        """`env.sleep(delta)` with a deadline of our own. WorkflowEnvironment.sleep leaves the RPC to the
        client's default deadline for calls that are not long polls (30 s in the SDK core), and a simulated
        day of 200 loans' work on a busy 2-core machine can take longer: the sleep then failed with "Timeout
        expired" (seen once in a fresh-clone `make test`). How long is too long is `stall_seconds`' call."""
        request = SleepRequest()
        request.duration.FromTimedelta(delta)
        await self.env.client.service_client.test_service.unlock_time_skipping_with_sleep(
            request, timeout=SLEEP_RPC_DEADLINE
        )

    async def _end_stuck_workflows(self) -> None:
        async def one(loan_id: str) -> None:
            async with self.limit:
                handle = self.handle(loan_id)
                try:
                    description = await handle.describe()
                except RPCError:
                    return
                pending = description.raw_description.pending_workflow_task
                if description.status == WorkflowExecutionStatus.RUNNING and pending.attempt > 1:
                    self.facts.endings[loan_id] = Ending(loan_id, "stuck", None, None)
                    self.stuck.add(loan_id)
                    await handle.terminate("simulation: workflow task keeps failing")
                    if self.progress is not None:
                        self.progress(f"{loan_id}: workflow task failing ({pending.attempt} attempts), ended")

        started = {a.loan_id for a in self.facts.actions if a.name == "start" and a.accepted}
        await asyncio.gather(*(one(loan_id) for loan_id in started - self.stuck))

    async def _loan_events(self, events: list[Event]) -> None:
        async with self.limit:
            for event in events:
                if event.loan_id not in self.stuck:
                    await self._send(event)

    async def _send(self, event: Event) -> None:
        self.events_sent += 1
        error: str | None = None
        sent_at = await self.env.get_current_time()
        try:
            await self._perform(event)
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            error = f"{getattr(cause, 'type', '')}: {getattr(cause, 'message', str(cause))}"
        except RPCError as failure:  # the workflow has already completed
            error = f"rpc: {failure.message}"
        except ValueError as invalid:  # the request model itself refused it (a note with NUL, ...)
            error = f"invalid request: {str(invalid).splitlines()[0]}"
            if "note" in event.params:  # the collector fixes the note and sends it again
                fixed = {k: v for k, v in event.params.items() if k != "note"}
                self.push(Event(at=event.at, loan_id=event.loan_id, kind=event.kind, params=fixed))
        if error is None and event.kind == "call_outcome" and self.recording is not None:
            self.recording.worked(event.loan_id, str(event.params["task_id"]))
        if error is None and event.params.get("outcome") == "dispute_raised":
            # Verification is sent within weeks, as for disputes raised by update (a US dispute stops
            # collection until then).
            rng = random.Random(f"{self.scenarios[event.loan_id].collector_seed}:{event.at.isoformat()}")
            later = event.at + timedelta(days=rng.randint(5, 30), hours=rng.randint(0, 12))
            self.push(Event(at=later, loan_id=event.loan_id, kind="resolve_dispute"))
        at = await self.env.get_current_time()
        params = dict(event.params)
        if event.kind == "start":
            params["postal"] = postal_given(self.scenarios[event.loan_id])
        self.facts.actions.append(
            ClientAction(
                loan_id=event.loan_id,
                at=at,
                name=event.kind,
                accepted=error is None,
                params=params,
                error=error,
                sent_at=sent_at,
            )
        )

    async def _perform(self, event: Event) -> None:
        s = self.scenarios[event.loan_id]
        p = event.params
        handle = self.handle(event.loan_id)
        who = {"collector": COLLECTOR}
        if event.kind == "start":
            await self.client.start_workflow(
                m.WORKFLOW_NAME,
                # By reference, as the starter sends it: the start and every continue-as-new carry the
                # strategy's and profile's sha256, resolved from the worker's registry (domain.definitions).
                m.CollectionInput(
                    loan=to_loan(s),
                    strategy=self.strategy,
                    profile=self.profiles[s.jurisdiction],
                    strategy_ref=REGISTRY.intern(self.strategy)[0],
                    profile_ref=REGISTRY.intern(self.profiles[s.jurisdiction])[0],
                ),
                id=m.workflow_id(s.loan_id),
                task_queue=self.task_queue,
            )
            return
        if event.kind == "payment":
            now = await self.env.get_current_time()
            payment = Payment(
                payment_id=str(p["payment_id"]),
                amount_minor=int(p["amount_minor"]),  # type: ignore[call-overload]
                currency=s.currency,
                received_at=now,
            )
            await handle.signal(m.PAYMENT_SIGNAL, payment)
            return
        if event.kind == "close":
            await handle.signal(m.CLOSE_SIGNAL, m.CloseRequest(reason=p["reason"]))
            return
        name, request = self._update(event, who, await self.env.get_current_time())
        await handle.execute_update(name, request)

    def _update(self, event: Event, who: dict[str, str], now: datetime) -> tuple[str, Any]:
        p = event.params
        kind = event.kind
        if kind == "promise":
            return m.PROMISE_UPDATE, PromiseRequest(
                amount_minor=p["amount_minor"],
                due_date=date.fromisoformat(str(p["due_date"])),
                note=p.get("note"),
                **who,
            )
        if kind == "plan":
            parts = [arrangements.PlanInstalmentRequest(**i) for i in p["instalments"]]  # type: ignore[attr-defined]
            plan = arrangements.RepaymentPlanRequest(instalments=parts, note=p.get("note"), **who)
            return m.REPAYMENT_PLAN_UPDATE, plan
        if kind == "settlement":
            return m.SETTLEMENT_UPDATE, arrangements.SettlementApproval(
                approver="sim.supervisor",
                amount_minor=p["amount_minor"],
                due_date=date.fromisoformat(str(p["due_date"])),
                note=p.get("note"),
            )
        simple: dict[str, tuple[str, Any]] = {
            "dispute": (m.RAISE_DISPUTE_UPDATE, holds.RaiseDispute),
            "resolve_dispute": (m.RESOLVE_DISPUTE_UPDATE, holds.ResolveDispute),
            "breathing_space": (m.BREATHING_SPACE_UPDATE, holds.StartBreathingSpace),
            "hardship": (m.HARDSHIP_HOLD_UPDATE, holds.HardshipHold),
            "opt_out": (m.OPT_OUT_UPDATE, holds.OptOut),
            "cease": (m.CEASE_CONTACT_UPDATE, holds.CeaseContact),
            "stop": (m.STOP_COLLECTION_UPDATE, holds.StopCollection),
            "call_outcome": (m.CONTACT_OUTCOME_UPDATE, holds.ContactOutcome),
        }
        name, model = simple[kind]
        extra = {k: v for k, v in p.items() if k not in ("task_id", "callback_hour", "callback_minute")}
        if "callback_hour" in p:
            # The next local day at the hour the borrower asked for, from when the call is recorded.
            local = (now + timedelta(days=1)).astimezone(self.scenarios[event.loan_id].zone)
            wanted = local.replace(hour=int(p["callback_hour"]), minute=int(p["callback_minute"]))  # type: ignore[call-overload]
            extra["callback_at"] = wanted.astimezone(UTC)
        if kind == "resolve_dispute":
            extra["verification_sent"] = True
        return name, model(**who, **extra)

    def _collector_works_new_tasks(self) -> None:
        """Half the call tasks are worked 10 to 50 minutes after they are due, with a seeded outcome."""
        fresh = self.facts.tasks[self.tasks_seen :]
        self.tasks_seen = len(self.facts.tasks)
        for task in fresh:
            if task.kind not in ("call", "promise_follow_up") or task.loan_id not in self.scenarios:
                continue
            s = self.scenarios[task.loan_id]
            rng = random.Random(f"{s.collector_seed}:{task.idempotency_key}")
            if rng.random() < 0.5:
                continue
            self.push(self._call_outcome(task, rng, s))

    def _call_outcome(self, task: Task, rng: random.Random, s: LoanScenario) -> Event:
        outcomes, weights = zip(*CALL_OUTCOMES, strict=True)
        outcome = rng.choices(outcomes, weights=weights)[0]
        at = max(task.due_at, task.at) + timedelta(minutes=rng.randint(10, 50))
        params: dict[str, object] = {"outcome": outcome, "task_id": task.task_id}
        if outcome == "callback_requested":
            # Some borrowers ask for a time outside contact hours: the workflow must wait for the hours.
            params["callback_hour"] = rng.choice((10, 13, 17, 19, 21, 22, 23))
            params["callback_minute"] = rng.choice((0, 30))
        return Event(at=at, loan_id=task.loan_id, kind="call_outcome", params=params)

    async def collect_endings(self) -> None:
        async def one(loan_id: str) -> None:
            async with self.limit:
                handle = self.handle(loan_id)
                try:
                    status = (await handle.describe()).status
                except RPCError:
                    self.facts.endings[loan_id] = Ending(loan_id, "not_started", None, None)
                    return
                if status == WorkflowExecutionStatus.COMPLETED:
                    result = await handle.result()
                    self.facts.endings[loan_id] = Ending(
                        loan_id, "completed", result.outcome, result.collections_now
                    )
                elif status == WorkflowExecutionStatus.RUNNING:
                    self.facts.endings[loan_id] = Ending(loan_id, "running", None, None)
                    await handle.terminate("simulation horizon")
                else:
                    name = status.name.lower() if status is not None else "unknown"
                    self.facts.endings[loan_id] = Ending(loan_id, name, None, None)

        await asyncio.gather(*(one(loan_id) for loan_id in self.scenarios if loan_id not in self.stuck))
