from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from demo.portfolio import demo_portfolio, load_demo
from domain.loan import Loan
from domain.strategy import default_strategy
from starter.api import CollectionsStarter
from starter.loaders import load_loans

TODAY = date(2026, 11, 25)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def portfolio() -> list[Loan]:
    return demo_portfolio(300, seed=7, today=TODAY)


def test_same_seed_same_loans(portfolio: list[Loan]) -> None:
    assert demo_portfolio(300, seed=7, today=TODAY) == portfolio


def test_different_seed_different_loans(portfolio: list[Loan]) -> None:
    other = demo_portfolio(300, seed=8, today=TODAY)

    assert [loan.loan_id for loan in other] == [loan.loan_id for loan in portfolio]
    assert other != portfolio


def test_ids_are_sequential(portfolio: list[Loan]) -> None:
    assert [loan.loan_id for loan in portfolio[:3]] == ["DEMO-0001", "DEMO-0002", "DEMO-0003"]
    assert portfolio[-1].loan_id == "DEMO-0300"


def test_every_loan_is_valid(portfolio: list[Loan]) -> None:
    for loan in portfolio:
        assert Loan.model_validate(loan.model_dump()) == loan


def test_every_segment_of_the_default_strategy_is_represented(portfolio: list[Loan]) -> None:
    strategy = default_strategy()
    segments = Counter(strategy.segment_for(loan) for loan in portfolio)

    assert set(segments) == {segment.name for segment in strategy.segments} | {"standard"}
    assert min(segments.values()) >= 10


def test_even_a_tiny_portfolio_covers_segments_and_jurisdictions() -> None:
    strategy = default_strategy()
    loans = demo_portfolio(4, seed=123, today=TODAY)

    assert {strategy.segment_for(loan) for loan in loans} == {
        "high_balance",
        "high_risk",
        "low_risk_small",
        "standard",
    }
    assert {loan.jurisdiction for loan in loans} == {"cn", "us", "uk"}


def test_both_locales_with_their_region(portfolio: list[Loan]) -> None:
    regions = {(l.borrower.locale, l.jurisdiction, l.currency, l.borrower.timezone) for l in portfolio}  # noqa: E741

    assert regions == {
        ("zh-CN", "cn", "CNY", "Asia/Shanghai"),
        ("en", "us", "USD", "America/New_York"),
        ("en", "us", "USD", "America/Los_Angeles"),
        ("en", "uk", "GBP", "Europe/London"),
    }
    for loan in portfolio:
        prefix = {"cn": "+86", "us": "+1", "uk": "+44"}[loan.jurisdiction]
        assert loan.borrower.phone.startswith(prefix)
        if loan.borrower.email:
            assert loan.borrower.email.endswith(
                "@example.cn" if loan.jurisdiction == "cn" else "@example.com"
            )


def test_dpd_spread_leans_early(portfolio: list[Loan]) -> None:
    dpds = [(TODAY - loan.overdue_since).days for loan in portfolio]

    assert min(dpds) == 0
    assert 100 <= max(dpds) <= 120
    assert sum(d <= 30 for d in dpds) > sum(d > 30 for d in dpds)
    assert {loan.risk_grade for loan in portfolio} == {"A", "B", "C", "D", "E"}


def test_some_loans_carry_their_missed_instalments(portfolio: list[Loan]) -> None:
    with_instalments = [loan for loan in portfolio if loan.overdue_instalments]

    assert len(with_instalments) >= 10
    for loan in with_instalments:
        instalments = loan.instalments()
        assert len(instalments) in (2, 3)
        assert sum(i.amount_minor for i in instalments) == loan.amount_overdue_minor
        assert instalments[0].due_date == loan.overdue_since
        assert all(i.due_date <= TODAY for i in instalments)
        gaps = [b.due_date - a.due_date for a, b in itertools.pairwise(instalments)]
        assert all(timedelta(days=28) <= gap <= timedelta(days=31) for gap in gaps)


def test_cli_writes_a_file_the_starter_reads(tmp_path: Path) -> None:
    out = tmp_path / "loans.jsonl"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.portfolio",
            "--count",
            "25",
            "--today",
            TODAY.isoformat(),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"25 demo loans written to {out}\n"
    assert load_loans(out) == demo_portfolio(25, seed=7, today=TODAY)


async def test_load_demo_is_idempotent(local_client: Client, task_queue: str) -> None:
    starter = CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    try:
        first = await load_demo(starter, 12, 7, TODAY, progress=False)
        second = await load_demo(starter, 12, 7, TODAY, progress=False)
    finally:
        # Demo ids are fixed: terminate the runs (no worker serves this queue) so that other tests on the same
        # dev server may start DEMO-0001... again (a terminated run may be restarted, by the reuse policy).
        for loan in demo_portfolio(12, seed=7, today=TODAY):
            await starter.handle(loan.loan_id).terminate("test over")

    assert first == {"loans": 12, "started": 12, "new_cycle": 0, "already_running": 0, "already_closed": 0}
    assert second == {"loans": 12, "started": 0, "new_cycle": 0, "already_running": 12, "already_closed": 0}


def test_most_borrowers_have_a_postal_address_of_their_region_and_a_few_none(portfolio: list[Loan]) -> None:
    without = [loan for loan in portfolio if loan.borrower.postal_address is None]

    assert 20 <= len(without) <= 60
    assert {loan.jurisdiction for loan in without} == {"cn", "us", "uk"}
    assert any(
        (TODAY - loan.overdue_since).days >= 90 for loan in without
    )  # some reach visits and letters: "trace the address"
    for loan in portfolio:
        address = loan.borrower.postal_address
        if address is None:
            continue
        last_line = address.splitlines()[-1]
        if loan.jurisdiction == "cn":
            assert last_line.isdigit() and len(last_line) == 6  # a six-digit postcode
        elif loan.jurisdiction == "us":
            assert last_line[-8:-6] in {"NY", "GA", "FL", "CA", "WA", "OR"} and last_line[-5:].isdigit()
        else:
            assert len(address.splitlines()) == 3 and " " in last_line  # town, then the postcode


def test_addresses_left_every_other_field_as_it_was(portfolio: list[Loan]) -> None:
    """Addresses come from their own random stream: the demo's loans are otherwise what they were before
    addresses existed (the same people, amounts and dates in screenshots and docs)."""
    without_addresses = [
        loan.model_dump(mode="json", exclude={"borrower": {"postal_address"}}) for loan in portfolio
    ]

    digest = hashlib.sha256(json.dumps(without_addresses).encode()).hexdigest()
    assert digest == "4573aca05501aa5640572d6c3e106f2b49d586c79ff4e81789b830057028a260"
