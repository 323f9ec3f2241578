"""Heartbeats for the activities that can run long (agency calls, legal documents and filings).

Without heartbeats, an activity whose worker was killed is retried only when its start-to-close timeout runs
out (up to two minutes for a lawyer's letter): the fault suite saw a legal case sit that long after a worker
SIGKILL. With a heartbeat timeout on the workflow side and this decorator on the activity, Temporal notices a
dead worker within the heartbeat timeout and retries the (idempotent) activity on another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio import activity

# What the workflows put on these activities; the activity beats several times within it.
HEARTBEAT_TIMEOUT = timedelta(seconds=20)
BEAT_EVERY = HEARTBEAT_TIMEOUT.total_seconds() / 4

P = ParamSpec("P")
R = TypeVar("R")


def heartbeating(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Heartbeat every BEAT_EVERY seconds while `function` runs. Put it below `@activity.defn`."""

    @functools.wraps(function)
    async def beating(*args: P.args, **kwargs: P.kwargs) -> R:
        if not activity.in_activity():  # called directly (a CLI, a test): nobody to beat to
            return await function(*args, **kwargs)

        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(BEAT_EVERY)

        beater = asyncio.create_task(beat())
        try:
            return await function(*args, **kwargs)
        finally:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater

    return beating
