"""The worker compiles the workflow code once, so the sandbox's per-workflow re-import reads bytecode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack import worker_runtime
from stack.worker_runtime import PROJECT, precompile

# Counts the source compilations of project files while the sandbox creates a loan workflow instance, before
# and after precompile(). A private, empty pycache prefix stands for a tree without .pyc files (the
# repository's own __pycache__ is not consulted while a prefix is set): the test does not depend on what ran
# before.
PROBE = """
import asyncio, importlib._bootstrap_external as bx, sys
from temporalio import workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from stack.worker_runtime import precompile
from workflows.loan_collection import LoanCollectionWorkflow

compiled = []
original = bx.SourceLoader.source_to_code
def counting(self, data, path, *, _optimize=-1):
    if str(path).startswith(sys.argv[1]):
        compiled.append(path)
    return original(self, data, path, _optimize=_optimize)
bx.SourceLoader.source_to_code = counting

async def instance():
    SandboxedWorkflowRunner().prepare_workflow(workflow._Definition.must_from_class(LoanCollectionWorkflow))

asyncio.run(instance())
before = len(compiled)
precompile()
compiled.clear()
asyncio.run(instance())
print(before, len(compiled))
"""


def test_the_sandbox_reimports_bytecode_once_the_worker_has_precompiled(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(PROJECT)], env=env, cwd=PROJECT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before >= 1  # workflows/loan_collection.py at least, compiled from source for every instance
    assert after == 0


def test_a_read_only_tree_without_bytecode_compiles_into_a_private_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    # As on a read-only root filesystem:
    monkeypatch.setattr(worker_runtime.os, "access", lambda path, mode: mode != os.W_OK)
    monkeypatch.setattr(sys, "pycache_prefix", None)

    prefix = precompile(("pkg",), tmp_path)

    assert prefix is not None and sys.pycache_prefix == str(prefix)
    assert list(prefix.rglob("__init__.*.pyc"))
    assert not (package / "__pycache__").exists()


def test_a_read_only_tree_compiled_at_build_time_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.setattr(sys, "pycache_prefix", None)
    precompile(("pkg",), tmp_path)  # the image's `python -m compileall`
    monkeypatch.setattr(worker_runtime.os, "access", lambda path, mode: mode != os.W_OK)

    assert precompile(("pkg",), tmp_path) is None
    assert sys.pycache_prefix is None
