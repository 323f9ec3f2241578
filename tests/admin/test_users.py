"""Users' pools of collector tasks: the default, `create_user(pools=...)` and the command's `--pool`."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import pytest

from admin.users import UserError, create_user, get_user, normalize_pools
from tests.admin.conftest import PASSWORD


async def run_command(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "admin.users", *args, "--password-stdin"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": database_url},
    )
    out, err = await process.communicate(f"{PASSWORD}\n".encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_gives_the_user_the_pools_named_by_pool(
    migrated_db: str, db_pool: asyncpg.Pool
) -> None:
    name = f"pools-{uuid.uuid4().hex[:8]}"
    code, out, err = await run_command(
        migrated_db, "create", name, "--pool", "standard", "--pool", "high_risk"
    )
    assert code == 0, err
    assert f"created collector {name}" in out and "standard, high_risk" in out
    assert await db_pool.fetchval("SELECT pools FROM users WHERE username = $1", name) == [
        "standard",
        "high_risk",
    ]


async def test_without_pool_a_user_works_the_default_pool(migrated_db: str, db_pool: asyncpg.Pool) -> None:
    name = f"pools-{uuid.uuid4().hex[:8]}"
    code, _, err = await run_command(migrated_db, "create", name)
    assert code == 0, err
    user_id = await db_pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    user = await get_user(db_pool, user_id)
    assert user is not None and user.pools == ("default",)


async def test_a_bad_pool_name_creates_nobody(migrated_db: str, db_pool: asyncpg.Pool) -> None:
    name = f"pools-{uuid.uuid4().hex[:8]}"
    code, _, err = await run_command(migrated_db, "create", name, "--pool", "has space")
    assert code == 2 and "pool:" in err
    assert await db_pool.fetchval("SELECT count(*) FROM users WHERE username = $1", name) == 0


async def test_create_user_stores_pools_once_each(db_pool: asyncpg.Pool) -> None:
    user = await create_user(
        db_pool, f"pools-{uuid.uuid4().hex[:8]}", PASSWORD, pools=[" standard", "high_balance", "standard"]
    )
    assert user.pools == ("standard", "high_balance")
    fetched = await get_user(db_pool, user.id)
    assert fetched is not None and fetched.pools == ("standard", "high_balance")


def test_pool_names_are_checked() -> None:
    assert normalize_pools(["a.b_c-1"]) == ("a.b_c-1",)
    for bad in ([], [""], ["-x"], ["x" * 65], ["a,b"], ["{x}"]):
        with pytest.raises(UserError, match="pool"):
            normalize_pools(bad)
