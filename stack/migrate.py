"""Schema migrations: the numbered `migrations/*.sql` files, applied once each, in order.

Each file runs in its own transaction together with its row in `schema_migrations`, so a failing file leaves
nothing half-applied and is tried again next time. A session-level advisory lock makes concurrent callers
(several workers starting at once) wait for each other instead of racing; the second finds nothing to do.
A file already applied whose text has since changed is an error: fix forward with a new file.

`python -m stack.migrate` migrates the database named by DATABASE_URL (the embedded stack migrates its own).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

import asyncpg

from stack.settings import ROOT, Settings

MIGRATIONS_DIR = ROOT / "migrations"

# Any constant bigint shared by every process of this product; "overdue" in ASCII.
ADVISORY_LOCK_KEY = 0x6F76657264756500

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    sha256     char(64) NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration that cannot be applied as the files say (edited after it ran, or a failing statement)."""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The *.sql files in name order (0001_..., 0002_...)."""
    return sorted(directory.glob("*.sql"), key=lambda p: p.name)


async def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; return the names applied now (empty when up to date)."""
    files = migration_files(directory)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _apply(connection, files)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await connection.close()


async def _apply(connection: asyncpg.Connection, files: list[Path]) -> list[str]:
    await connection.execute(_CREATE_LEDGER)
    rows = await connection.fetch("SELECT name, sha256 FROM schema_migrations")
    applied = {row["name"]: row["sha256"] for row in rows}
    done: list[str] = []
    for path in files:
        sql = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        if path.name in applied:
            if applied[path.name] != digest:
                raise MigrationError(
                    f"{path.name} was applied with sha256 {applied[path.name]} but the file now hashes to "
                    f"{digest}: do not edit an applied migration, add a new numbered file instead"
                )
            continue
        try:
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)", path.name, digest
                )
        except asyncpg.PostgresError as error:
            raise MigrationError(f"{path.name}: {type(error).__name__}: {error}") from error
        done.append(path.name)
    return done


def main() -> int:
    database_url = Settings().database_url
    if not database_url:
        print(
            "stack.migrate: DATABASE_URL is not set. Set it (or OVERDUE_DATABASE_URL) to the PostgreSQL to "
            "migrate, e.g. postgresql://overdue:secret@db:5432/overdue; the embedded stack (make run) "
            "migrates its own database.",
            file=sys.stderr,
        )
        return 2
    try:
        applied = asyncio.run(apply_migrations(database_url))
    except MigrationError as error:
        print(f"stack.migrate: {error}", file=sys.stderr)
        return 1
    if applied:
        print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        print("database schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
