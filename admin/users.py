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
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import asyncpg
from argon2 import PasswordHasher

from activities.db import Connection
from admin.passwords import check_password

Role = Literal["collector", "supervisor", "admin"]
Locale = Literal["zh-CN", "en"]
ROLES: tuple[Role, ...] = get_args(Role)
LOCALES: tuple[Locale, ...] = get_args(Locale)
RANK: dict[str, int] = {"collector": 0, "supervisor": 1, "admin": 2}

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
POOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_POOLS: tuple[str, ...] = ("default",)

_hasher = PasswordHasher()


def password_hasher() -> PasswordHasher:
    return _hasher


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


def user_from_row(row: asyncpg.Record) -> User:
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
    problems = check_password(password, username=username)
    if problems:
        raise UserError("; ".join(f"{field}: {reason}" for field, reason in problems))
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
    return user_from_row(row)


async def get_user(pool: asyncpg.Pool, user_id: int) -> User | None:
    """An active user by id (None when unknown or deactivated)."""
    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1 AND active", user_id)
    return user_from_row(row) if row is not None else None


async def set_locale(pool: asyncpg.Pool, user_id: int, locale: str) -> None:
    if locale not in LOCALES:
        raise UserError(f"locale: must be one of {', '.join(LOCALES)}")
    await pool.execute("UPDATE users SET locale = $2 WHERE id = $1", user_id, locale)


# -- the command ---------------------------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError("password: the two entries differ")
    return first


def generated_password(username: str) -> str:
    """A random password that passes the policy (printed once by reset-password, stored nowhere)."""
    while True:
        password = secrets.token_urlsafe(15)
        if not check_password(password, username=username):
            return password


def operator() -> str:
    """Who runs the command, for the audit: the OS user (never a password or a token)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"cli:{name}"


async def _run(args: argparse.Namespace, password: str | None) -> str:
    from admin import accounts
    from stack.embedded import resolve_database_url
    from stack.migrate import apply_migrations
    from stack.settings import Settings

    actor = operator()
    resolved = await resolve_database_url(Settings())
    try:
        await apply_migrations(resolved.url)
        connection = await asyncpg.connect(resolved.url)
        try:
            if args.command == "create":
                assert password is not None
                async with connection.transaction():
                    user = await create_user(
                        connection,
                        args.username,
                        password,
                        role=args.role,
                        display_name=args.display_name,
                        locale=args.locale,
                        pools=args.pool or DEFAULT_POOLS,
                    )
                    row = {"id": user.id, "username": user.username}
                    created = {"role": user.role, "pools": list(user.pools), "locale": user.locale}
                    await accounts.audit(connection, actor, row, "create", None, created)
                return f"created {user.role} {user.username} (id {user.id}, pools {', '.join(user.pools)})"
            if args.command in ("deactivate", "reactivate"):
                user = await accounts.set_active(
                    connection, args.username, args.command == "reactivate", actor=actor
                )
                return f"{args.command}d {user.username}"
            if args.command == "reset-password":
                assert password is not None
                ended = await accounts.reset_password(connection, args.username, password, actor=actor)
                return f"password of {normalize_username(args.username)} reset; {ended} session(s) ended"
            if args.command == "set-role":
                user = await accounts.set_role(connection, args.username, args.role, actor=actor)
                return f"{user.username} is now {user.role}"
            if args.command == "set-pools":
                user = await accounts.set_pools(connection, args.username, args.pool, actor=actor)
                return f"{user.username} works the pools {', '.join(user.pools)}"
            if args.command == "logout-everywhere":
                ended = await accounts.logout_everywhere(connection, args.username, actor=actor)
                return f"{ended} session(s) of {normalize_username(args.username)} ended"
            if args.command == "disable-totp":
                await accounts.disable_totp(connection, args.username, actor=actor)
                return f"second factor of {normalize_username(args.username)} removed"
            lines = [f"{'username':<24} {'role':<10} {'active':<6} {'totp':<4} {'sessions':>8}  pools"]
            for account in await accounts.list_accounts(connection):
                user = account.user
                lines.append(
                    f"{user.username:<24} {user.role:<10} {'yes' if user.active else 'no':<6} "
                    f"{'yes' if account.totp else 'no':<4} {account.open_sessions:>8}  "
                    + ", ".join(user.pools)
                )
            return "\n".join(lines)
        finally:
            await connection.close()
    finally:
        if resolved.server is not None and resolved.server.started_here:
            await resolved.server.stop()


def _parser() -> argparse.ArgumentParser:
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
    for name, text in (
        ("deactivate", "stop a user: their sessions end now and they cannot log in"),
        ("reactivate", "let a deactivated user log in again"),
        ("logout-everywhere", "end every session of a user"),
        ("disable-totp", "remove a user's second factor (a lost phone)"),
    ):
        commands.add_parser(name, help=text).add_argument("username")
    reset = commands.add_parser(
        "reset-password", help="a new password (from --password-stdin, else generated and printed once)"
    )
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="read it from the first line of stdin")
    role = commands.add_parser("set-role", help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    pools = commands.add_parser("set-pools", help="replace a user's pools")
    pools.add_argument("username")
    pools.add_argument("pool", nargs="+", metavar="POOL")
    commands.add_parser("list", help="every user: role, active, second factor, open sessions, pools")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Run as `python -m admin.users`, this module is __main__; admin.accounts raises admin.users.UserError.
    from admin import users as imported

    errors = (UserError, imported.UserError)
    args = _parser().parse_args(argv)
    password: str | None = None
    generated = False
    try:
        if args.command == "create":
            password = _read_password(args.password_stdin)
            check_new_user(normalize_username(args.username), password, args.role, args.locale)
            normalize_pools(args.pool or DEFAULT_POOLS)
        elif args.command == "reset-password":
            generated = not args.password_stdin
            password = _read_password(True) if args.password_stdin else generated_password(args.username)
        elif args.command == "set-pools":
            normalize_pools(args.pool)
        message = asyncio.run(_run(args, password))
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(message)
    if generated:
        print(f"new password (shown once, give it to the user privately): {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
