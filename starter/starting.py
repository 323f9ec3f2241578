"""Starting a loan's collection: one cycle per overdue episode, at most once per cycle.

The workflow id is `collection-{loan_id}` for every cycle of a loan, so the CLI, the API and the admin UI
address a loan by its id alone and always reach its latest run. Each run carries its cycle in a memo,
`{"cycle": "<overdue_since>"}`, which continue-as-new keeps (the SDK copies the memo by default). When a
start finds the id taken (see `start_cycle`):

    latest run               this loan's overdue_since           result
    running                  any                                 "already_running"
    failed/terminated/...    any                                 "started" again (an operator stopped it)
    completed, cycle C       == C, or earlier                    "already_closed" (never restarted)
    completed, cycle C       later than C                        "new_cycle" (a cured loan overdue again)
    another workflow type    any                                 `WorkflowIdTaken` (a clear error)
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Literal, get_args

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from tqdm import tqdm

from domain.loan import Loan, format_money
from domain.strategy import Strategy
from workflows import search_attributes as sa
from workflows.messages import WORKFLOW_NAME, CollectionInput, workflow_id

StartResult = Literal["started", "new_cycle", "already_running", "already_closed"]
START_RESULTS: tuple[StartResult, ...] = get_args(StartResult)

CYCLE_MEMO = "cycle"  # memo key: the overdue_since (ISO date) the run's collection cycle started from

# Closed states that are not a business outcome: the same cycle may be started again from the file.
RESTARTABLE = {
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TIMED_OUT,
}


class WorkflowIdTaken(RuntimeError):
    """The loan's workflow id belongs to a workflow that is not a loan's collection; nothing was started."""

    def __init__(self, loan_id: str, workflow_type: str) -> None:
        self.loan_id = loan_id
        self.workflow_type = workflow_type
        super().__init__(
            f"loan {loan_id}: workflow id {workflow_id(loan_id)} is taken by a {workflow_type}, "
            "not a loan's collection; nothing was started"
        )


class StartFailed(RuntimeError):
    """Some loans of a batch could not be started. The others were; running the batch again is safe."""

    def __init__(self, results: dict[str, StartResult], failures: dict[str, BaseException]) -> None:
        self.results = results
        self.failures = failures
        first_id, first = next(iter(failures.items()))
        super().__init__(f"{len(failures)} loan(s) could not be started (first: {first_id}: {first})")


def cycle_memo(overdue_since: date) -> dict[str, str]:
    return {CYCLE_MEMO: overdue_since.isoformat()}


async def closed_cycle(description: WorkflowExecutionDescription) -> date | None:
    """The cycle a closed run collected: its memo, else (runs started before the memo existed) its
    OverdueSince search attribute, which only ever moves later as instalments are paid. None: unknown."""
    memo: Mapping[str, Any] = await description.memo()
    value = memo.get(CYCLE_MEMO)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    since = description.typed_search_attributes.get(sa.OVERDUE_SINCE)
    return since.date() if since is not None else None


async def start_cycle(
    client: Client,
    request: CollectionInput,
    *,
    task_queue: str,
    search_attributes: TypedSearchAttributes,
    static_summary: str,
    static_details: str,
) -> StartResult:
    """Start the loan's collection for its cycle (`request.loan.overdue_since`), at most once per cycle.

    Policies: ID conflict FAIL, so a running collection is never started twice or reset (its payments,
    promises and steps live in that run). ID reuse ALLOW_DUPLICATE_FAILED_ONLY on the first try, so a
    completed collection is never restarted blindly; only when the closed run's cycle is older than this
    loan's overdue_since is the id reused (ALLOW_DUPLICATE) for a new cycle.
    """
    loan = request.loan
    wanted = workflow_id(loan.loan_id)
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    result: StartResult = "started"
    for _attempt in range(3):  # each pass sees a newer state; more than one only under concurrent starts
        try:
            await client.start_workflow(
                WORKFLOW_NAME,
                request,
                id=wanted,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=reuse,
                memo=cycle_memo(loan.overdue_since),
                search_attributes=search_attributes,
                static_summary=static_summary,
                static_details=static_details,
            )
            return result
        except WorkflowAlreadyStartedError:
            pass
        description = await client.get_workflow_handle(wanted).describe()
        if description.workflow_type != WORKFLOW_NAME:
            raise WorkflowIdTaken(loan.loan_id, description.workflow_type)
        if description.status == WorkflowExecutionStatus.RUNNING:
            return "already_running"
        if description.status in RESTARTABLE:
            reuse, result = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, "started"
            continue  # it failed between our start and our describe: the reuse policy now allows it
        previous = await closed_cycle(description)
        if previous is None or loan.overdue_since <= previous:
            return "already_closed"
        reuse, result = WorkflowIDReusePolicy.ALLOW_DUPLICATE, "new_cycle"
    return "already_running"


def summarize(results: Mapping[str, StartResult]) -> dict[str, int]:
    """How many loans of a batch had each start result (every key of START_RESULTS present)."""
    counts = Counter(results.values())
    return {result: counts.get(result, 0) for result in START_RESULTS}


def start_summary(loan: Loan, segment: str) -> str:
    """One line for the Web UI's workflow list. No PII: no name, phone or e-mail (summaries are not encrypted
    unless a codec is configured, and operators scan them)."""
    return (
        f"Loan {loan.loan_id} · {format_money(loan.amount_overdue_minor, loan.currency)} overdue since "
        f"{loan.overdue_since.isoformat()} · segment {segment}"
    )


def start_details(loan: Loan, strategy: Strategy, segment: str, demo_day_seconds: float | None) -> str:
    """Markdown shown on the workflow's page: what collections started from, without borrower PII."""
    instalments = len(loan.instalments())
    lines = [
        f"**Loan** {loan.loan_id} · {loan.product} · risk grade {loan.risk_grade} · "
        f"jurisdiction {loan.jurisdiction} · lender {loan.lender}",
        f"**Overdue** {format_money(loan.amount_overdue_minor, loan.currency)} since "
        f"{loan.overdue_since.isoformat()} ({instalments} instalment{'s' if instalments != 1 else ''}) · "
        f"principal outstanding {format_money(loan.principal_outstanding_minor, loan.currency)}",
        f"**Strategy** {strategy.name} v{strategy.version} · segment {segment}",
    ]
    if demo_day_seconds:
        lines.append(f"**Demo clock** one collections day lasts {demo_day_seconds:g} s")
    return "\n\n".join(lines)


def initial_search_attributes(loan: Loan, segment: str) -> TypedSearchAttributes:
    """What operators filter on from the first second; the workflow upserts stage and outcome as they change.

    OverdueSince is the calendar date at 00:00 UTC, so `OverdueSince < "2026-10-01T00:00:00Z"` in the Web UI
    means "overdue since before 1 October" whatever the borrower's timezone.
    """
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.COLLECTION_STAGE, "reminder"),
            SearchAttributePair(sa.OVERDUE_SINCE, datetime.combine(loan.overdue_since, time(0), tzinfo=UTC)),
            SearchAttributePair(sa.AMOUNT_OVERDUE, loan.amount_overdue_minor),
            SearchAttributePair(sa.CURRENCY, loan.currency),
            SearchAttributePair(sa.SEGMENT, segment),
            SearchAttributePair(sa.COLLECTION_OUTCOME, "open"),
        ]
    )


# start_batch shows a progress bar (on a terminal) from this many loans on.
PROGRESS_MIN_LOANS = 50


async def start_batch(
    start_one: Callable[[Loan], Awaitable[StartResult]],
    loans: Sequence[Loan],
    *,
    concurrency: int,
    progress: bool = True,
) -> dict[str, StartResult]:
    """`start_one` for every loan, `concurrency` calls in flight; results by loan id, in input order.

    Pipelined: `concurrency` long-lived starters each take the next loan as soon as their call returns, so
    the connection always has `concurrency` starts in flight and no task is created, scheduled or parked
    on a semaphore per loan (with thousands of loans that bookkeeping alone cost more than the starts).
    If some starts fail (server errors), the rest still run and `StartFailed` reports both.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    repeated = sorted(i for i, n in Counter(loan.loan_id for loan in loans).items() if n > 1)
    if repeated:
        raise ValueError(f"loan ids must be unique in a batch; repeated: {', '.join(repeated[:10])}")
    results: dict[str, StartResult] = {}
    failures: dict[str, BaseException] = {}
    queue = iter(loans)
    show = progress and len(loans) >= PROGRESS_MIN_LOANS and sys.stderr.isatty()
    with tqdm(total=len(loans), unit="loan", desc="starting", disable=not show, file=sys.stderr) as bar:

        async def starter() -> None:
            for loan in queue:  # a shared iterator: each loan is taken by exactly one starter
                try:
                    results[loan.loan_id] = await start_one(loan)
                except Exception as error:
                    failures[loan.loan_id] = error
                if show:
                    bar.update(1)

        await asyncio.gather(*(starter() for _ in range(min(concurrency, len(loans)))))
    ordered = {loan.loan_id: results[loan.loan_id] for loan in loans if loan.loan_id in results}
    if failures:
        raise StartFailed(ordered, failures)
    return ordered
