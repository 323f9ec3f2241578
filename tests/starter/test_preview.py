"""`python -m starter preview`: any template rendered for a loan, printed; no Temporal, no database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from starter.cli import main
from tests.starter.samples import loan_record

ROOT = Path(__file__).resolve().parents[2]
PREVIEW_ZH_REMINDER = ["preview", "--template", "reminder_polite", "--channel", "sms", "--locale", "zh-CN"]
PREVIEW_ZH_REMINDER += ["--demo", "DEMO-0001"]
TEMPLATE_NAMES = ["broken_promise", "reminder_polite", "second_reminder", "statement"]


def test_prints_a_zh_cn_reminder_for_the_first_demo_loan_without_temporal() -> None:
    environment = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"}  # nobody listens: never contacted
    result = subprocess.run(
        [sys.executable, "-m", "starter", *PREVIEW_ZH_REMINDER],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    header, loan, blank, body = result.stdout.splitlines()
    assert header.startswith("template  reminder_polite · sms · zh-CN · version 1+_sms.1")
    assert loan.startswith("loan      DEMO-0001 · jurisdiction cn · DPD ")
    assert blank == ""
    assert body.startswith("【Overdue Demo Consumer Finance】尊敬的")
    assert "您好！温馨提示" in body and "¥" in body and "年" in body
    assert "STOP" not in body


def test_unknown_template_exits_2_listing_the_templates(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview", "--template", "final_warning", "--demo", "DEMO-0001"])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "--template: unknown template 'final_warning'",
        "known templates:",
        *(f"  {name}" for name in TEMPLATE_NAMES),
    ]


def test_email_for_a_loan_from_a_file_with_us_notices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loans = tmp_path / "loans.jsonl"
    us_loan = loan_record(
        "L-US",
        borrower={
            "name": "Mary Smith",
            "phone": "+12125550123",
            "locale": "en",
            "timezone": "America/New_York",
        },
        currency="USD",
        jurisdiction="us",
        lender="Overdue Demo Lending",
        overdue_since="2026-03-01",
    )
    lines = [json.dumps(loan_record("L-CN")), json.dumps(us_loan)]
    loans.write_text("\n".join(lines) + "\n", encoding="utf-8")

    options = ["--loan-file", str(loans), "--loan-id", "L-US", "--validation-notice", "--today", "2026-03-04"]
    code = main(["preview", "--template", "statement", "--channel", "email", *options])

    out = capsys.readouterr().out
    assert code == 0
    assert "loan      L-US · jurisdiction us · DPD 3" in out
    assert "subject   Your loan statement from Overdue Demo Lending (3 days past due)" in out
    assert "Dear Mary Smith," in out and "Amount due: $1,234.50" in out and "Due date: Mar 1, 2026" in out
    assert "Validation notice: our records show that you owe $1,234.50 to Overdue Demo Lending" in out
    assert out.rstrip().endswith("reply to this e-mail with STOP.\n\nThis e-mail was sent automatically.")


def test_jurisdiction_and_locale_can_be_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview", "--template", "second_reminder", "--demo", "DEMO-0001", "--jurisdiction", "us"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.rstrip().endswith("回复STOP退订。")

    code = main(["preview", "--template", "second_reminder", "--channel", "push", "--locale", "en"])

    out = capsys.readouterr().out
    assert code == 0
    assert "title     Second payment reminder" in out and "CN¥" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "DEMO-12"], "--demo: expected a demo loan id DEMO-0001 to DEMO-9999, got 'DEMO-12'"),
        (["--loan-id", "L-1"], "--loan-id: only with --loan-file"),
    ],
)
def test_bad_loan_choice_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview", "--template", "statement", *args])

    assert code == 2
    assert capsys.readouterr().err.startswith(message)


def test_a_loan_file_needs_a_known_loan_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loans = tmp_path / "loans.jsonl"
    loans.write_text(json.dumps(loan_record("L-1")) + "\n" + json.dumps(loan_record("L-2")) + "\n")

    assert main(["preview", "--template", "statement", "--loan-file", str(loans)]) == 2
    assert "has 2 loans; name one with --loan-id" in capsys.readouterr().err
    assert main(["preview", "--template", "statement", "--loan-file", str(loans), "--loan-id", "L-9"]) == 2
    assert "no loan 'L-9'" in capsys.readouterr().err
