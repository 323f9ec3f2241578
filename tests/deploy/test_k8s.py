"""deploy/k8s: rendered like `kubectl apply -k` would, validated against the Kubernetes schemas bundled in the
kubernetes-validate wheel (offline, strict: an unknown field is an error), and checked for what the schemas
cannot see: probes on declared ports, disruption budgets that select pods, settings that exist, least
privilege."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.image import ROOT, build_image
from tests.deploy.manifests import (
    K8S,
    KUSTOMIZATION_FIELDS,
    TEMPORAL_CLI_ENV,
    containers,
    load_all,
    pod_spec,
    render,
    script_env_names,
    settings_env_names,
)

# The oldest Kubernetes minor still commonly run, and the newest the wheel knows.
VERSIONS = ("1.30", kubernetes_validate.latest_version())
APP = K8S
RELEASE = K8S / "release"
SECRETS = K8S / "secret.example.yaml"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(APP) + render(RELEASE) + load_all(SECRETS)


@pytest.fixture(scope="module")
def env_names() -> set[str]:
    return set(settings_env_names(build_image()))


def _name(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    assert len(rendered) >= 10
    problems = []
    for version in VERSIONS:
        for doc in rendered:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{version} {_name(doc)}: {'.'.join(map(str, error.path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{version} {_name(doc)}: {error.message}")
    assert not problems, "\n".join(problems)


def test_the_validator_rejects_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    """Strict mode has teeth: a typo Kubernetes would silently drop is an error here."""
    deployment = copy.deepcopy(next(d for d in rendered if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"tcpSocket": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomizations_use_only_what_the_renderer_understands_and_list_every_file() -> None:
    listed: set[str] = set()
    for path in sorted(K8S.rglob("kustomization.yaml")):
        kustomization = load_all(path)[0]
        assert set(kustomization) <= KUSTOMIZATION_FIELDS, path
        for entry in kustomization["resources"]:
            target = (path.parent / entry).resolve()
            assert target.exists(), f"{path}: {entry}"
            listed.add(str(target / "kustomization.yaml") if target.is_dir() else str(target))
    every = {str(p.resolve()) for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    # The Secret example is deliberately not applied: only placeholders are in it.
    assert every - listed == {str(SECRETS.resolve())}
    assert str(SECRETS.resolve()) not in listed


# The long-running processes: the worker, and the HTTP apps behind a Service (admin UI, borrower page,
# the providers' inbound webhooks).
SERVED = ("admin", "borrower", "inbound")


def test_the_product_runs_as_workers_http_apps_and_two_release_jobs(rendered: list[dict[str, Any]]) -> None:
    kinds = {_name(d) for d in rendered}
    assert "Deployment/overdue-worker" in kinds and "PodDisruptionBudget/overdue-worker" in kinds
    for app in SERVED:
        assert {
            f"Deployment/overdue-{app}",
            f"Service/overdue-{app}",
            f"PodDisruptionBudget/overdue-{app}",
        } <= kinds
    assert {"Job/overdue-migrate", "Job/overdue-search-attributes"} <= kinds
    assert {"ConfigMap/overdue-config", "Secret/overdue-secrets", "Secret/overdue-codec-keys"} <= kinds
    commands = {_name(d): next(containers(d))["command"] for d in rendered if d["kind"] == "Deployment"}
    assert commands["Deployment/overdue-borrower"] == ["python", "-m", "borrower"]
    assert commands["Deployment/overdue-inbound"] == ["python", "-m", "inbound"]
    for doc in render(APP) + render(RELEASE):
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "overdue", _name(doc)
        for container in containers(doc):
            assert container["image"].startswith("registry.example.com/overdue:"), _name(doc)


def _ports(container: dict[str, Any]) -> set[object]:
    return {p.get("name") for p in container.get("ports", [])} | {
        p["containerPort"] for p in container.get("ports", [])
    }


def test_deployments_have_probes_on_declared_ports_resources_and_a_disruption_budget(
    rendered: list[dict[str, Any]],
) -> None:
    budgets = [d for d in rendered if d["kind"] == "PodDisruptionBudget"]
    for doc in (d for d in rendered if d["kind"] == "Deployment"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in containers(doc):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                action = container[probe].get("httpGet") or container[probe].get("tcpSocket")
                assert action and action["port"] in _ports(container), f"{_name(doc)} {probe}"
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]
        selecting = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert selecting, f"no PodDisruptionBudget selects {_name(doc)}"
        assert all(b["spec"]["minAvailable"] < doc["spec"]["replicas"] for b in selecting), (
            "drains would block"
        )
    for app in SERVED:
        service = next(d for d in rendered if _name(d) == f"Service/overdue-{app}")
        deployment = next(d for d in rendered if _name(d) == f"Deployment/overdue-{app}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), app
        (container,) = containers(deployment)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= _ports(container), app
        # The port the app listens on (its *_PORT setting) is the one declared and probed.
        env = {v["name"]: v.get("value") for v in container["env"]}
        (port,) = (int(v) for k, v in env.items() if k.endswith("_PORT") and v is not None)
        assert port in _ports(container) and env[f"OVERDUE_{app.upper()}_HOST"] == "0.0.0.0", app


def test_every_pod_is_least_privilege(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        spec = pod_spec(doc)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, _name(doc)
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", _name(doc)
        assert spec["automountServiceAccountToken"] is False, _name(doc)
        mounts_tmp = False
        for container in containers(doc):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, _name(doc)
            assert context["allowPrivilegeEscalation"] is False, _name(doc)
            assert context["capabilities"]["drop"] == ["ALL"], _name(doc)
            mounts_tmp = mounts_tmp or any(
                m["mountPath"] == "/tmp" for m in container.get("volumeMounts", [])
            )
        assert mounts_tmp, f"{_name(doc)}: a read-only root filesystem needs a writable /tmp"


def test_every_environment_variable_is_a_setting_and_every_reference_resolves(
    rendered: list[dict[str, Any]], env_names: set[str]
) -> None:
    config = next(d for d in rendered if _name(d) == "ConfigMap/overdue-config")["data"]
    secrets = {d["metadata"]["name"]: d["stringData"] for d in rendered if d["kind"] == "Secret"}
    unknown = {key for key in config if key not in env_names}
    assert not unknown, f"ConfigMap keys no settings class reads: {sorted(unknown)}"
    assert "OVERDUE_DEMO_DAY_SECONDS" not in config
    script_reads = script_env_names() | TEMPORAL_CLI_ENV
    for doc in rendered:
        for container in containers(doc):
            runs_script = any(
                "register_search_attributes.sh" in part for part in container.get("command", [])
            )
            for variable in container.get("env", []):
                name = variable["name"]
                assert name in env_names or (runs_script and name in script_reads), f"{_name(doc)}: {name}"
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference is not None:
                    assert reference["key"] in secrets[reference["name"]], f"{_name(doc)}: {reference}"
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == "overdue-config"
        for volume in (pod_spec(doc) or {}).get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, f"{_name(doc)}: {volume}"


def _environment(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    env = dict(config) if container.get("envFrom") else {}
    env.update({v["name"]: v["value"] for v in container.get("env", []) if "value" in v})
    return env


def test_every_key_file_setting_points_into_a_mounted_secret(rendered: list[dict[str, Any]]) -> None:
    """OVERDUE_*_FILE(S) paths (codec key ring, trust ring, signing key) are files of a Secret the container
    mounts, readable by the product's group (fsGroup) only; each pod mounts only the keys it uses."""
    config = next(d for d in rendered if _name(d) == "ConfigMap/overdue-config")["data"]
    secret_files = {d["metadata"]["name"]: set(d["stringData"]) for d in rendered if d["kind"] == "Secret"}
    checked = set()
    for doc in rendered:
        spec = pod_spec(doc)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(doc):
            env = _environment(container, config)
            mounted: dict[str, dict[str, Any]] = {
                m["mountPath"].rstrip("/"): volumes[m["name"]]["secret"]
                for m in container.get("volumeMounts", [])
                if "secret" in volumes[m["name"]]
            }
            for name, value in env.items():
                if not name.startswith("OVERDUE_") or not name.endswith(("_FILE", "_FILES")):
                    continue
                for path in value.split(":"):
                    directory, _, file = path.rpartition("/")
                    secret = mounted.get(directory)
                    if secret is None and doc["kind"] == "Job":
                        continue  # a release job has the ConfigMap but never reads keys
                    assert secret is not None, f"{_name(doc)}: {name}={path} is on no mounted Secret"
                    assert file in secret_files[secret["secretName"]], f"{_name(doc)}: {name}"
                    assert secret["defaultMode"] == 0o440 and spec["securityContext"]["fsGroup"] == 10001
                    checked.add((_name(doc), name))
            unused = set(mounted) - {p.rpartition("/")[0] for v in env.values() for p in v.split(":")}
            assert not unused, f"{_name(doc)} mounts keys it does not read: {unused}"
    assert {
        ("Deployment/overdue-worker", "OVERDUE_CODEC_KEYS_FILE"),
        ("Deployment/overdue-worker", "OVERDUE_TRUSTED_KEYS_FILE"),
        ("Deployment/overdue-admin", "OVERDUE_CODEC_KEYS_FILE"),
        ("Deployment/overdue-admin", "OVERDUE_SIGNING_KEY_FILES"),
        ("Deployment/overdue-borrower", "OVERDUE_CODEC_KEYS_FILE"),
        ("Deployment/overdue-borrower", "OVERDUE_SIGNING_KEY_FILES"),
        ("Deployment/overdue-inbound", "OVERDUE_CODEC_KEYS_FILE"),
        ("Deployment/overdue-inbound", "OVERDUE_SIGNING_KEY_FILES"),
    } <= checked
    worker = next(d for d in rendered if _name(d) == "Deployment/overdue-worker")
    assert not any("signing" in v["name"] for v in pod_spec(worker)["volumes"])  # type: ignore[index]
    # The borrower's key only where the borrower acts: the borrower page and the inbound webhooks (STOP).
    borrower_key = {
        _name(d)
        for d in rendered
        if any(
            v.get("secret", {}).get("secretName") == "overdue-borrower-signing-key"
            for v in (pod_spec(d) or {}).get("volumes", [])
        )
    }
    assert borrower_key == {"Deployment/overdue-borrower", "Deployment/overdue-inbound"}


def test_each_secret_setting_goes_only_to_the_process_that_reads_it(rendered: list[dict[str, Any]]) -> None:
    given: dict[str, set[str]] = {}
    for doc in rendered:
        for container in containers(doc):
            for variable in container.get("env", []):
                if "valueFrom" in variable:
                    given.setdefault(variable["name"], set()).add(_name(doc))
    assert given["OVERDUE_BORROWER_LINK_SECRET"] == {"Deployment/overdue-worker"}  # the page never needs it
    for name in ("OVERDUE_PAYMENT_API_KEY", "OVERDUE_PAYMENT_WEBHOOK_SECRET"):
        assert given[name] == {"Deployment/overdue-borrower"}, name  # /payments/webhook is the page's
    for provider in ("SMS", "EMAIL", "PUSH"):
        assert given[f"OVERDUE_INBOUND_{provider}_SECRET"] == {"Deployment/overdue-inbound"}, provider
    assert given["OVERDUE_ADMIN_SECRET_KEY"] == {"Deployment/overdue-admin"}


def test_the_temporal_namespace_is_the_one_the_chart_values_create(rendered: list[dict[str, Any]]) -> None:
    config = next(d for d in rendered if _name(d) == "ConfigMap/overdue-config")["data"]
    values = load_all(ROOT / "deploy" / "temporal-values.yaml")[0]
    created = {n["name"] for n in values["server"]["config"]["namespaces"]["namespace"]}
    assert config["TEMPORAL_NAMESPACE"] in created


def test_ingress_is_denied_by_default_and_opened_only_on_declared_ports(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies), (
        "no default deny"
    )
    opened: dict[str, set[object]] = {}
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        for doc in (d for d in rendered if d["kind"] == "Deployment"):
            if selector and selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items():
                (container,) = containers(doc)
                for rule in policy["spec"].get("ingress", []):
                    ports = {p["port"] for p in rule["ports"]}
                    assert ports <= _ports(container), f"{_name(policy)} opens a port {_name(doc)} lacks"
                    opened.setdefault(_name(doc), set()).update(ports)
    assert opened == {
        "Deployment/overdue-worker": {"metrics", "business"},
        "Deployment/overdue-admin": {"http"},
        "Deployment/overdue-borrower": {"http"},
        "Deployment/overdue-inbound": {"http"},
    }
