"""The null baseline: one no-op activity, then a long timer that a `finish` signal cuts short.

Everything a loan's workflow costs beyond this (its input, its steps, its journal) is what the engine
benchmarks measure. Its ids look like a loan's (`collection-NULL-...`) so the encrypting client creates a
data key for it exactly as for a loan: the codec's cost is in both sides of every ratio.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity, workflow

if TYPE_CHECKING:  # never imported inside the workflow sandbox: re-importing asyncpg there crashes
    import asyncpg

NULL_WORKFLOW = "BenchNull"
NULL_ACTIVITY = "bench_null_step"
FINISH_SIGNAL = "finish"
MARKS_TABLE = "bench_null_marks"  # when each null workflow's activity ran (the burst's "first step done")


class NullActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=NULL_ACTIVITY)
    async def step(self, workflow_id: str) -> None:
        # The product's first step writes its outbox row; the null one writes a mark, so both sides of the
        # burst are detected the same way (a row in PostgreSQL).
        await self.pool.execute(
            f"INSERT INTO {MARKS_TABLE} (workflow_id) VALUES ($1) ON CONFLICT DO NOTHING", workflow_id
        )


@workflow.defn(name=NULL_WORKFLOW)
class NullWorkflow:
    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self, payload: str) -> str:
        await workflow.execute_activity(
            NULL_ACTIVITY, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self.finished, timeout=timedelta(days=365))
        return "finished"

    @workflow.signal(name=FINISH_SIGNAL)
    def finish(self) -> None:
        self.finished = True
