"""The asyncpg pool the activities share, and the insert-once idiom every side effect uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# What `pool.acquire()` yields, or a plain connection.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float | None = 30.0
) -> asyncpg.Pool:
    """A connection pool; `command_timeout` bounds one statement, so a stuck query fails and is retried."""
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, command_timeout=command_timeout
    )
    # create_pool returns None only when awaited without connecting, which `await` never does.
    assert pool is not None
    return pool


async def insert_once(
    connection: Connection, table: str, values: Mapping[str, Any]
) -> tuple[asyncpg.Record, bool]:
    """Insert a row unless its `idempotency_key` exists; return the stored row and whether it already existed.

    `table` and the column names come from code, never from input. A retry of an activity whose first attempt
    committed finds the first row and reports it as a duplicate, so nothing is stored or sent twice.
    """
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    inserted = await connection.fetchrow(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
        *values.values(),
    )
    if inserted is not None:
        return inserted, False
    existing = await connection.fetchrow(
        f"SELECT * FROM {table} WHERE idempotency_key = $1", values["idempotency_key"]
    )
    if existing is None:  # deleted between the two statements: let Temporal retry the activity
        raise RuntimeError(f"{table}: row for an existing idempotency key vanished; retrying")
    return existing, True


async def find_by_key(connection: Connection, table: str, idempotency_key: str) -> asyncpg.Record | None:
    return await connection.fetchrow(f"SELECT * FROM {table} WHERE idempotency_key = $1", idempotency_key)
