"""`python -m admin`: serve the admin UI with uvicorn on OVERDUE_ADMIN_HOST:PORT (default 127.0.0.1:8000).

PostgreSQL is DATABASE_URL (else the embedded one in OVERDUE_STATE_DIR, as `make run` uses) and Temporal is
TEMPORAL_ADDRESS (else localhost:7233); migrations are applied at start like a worker does.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from admin.app import Services, create_app
from admin.settings import AdminSettings
from stack.settings import Settings


@asynccontextmanager
async def open_services() -> AsyncIterator[Services]:
    from activities.db import create_pool
    from stack.embedded import resolve_database_url
    from stack.migrate import apply_migrations
    from starter.api import CollectionsStarter
    from starter.connect import connect

    settings = Settings()
    database = await resolve_database_url(settings)
    try:
        await apply_migrations(database.url)
        pool = await create_pool(database.url, max_size=settings.db_pool_max)
        try:
            client = await connect(settings, pool=pool)  # the pool holds the codec's loan data keys
            starter = CollectionsStarter(client, task_queue=settings.task_queue, settings=settings)
            yield Services(pool, starter)
        finally:
            await pool.close()
    finally:
        if database.server is not None and database.server.started_here:
            await database.server.stop()


def main() -> int:
    settings = AdminSettings()
    if not settings.secret_key:
        print(
            "warning: OVERDUE_ADMIN_SECRET_KEY is unset: the TOTP second factor cannot be enrolled or used "
            "(sessions are server-side and need no key)",
            file=sys.stderr,
        )
    app = create_app(settings, open_services=open_services)
    # No access log: its URLs carry search text (`/portfolio?q=<borrower name>`), which is PII.
    uvicorn.run(
        app, host=settings.host, port=settings.port, proxy_headers=True, log_level="info", access_log=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
