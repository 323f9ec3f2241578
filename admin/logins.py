"""Checking a password at login: one answer and about one duration whatever went wrong, and throttling that
slows a guesser without letting them lock anyone else out.

Every attempt runs exactly one argon2 verification (against a dummy hash of the same parameters when the user
is unknown or the attempt is throttled) and the same queries, so an unknown user, a wrong password, a paused
pair and a deactivated account answer alike and in about the same time (no user enumeration by text or clock).

Throttling counts failures per (account, client address) pair and per client address. A pair pauses after
`max_failures` failures within the window; an address after `max_failures_per_address` failures over any
accounts. A supervisor's own address has its own pair, so a guesser elsewhere cannot lock them out; a guesser
who spreads over many accounts from one address is stopped by the address limit. Rows are keyed by SHA-256,
so the table stores neither user names nor addresses.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from activities.db import Connection
from admin.users import User, hash_password, normalize_username, password_hasher, user_from_row

# Verified against when there is no hash to check, so every attempt costs one argon2 verification.
_DUMMY_HASH = password_hasher().hash("not a password of anyone")


@dataclass(frozen=True)
class Limits:
    max_failures: int = 5
    max_failures_per_address: int = 30
    window_seconds: int = 900
    lockout_seconds: int = 300


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    throttled: bool = False  # for logs and tests only: the page says the same either way


def throttle_key(kind: str, *parts: str) -> bytes:
    return hashlib.sha256("\0".join((kind, *parts)).encode()).digest()


async def authenticate(
    pool: asyncpg.Pool, username: str, password: str, *, client_address: str, limits: Limits
) -> LoginResult:
    """The user, if `password` is theirs, they are active and this pair and address are not paused."""
    username = normalize_username(username)[:128]
    pair = throttle_key("pair", username, client_address)
    address = throttle_key("address", client_address)
    async with pool.acquire() as connection, connection.transaction():
        # The pair's row is locked for the whole attempt: concurrent guesses on one pair queue up, so they
        # cannot all pass the check before the first failure is counted.
        await connection.execute(
            "INSERT INTO login_throttle (key) VALUES ($1), ($2) ON CONFLICT DO NOTHING", pair, address
        )
        paused = bool(
            await connection.fetchval(
                "SELECT locked_until > now() FROM login_throttle WHERE key = $1 FOR UPDATE", pair
            )
        ) or bool(
            await connection.fetchval(
                "SELECT locked_until > now() FROM login_throttle WHERE key = $1", address
            )
        )
        row = await connection.fetchrow("SELECT * FROM users WHERE username = $1", username)
        target = row["password_hash"] if row is not None and not paused else _DUMMY_HASH
        matches = await asyncio.to_thread(_verify, target, password)
        if matches and row is not None and row["active"] and not paused:
            await connection.execute("DELETE FROM login_throttle WHERE key = $1", pair)
            new_hash = await _rehash(row["password_hash"], password)
            await connection.execute(
                "UPDATE users SET last_login_at = now(), password_hash = coalesce($2, password_hash) "
                "WHERE id = $1",
                row["id"],
                new_hash,
            )
            return LoginResult(user_from_row(row))
        if not paused:
            await _count_failure(connection, pair, limits.max_failures, limits)
            await _count_failure(connection, address, limits.max_failures_per_address, limits)
        return LoginResult(None, throttled=paused)


async def record_failure(pool: asyncpg.Pool, username: str, client_address: str, limits: Limits) -> None:
    """A failure after the password (a wrong second-factor code) counts like a wrong password."""
    username = normalize_username(username)[:128]
    async with pool.acquire() as connection, connection.transaction():
        for key, limit in (
            (throttle_key("pair", username, client_address), limits.max_failures),
            (throttle_key("address", client_address), limits.max_failures_per_address),
        ):
            await connection.execute(
                "INSERT INTO login_throttle (key) VALUES ($1) ON CONFLICT DO NOTHING", key
            )
            await _count_failure(connection, key, limit, limits)


async def is_paused(pool: asyncpg.Pool, username: str, client_address: str) -> bool:
    keys = [throttle_key("pair", normalize_username(username)[:128], client_address)]
    keys.append(throttle_key("address", client_address))
    return bool(
        await pool.fetchval(
            "SELECT coalesce(bool_or(locked_until > now()), false) FROM login_throttle WHERE key = ANY($1)",
            keys,
        )
    )


async def _count_failure(connection: Connection, key: bytes, limit: int, limits: Limits) -> None:
    """One more failure in the window (a new window when the last one is over); at `limit`, pause."""
    await connection.execute(
        "UPDATE login_throttle SET "
        "  failures = CASE WHEN window_start < now() - $2::interval THEN 1 ELSE failures + 1 END, "
        "  window_start = CASE WHEN window_start < now() - $2::interval THEN now() ELSE window_start END "
        "WHERE key = $1",
        key,
        _seconds(limits.window_seconds),
    )
    await connection.execute(
        "UPDATE login_throttle SET failures = 0, window_start = now(), locked_until = now() + $3::interval "
        "WHERE key = $1 AND failures >= $2",
        key,
        limit,
        _seconds(limits.lockout_seconds),
    )


def _seconds(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _rehash(password_hash: str, password: str) -> str | None:
    hasher: PasswordHasher = password_hasher()
    if not hasher.check_needs_rehash(password_hash):
        return None
    return await asyncio.to_thread(hash_password, password)
