"""Erasure end to end: a loan run by the product's own client and worker, then erased: nothing of the borrower
is left readable in PostgreSQL, and its Temporal history can no longer be decoded by any product client."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contact_profiles import PROFILES_FILE
from domain.strategy import default_strategy
from privacy.codec import KeyDestroyed
from privacy.erasure import erase_loan, render_erasure, retention_years
from privacy.keyring import ensure_dev_keyring
from stack.settings import Settings
from starter.api import CollectionsStarter
from starter.connect import connect
from tests.privacy.loan_rows import borrower, personal_data_left, seed_loan, years
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS


@pytest.fixture
def target(local_env: WorkflowEnvironment) -> str:
    return local_env.client.service_client.config.target_host


async def test_an_erased_loan_is_unreadable_in_postgresql_and_in_its_temporal_history(
    target: str, task_queue: str, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    ensure_dev_keyring(tmp_path)
    settings = Settings(temporal_address=target, state_dir=tmp_path, task_queue=task_queue)
    client = await connect(settings, pool=db_pool)
    starter = CollectionsStarter(client, task_queue=task_queue, strategy=default_strategy())
    who = borrower("History")
    loan = make_loan(datetime.now(UTC), dpd=3)
    loan = loan.model_copy(
        update={
            "borrower": loan.borrower.model_copy(
                update={"name": who.name, "phone": who.phone, "email": who.email}
            )
        }
    )
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()):
        assert await starter.start_loan(loan) == "started"
        assert (await starter.status(loan.loan_id)).loan_id == loan.loan_id  # readable through the codec
        handle = client.get_workflow_handle(f"collection-{loan.loan_id}")
        await handle.terminate("collection stopped before the erasure")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert who.name in str(await client.data_converter.decode(started))  # the product client reads it
    async with db_pool.acquire() as connection:
        # What the real activities would have written for this loan (the fakes write nothing), now closed.
        await seed_loan(connection, loan.loan_id, who, jurisdiction="cn", age=years(1))

        report = await erase_loan(
            connection,
            loan.loan_id,
            years=retention_years(PROFILES_FILE),
            operator="dpo",
            reason="PIPL art. 47 request 2026-7",
            force_before_retention=True,
        )

        assert await personal_data_left(connection, who.values) == []
    assert report.data_key == "destroyed" and "can no longer be decrypted" in render_erasure(report)
    for reader in (client, await connect(settings, pool=db_pool)):  # this process, and a fresh one
        with pytest.raises(KeyDestroyed):
            await reader.data_converter.decode(started)
