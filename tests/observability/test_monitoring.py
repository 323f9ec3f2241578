"""deploy/monitoring: the Grafana dashboard and the Prometheus alert rules parse, have the structure their
tools expect, and name only metrics that exist (promtool is not installed here: PromQL is read minimally,
for its metric names)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from admin.supervision import prometheus_text
from observability.metrics import REGISTRY

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"

# The Temporal SDK metrics the dashboard and the alerts rely on. Names: the Core SDK worker and client metrics
# of the "Temporal SDK metrics reference" (https://docs.temporal.io/references/sdk-metrics), which the Python
# SDK emits from its Core; spelling as temporalio 1.35's Prometheus exporter writes them (scraped from a
# worker: the `temporal_` prefix, counters WITHOUT a `_total` suffix, histograms in milliseconds).
SDK_COUNTERS = {
    "temporal_request",
    "temporal_request_failure",
    "temporal_long_request",
    "temporal_long_request_failure",
    "temporal_workflow_completed",
    "temporal_workflow_failed",
    "temporal_workflow_cancelled",
    "temporal_workflow_continue_as_new",
    "temporal_workflow_task_queue_poll_empty",
    "temporal_workflow_task_queue_poll_succeed",
    "temporal_workflow_task_execution_failed",
    "temporal_activity_poll_no_task",
    "temporal_activity_task_received",
    "temporal_activity_execution_failed",
    "temporal_activity_execution_cancelled",
    "temporal_local_activity_total",
    "temporal_local_activity_execution_failed",
    "temporal_local_activity_execution_cancelled",
    "temporal_sticky_cache_hit",
    "temporal_sticky_cache_miss",
    "temporal_sticky_cache_total_forced_eviction",
    "temporal_worker_start",
}
SDK_GAUGES = {
    "temporal_num_pollers",
    "temporal_sticky_cache_size",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
}
SDK_HISTOGRAMS = {
    "temporal_request_latency",
    "temporal_long_request_latency",
    "temporal_workflow_endtoend_latency",
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_workflow_task_execution_latency",
    "temporal_workflow_task_replay_latency",
    "temporal_activity_schedule_to_start_latency",
    "temporal_activity_execution_latency",
    "temporal_activity_succeed_endtoend_latency",
    "temporal_local_activity_execution_latency",
    "temporal_local_activity_succeeded_endtoend_latency",
}

_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def business_series() -> set[str]:
    """The series names of the business registry, labelled children or not (a counter `x` is `x_total`)."""
    suffix = {"counter": "_total", "gauge": ""}
    return {f"{family.name}{suffix[family.type]}" for family in REGISTRY.collect()}


def known_metrics() -> set[str]:
    """Every series name that exists: the business registry, the admin UI's /metrics, the SDK's."""
    names = business_series()
    names |= {line.split()[0] for line in prometheus_text(0).splitlines() if not line.startswith("#")}
    names |= SDK_COUNTERS | SDK_GAUGES
    names |= {f"{h}{suffix}" for h in SDK_HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers that are not functions, keywords, label names
    (inside {}, by (...), without (...)), strings, ranges or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, Grafana's $__rate_interval inside them
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in _PROMQL_WORDS:
            names.add(name)
    return names


def test_metric_names_reads_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, task_queue) (rate(x_bucket{a="b c"}[5m]))) > 3e4'
    ) == {"x_bucket"}
    assert metric_names("time() - max(y_ts) > 900 and on(instance) z") == {"y_ts", "z"}
    assert metric_names("sum without (pod) (rate(w_total[$__rate_interval])) / 2") == {"w_total"}


# -- alerts ----------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    groups = document["groups"]
    assert isinstance(groups, list) and groups
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), "group names must be unique in a file"
    found: list[dict[str, Any]] = []
    for group in groups:
        assert set(group) <= {"name", "interval", "limit", "rules"} and isinstance(group["rules"], list)
        found += group["rules"]
    return found


def test_alert_rules_have_prometheus_structure(rules: list[dict[str, Any]]) -> None:
    alerts = [rule["alert"] for rule in rules]
    assert len(alerts) == len(set(alerts))
    for rule in rules:
        assert set(rule) <= _RULE_KEYS, rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert _DURATION.match(str(rule.get("for", "0m"))), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_alert_rules_cover_what_operations_needs(rules: list[dict[str, Any]]) -> None:
    by_metric = {name for rule in rules for name in metric_names(rule["expr"])}
    assert {
        "overdue_journal_dead_letters",
        "overdue_stuck_loans",
        "temporal_activity_execution_failed",
        "temporal_workflow_task_execution_failed",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
    } <= by_metric


def test_alert_rules_name_only_existing_metrics(rules: list[dict[str, Any]]) -> None:
    known = known_metrics()
    for rule in rules:
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']}: unknown metrics {sorted(unknown)}"


# -- dashboard -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_dashboard_has_grafana_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        assert panel["datasource"]["uid"].strip("${}") in variables


def test_dashboard_shows_business_and_sdk_panels(dashboard: dict[str, Any]) -> None:
    shown = {
        name for panel in _panels(dashboard) for t in panel["targets"] for name in metric_names(t["expr"])
    }
    assert not business_series() - shown, "every business metric has a panel"
    assert {
        "temporal_workflow_task_execution_failed",
        "temporal_activity_execution_failed",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
    } <= shown


def test_dashboard_names_only_existing_metrics(dashboard: dict[str, Any]) -> None:
    known = known_metrics()
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            unknown = metric_names(target["expr"]) - known
            assert not unknown, f"{panel['title']}: unknown metrics {sorted(unknown)}"


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]
