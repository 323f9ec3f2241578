"""deploy/compose.yaml, structurally (no container engine here): references resolve, every variable given to
the product's image is a setting, the Web UI and the codec endpoint agree, nothing runs as root or writable.
Its commands are checked against the image in test_dockerfile.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.image import ROOT, build_image
from tests.deploy.manifests import (
    COMPOSE,
    TEMPORAL_CLI_ENV,
    load_all,
    script_env_names,
    settings_env_names,
)

PRODUCT_IMAGE = "overdue"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = load_all(COMPOSE)
    return document


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == PRODUCT_IMAGE}


def test_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on", [])
        for other in depends:
            assert other in services, f"{name} depends on unknown {other}"
            if isinstance(depends, dict):
                condition = depends[other]["condition"]
                assert condition in ("service_started", "service_healthy", "service_completed_successfully")
                if condition == "service_healthy":
                    assert "healthcheck" in services[other], f"{name} waits for {other}'s missing healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in volumes, f"{name}: undeclared volume {source}"
    builders = [s for s in services.values() if "build" in s]
    assert builders, "the product's image is built by one service"
    for service in builders:
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT and (context / service["build"]["dockerfile"]).exists()
        assert service["image"] == PRODUCT_IMAGE


def test_the_product_runs_worker_admin_and_release_steps_from_one_image(compose: dict[str, Any]) -> None:
    ours = _ours(compose)
    assert {"setup", "worker", "admin", "borrower", "inbound"} <= set(ours)
    setup = ours["setup"]["command"][-1]
    assert "register_search_attributes.sh" in setup and "python -m stack.migrate" in setup
    for name in ("worker", "admin", "borrower", "inbound"):
        assert ours[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    for name, port in (("borrower", "8010"), ("inbound", "8031")):
        assert ours[name]["command"] == ["python", "-m", name]
        environment = ours[name]["environment"]
        assert environment[f"OVERDUE_{name.upper()}_HOST"] == "0.0.0.0"
        assert environment[f"OVERDUE_{name.upper()}_PORT"] == port
        assert any(p.endswith(f":{port}") for p in ours[name]["ports"]), name
    # Messages link to the page the borrower service serves.
    assert ours["worker"]["environment"]["OVERDUE_PAY_URL"] == "http://localhost:8010/l/{token}"


def test_every_variable_given_to_the_product_is_a_setting(compose: dict[str, Any]) -> None:
    settings = set(settings_env_names(build_image()))
    script = script_env_names() | TEMPORAL_CLI_ENV
    for name, service in _ours(compose).items():
        environment = service["environment"]
        runs_script = "register_search_attributes.sh" in str(service.get("command"))
        for variable in environment:
            assert variable in settings or (runs_script and variable in script), f"{name}: {variable}"
        assert "OVERDUE_DEMO_DAY_SECONDS" not in environment


def test_keys_go_only_where_they_are_used_and_come_from_the_environment(compose: dict[str, Any]) -> None:
    ours = _ours(compose)
    required = re.compile(r"^\$\{[A-Z_]+:\?.+\}$")  # compose refuses to start without it: no default key
    where = {
        "OVERDUE_CODEC_KEYS": {"worker", "admin", "borrower", "inbound"},
        "OVERDUE_TRUSTED_KEYS": {"worker"},
        "OVERDUE_SIGNING_KEY": {"admin", "borrower", "inbound"},
        "OVERDUE_ADMIN_SECRET_KEY": {"admin"},
        "OVERDUE_BORROWER_LINK_SECRET": {"worker"},
    }
    for variable, services in where.items():
        assert {n for n, s in ours.items() if variable in s["environment"]} == services, variable
        for service in services:
            assert required.match(ours[service]["environment"][variable]), f"{service}: {variable}"
    # Provider credentials: only the process that receives that provider's calls.
    for prefix, service in (("OVERDUE_PAYMENT_", "borrower"), ("OVERDUE_INBOUND_", "inbound")):
        given = {n for n, s in ours.items() for v in s["environment"] if v.startswith(prefix)}
        assert given == {service}, prefix


def test_the_web_ui_and_the_codec_endpoint_agree(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ui = services["temporal-ui"]["environment"]
    admin = services["admin"]
    admin_port = admin["environment"]["OVERDUE_ADMIN_PORT"]
    published = {p.split(":")[-2]: p.split(":")[-1] for p in admin["ports"]}
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{published[admin_port]}/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    ui_port = services["temporal-ui"]["ports"][0].split(":")[0]
    assert admin["environment"]["OVERDUE_WEB_UI_ORIGIN"] == f"http://localhost:{ui_port}"
    assert ui["TEMPORAL_CORS_ORIGINS"] == f"http://localhost:{ui_port}"


def test_the_product_containers_are_read_only_and_the_namespace_exists(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in _ours(compose).items():
        assert service.get("read_only") is True, name
        assert "/tmp" in service.get("tmpfs", []), name
        assert "user" not in service or service["user"] != "root", name
        assert (
            service["environment"]["TEMPORAL_NAMESPACE"]
            == services["temporal"]["environment"]["DEFAULT_NAMESPACE"]
        )
