"""Users' pools of collector tasks (the default, `create_user(pools=...)`, the command's `--pool`) and the
command's audited account changes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest

from admin.logins import Limits, authenticate
from admin.passwords import check_password
from admin.sessions import create_session, find_session
from admin.users import UserError, create_user, get_user, normalize_pools
from tests.admin.conftest import PASSWORD, MakeClient, MakeUser, login, post_form


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


# -- account changes by the command: each audited, none with a password -----------------------------------


async def cli(database_url: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "admin.users", *args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": database_url},
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def audit_of(pool: asyncpg.Pool, user_id: int) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM user_audit WHERE user_id = $1 ORDER BY id", user_id)


async def test_deactivate_and_reactivate(migrated_db: str, db_pool: asyncpg.Pool) -> None:
    user = await create_user(db_pool, f"acct-{uuid.uuid4().hex[:8]}", PASSWORD)
    code, _, err = await cli(migrated_db, "deactivate", user.username)
    assert code == 0, err
    assert await get_user(db_pool, user.id) is None
    result = await authenticate(db_pool, user.username, PASSWORD, client_address="10.6.0.1", limits=Limits())
    assert result.user is None
    code, _, err = await cli(migrated_db, "reactivate", user.username)
    assert code == 0, err
    result = await authenticate(db_pool, user.username, PASSWORD, client_address="10.6.0.1", limits=Limits())
    assert result.user is not None
    rows = await audit_of(db_pool, user.id)
    assert [row["action"] for row in rows] == ["deactivate", "reactivate"]
    assert json.loads(rows[0]["before"]) == {"active": True}
    assert json.loads(rows[0]["after"])["active"] is False
    assert all(row["actor"].startswith("cli:") for row in rows)


async def test_reset_password_from_stdin_checks_the_policy_and_ends_sessions(
    migrated_db: str, db_pool: asyncpg.Pool
) -> None:
    user = await create_user(db_pool, f"acct-{uuid.uuid4().hex[:8]}", PASSWORD)
    session = await create_session(db_pool, user.id, stage="full", lifetime=timedelta(hours=1))
    code, _, err = await cli(
        migrated_db, "reset-password", user.username, "--password-stdin", stdin="password1234\n"
    )
    assert code == 2 and "password:" in err and "common" in err
    assert await audit_of(db_pool, user.id) == []  # nothing changed, nothing audited

    new_password = "Violet-Tram-Harbour-93"
    code, out, err = await cli(
        migrated_db, "reset-password", user.username, "--password-stdin", stdin=new_password
    )
    assert code == 0, err
    assert "1 session(s) ended" in out and new_password not in out
    assert await find_session(db_pool, session, idle=timedelta(hours=1)) is None
    ok = await authenticate(db_pool, user.username, new_password, client_address="10.6.0.2", limits=Limits())
    assert ok.user is not None
    (row,) = await audit_of(db_pool, user.id)
    assert row["action"] == "reset_password" and new_password not in str(dict(row))


async def test_reset_password_generates_one_and_prints_it_once(
    migrated_db: str, db_pool: asyncpg.Pool
) -> None:
    user = await create_user(db_pool, f"acct-{uuid.uuid4().hex[:8]}", PASSWORD)
    code, out, err = await cli(migrated_db, "reset-password", user.username)
    assert code == 0, err
    printed = out.strip().splitlines()[-1].rsplit(": ", 1)[1]
    assert out.count(printed) == 1 and check_password(printed, username=user.username) == []
    ok = await authenticate(db_pool, user.username, printed, client_address="10.6.0.3", limits=Limits())
    assert ok.user is not None
    assert printed not in str([dict(row) for row in await audit_of(db_pool, user.id)])


async def test_set_role_set_pools_and_list(migrated_db: str, db_pool: asyncpg.Pool) -> None:
    user = await create_user(db_pool, f"acct-{uuid.uuid4().hex[:8]}", PASSWORD)
    assert (await cli(migrated_db, "set-role", user.username, "supervisor"))[0] == 0
    assert (await cli(migrated_db, "set-pools", user.username, "standard", "high_risk"))[0] == 0
    changed = await get_user(db_pool, user.id)
    assert changed is not None and changed.role == "supervisor" and changed.pools == ("standard", "high_risk")
    code, _, err = await cli(migrated_db, "set-pools", user.username, "has space")
    assert code == 2 and "pool:" in err
    code, _, err = await cli(migrated_db, "set-role", "nobody-at-all", "admin")
    assert code == 2 and "username: no user" in err
    rows = await audit_of(db_pool, user.id)
    assert [(row["action"], json.loads(row["before"]), json.loads(row["after"])) for row in rows] == [
        ("set_role", {"role": "collector"}, {"role": "supervisor"}),
        ("set_pools", {"pools": ["default"]}, {"pools": ["standard", "high_risk"]}),
    ]
    code, out, _ = await cli(migrated_db, "list")
    line = next(line for line in out.splitlines() if line.startswith(user.username))
    assert "supervisor" in line and "standard, high_risk" in line


async def test_create_is_audited_without_the_password(migrated_db: str, db_pool: asyncpg.Pool) -> None:
    name = f"acct-{uuid.uuid4().hex[:8]}"
    code, _, err = await run_command(migrated_db, "create", name, "--role", "admin")
    assert code == 0, err
    row = await db_pool.fetchrow("SELECT * FROM user_audit WHERE username = $1", name)
    assert row is not None
    assert row["action"] == "create" and json.loads(row["after"])["role"] == "admin"
    assert PASSWORD not in str(dict(row))


# -- the admins' users page ----------------------------------------------------------------------------------


async def test_an_admin_changes_accounts_on_the_users_page_and_each_change_is_audited(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    admin_client, target_client, collector_client = (
        await make_client(),
        await make_client(),
        await make_client(),
    )
    admin, target = await make_user("admin"), await make_user("collector")
    await login(admin_client, admin.username)
    await login(target_client, target.username)
    await login(collector_client, (await make_user("supervisor")).username)
    assert (await collector_client.get("/admin/users")).status_code == 403  # admins only

    page = await admin_client.get("/admin/users")
    assert page.status_code == 200 and f'data-user="{target.username}"' in page.text

    async def act(action: str, **fields: str) -> httpx.Response:
        return await post_form(
            admin_client,
            "/admin/users",
            "/admin/users",
            {"action": action, "username": target.username, **fields},
        )

    assert (await act("set-pools", pools="standard high_risk")).status_code == 303
    assert (await act("set-pools", pools="has,{bad}")).status_code == 400
    reset = await act("reset-password")
    new_password = reset.text.split('id="new-password">')[1].split("<")[0]
    assert check_password(new_password, username=target.username) == []
    assert (await target_client.get("/")).status_code == 303  # the reset ended the target's session
    assert (await act("deactivate")).status_code == 303
    assert (await get_user(db_pool, target.id)) is None
    refused = await post_form(
        admin_client, "/admin/users", "/admin/users", {"action": "deactivate", "username": admin.username}
    )
    assert refused.status_code == 400 and (await get_user(db_pool, admin.id)) is not None

    rows = await audit_of(db_pool, target.id)
    assert [row["action"] for row in rows] == ["set_pools", "reset_password", "deactivate"]
    assert all(row["actor"] == f"admin:{admin.username}" for row in rows)
    assert new_password not in str([dict(row) for row in rows])
