"""The engine benchmarks' shared pieces: the due-now timezone, the figures, the report (no stack needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.engine.harness import Measure, bench_loan, due_now_zone, order, percentile, report, spread


@pytest.mark.parametrize("hour", range(24))
def test_the_due_now_zone_is_inside_the_contact_window_at_every_hour(hour: int) -> None:
    now = datetime(2026, 12, 3, hour, 30, tzinfo=UTC)
    zone = due_now_zone(now)
    local = now.astimezone(ZoneInfo(zone))
    # after the strategy's 09:00 contact time plus any per-loan spread, before the profile's 22:00 end
    assert 11 <= local.hour <= 15


def test_a_bench_loan_is_overdue_since_yesterday_in_its_zone() -> None:
    zone = due_now_zone()
    loan = bench_loan("B-1", zone=zone)
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    assert loan.overdue_since == today - timedelta(days=1)
    assert loan.borrower.timezone == zone


def test_figures_min_median_max_and_ratio_of_the_same_repetition() -> None:
    measure = Measure("burst", "s", product=[6.0, 2.0, 4.0], baseline=[3.0, 2.0, 1.0])
    figures = measure.figures()
    assert figures["product"] == {"min": 2.0, "median": 4.0, "max": 6.0, "n": 3}
    assert figures["baseline"] == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    # ratios pair repetition with repetition: 6/3, 2/2, 4/1
    assert figures["ratio"] == {"min": 1.0, "median": 2.0, "max": 4.0, "n": 3}


def test_percentile_and_spread() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) in (50.0, 51.0)
    assert percentile(values, 0.99) == 99.0
    assert spread([1.0])["median"] == 1.0


def test_repetitions_alternate_which_side_goes_first() -> None:
    assert [order(r)[0] for r in range(4)] == ["product", "baseline", "product", "baseline"]


def test_report_prints_json_then_a_table_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    report("burst", {"loans": 3}, [Measure("m", "s", [2.0], [1.0], target="<= 1.3x")], out)

    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["benchmark"] == "burst"
    assert document["measures"]["m"]["ratio"]["median"] == 2.0
    assert printed.startswith("{")
    assert "| m | 2 / 2 / 2 s | 1 / 1 / 1 s | 2 / 2 / 2 | <= 1.3x |" in printed


def test_report_writes_the_extra_figures_into_the_same_json(tmp_path: Path) -> None:
    # The 100,000-loan run's file once lacked its RSS-by-open-loans and task problems (printed only).
    out = tmp_path / "scale.json"
    extra = {"rss_by_open_loans": {"product": [{"1000": 321.9}]}, "workflow_task_problems": {"product": []}}
    report("scale", {"loans": 1000}, [Measure("m", "/s", [19.1], [])], out, extra)

    document = json.loads(out.read_text())
    assert document["rss_by_open_loans"] == extra["rss_by_open_loans"]
    assert document["measures"]["m"]["product"]["median"] == 19.1
