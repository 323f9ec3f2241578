"""Worker Versioning: which Worker Deployment Version a worker polls as (README "Connecting to Temporal").

Off while OVERDUE_WORKER_DEPLOYMENT_NAME is unset: the worker polls unversioned (`make run`, the tests). On,
every worker declares `<deployment name>.<build id>`; the server sends a workflow's tasks only to workers of
the version it runs on, so code that would not replay an old history never sees it. Which version new
workflows start on is an operator's decision (`temporal worker deployment set-current-version`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
from pathlib import Path

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from stack.settings import ROOT, Settings

BEHAVIORS = {"pinned": VersioningBehavior.PINNED, "auto_upgrade": VersioningBehavior.AUTO_UPGRADE}

# The workflow code starts here; whatever it imports of the product (domain rules, contracts, authority's
# verification) runs inside workflows too, so it is part of what a build id stands for.
WORKFLOW_PACKAGE = "workflows"


def _first_party(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def workflow_sources(root: Path = ROOT) -> list[Path]:
    """Every first-party source file the workflows import, transitively (read, not imported: the same on
    every machine whatever the process has loaded), sorted."""
    packages = _first_party(root)
    pending = sorted((root / WORKFLOW_PACKAGE).glob("*.py"))
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a.b import c`: c may be a module of a.b or a name in it; both are looked for.
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] not in packages:
                    continue
                # A package's __init__ runs on import of any module under it.
                for depth in range(1, len(parts) + 1):
                    found = _module_file(root, ".".join(parts[:depth]))
                    if found is not None and found not in seen:
                        pending.append(found)
    return sorted(seen)


def default_build_id(root: Path = ROOT) -> str:
    """`<package version>-<12 hex>`: the hash covers the workflow code and everything of the product it
    imports (paths and bytes), so any change to what replays a history is a new build, and rebuilding the
    same code is the same build. Activity-only changes keep the build id (activities are not replayed)."""
    digest = hashlib.sha256()
    for path in workflow_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    try:
        version = importlib.metadata.version("overdue")
    except importlib.metadata.PackageNotFoundError:  # a source checkout that was never installed
        version = "0"
    return f"{version}-{digest.hexdigest()[:12]}"


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker's versioning options; None (unversioned) while OVERDUE_WORKER_DEPLOYMENT_NAME is unset.

    The behaviour is the default for workflows that do not declare one (none of ours does): PINNED keeps a
    run on the build that started it (no replay of old histories by new code); a long-lived loan moves to
    the current version when it continues as new."""
    if settings.worker_deployment_name is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=settings.worker_deployment_name,
            build_id=settings.worker_build_id or default_build_id(),
        ),
        use_worker_versioning=True,
        default_versioning_behavior=BEHAVIORS[settings.worker_versioning_behavior],
    )
