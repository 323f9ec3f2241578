"""The long activities heartbeat while they run, and stop when they end (returned or raised)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities import heartbeats
from activities.collection_activities import CollectionActivities
from activities.heartbeats import heartbeating
from activities.registered_mail import RegisteredMail


@pytest.fixture(autouse=True)
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeats, "BEAT_EVERY", 0.02)


async def test_a_slow_activity_heartbeats_until_it_returns() -> None:
    @activity.defn(name="slow")
    @heartbeating
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    assert await env.run(slow, 0.2) == "done"
    during = len(beats)
    await asyncio.sleep(0.1)

    assert during >= 5  # about every 0.02 s for 0.2 s
    assert len(beats) == during  # nothing after it returned


async def test_the_heartbeats_stop_when_the_activity_raises() -> None:
    @activity.defn(name="failing")
    @heartbeating
    async def failing() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("provider down")

    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    with pytest.raises(RuntimeError):
        await env.run(failing)
    after = len(beats)
    await asyncio.sleep(0.1)

    assert after >= 1 and len(beats) == after


def test_the_activities_that_can_run_long_heartbeat() -> None:
    """The workflows give these a heartbeat timeout (workflows/legal_case.py, agency_placement.py): each must
    beat, or Temporal would fail a healthy attempt after the timeout."""
    wrapped = {
        CollectionActivities.place_with_agency,
        CollectionActivities.recall_from_agency,
        CollectionActivities.generate_lawyer_letter,
        CollectionActivities.refer_to_litigation,
        RegisteredMail.dispatch_registered_mail,
    }
    for method in wrapped:
        assert getattr(method, "__wrapped__", None) is not None, method.__name__
