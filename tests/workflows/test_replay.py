"""Histories recorded from earlier versions still replay: a change that would break running loans fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.definitions import KINDS, REGISTRY
from workflows.registry import WORKFLOWS

FOLDER = Path(__file__).parent / "histories"
HISTORIES = sorted(p for p in FOLDER.glob("*.json") if p.name != "definitions.json")
TEXTS = {path: path.read_text() for path in HISTORIES}


@pytest.fixture(autouse=True, scope="module")
def stored_definitions() -> None:
    """What the worker reads from the definitions table for loans started by reference (a replaying worker
    that has not seen them): the recorder saved their bodies beside the histories."""
    stored = json.loads((FOLDER / "definitions.json").read_text())
    for ref, row in stored.items():
        assert row["kind"] in KINDS
        # Resolved from the stored text, as the worker's fetcher does: a later release that adds a field to
        # Strategy or ContactProfile must still replay these.
        fetch = {(row["kind"], ref): row["body"]}
        REGISTRY.fetcher = lambda kind, wanted, fetch=fetch: fetch.get((kind, wanted))
        REGISTRY.resolve(row["kind"], ref)
    REGISTRY.fetcher = None


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"collection-{path.stem}", TEXTS[path])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None


def test_the_histories_cover_children_holds_and_continue_as_new() -> None:
    """What the recorded histories must exercise for the replay test to mean something."""
    assert {p.stem for p in HISTORIES} >= {"lifecycle", "rollover"}, (
        "run python -m tests.workflows.record_history"
    )
    assert (
        TEXTS[HISTORIES[0].parent / "lifecycle.json"].count("START_CHILD_WORKFLOW_EXECUTION_INITIATED") == 2
    )
    assert "WORKFLOW_EXECUTION_CONTINUED_AS_NEW" in TEXTS[HISTORIES[0].parent / "rollover.json"]
    rollover = WorkflowHistory.from_json("collection-rollover", TEXTS[FOLDER / "rollover.json"])
    start = rollover.events[0].workflow_execution_started_event_attributes.input.payloads[0].data
    assert json.loads(start)["strategy_ref"] in json.loads((FOLDER / "definitions.json").read_text())
