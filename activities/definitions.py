"""The `definitions` table: strategies and contact profiles stored once by reference (domain/definitions.py).

`save_definition` is what a starter calls before starting loans with `strategy_ref` / `profile_ref`; the
worker stores the configured definitions at start and installs `install_fetcher`, so a workflow that meets
a reference its process has not seen yet reads it from here (once per process: the registry keeps it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg

from activities.db import Connection
from domain.contact_profiles import ContactProfile
from domain.definitions import REGISTRY, Definitions, Kind, canonical_json
from domain.strategy import Strategy

# A workflow activation waits at most this long for a definition (well inside the SDK's 2 s deadlock
# detector); a slower database fails the workflow task, which Temporal retries.
FETCH_TIMEOUT_SECONDS = 1.5


def _kind(definition: Strategy | ContactProfile) -> Kind:
    return "strategy" if isinstance(definition, Strategy) else "profile"


async def save_definition(
    connection: Connection | asyncpg.Pool, definition: Strategy | ContactProfile
) -> str:
    """Store `definition` (idempotent: the same content is the same row) and return its reference."""
    ref, shared = REGISTRY.intern(definition)
    await connection.execute(
        "INSERT INTO definitions (ref, kind, body) VALUES ($1, $2, $3) ON CONFLICT (ref) DO NOTHING",
        ref,
        _kind(shared),
        canonical_json(shared),
    )
    return ref


async def save_definitions(
    pool: asyncpg.Pool, definitions: Iterable[Strategy | ContactProfile]
) -> dict[str, str]:
    """Each definition's reference by name (`strategy:default`, `profile:cn`)."""
    refs = {}
    for definition in definitions:
        refs[f"{_kind(definition)}:{definition.name}"] = await save_definition(pool, definition)
    return refs


async def load_definition(connection: Connection | asyncpg.Pool, kind: Kind, ref: str) -> str | None:
    body = await connection.fetchval("SELECT body FROM definitions WHERE ref = $1 AND kind = $2", ref, kind)
    return None if body is None else str(body)


def install_fetcher(
    pool: asyncpg.Pool, loop: asyncio.AbstractEventLoop, registry: Definitions = REGISTRY
) -> None:
    """Let the registry read a definition it misses from PostgreSQL. Workflow activations run on the
    worker's threads, not its event loop, so the read runs on the loop and the activation waits for it."""

    def fetch(kind: Kind, ref: str) -> str | None:
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # waiting here would block the very loop that must run the read
            raise RuntimeError("a definition cannot be fetched from the worker's event loop thread")
        future = asyncio.run_coroutine_threadsafe(load_definition(pool, kind, ref), loop)
        return future.result(timeout=FETCH_TIMEOUT_SECONDS)

    registry.fetcher = fetch
