"""How fast the portfolio page is on 100,000 loans: seed, log in, request a mix of searches, print p50/p95.

    python -m bench.portfolio                       # a throw-away embedded PostgreSQL, 100,000 loans
    python -m bench.portfolio --count 20000 --rounds 5
    DATABASE_URL=postgresql://... python -m bench.portfolio   # an existing database (rows are added to it)

Each request goes through the real app (admin.app.create_app) over ASGI in this process: session cookie,
user lookup, the search and its count, rendering the page. Requests run one at a time (one collector), so
the figures are latency, not throughput. Kinds are interleaved so a slow moment hits every kind alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import cast

import httpx

from activities.db import create_pool
from admin.app import Services, create_app
from admin.portfolio_query import DPD_BUCKETS
from admin.settings import AdminSettings
from admin.users import create_user
from bench.seed_portfolio import migrated_database, seed_portfolio
from starter.api import CollectionsStarter

PASSWORD = "timing-run password, not a secret"

# kind → the query strings it cycles through (a round requests one of each kind).
KINDS: dict[str, list[dict[str, str]]] = {
    "no filter": [{}],
    "stage": [{"stage": s} for s in ("reminder", "deep_contact", "agency", "legal")],
    "dpd bucket": [{"dpd": b} for b in DPD_BUCKETS],
    "name search": [{"q": q} for q in ("smith", "王伟", "patel", "秀英", "jo", "williams")],
    "loan id": [{"q": q} for q in ("BENCH-00042", "bench-0001", "BENCH-0099999")],
    "amount range": [
        {"amount_min": "1000", "amount_max": "5000"},
        {"amount_min": "20000"},
        {"amount_max": "100", "sort": "amount"},
    ],
    "combined": [
        {"stage": "legal", "segment": "high_risk", "hold": "none"},
        {"dpd": "31-60", "agency": "none", "amount_min": "500"},
        {"agency": "any", "sort": "amount", "status": "all"},
    ],
    "deep page": [{"page": p} for p in ("40", "200", "800", "1500")],
}


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(database: str, count: int, rounds: int, seed: bool) -> dict[str, list[float]]:
    pool = await create_pool(database, max_size=10)
    try:
        if seed:
            async with pool.acquire() as connection:
                started = time.perf_counter()
                await seed_portfolio(connection, count)
                print(f"seeded {count:,} portfolio rows in {time.perf_counter() - started:.1f} s")
        username = f"bench-{uuid.uuid4().hex[:8]}"
        # A supervisor: they see every pool (a collector would see only the pools given to them).
        await create_user(pool, username, PASSWORD, role="supervisor", display_name="Bench", locale="en")
        settings = AdminSettings(secret_key="b" * 40)
        # The portfolio page never reaches a workflow: no Temporal client.
        app = create_app(settings, services=Services(pool, cast(CollectionsStarter, None)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await login(client, username)
            csrf = await _csrf_token(client)
            for params in [p for variants in KINDS.values() for p in variants]:  # warm up: plans, caches
                await _get(client, params, csrf)
            timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for round_number in range(rounds):
                for kind, variants in KINDS.items():
                    params = variants[round_number % len(variants)]
                    started = time.perf_counter()
                    await _get(client, params, csrf)
                    timings[kind].append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        await pool.close()


async def _csrf_token(client: httpx.AsyncClient) -> str:
    """The session's CSRF token, read from a page (it is bound to the session)."""
    page = await client.get("/portfolio")
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> None:
    """Log `client` in to the admin UI as `username` (the login form with its CSRF cookie)."""
    page = await client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )
    if response.status_code != 303:
        raise RuntimeError(f"login failed: {response.status_code}")


async def _get(client: httpx.AsyncClient, params: dict[str, str], csrf: str) -> None:
    """One portfolio page: free text (a name or loan id) is posted, as the search form does, never in the
    address; the other filters are a GET."""
    if "q" in params:
        response = await client.post("/portfolio", data={**params, "csrf_token": csrf})
    else:
        response = await client.get("/portfolio", params=params)
    if response.status_code != 200:
        raise RuntimeError(f"/portfolio {params}: {response.status_code}")


def report(timings: dict[str, list[float]]) -> str:
    lines = [f"{'kind':<14}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"]
    every: list[float] = []
    for kind, samples in timings.items():
        every += samples
        lines.append(
            f"{kind:<14}{len(samples):>5}{statistics.median(samples):>9.1f}"
            f"{_percentile(samples, 0.95):>9.1f}{max(samples):>9.1f}"
        )
    lines.append(
        f"{'overall':<14}{len(every):>5}{statistics.median(every):>9.1f}"
        f"{_percentile(every, 0.95):>9.1f}{max(every):>9.1f}"
    )
    return "\n".join(lines)


async def _main(count: int, rounds: int) -> None:
    url = os.environ.get("DATABASE_URL") or None
    async with migrated_database(url) as database:
        timings = await run(database, count, rounds, seed=count > 0)
    print(report(timings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="portfolio rows to seed (0: none)")
    parser.add_argument("--rounds", type=int, default=25, help="requests per kind (8 kinds)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.count, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
