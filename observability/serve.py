"""Serving the business metrics: their own HTTP port, beside the SDK's.

The SDK's Prometheus endpoint (OVERDUE_METRICS_PORT, stack/worker_runtime.py) is served by the SDK's Rust
core, which offers no way to add Python metrics to it; so the business registry has its own port,
OVERDUE_BUSINESS_METRICS_PORT, and Prometheus scrapes both (deploy/monitoring, README "Metrics and alerts").
The same process also refreshes the stuck-loans gauge every OVERDUE_STUCK_LOANS_INTERVAL_SECONDS; run it in
every worker (each counts what it writes; the gauge is the same query everywhere: aggregate it with max).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from prometheus_client import start_http_server
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from observability import stuck
from observability.metrics import REGISTRY


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    business_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # How long past its wake time a loan may go without a new snapshot before it counts as stuck: one
    # wake-up's work (messages, the journal batch) plus ordinary task-queue delays.
    stuck_loans_grace_seconds: float = Field(default=900, gt=0)
    stuck_loans_interval_seconds: float = Field(default=60, gt=0)


@dataclass
class BusinessMetrics:
    address: str
    _server: Any
    _thread: Any
    _watch: asyncio.Task[None] | None

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_business_metrics(
    pool: asyncpg.Pool | None,
    settings: ObservabilitySettings | None = None,
    host: str = "0.0.0.0",
) -> BusinessMetrics | None:
    """Serve the business registry on `host:business_metrics_port` and, with a pool, refresh the stuck-loans
    gauge in the background (call from a running event loop). None when the port is unset."""
    settings = settings or ObservabilitySettings()
    if settings.business_metrics_port is None:
        return None
    server, thread = start_http_server(settings.business_metrics_port, addr=host, registry=REGISTRY)
    watch = None
    if pool is not None:
        watch = asyncio.get_running_loop().create_task(
            stuck.watch(
                pool,
                grace=timedelta(seconds=settings.stuck_loans_grace_seconds),
                every=timedelta(seconds=settings.stuck_loans_interval_seconds),
            ),
            name="stuck-loans-gauge",
        )
    address = f"{host}:{server.server_address[1]}"
    return BusinessMetrics(address=address, _server=server, _thread=thread, _watch=watch)
