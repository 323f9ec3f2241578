"""Fixtures for the activity tests: the activities on the shared test database, and throw-away databases.

Tests on the shared database (`db_pool`) use fresh loan ids and idempotency keys, so they never see each
other's rows. Tests that need to control the whole table (agency selection) or an empty schema (migrations)
get a database of their own, copied from a migrated template in a few milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from activities.collection_activities import CollectionActivities
from activities.db import create_pool
from stack.migrate import apply_migrations


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
    """A pool on a migrated database of this test's own (with the seeded demo agencies)."""
    name = f"overdue_own_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    pool = await create_pool(_database_url(postgres_url, name), max_size=8)
    yield pool
    await pool.close()
    await _admin(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def activities(db_pool: asyncpg.Pool) -> CollectionActivities:
    return CollectionActivities(db_pool)


@pytest.fixture
def loan_id() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"
