"""Worker Versioning (stack/versioning.py): the build id, the worker's options, and a real dev server
routing a loan's workflow to the worker of its deployment version."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.enums.v1 import VersioningBehavior as ApiVersioningBehavior
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkflowExecutionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkerDeploymentConfig

from domain.strategy import default_strategy
from stack.settings import ROOT, Settings
from stack.versioning import default_build_id, deployment_config, workflow_sources
from stack.worker_runtime import build_worker
from starter.api import CollectionsStarter
from tests.conftest import server_binary
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

    async def propagated() -> bool | None:
        info = (
            await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
            )
        ).worker_deployment_info
        current = info.routing_config.current_deployment_version.build_id == build_id
        done = (
            info.routing_config_update_state == RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED
        )
        return True if current and done else None

    # The task queues learn the new current version asynchronously; until then new runs may go to the old.
    await _eventually(propagated, f"{deployment}.{build_id} current on the task queues")


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


# --- upgrade at continue-as-new (the recipe README "Production" gives for the loan workflow) --------------


@workflow.defn(sandboxed=False)  # declares no behaviour: the worker's default (pinned) applies, as for loans
class ContinuesAsNew:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self, upgrade: bool, when_target_changed: bool) -> None:
        while True:
            await workflow.wait_condition(lambda: self._go)
            self._go = False
            # The new current version reaches the task queue a moment after it is set: ask again next task.
            if not when_target_changed or workflow.info().is_target_worker_deployment_version_changed():
                break
        # The loan workflow continues as new when its history grows; this one when told to.
        workflow.continue_as_new(
            args=[upgrade, when_target_changed],
            initial_versioning_behavior=(
                workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE if upgrade else None
            ),
        )


async def _continue_as_new_across_builds(
    client: Client, task_queue: str, tmp_path: Path, *, upgrade: bool, when_target_changed: bool
) -> str:
    """Start on b1 (current), make b2 current, let the run continue as new: the build the next run is on."""
    deployment = f"can-{uuid.uuid4().hex[:8]}"

    def worker(build: str) -> Worker:
        settings = Settings(
            state_dir=tmp_path,
            task_queue=task_queue,
            worker_deployment_name=deployment,
            worker_build_id=build,
        )
        return Worker(
            client,
            task_queue=task_queue,
            workflows=[ContinuesAsNew],
            deployment_config=deployment_config(settings),
        )

    workflow_id = f"can-{uuid.uuid4().hex[:8]}"
    async with worker("b1"), worker("b2"):
        await _set_current(client, deployment, "b1")
        handle = await client.start_workflow(
            ContinuesAsNew.run, args=[upgrade, when_target_changed], id=workflow_id, task_queue=task_queue
        )
        first = await _running_on(client, workflow_id)
        assert first.versioning_info.deployment_version.build_id == "b1"
        await _set_current(client, deployment, "b2")

        async def next_run() -> WorkflowExecutionInfo | None:
            info = await _running_on(client, workflow_id)
            if info.execution.run_id != first.execution.run_id:
                return info
            await handle.signal(ContinuesAsNew.go)  # a new workflow task on the first run
            return None

        second = await _eventually(next_run, "continued as new")
        await client.get_workflow_handle(workflow_id).terminate("test over")
        return second.versioning_info.deployment_version.build_id


@pytest.mark.parametrize("upgrade", [True, False])
async def test_a_pinned_run_moves_to_the_current_build_at_continue_as_new_only_when_asked(
    local_client: Client, task_queue: str, tmp_path: Path, upgrade: bool
) -> None:
    """Asked (AUTO_UPGRADE at continue-as-new): the next run starts on the current build. Not asked: it
    inherits the pinned one, and a loan would stay on its first build for its whole life."""
    build = await _continue_as_new_across_builds(
        local_client, task_queue, tmp_path, upgrade=upgrade, when_target_changed=False
    )
    assert build == ("b2" if upgrade else "b1")


@pytest_asyncio.fixture(scope="module")
async def server_announcing_new_versions() -> AsyncIterator[Client]:
    """A dev server of this module's own with the dynamic config that tells a pinned run that a new current
    version exists (off by default in server 1.32): the loan workflow may then continue as new early."""
    env = await WorkflowEnvironment.start_local(
        namespace="default",
        dev_server_existing_path=server_binary("temporal"),
        dev_server_extra_args=["--dynamic-config-value", "system.enableSendTargetVersionChanged=true"],
        ui=False,
    )
    yield env.client
    await env.shutdown()


async def test_a_pinned_run_learns_that_the_target_version_changed(
    server_announcing_new_versions: Client, task_queue: str, tmp_path: Path
) -> None:
    build = await _continue_as_new_across_builds(
        server_announcing_new_versions, task_queue, tmp_path, upgrade=True, when_target_changed=True
    )
    assert build == "b2"
