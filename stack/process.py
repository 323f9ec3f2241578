"""Leaving the process once its work is done."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def exit_process(code: int) -> NoReturn:
    """Flush and exit without interpreter finalization.

    The Temporal SDK's Rust threads can outlive the event loop; CPython tearing down under them aborts the
    process now and then ("Fatal Python error: PyGILState_Release", exit 134 or -11; temporalio/sdk-python
    issue 300, open). Everything that matters is closed before this is called, so skipping finalization
    loses nothing and the exit code is the one we mean.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class ShutdownSettings(BaseSettings):
    """How long a stopping worker may take (OVERDUE_WORKER_STOP_GRACE_SECONDS)."""

    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    # From SIGTERM to exit, whatever hangs: in-flight activities get the SDK's 10 s graceful shutdown
    # (stack.worker_runtime.GRACEFUL_SHUTDOWN) and closing the pool and HTTP sessions up to 10 more. A
    # dependency that never answers (a frozen PostgreSQL) must not keep a deploy or a restart waiting for
    # ever: past this the process exits anyway, and Temporal retries the abandoned activities elsewhere.
    worker_stop_grace_seconds: float = Field(default=20.0, gt=0, le=600)


def abandon_after(grace: float, describe: Callable[[], list[str]], log: Any) -> threading.Timer:
    """Start a timer that, `grace` seconds from now, logs what is still running and exits with code 1.

    A thread, not a task: it must fire even when the event loop is stuck. Cancel it once shutdown is done."""

    def expire() -> None:
        try:
            abandoned = describe()
        except Exception:  # asking a busy loop from another thread may race; the exit matters more
            abandoned = ["(unknown)"]
        log.error("shutdown grace expired: exiting anyway", grace_seconds=grace, abandoned=abandoned)
        exit_process(1)

    timer = threading.Timer(grace, expire)
    timer.daemon = True
    timer.start()
    return timer


def pending_tasks(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Names of the unfinished tasks of `loop` (what a forced exit abandons): activity and pool work."""
    names = []
    for task in list(asyncio.all_tasks(loop)):
        if not task.done():
            coro = task.get_coro()
            names.append(f"{task.get_name()}:{getattr(coro, '__qualname__', type(coro).__name__)}")
    return sorted(names)
