"""Server-side sessions of the admin UI, in PostgreSQL (admin_sessions).

The browser's cookie carries only a random 256-bit id; the table keeps its SHA-256, so neither a database
copy nor a log can be turned into a working cookie. Every request looks the session up in one statement
that also checks the user is still active, the session is not revoked, not past its absolute lifetime and
not idle for longer than the idle timeout, and records the request (last_seen_at). So a logout, a "log out
everywhere", a deactivation or a password reset ends a session at its next request, and a change of role or
pools applies at the next request (the user is read with the session, never cached in the cookie).

The CSRF token of a session is an HMAC of its id: bound to the session, never stored, gone with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from activities.db import Connection
from admin.users import User, user_from_row

Stage = Literal["full", "totp", "enrol"]
# A password accepted, the second factor not yet: this long to type the code or enrol.
PENDING_LIFETIME = timedelta(minutes=10)
USER_AGENT_CHARS = 300

Executor = Connection | asyncpg.Pool


def hash_id(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def csrf_for(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"overdue csrf v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ActiveSession:
    """A session found valid for this request, with its user as they are now."""

    id_hash: bytes
    stage: Stage
    csrf: str
    user: User
    created_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    """One of a user's sessions, as their own list shows it."""

    id_hash: bytes
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str
    user_agent: str

    @property
    def ref(self) -> str:
        """A handle for a form ('end this session'): a hash of the stored hash, not the cookie."""
        return hashlib.sha256(self.id_hash).hexdigest()[:32]


async def create_session(
    executor: Executor,
    user_id: int,
    *,
    stage: Stage,
    lifetime: timedelta,
    client_address: str = "",
    user_agent: str = "",
) -> str:
    """A new session of `user_id`; returns its id (for the cookie; the table keeps only its hash)."""
    session_id = secrets.token_urlsafe(32)
    await executor.execute(
        "INSERT INTO admin_sessions (id_hash, user_id, stage, expires_at, client_address, user_agent) "
        "VALUES ($1, $2, $3, now() + $4::interval, $5, $6)",
        hash_id(session_id),
        user_id,
        stage,
        min(lifetime, PENDING_LIFETIME) if stage != "full" else lifetime,
        client_address[:64],
        user_agent[:USER_AGENT_CHARS],
    )
    return session_id


async def find_session(executor: Executor, session_id: str, *, idle: timedelta) -> ActiveSession | None:
    """The session of this cookie if it is still valid (and its user active), recording this request."""
    row = await executor.fetchrow(
        "UPDATE admin_sessions s SET last_seen_at = now() FROM users u "
        "WHERE s.id_hash = $1 AND u.id = s.user_id AND u.active AND s.revoked_at IS NULL "
        "  AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval "
        "RETURNING s.stage AS session_stage, s.created_at AS session_created_at, u.*",
        hash_id(session_id),
        idle,
    )
    if row is None:
        return None
    return ActiveSession(
        hash_id(session_id),
        row["session_stage"],
        csrf_for(session_id),
        user_from_row(row),
        row["session_created_at"],
    )


async def complete_session(executor: Executor, id_hash: bytes, *, lifetime: timedelta) -> None:
    """The second factor passed: the pending session becomes a full one (its lifetime from its creation)."""
    await executor.execute(
        "UPDATE admin_sessions SET stage = 'full', expires_at = created_at + $2::interval "
        "WHERE id_hash = $1 AND revoked_at IS NULL",
        id_hash,
        lifetime,
    )


async def revoke_session(executor: Executor, id_hash: bytes, reason: str = "logout") -> None:
    await executor.execute(
        "UPDATE admin_sessions SET revoked_at = now(), revoked_reason = $2 "
        "WHERE id_hash = $1 AND revoked_at IS NULL",
        id_hash,
        reason,
    )


async def revoke_user_sessions(
    executor: Executor, user_id: int, reason: str, *, keep: bytes | None = None
) -> int:
    """End every open session of `user_id` (but `keep`, the caller's own, when given); returns how many."""
    result = await executor.execute(
        "UPDATE admin_sessions SET revoked_at = now(), revoked_reason = $2 "
        "WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() "
        "  AND ($3::bytea IS NULL OR id_hash <> $3)",
        user_id,
        reason,
        keep,
    )
    return int(result.split()[-1])


async def revoke_by_ref(executor: Executor, user_id: int, ref: str) -> bool:
    """End one of `user_id`'s sessions named by its `SessionInfo.ref` (never another user's)."""
    for info in await list_sessions(executor, user_id, idle=timedelta(days=365)):
        if hmac.compare_digest(info.ref, ref):
            await revoke_session(executor, info.id_hash, "ended by the user")
            return True
    return False


async def list_sessions(executor: Executor, user_id: int, *, idle: timedelta) -> list[SessionInfo]:
    """`user_id`'s sessions that still work, most recently used first."""
    rows = await executor.fetch(
        "SELECT * FROM admin_sessions WHERE user_id = $1 AND stage = 'full' AND revoked_at IS NULL "
        "AND expires_at > now() AND last_seen_at > now() - $2::interval ORDER BY last_seen_at DESC",
        user_id,
        idle,
    )
    return [
        SessionInfo(
            row["id_hash"],
            row["created_at"],
            row["last_seen_at"],
            row["expires_at"],
            row["client_address"],
            row["user_agent"],
        )
        for row in rows
    ]


async def purge_sessions(conn: Executor, older_than: datetime) -> int:
    """Delete sessions that ended (revoked, or past their absolute lifetime) before `older_than`; returns how
    many. Sessions that only went idle end by their expires_at at the latest, so they go too, in time.
    For the retention job: client addresses and user agents are kept no longer than needed."""
    result = await conn.execute(
        "DELETE FROM admin_sessions WHERE least(revoked_at, expires_at) < $1",
        older_than,
    )
    return int(result.split()[-1])


async def purge_login_throttle(conn: Executor, older_than: datetime) -> int:
    """Delete throttling counters whose window and lock both ended before `older_than`."""
    result = await conn.execute(
        "DELETE FROM login_throttle WHERE window_start < $1 AND coalesce(locked_until, window_start) < $1",
        older_than,
    )
    return int(result.split()[-1])
