"""Accounts of the admin UI: argon2 password hashes, roles, failed-login throttling, and the command that
creates users for production.

    python -m admin.users create li.na --role collector --display-name "Li Na" --locale zh-CN --pool standard
    printf '%s\n' "$PASSWORD" | python -m admin.users create li.na --role collector --password-stdin

The password is read from a prompt (typed twice) or from standard input, never from the command line, where
it would be visible in the process list and the shell history. `--pool NAME` (repeatable) names the pools of
collector tasks (collector_tasks.pool: the loan's segment) the user works; without it, the 'default' pool.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from activities.db import Connection

Role = Literal["collector", "supervisor", "admin"]
Locale = Literal["zh-CN", "en"]
ROLES: tuple[Role, ...] = get_args(Role)
LOCALES: tuple[Locale, ...] = get_args(Locale)
RANK: dict[str, int] = {"collector": 0, "supervisor": 1, "admin": 2}

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
POOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_POOLS: tuple[str, ...] = ("default",)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a login takes as long whether or not the user exists.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user that cannot be created as asked; the message names the field."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    display_name: str
    locale: Locale
    active: bool
    pools: tuple[str, ...] = DEFAULT_POOLS  # the collector_tasks pools this user works

    def has_role(self, role: Role) -> bool:
        """Roles are ranked: an admin may do what a supervisor may, a supervisor what a collector may."""
        return RANK[self.role] >= RANK[role]


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        display_name=row["display_name"] or row["username"],
        locale=row["locale"],
        active=row["active"],
        pools=tuple(row["pools"]),
    )


def normalize_username(username: str) -> str:
    return username.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalize_pools(pools: Sequence[str]) -> tuple[str, ...]:
    """The pools stripped, each once, in the order given; UserError for a bad name or none at all."""
    names = tuple(dict.fromkeys(pool.strip() for pool in pools))
    if not names:
        raise UserError("pool: at least one pool")
    for name in names:
        if not POOL.match(name):
            raise UserError(f"pool: {name!r} is not a pool name (1-64 of A-Z a-z 0-9 . _ -)")
    return names


def check_new_user(username: str, password: str, role: str, locale: str) -> None:
    if not USERNAME.match(username):
        raise UserError("username: 1-64 of a-z 0-9 . _ - starting with a letter or digit")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}")
    if locale not in LOCALES:
        raise UserError(f"locale: one of {', '.join(LOCALES)}")


async def create_user(
    connection: Connection | asyncpg.Pool,
    username: str,
    password: str,
    *,
    role: str = "collector",
    display_name: str = "",
    locale: str = "zh-CN",
    pools: Sequence[str] = DEFAULT_POOLS,
) -> User:
    """Create a user; raises UserError for a bad field or a username already taken."""
    username = normalize_username(username)
    check_new_user(username, password, role, locale)
    pool_names = normalize_pools(pools)
    row = await connection.fetchrow(
        "INSERT INTO users (username, password_hash, role, display_name, locale, pools) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING RETURNING *",
        username,
        hash_password(password),
        role,
        display_name.strip(),
        locale,
        list(pool_names),
    )
    if row is None:
        raise UserError(f"username: {username!r} already exists")
    return _user(row)


async def get_user(pool: asyncpg.Pool, user_id: int) -> User | None:
    """An active user by id (None when unknown or deactivated)."""
    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1 AND active", user_id)
    return _user(row) if row is not None else None


async def set_locale(pool: asyncpg.Pool, user_id: int, locale: str) -> None:
    if locale not in LOCALES:
        raise UserError(f"locale: must be one of {', '.join(LOCALES)}")
    await pool.execute("UPDATE users SET locale = $2 WHERE id = $1", user_id, locale)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked_until: datetime | None = None  # set when the account is (now) locked


async def authenticate(
    pool: asyncpg.Pool, username: str, password: str, *, max_failures: int, lockout_seconds: int
) -> LoginResult:
    """Check a password, counting failures: `max_failures` in a row lock the account for `lockout_seconds`.

    While locked, no password is checked at all (not even the right one). The counters change in one
    statement under a row lock, so concurrent guesses cannot slip past the limit.
    """
    username = normalize_username(username)
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT *, locked_until > now() AS locked FROM users WHERE username = $1 AND active FOR UPDATE",
            username,
        )
        if row is None:
            _verify(_DUMMY_HASH, password)
            return LoginResult(None)
        if row["locked"]:
            return LoginResult(None, row["locked_until"])
        if _verify(row["password_hash"], password):
            new_hash = hash_password(password) if _hasher.check_needs_rehash(row["password_hash"]) else None
            await connection.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = now(), "
                "password_hash = coalesce($2, password_hash) WHERE id = $1",
                row["id"],
                new_hash,
            )
            return LoginResult(_user(row))
        locked_until = await connection.fetchval(
            "UPDATE users SET "
            "failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END, "
            "locked_until = CASE WHEN failed_logins + 1 >= $2 "
            "    THEN now() + make_interval(secs => $3) ELSE locked_until END "
            "WHERE id = $1 RETURNING locked_until",
            row["id"],
            max_failures,
            float(lockout_seconds),
        )
        return LoginResult(None, locked_until)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- the command ---------------------------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError("password: the two entries differ")
    return first


async def _create(args: argparse.Namespace, password: str) -> User:
    from stack.embedded import resolve_database_url
    from stack.migrate import apply_migrations
    from stack.settings import Settings

    resolved = await resolve_database_url(Settings())
    try:
        await apply_migrations(resolved.url)
        connection = await asyncpg.connect(resolved.url)
        try:
            return await create_user(
                connection,
                args.username,
                password,
                role=args.role,
                display_name=args.display_name,
                locale=args.locale,
                pools=args.pool or DEFAULT_POOLS,
            )
        finally:
            await connection.close()
    finally:
        if resolved.server is not None and resolved.server.started_here:
            await resolved.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin.users", description="Manage admin UI users.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a user (password from a prompt or --password-stdin)")
    create.add_argument("username")
    create.add_argument("--role", choices=ROLES, default="collector")
    create.add_argument("--display-name", default="")
    create.add_argument("--locale", choices=LOCALES, default="zh-CN")
    create.add_argument(
        "--pool",
        action="append",
        metavar="NAME",
        help="a pool of collector tasks the user works (repeatable; default: 'default')",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    args = parser.parse_args(argv)
    try:
        password = _read_password(args.password_stdin)
        check_new_user(normalize_username(args.username), password, args.role, args.locale)
        normalize_pools(args.pool or DEFAULT_POOLS)
        user = asyncio.run(_create(args, password))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"created {user.role} {user.username} (id {user.id}, pools {', '.join(user.pools)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
