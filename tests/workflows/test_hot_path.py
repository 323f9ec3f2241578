"""No work repeated per task: what the start set is not upserted again; details only set when they change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.worker import Worker

from domain.contact_profiles import default_profiles
from domain.herd import loan_contact_time
from domain.strategy import default_strategy
from starter.starting import initial_search_attributes
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import STATUS_QUERY, WORKFLOW_NAME, CollectionInput, CollectionStatus, workflow_id
from workflows.registry import WORKFLOWS


async def test_a_loan_waiting_for_its_first_step_upserts_no_search_attribute(
    local_client: Client, task_queue: str
) -> None:
    """The start already set stage, overdue date, amount, currency, segment and outcome: a loan that changes
    none of them before its first timer writes no UpsertWorkflowSearchAttributes event."""
    loan = make_loan(datetime.now(UTC), dpd=0)
    strategy = default_strategy()
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        handle = await local_client.start_workflow(
            WORKFLOW_NAME,
            CollectionInput(loan=loan, strategy=strategy, profile=default_profiles()[loan.jurisdiction]),
            id=workflow_id(loan.loan_id),
            task_queue=task_queue,
            search_attributes=initial_search_attributes(loan, strategy.segment_for(loan)),
        )
        for _ in range(200):  # until the first workflow task has completed with the first step's timer
            history = await handle.fetch_history()
            if any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events):
                break
            await asyncio.sleep(0.05)
        status = await handle.query(STATUS_QUERY, result_type=CollectionStatus)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        await handle.terminate("done")

    assert status.next_step is not None  # waiting on the timer of its first step
    types = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_TIMER_STARTED in types
    assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in types
    # The loan's own contact time (the herd offset) is in status and on the workflow's page in the Web UI.
    own = loan_contact_time(loan.loan_id, strategy.contact_time, strategy.contact_spread_minutes, time(21))
    assert status.contact_time == own
    assert status.contact_offset_seconds == (own.hour - 9) * 3600 + own.minute * 60 + own.second
    assert status.next_step.due_at.astimezone(loan.zone).time() == own
    assert f"**Contact time** {own:%H:%M:%S} local" in metadata.current_details
