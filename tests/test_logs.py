"""Log lines never carry an exception's message: it may echo a borrower's phone, e-mail or name."""

from __future__ import annotations

import io
import json
import logging

import structlog

from stack.logs import configure_logging

RECIPIENT = "zhang.wei@example.cn"


class RecipientRefused(Exception):
    pass


def _refuse() -> None:
    try:
        raise ConnectionError(f"peer said: no mailbox {RECIPIENT}")
    except ConnectionError as error:
        raise RecipientRefused(f"550 5.1.1 <{RECIPIENT}>: user unknown") from error


def _lines(console: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in console.getvalue().splitlines() if line.strip()]


def test_the_sdks_failed_activity_line_names_the_error_type_and_place_not_its_message() -> None:
    console = io.StringIO()
    configure_logging("INFO", console=console)
    try:
        _refuse()
    except RecipientRefused:
        # What temporalio's activity worker does for every failed attempt.
        logging.getLogger("temporalio.activity").warning("Completing activity as failed", exc_info=True)

    (line,) = _lines(console)
    assert RECIPIENT not in console.getvalue()
    assert line["event"] == "Completing activity as failed"
    assert line["error_type"] == "RecipientRefused"
    assert line["error_causes"] == ["ConnectionError"]
    assert any("test_logs.py" in frame and "_refuse" in frame for frame in line["error_at"])  # type: ignore[attr-defined]


def test_structlogs_exception_lines_are_reduced_the_same_way() -> None:
    console = io.StringIO()
    configure_logging("INFO", console=console)
    try:
        _refuse()
    except RecipientRefused:
        structlog.get_logger("overdue.test").exception("send_failed", loan_id="L-1")

    (line,) = _lines(console)
    assert RECIPIENT not in console.getvalue()
    assert (line["event"], line["loan_id"], line["error_type"]) == ("send_failed", "L-1", "RecipientRefused")
    assert "exception" not in line
