"""Reading the deployment files: the Kubernetes kustomizations, the compose example, the settings classes."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from tests.deploy.image import ROOT, Image, first_party_roots, walk_imports

K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose.yaml"
REGISTER_SCRIPT = ROOT / "deploy" / "register_search_attributes.sh"
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}
# Kinds that live in a namespace (kustomize's `namespace:` sets theirs); everything else here is cluster-wide.
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def render(directory: Path, seen: set[Path] | None = None) -> list[dict[str, Any]]:
    """`kustomize build directory` for the subset these kustomizations use (resources, namespace, images).

    Any other field fails the caller's test (KUSTOMIZATION_FIELDS), so this cannot silently render less than
    kustomize would.
    """
    seen = seen if seen is not None else set()
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    seen.add(directory / "kustomization.yaml")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs += render(path, seen)
        else:
            seen.add(path)
            docs += load_all(path)
    namespace = kustomization.get("namespace")
    images = {i["name"]: i for i in kustomization.get("images", [])}
    for doc in docs:
        if namespace and doc["kind"] not in CLUSTER_KINDS:
            doc["metadata"]["namespace"] = namespace
        for container in containers(doc):
            image = images.get(container["image"])
            if image is not None:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


@dataclass
class Setting:
    owner: str  # module.Class
    field: str


def settings_env_names(image: Image) -> dict[str, Setting]:
    """Every environment variable a settings class of the product reads, upper-cased (pydantic-settings is
    case-insensitive by default), found by importing each first-party module of the image that defines a
    BaseSettings subclass."""
    roots = sorted(first_party_roots())
    # `python -m <package>` runs its __main__, which its __init__ need not import (inbound's does not).
    walk = walk_imports(
        image, roots + [f"{r}.__main__" for r in roots if (ROOT / r / "__main__.py").exists()]
    )
    names: dict[str, Setting] = {}
    for module_name in sorted(walk.modules):
        path = ROOT / (module_name.replace(".", "/") + ".py")
        if not path.exists() or "BaseSettings" not in path.read_text(encoding="utf-8"):
            continue
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseSettings) or cls is BaseSettings or cls.__module__ != module_name:
                continue
            prefix = str(cls.model_config.get("env_prefix", ""))
            for field_name, info in cls.model_fields.items():
                alias = info.validation_alias
                if isinstance(alias, AliasChoices):
                    env = [c for c in alias.choices if isinstance(c, str)]
                elif isinstance(alias, str):
                    env = [alias]
                else:
                    env = [prefix + field_name]
                for name in env:
                    names[name.upper()] = Setting(f"{module_name}.{cls.__name__}", field_name)
    return names


def script_env_names(script: Path = REGISTER_SCRIPT) -> set[str]:
    """Variables a shell script of the product reads (`$NAME`, `${NAME...}`), e.g. PYTHON."""
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script.read_text(encoding="utf-8")))


# The `temporal` CLI that register_search_attributes.sh runs reads these itself (`temporal env` docs): they
# are how TLS and API keys reach it.
TEMPORAL_CLI_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CA_PATH",
    "TEMPORAL_TLS_SERVER_NAME",
}
