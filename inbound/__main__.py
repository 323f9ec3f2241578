"""`python -m inbound`: serve the inbound webhooks on OVERDUE_INBOUND_HOST:PORT (default 127.0.0.1:8031).

PostgreSQL is DATABASE_URL and Temporal TEMPORAL_ADDRESS, as for the admin UI; SMS replies (confirmation,
help) go through OVERDUE_SMS_GATEWAY_URL. Each provider needs OVERDUE_INBOUND_{SMS,EMAIL,PUSH}_SECRET or
_API_KEY; without one its endpoint refuses every call.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from inbound.settings import PROVIDERS, InboundSettings


async def serve() -> int:
    from activities.db import create_pool
    from inbound.app import build_app
    from inbound.runtime import InboundServer, build_service
    from stack.settings import Settings
    from starter.api import CollectionsStarter
    from starter.connect import connect

    settings, inbound = Settings(), InboundSettings()
    if not settings.database_url:
        print("inbound: set DATABASE_URL (make run serves the inbound app itself)", file=sys.stderr)
        return 2
    missing = [p for p in PROVIDERS if inbound.secret(p) is None and inbound.api_key(p) is None]
    if len(missing) == len(PROVIDERS):
        print("inbound: no provider has a secret or API key (OVERDUE_INBOUND_*_SECRET)", file=sys.stderr)
        return 2
    pool = await create_pool(settings.database_url, max_size=settings.db_pool_max)
    try:
        client = await connect(settings, pool=pool)
        starter = CollectionsStarter(client, task_queue=settings.task_queue, settings=settings)
        service, router = build_service(settings, inbound, pool, starter)
        server = InboundServer(build_app(service, inbound), inbound.inbound_host, inbound.inbound_port)
        await server.start()
        print(f"inbound webhooks on {server.url} (refusing: {', '.join(missing) or 'none'})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        await router.aclose()
    finally:
        await pool.close()
    return 0


def main() -> int:
    return asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
