"""Changes to admin UI accounts, each audited in user_audit: who (the operator's OS user for the command,
'admin:<name>' for the users page), when, what, the values before and after. Never a password or a secret:
a password reset records only that it happened and how many sessions it ended.

Deactivating a user, resetting their password or "log out everywhere" ends their sessions at once; a new
role or new pools apply at their next request (the session reads the user on every request).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from activities.db import Connection
from admin.passwords import check_password
from admin.sessions import revoke_user_sessions
from admin.users import (
    ROLES,
    User,
    UserError,
    hash_password,
    normalize_pools,
    normalize_username,
    user_from_row,
)

Executor = Connection | asyncpg.Pool


@dataclass(frozen=True)
class Account:
    """A user as the list shows them (no hash, no secret)."""

    user: User
    last_login_at: datetime | None
    open_sessions: int
    totp: bool


@asynccontextmanager
async def _transaction(executor: Executor) -> AsyncIterator[Connection]:
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as connection, connection.transaction():
            yield connection
    else:
        async with executor.transaction():
            yield executor


async def _locked_user(connection: Connection, username: str) -> asyncpg.Record:
    row = await connection.fetchrow(
        "SELECT * FROM users WHERE username = $1 FOR UPDATE", normalize_username(username)
    )
    if row is None:
        raise UserError(f"username: no user {normalize_username(username)!r}")
    return row


async def audit(
    connection: Executor,
    actor: str,
    row: Mapping[str, Any] | asyncpg.Record,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await connection.execute(
        "INSERT INTO user_audit (actor, user_id, username, action, before, after) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
        actor,
        row["id"],
        row["username"],
        action,
        json.dumps(before) if before is not None else None,
        json.dumps(after) if after is not None else None,
    )


async def set_active(executor: Executor, username: str, active: bool, *, actor: str) -> User:
    """Deactivate (its sessions end now; it cannot log in) or reactivate a user."""
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, username)
        ended = 0
        updated = await connection.fetchrow(
            "UPDATE users SET active = $2, deactivated_at = CASE WHEN $2 THEN NULL ELSE now() END "
            "WHERE id = $1 RETURNING *",
            row["id"],
            active,
        )
        if not active:
            ended = await revoke_user_sessions(connection, row["id"], "deactivated")
        after: dict[str, Any] = {"active": active, **({} if active else {"sessions_ended": ended})}
        await audit(
            connection, actor, row, "reactivate" if active else "deactivate", {"active": row["active"]}, after
        )
        assert updated is not None  # the row is locked: it cannot have gone
        return user_from_row(updated)


async def reset_password(executor: Executor, username: str, password: str, *, actor: str) -> int:
    """A new password (checked against the policy); every session of the user ends. Returns how many."""
    name = normalize_username(username)
    problems = check_password(password, username=name)
    if problems:
        raise UserError("; ".join(f"{field}: {reason}" for field, reason in problems))
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, name)
        await connection.execute(
            "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1",
            row["id"],
            hash_password(password),
        )
        ended = await revoke_user_sessions(connection, row["id"], "password reset")
        await audit(connection, actor, row, "reset_password", None, {"sessions_ended": ended})
        return ended


async def set_role(executor: Executor, username: str, role: str, *, actor: str) -> User:
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}")
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, username)
        updated = await connection.fetchrow(
            "UPDATE users SET role = $2 WHERE id = $1 RETURNING *", row["id"], role
        )
        await audit(connection, actor, row, "set_role", {"role": row["role"]}, {"role": role})
        assert updated is not None  # the row is locked: it cannot have gone
        return user_from_row(updated)


async def set_pools(executor: Executor, username: str, pools: Sequence[str], *, actor: str) -> User:
    names = list(normalize_pools(pools))
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, username)
        updated = await connection.fetchrow(
            "UPDATE users SET pools = $2 WHERE id = $1 RETURNING *", row["id"], names
        )
        await audit(connection, actor, row, "set_pools", {"pools": list(row["pools"])}, {"pools": names})
        assert updated is not None  # the row is locked: it cannot have gone
        return user_from_row(updated)


async def logout_everywhere(
    executor: Executor, username: str, *, actor: str, keep: bytes | None = None
) -> int:
    """End every session of the user (but `keep`, when the user does it from one of theirs)."""
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, username)
        ended = await revoke_user_sessions(connection, row["id"], "logged out everywhere", keep=keep)
        await audit(connection, actor, row, "logout_everywhere", None, {"sessions_ended": ended})
        return ended


async def disable_totp(executor: Executor, username: str, *, actor: str) -> None:
    """Remove the user's second factor (a lost phone); they enrol again at the next login if required."""
    async with _transaction(executor) as connection:
        row = await _locked_user(connection, username)
        await connection.execute(
            "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL "
            "WHERE id = $1",
            row["id"],
        )
        ended = await revoke_user_sessions(connection, row["id"], "second factor removed")
        await audit(
            connection,
            actor,
            row,
            "disable_totp",
            {"totp": row["totp_enabled_at"] is not None},
            {"totp": False, "sessions_ended": ended},
        )


async def list_accounts(executor: Executor) -> list[Account]:
    rows = await executor.fetch(
        "SELECT u.*, (SELECT count(*) FROM admin_sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL "
        "  AND s.expires_at > now()) AS open_sessions FROM users u ORDER BY u.username"
    )
    return [
        Account(
            user_from_row(row), row["last_login_at"], row["open_sessions"], row["totp_enabled_at"] is not None
        )
        for row in rows
    ]
