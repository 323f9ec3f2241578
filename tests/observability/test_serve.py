"""The business metrics are served on their own port (the SDK's endpoint cannot carry them)."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import asyncpg

from observability.serve import ObservabilitySettings, start_business_metrics


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_no_port_serves_nothing() -> None:
    assert start_business_metrics(None, ObservabilitySettings(business_metrics_port=None)) is None


async def test_the_registry_and_the_stuck_gauge_are_served(own_db_pool: asyncpg.Pool) -> None:
    port = _free_port()
    served = start_business_metrics(
        own_db_pool, ObservabilitySettings(business_metrics_port=port), host="127.0.0.1"
    )
    assert served is not None and served.address == f"127.0.0.1:{port}"
    try:
        for _ in range(100):  # the watcher's first refresh runs as soon as the loop lets it
            text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
            if 'overdue_stuck_loans{stage="reminder"} 0.0' in text:
                break
            await asyncio.sleep(0.05)
        assert "# TYPE overdue_journal_entries_total counter" in text
        assert 'overdue_stuck_loans{stage="reminder"} 0.0' in text
        assert "temporal_" not in text and "python_gc" not in text  # only the business registry
    finally:
        await served.aclose()
