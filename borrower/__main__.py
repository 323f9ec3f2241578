"""`python -m borrower`: the borrower page on OVERDUE_BORROWER_HOST:OVERDUE_BORROWER_PORT (README "Borrower
page"): DATABASE_URL, Temporal (the same settings as the worker), the page's signing key (role borrower),
the channels that deliver codes, and the payment provider when configured."""

from __future__ import annotations

import asyncio

import uvicorn

from activities.channels import build_router
from activities.db import create_pool
from borrower.app import Services, create_app
from borrower.serve import borrower_signer, payments_for
from borrower.settings import BorrowerSettings
from stack.logs import configure_logging
from stack.settings import Settings
from starter.api import CollectionsStarter
from starter.connect import connect


async def main() -> None:
    configure_logging()
    settings = Settings()
    page = BorrowerSettings()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set: the borrower page reads its links there")
    pool = await create_pool(settings.database_url)
    client = await connect(settings, pool=pool)
    services = Services(
        pool,
        CollectionsStarter(
            client, task_queue=settings.task_queue, settings=settings, signer=borrower_signer()
        ),
        build_router(settings),
        payments_for(pool, client, settings),
        page,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(services), host=page.host, port=page.port))
    try:
        await server.serve()
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
