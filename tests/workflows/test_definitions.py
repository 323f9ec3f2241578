"""Strategies and profiles by reference: not copied into each loan's input, shared, resolved on any worker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.definitions import install_fetcher, save_definition
from domain.contact_profiles import default_profiles
from domain.definitions import (
    REGISTRY,
    Definitions,
    UnknownDefinition,
    canonical_json,
    definition_ref,
    text_ref,
)
from domain.loan import Payment
from domain.strategy import default_strategy
from stack.settings import Settings
from stack.worker_runtime import store_configured_definitions
from tests.authority.keys import signed
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    CLOSE_SIGNAL,
    PAYMENT_SIGNAL,
    WORKFLOW_NAME,
    CloseRequest,
    CollectionInput,
    CollectionStatus,
    workflow_id,
)
from workflows.registry import WORKFLOWS

CONVERTER = pydantic_data_converter.payload_converter


def _refs(jurisdiction: str) -> tuple[str, str]:
    return REGISTRY.intern(default_strategy())[0], REGISTRY.intern(default_profiles()[jurisdiction])[0]


def _roundtrip(value: CollectionInput) -> tuple[bytes, CollectionInput]:
    payload = CONVERTER.to_payloads([value])[0]
    back = CONVERTER.from_payloads([payload], [CollectionInput])[0]
    assert isinstance(back, CollectionInput)
    return payload.data, back


def test_an_input_by_reference_carries_no_copy_and_resolves_to_the_shared_definitions() -> None:
    loan = make_loan(datetime.now(UTC), dpd=1)
    strategy_ref, profile_ref = _refs(loan.jurisdiction)
    by_copy, _ = _roundtrip(
        CollectionInput(loan=loan, strategy=default_strategy(), profile=default_profiles()[loan.jurisdiction])
    )
    by_ref, back = _roundtrip(CollectionInput(loan=loan, strategy_ref=strategy_ref, profile_ref=profile_ref))

    assert b'"steps"' in by_copy and b'"steps"' not in by_ref and b"contact_hours_start" not in by_ref
    assert len(by_ref) < len(by_copy) / 5
    assert back.strategy is REGISTRY.strategy(strategy_ref)  # one object for every loan, not a copy each
    assert back.profile is REGISTRY.profile(profile_ref)
    assert json.loads(by_ref)["strategy_ref"] == strategy_ref == definition_ref(default_strategy())


def test_an_input_with_copies_is_sent_as_before() -> None:
    """Backward compatible: a starter that sends the strategy itself gets it carried, never a dangling ref."""
    loan = make_loan(datetime.now(UTC), dpd=1)
    data, back = _roundtrip(
        CollectionInput(loan=loan, strategy=default_strategy(), profile=default_profiles()[loan.jurisdiction])
    )
    assert json.loads(data)["strategy_ref"] is None and json.loads(data)["strategy"]["name"] == "default"
    assert back.strategy == default_strategy()


def test_an_input_without_strategy_or_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        CollectionInput.model_validate({"loan": make_loan(datetime.now(UTC), dpd=1).model_dump()})


async def test_a_loan_started_by_reference_rolls_over_carrying_references_only(
    local_client: Client, task_queue: str
) -> None:
    fakes = FakeActivities()
    loan = make_loan(datetime.now(UTC), dpd=4, amount=1_000_000)
    strategy_ref, profile_ref = _refs(loan.jurisdiction)
    async with Worker(local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()):
        handle = await local_client.start_workflow(
            WORKFLOW_NAME,
            CollectionInput(loan=loan, strategy_ref=strategy_ref, profile_ref=profile_ref),
            id=workflow_id(loan.loan_id),
            task_queue=task_queue,
            result_type=CollectionStatus,
        )
        first_run = handle.first_execution_run_id or (await handle.describe()).run_id
        signer = signed(local_client).get_workflow_handle(workflow_id(loan.loan_id))
        for n in range(70):
            payment = Payment(
                payment_id=f"p-{n}", amount_minor=1_000, currency="CNY", received_at=datetime.now(UTC)
            )
            await signer.signal(PAYMENT_SIGNAL, payment)
        await signer.signal(CLOSE_SIGNAL, CloseRequest(reason="sold"))
        status = await handle.result()

    assert status.strategy == "default v1" and status.paid_total_minor == 70_000
    history = await local_client.get_workflow_handle(
        workflow_id(loan.loan_id), run_id=first_run
    ).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0].data
    rolled = [
        e.workflow_execution_continued_as_new_event_attributes.input.payloads[0].data
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ]
    assert rolled, "the loan did not continue as new"
    for data in (started, *rolled):
        assert b'"steps"' not in data and b"contact_hours_start" not in data


async def test_a_worker_that_has_not_seen_a_reference_reads_it_from_postgresql(db_pool: asyncpg.Pool) -> None:
    strategy = default_strategy().model_copy(update={"version": 99})
    ref = await save_definition(db_pool, strategy)
    assert ref == await save_definition(db_pool, strategy)  # idempotent: the same content, the same row
    fresh = Definitions()  # another worker process
    install_fetcher(db_pool, asyncio.get_running_loop(), fresh)

    # Activations run on worker threads: the read runs on the loop while the thread waits.
    resolved = await asyncio.to_thread(fresh.strategy, ref)
    assert resolved == strategy and resolved is await asyncio.to_thread(fresh.strategy, ref)

    unknown = "sha256:" + "0" * 64
    with pytest.raises(UnknownDefinition):
        await asyncio.to_thread(fresh.strategy, unknown)
    with pytest.raises(RuntimeError, match="event loop"):
        fresh.resolve("profile", unknown)  # on the loop itself: refused, not a deadlock


async def test_a_stored_definition_that_does_not_match_its_reference_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    strategy = default_strategy().model_copy(update={"version": 98})
    ref = await save_definition(db_pool, strategy)
    tampered = strategy.model_copy(update={"contact_spread_minutes": 0})
    await db_pool.execute("UPDATE definitions SET body = $2 WHERE ref = $1", ref, tampered.model_dump_json())
    fresh = Definitions()
    install_fetcher(db_pool, asyncio.get_running_loop(), fresh)

    with pytest.raises(ValueError, match="hashes to"):
        await asyncio.to_thread(fresh.strategy, ref)


def test_a_definition_stored_before_a_field_was_added_still_resolves() -> None:
    """A release adds a field with a default: definitions stored by the previous one (without the field) keep
    their references, so running loans started by reference still replay."""
    body = json.loads(canonical_json(default_strategy().model_copy(update={"version": 97})))
    del body["contact_spread_minutes"]  # as the release before the herd spread stored it
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    ref = text_ref(text)
    fresh = Definitions()
    fresh.fetcher = lambda kind, wanted: text if (kind, wanted) == ("strategy", ref) else None

    resolved = fresh.strategy(ref)

    assert resolved.version == 97 and resolved.contact_spread_minutes == 0
    assert fresh.strategy(ref) is resolved


async def test_the_worker_stores_the_configured_definitions_and_survives_a_broken_file(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    refs = await store_configured_definitions(Settings(), db_pool)

    assert refs["strategy:default"] == definition_ref(default_strategy())
    assert {f"profile:{name}" for name in default_profiles()} <= set(refs)
    stored = {r["ref"] for r in await db_pool.fetch("SELECT ref FROM definitions")}
    assert set(refs.values()) <= stored

    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n')
    assert await store_configured_definitions(Settings(strategy_file=broken), db_pool) == {}
