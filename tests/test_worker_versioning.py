"""Worker Versioning (stack/versioning.py): the build id, the worker's options, and a real dev server
routing a loan's workflow to the worker of its deployment version."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import VersioningBehavior as ApiVersioningBehavior
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import WorkerDeploymentConfig

from domain.strategy import default_strategy
from stack.settings import ROOT, Settings
from stack.versioning import default_build_id, deployment_config, workflow_sources
from stack.worker_runtime import build_worker
from starter.api import CollectionsStarter
from tests.workflows.conftest import make_loan

T = TypeVar("T")

# --- the build id -----------------------------------------------------------------------------------------


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A copy of the product's packages, to change one file and see what the build id does."""
    for package in ("workflows", "domain", "activities", "authority", "admin"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_build_id_changes_with_workflow_code_and_what_it_imports_only(source_tree: Path) -> None:
    build = default_build_id(source_tree)
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*-[0-9a-f]{12}", build)  # the package version, then the hash
    assert default_build_id(source_tree) == build  # the same code is the same build
    sources = {p.relative_to(source_tree).as_posix() for p in workflow_sources(source_tree)}
    assert {"workflows/loan_collection.py", "domain/decision.py", "activities/contracts.py"} <= sources
    assert not any(s.startswith("admin/") for s in sources)  # the admin UI never runs in a workflow

    # An activity implementation or the admin UI: not replayed, same build.
    (source_tree / "admin" / "__init__.py").write_text("# changed\n", encoding="utf-8")
    assert default_build_id(source_tree) == build
    # The workflow, or a domain rule it runs: a new build.
    loan = source_tree / "workflows" / "loan_collection.py"
    loan.write_text(loan.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = default_build_id(source_tree)
    assert changed != build
    rule = source_tree / "domain" / "decision.py"
    rule.write_text(rule.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert default_build_id(source_tree) not in {build, changed}


# --- the worker's options ---------------------------------------------------------------------------------


def test_versioning_is_off_unless_a_deployment_name_is_set(tmp_path: Path) -> None:
    assert deployment_config(Settings(state_dir=tmp_path)) is None
    config = deployment_config(Settings(state_dir=tmp_path, worker_deployment_name="overdue-workers"))
    assert config == WorkerDeploymentConfig(
        version=WorkerDeploymentVersion("overdue-workers", default_build_id()),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )
    config = deployment_config(
        Settings(
            state_dir=tmp_path,
            worker_deployment_name="overdue-workers",
            worker_build_id="2026-12-03.1",
            worker_versioning_behavior="auto_upgrade",
        )
    )
    assert config is not None and config.version.build_id == "2026-12-03.1"
    assert config.default_versioning_behavior == VersioningBehavior.AUTO_UPGRADE


def test_versioning_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERDUE_WORKER_DEPLOYMENT_NAME", "overdue-workers")
    monkeypatch.setenv("OVERDUE_WORKER_BUILD_ID", "b7")
    config = deployment_config(Settings(state_dir=tmp_path))
    assert config is not None and config.version.to_canonical_string() == "overdue-workers.b7"
    for name, value in (
        ("OVERDUE_WORKER_DEPLOYMENT_NAME", "a/b"),
        ("OVERDUE_WORKER_BUILD_ID", "has space"),
        ("OVERDUE_WORKER_VERSIONING_BEHAVIOR", "sometimes"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(ValueError, match=name.removeprefix("OVERDUE_").lower()):
                Settings(state_dir=tmp_path)


# --- against the dev server -------------------------------------------------------------------------------


async def _eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll the real server (its deployment registry and task dispatch are asynchronous) for up to 20 s."""
    for _ in range(100):
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"never: {what}")


async def _set_current(client: Client, deployment: str, build_id: str) -> None:
    """What `temporal worker deployment set-current-version` does; the version exists once a worker polled."""

    async def attempt() -> bool | None:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=deployment, build_id=build_id
                )
            )
        except RPCError:
            return None  # not registered yet
        return True

    await _eventually(attempt, f"{deployment}.{build_id} registered")


async def _running_on(client: Client, workflow_id: str) -> WorkflowExecutionInfo:
    async def described() -> WorkflowExecutionInfo | None:
        info = (
            await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
                )
            )
        ).workflow_execution_info
        # The behaviour is recorded when a worker of the version completes the first workflow task.
        return info if info.versioning_info.behavior else None

    return await _eventually(described, f"{workflow_id} ran a workflow task")


async def test_a_versioned_worker_runs_new_loans_of_its_version_and_old_ones_stay_pinned(
    local_client: Client, db_pool: asyncpg.Pool, task_queue: str, tmp_path: Path
) -> None:
    deployment = f"overdue-{uuid.uuid4().hex[:8]}"
    starter = CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())
    old_loan, new_loan = make_loan(datetime.now(UTC), dpd=3), make_loan(datetime.now(UTC), dpd=3)

    def settings(build: str) -> Settings:
        return Settings(
            state_dir=tmp_path,
            task_queue=task_queue,
            worker_deployment_name=deployment,
            worker_build_id=build,
        )

    async with build_worker(settings("b1"), local_client, db_pool):
        await _set_current(local_client, deployment, "b1")
        assert await starter.start_loan(old_loan) == "started"
        info = await _running_on(local_client, f"collection-{old_loan.loan_id}")
        assert info.versioning_info.deployment_version.deployment_name == deployment
        assert info.versioning_info.deployment_version.build_id == "b1"
        assert info.versioning_info.behavior == ApiVersioningBehavior.VERSIONING_BEHAVIOR_PINNED

        # The rollout: a new build polls beside the old one, then becomes current.
        async with build_worker(settings("b2"), local_client, db_pool):
            await _set_current(local_client, deployment, "b2")
            assert await starter.start_loan(new_loan) == "started"
            info = await _running_on(local_client, f"collection-{new_loan.loan_id}")
            assert info.versioning_info.deployment_version.build_id == "b2"
            # The loan started on b1 stays there (pinned): b2's code never replays b1's history.
            still = await _running_on(local_client, f"collection-{old_loan.loan_id}")
            assert still.versioning_info.deployment_version.build_id == "b1"
    for loan in (old_loan, new_loan):
        await local_client.get_workflow_handle(f"collection-{loan.loan_id}").terminate("test over")
