"""Histories recorded from earlier versions still replay: a change that would break running loans fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
TEXTS = {path: path.read_text() for path in HISTORIES}


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
