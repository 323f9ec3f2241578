"""PostgreSQL for the commands that read it (documents, agencies): DATABASE_URL or the embedded server.

The embedded server is started only if `make run` left its data folder, and stopped again if this command
started it; a database without the needed tables gets a hint to migrate instead of a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from activities.db import create_pool
from stack.embedded import EmbeddedServerError, redact_url, resolve_database_url
from stack.settings import Settings

EXIT_FAILED = 1


class CommandFailed(Exception):
    """A problem to print on stderr, with the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        self.code = code
        super().__init__(message)


@asynccontextmanager
async def command_database(settings: Settings, *, missing_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A one-connection pool; `missing_schema` says what a database without the tables lacks."""
    if settings.embedded_postgres and not (settings.state_dir / "pgdata").exists():
        raise CommandFailed(
            f"error: no database: DATABASE_URL is not set and there is no embedded PostgreSQL in "
            f"{settings.state_dir / 'pgdata'} (start the stack with `make run`, or set DATABASE_URL)"
        )
    try:
        resolved = await resolve_database_url(settings)
    except EmbeddedServerError as error:
        raise CommandFailed(f"error: {error}") from error
    try:
        try:
            pool = await create_pool(resolved.url, min_size=1, max_size=1)
        except (OSError, asyncpg.PostgresError) as error:
            raise CommandFailed(
                f"error: cannot reach PostgreSQL at {redact_url(resolved.url)}: {error}"
            ) from error
        try:
            yield pool
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as error:
            raise CommandFailed(
                f"error: the database {missing_schema} ({error}); migrate it first: python -m stack.migrate"
            ) from error
        finally:
            await pool.close()
    finally:
        if resolved.server is not None and resolved.server.started_here:
            await resolved.server.stop()
