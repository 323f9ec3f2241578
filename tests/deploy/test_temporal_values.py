"""deploy/temporal-values.yaml against the official Temporal Helm chart's own values.yaml (a verbatim copy of
chart 1.6.0 in fixtures/): Helm ignores a key the chart does not read, so a misspelt key would silently leave
a default (SQLite-free, but e.g. no TLS or the wrong database) in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.image import ROOT

VALUES = ROOT / "deploy" / "temporal-values.yaml"
CHART_VALUES = Path(__file__).parent / "fixtures" / "temporal-chart-1.6.0-values.yaml"
# Keys of a SQL datastore the chart passes to the server config or reads itself: the commented example under
# server.config.persistence.datastores in the chart's values.yaml (the default values leave the store empty).
SQL_KEYS = {
    "createDatabase", "manageSchema", "pluginName", "driverName", "databaseName", "connectAddr",
    "connectProtocol", "host", "port", "user", "password", "existingSecret", "secretKey", "passwordCommand",
    "maxConns", "maxIdleConns", "maxConnLifetime", "connectAttributes", "tls",
}  # fmt: skip
DATASTORES = ("server", "config", "persistence", "datastores")


def _load(path: Path) -> dict[str, Any]:
    value = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def unknown_keys(ours: Any, chart: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Key paths set in `ours` that the chart's defaults do not have. Below an empty map or a list in the
    chart (resources, additionalEnv, podDisruptionBudget...) the content is free-form: Kubernetes objects."""
    if not isinstance(ours, dict):
        return
    if path[:4] == DATASTORES and len(path) == 5:  # a store: {sql: {...}}
        for kind, config in ours.items():
            if kind != "sql":
                yield ".".join((*path, kind)) + " (only SQL stores are checked)"
                continue
            for key in config:
                if key not in SQL_KEYS:
                    yield ".".join((*path, kind, key))
        return
    if not isinstance(chart, dict) or (not chart and path):
        return
    for key, value in ours.items():
        if path == DATASTORES and key in ("default", "visibility"):
            yield from unknown_keys(value, None, (*path, key))
        elif key not in chart:
            yield ".".join((*path, key))
        else:
            yield from unknown_keys(value, chart[key], (*path, key))


def test_every_key_is_one_the_chart_reads() -> None:
    assert not list(unknown_keys(_load(VALUES), _load(CHART_VALUES)))


def test_the_check_finds_a_misspelt_key() -> None:
    values = _load(VALUES)
    values["server"]["tls"]["frontend"]["requireClientAuthh"] = True
    values["server"]["config"]["persistence"]["datastores"]["default"]["sql"]["databse"] = "x"
    found = set(unknown_keys(values, _load(CHART_VALUES)))
    assert found == {
        "server.tls.frontend.requireClientAuthh",
        "server.config.persistence.datastores.default.sql.databse",
    }


def test_persistence_and_visibility_are_postgresql_with_the_password_from_a_secret() -> None:
    persistence = _load(VALUES)["server"]["config"]["persistence"]
    stores = persistence["datastores"]
    assert set(stores) == {persistence["defaultStore"], persistence["visibilityStore"]}
    databases = set()
    for store in stores.values():
        sql = store["sql"]
        assert sql["pluginName"] == "postgres12"  # the chart's PostgreSQL plugin (PostgreSQL 12+)
        assert "password" not in sql and sql["existingSecret"], "no password in a values file"
        databases.add(sql["databaseName"])
    assert len(databases) == 2, "persistence and visibility need separate databases"
    assert persistence["numHistoryShards"] >= 512


def test_the_web_ui_decodes_through_the_admin_ui_codec_endpoint() -> None:
    env = {e["name"]: e["value"] for e in _load(VALUES)["web"]["additionalEnv"]}
    assert env["TEMPORAL_CODEC_ENDPOINT"].startswith("https://")
    assert env["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    # The operator's admin-UI cookie goes with the codec calls: that is the codec endpoint's authentication.
    assert env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
