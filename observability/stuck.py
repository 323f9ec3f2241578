"""Stuck loans: open collection cycles whose workflow should have woken and shows no sign of having done so.

Precisely, a loan is stuck when its portfolio row (the latest cycle, outcome NULL) names a wake time
(`wake_at`, migrations/0022: the collections-time instant of the timer the workflow was about to wait on when
it wrote its last snapshot) whose real-time instant lies more than `grace` in the past. A workflow that wakes
writes a newer snapshot with a later wake time as soon as it waits again (or closes the case), so a row left
behind means the timer did not fire (no worker polling, the workflow task failing) or what it started has not
finished (an activity retrying through an outage). The grace covers the work one wake-up does: sending, the
journal batch, ordinary schedule-to-start delays.

The collections clock may run faster than real time (the demo): the real instant of `wake_at` is
clock_real_anchor + (wake_at - clock_collections_anchor) / clock_speed. Loans whose workflow waits only for a
signal (wake_at NULL) are never stuck by this definition.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
import structlog

from observability import metrics
from observability.labels import LABEL_VALUES, closed

log = structlog.get_logger("overdue.observability")

_STUCK = """
SELECT stage, count(*) AS loans
FROM portfolio
WHERE latest AND outcome IS NULL AND wake_at IS NOT NULL
  AND clock_real_anchor + (wake_at - clock_collections_anchor) / clock_speed < now() - $1::interval
GROUP BY stage
"""


async def stuck_loans(pool: asyncpg.Pool, grace: timedelta) -> dict[str, int]:
    """Stuck loans by stage (stages outside the closed set under "other"); every stage present, 0 or more."""
    counts = dict.fromkeys(LABEL_VALUES["stage"], 0)
    for row in await pool.fetch(_STUCK, grace):
        stage = closed("stage", row["stage"])
        counts[stage] = counts.get(stage, 0) + int(row["loans"])
    return counts


async def refresh(pool: asyncpg.Pool, grace: timedelta) -> dict[str, int]:
    """Run the query once and set the gauge; on failure the gauge keeps its last values and
    overdue_stuck_loans_checked_timestamp_seconds stops moving (an alert watches it)."""
    counts = await stuck_loans(pool, grace)
    for stage, loans in counts.items():
        metrics.stuck_loans.labels(stage).set(loans)
    metrics.stuck_loans_checked.set(time.time())
    return counts


async def watch(pool: asyncpg.Pool, grace: timedelta, every: timedelta) -> None:
    """Refresh the gauge every `every` until cancelled; a failed query is logged and tried again."""
    while True:
        try:
            await refresh(pool, grace)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("stuck_loans_query_failed", error=type(error).__name__)
        await asyncio.sleep(every.total_seconds())
