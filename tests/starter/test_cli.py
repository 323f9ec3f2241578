"""The CLI as an operator runs it: a subprocess, exit codes, stderr lines.

TEMPORAL_ADDRESS points at a dead port, so a validation message (instead of "cannot reach Temporal") proves
the input was checked before any connection was attempted, hence nothing was started or signalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.case import StepRecord
from domain.promise import PromiseToPay
from starter.cli import format_status
from tests.starter.samples import CSV_HEADER, csv_row, loan_record
from workflows.messages import CollectionStatus, NextStep

ROOT = Path(__file__).resolve().parents[2]
DEAD = "127.0.0.1:1"


def run_cli(*args: str, address: str = DEAD, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TEMPORAL_ADDRESS": address, **env}
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_invalid(result: subprocess.CompletedProcess[str], expected: list[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == expected
    assert "cannot reach Temporal" not in result.stderr
    assert result.stdout == ""


def test_start_with_a_bad_row_starts_nothing(tmp_path: Path) -> None:
    loans = tmp_path / "loans.csv"
    rows = [
        CSV_HEADER,
        csv_row("L-1"),
        csv_row("L-9", phone="12345", amount_overdue_minor="12.5"),
        csv_row("L-1"),
    ]
    loans.write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = run_cli("start", "--file", str(loans))

    assert_invalid(
        result,
        [
            f"{loans}:3 (loan_id=L-9): borrower.phone: must be E.164: '+' then country code and number, "
            "7 to 15 digits (got '12345')",
            f"{loans}:3 (loan_id=L-9): amount_overdue_minor: must be a whole number of minor units "
            "(e.g. 123450 for 1,234.50), got '12.5'",
            f"{loans}:4 (loan_id=L-1): loan_id: duplicate: loan L-1 is already at line 2",
        ],
    )


def test_start_reports_bad_options_strategy_and_file_together(tmp_path: Path) -> None:
    strategy = tmp_path / "strategy.toml"
    strategy.write_text('name = "x"\nversion = 0\nsteps = []\n', encoding="utf-8")

    result = run_cli(
        "start", "--file", str(tmp_path / "loans.txt"), "--strategy", str(strategy), "--concurrency", "0",
        "--demo-day-seconds", "0.01",
    )  # fmt: skip

    assert_invalid(
        result,
        [
            "concurrency (--concurrency): must be at least 1 (got 0)",
            "demo_day_seconds (--demo-day-seconds): must be between 0.1 and 86400 seconds (got 0.01)",
            f"{strategy}: version: Input should be greater than or equal to 1",
            f"{strategy}: steps: List should have at least 1 item after validation, not 0",
            f"{tmp_path}/loans.txt: unknown file type ('.txt'); expected .json, .jsonl or .csv",
        ],
    )


def test_pay_with_bad_fields(tmp_path: Path) -> None:
    result = run_cli(
        "pay", "L 1", "--amount", "12.50", "--payment-id", "", "--currency", "RMB",
        "--received-at", "2026-11-25T10:00", "--source", "bank",
    )  # fmt: skip

    assert_invalid(
        result,
        [
            "loan_id (LOAN_ID): letters, digits, '_', '.' and '-' only, starting with a letter or digit "
            "(got 'L 1')",
            "amount_minor (--amount): must be a whole number of minor units (e.g. 123450 for 1,234.50), "
            "got '12.50'",
            "payment_id (--payment-id): String should have at least 1 character (got '')",
            "currency (--currency): unsupported currency 'RMB'; "
            "expected one of CNY, EUR, GBP, HKD, JPY, SGD, USD",
            "received_at (--received-at): must carry a timezone offset, e.g. 2026-11-25T10:00:00+08:00",
            "source (--source): Input should be 'servicing', 'agency', 'borrower' or 'collector' "
            "(got 'bank')",
        ],
    )


def test_promise_with_bad_amount_and_date() -> None:
    result = run_cli("promise", "L-1", "--amount", "-5", "--date", "2026-02-30")

    assert_invalid(
        result,
        [
            "due_date (--date): not a date; use YYYY-MM-DD (got '2026-02-30')",
            "amount_minor (--amount): Input should be greater than 0 (got -5)",
        ],
    )


def test_close_with_unknown_reason() -> None:
    result = run_cli("close", "L-1", "--reason", "bored")

    assert_invalid(
        result,
        [
            "reason (--reason): Input should be 'restructured', 'sold', 'cancelled', 'settled' or 'other' "
            "(got 'bored')"
        ],
    )


@pytest.mark.parametrize("command", [["status", "L-1"], ["close", "L-1", "--reason", "sold"]])
def test_unreachable_server_exits_1_naming_the_address(command: list[str]) -> None:
    result = run_cli(*command)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: cannot reach Temporal at 127.0.0.1:1 (namespace default): connection refused"
    ]


def test_valid_file_gets_as_far_as_connecting(tmp_path: Path) -> None:
    loans = tmp_path / "loans.jsonl"
    loans.write_text(json.dumps(loan_record("L-1"), ensure_ascii=False) + "\n", encoding="utf-8")

    result = run_cli("start", "--file", str(loans))

    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_table() -> None:
    at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    status = CollectionStatus(
        loan_id="L-1",
        stage="deep_contact",
        segment="standard",
        strategy="default",
        dpd=17,
        currency="CNY",
        amount_overdue_minor=123450,
        principal_outstanding_minor=900000,
        paid_total_minor=0,
        overdue_since=date(2026, 11, 3),
        open_promise=PromiseToPay(
            promise_id="ptp-1",
            amount_minor=50000,
            currency="CNY",
            due_date=date(2026, 12, 1),
            deadline=datetime(2026, 12, 3, 16, 0, tzinfo=UTC),
            collector="li.na",
            made_at=at,
        ),
        promises=[],
        broken_promises=0,
        last_step=StepRecord(
            key="collector_call", step_id="collector_call", action="collector_task", stage="deep_contact",
            at=at, result="task created",
        ),
        next_step=NextStep(
            key="collector_call@18", action="collector_task", stage="deep_contact", due_at=at,
            summary="Phone call",
        ),
        waiting_for="promise deadline",
        agency_placement_id=None,
        agency_name=None,
        documents=[],
        outcome=None,
        outcome_reason=None,
        collections_now=at,
        demo_speed=8640.0,
    )  # fmt: skip

    table = format_status(status).splitlines()

    assert table == [
        "Loan             L-1 · segment standard · strategy default",
        "Stage            deep_contact",
        "DPD              17 (overdue since 2026-11-03)",
        "Arrears          CNY 1,234.50 overdue · CNY 9,000.00 principal outstanding · CNY 0.00 paid",
        "Open promise     CNY 500.00 by 2026-12-01 (kept if paid before 2026-12-03 16:00 UTC) · "
        "collector li.na · CNY 0.00 paid toward it",
        "Last step        2026-11-20 01:00 UTC · collector_call (deep_contact, collector_task): task created",
        "Next step        2026-11-20 01:00 UTC · collector_call@18 (deep_contact, collector_task): "
        "Phone call",
        "Waiting for      promise deadline",
        "Outcome          open",
        "Collections now  2026-11-20 01:00 UTC · demo clock ×8640",
    ]


# -- input sanity --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1e3", "must be a whole number of minor units (e.g. 123450 for 1,234.50), got '1e3'"),
        ("１２３", "must be a whole number of minor units (e.g. 123450 for 1,234.50), got '１２３'"),
        ("9" * 5000, "must be at most 1000000000000000 (got a number of 5000 digits)"),
        ("10000000000000001", "must be at most 1000000000000000 (got a number of 17 digits)"),
    ],
)
@pytest.mark.parametrize("command", ["pay", "promise", "settle"])
def test_amounts_are_plain_ascii_integers_within_range(command: str, amount: str, message: str) -> None:
    args = {
        "pay": ["pay", "L-1", "--amount", amount, "--payment-id", "P-1"],
        "promise": ["promise", "L-1", "--amount", amount, "--date", "2026-12-20"],
        "settle": ["settle", "L-1", "--amount", amount, "--due-date", "2026-12-20"],
    }[command]
    result = run_cli(*args)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "amount" in line] == [
        f"amount_minor{' (--amount)' if command != 'settle' else ''}: {message}"
    ]


def test_start_refuses_an_overdue_date_in_1900_and_in_the_future(tmp_path: Path) -> None:
    loans = tmp_path / "loans.jsonl"
    records = [loan_record("L-1", overdue_since="1900-01-01"), loan_record("L-2", overdue_since="2999-01-01")]
    loans.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")

    result = run_cli("start", "--file", str(loans))

    assert result.returncode == 2, result.stderr
    first, second = result.stderr.splitlines()
    assert first.startswith(f"{loans}:1 (loan_id=L-1): overdue_since: 1900-01-01 is more than 10 years ago")
    assert second.startswith(f"{loans}:2 (loan_id=L-2): overdue_since: 2999-01-01 is in the future")


def test_the_overdue_range_is_a_setting(tmp_path: Path) -> None:
    loans = tmp_path / "loans.jsonl"
    loans.write_text(json.dumps(loan_record("L-1", overdue_since="2010-01-01")) + "\n", encoding="utf-8")

    refused = run_cli("start", "--file", str(loans))
    allowed = run_cli("start", "--file", str(loans), OVERDUE_MAX_OVERDUE_YEARS="30")

    assert refused.returncode == 2 and "is more than 10 years ago" in refused.stderr
    assert allowed.returncode == 1 and "cannot reach Temporal" in allowed.stderr  # valid: got to connecting


def test_a_workflow_id_given_as_a_loan_id_is_explained() -> None:
    result = run_cli("status", "collection-L-1/legal")

    assert_invalid(
        result,
        [
            "loan_id (LOAN_ID): letters, digits, '_', '.' and '-' only, starting with a letter or digit "
            "(got 'collection-L-1/legal')",
            "loan_id (LOAN_ID): give the loan's own id (L-1), not a workflow id (collection-L-1/legal)",
        ],
    )


def test_a_payment_id_that_is_a_phone_number_is_refused() -> None:
    result = run_cli("pay", "L-1", "--amount", "100", "--payment-id", "+8613800138000")

    assert_invalid(
        result, ["payment_id (--payment-id): looks like a phone number; identifiers never hold contact data"]
    )


def test_a_note_with_a_bidi_override_is_refused() -> None:
    result = run_cli("promise", "L-1", "--amount", "100", "--date", "2026-12-20", "--note", "pay\u202eday")

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "note (--note): contains the bidi control U+202E RIGHT-TO-LEFT OVERRIDE at position 4; remove it"
    )
