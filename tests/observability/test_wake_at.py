"""The workflow tells the portfolio when it next wakes by itself: the stuck-loans gauge reads it."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.conftest import Harness, make_loan
from tests.workflows.conftest import harness as harness  # the time-skipping workflow harness
from workflows.messages import STATUS_QUERY, CollectionStatus


async def test_each_snapshot_carries_the_timer_the_workflow_waits_on(harness: Harness) -> None:
    # DPD 2: the first reminder (DPD 1) is behind; the case waits for its next step.
    loan = make_loan(await harness.now(), dpd=2, amount=80_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(minutes=1))

    status = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
    first = harness.fakes.snapshots[0]
    assert status.next_step is not None and first.wake_at is not None
    assert first.wake_at > first.as_of
    assert first.wake_at <= status.next_step.due_at  # the step, or the contact window before it
    await handle.terminate("test finished")
