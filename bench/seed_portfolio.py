"""Seed the portfolio read model (migrations/0008) with N believable rows, fast (COPY).

    python -m bench.seed_portfolio                      # 100,000 rows into a throw-away embedded PostgreSQL
    DATABASE_URL=postgresql://... python -m bench.seed_portfolio --count 20000

Rows are deterministic for a seed and a day: ids BENCH-0000001..., Chinese, US and UK borrowers (fake names),
DPD 0-400 with most loans early, the stage that DPD reaches under the default strategy, a mix of segments,
strategies, agencies, holds, promises and closed collections. Only the `portfolio` table is written; loans
have no workflow, so their dossiers do not open.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from stack.embedded import EmbeddedPostgres
from stack.migrate import apply_migrations

COLUMNS = (
    "loan_id",
    "borrower_name",
    "jurisdiction",
    "timezone",
    "locale",
    "currency",
    "segment",
    "strategy",
    "stage",
    "outcome",
    "overdue_since",
    "amount_overdue_minor",
    "principal_outstanding_minor",
    "paid_total_minor",
    "hold",
    "agency_id",
    "open_promise_due",
    "broken_promises",
    "clock_real_anchor",
    "clock_collections_anchor",
    "clock_speed",
    "as_of",
)

CN_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗".split()
CN_GIVEN = "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 建华 志强 晓东".split()
EN_FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Oliver Amelia Harry Isla George Ava Noah Emily Jack Sophie"
).split()
EN_LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Wilson Anderson Taylor Thomas "
    "Moore Jackson Martin Lee Walker Hall Evans Wright Roberts Hughes Edwards Green Clarke Patel Wood Turner"
).split()
REGIONS = (  # jurisdiction, zones, locale, currency, weight
    ("cn", ("Asia/Shanghai",), "zh-CN", "CNY", 60),
    ("us", ("America/New_York", "America/Los_Angeles"), "en", "USD", 25),
    ("uk", ("Europe/London",), "en", "GBP", 15),
)
SEGMENTS = (("standard", 55), ("high_risk", 20), ("low_risk_small", 15), ("high_balance", 10))
STRATEGIES = (("default", 85), ("gentle", 10), ("pilot-2025", 5))
AGENCIES = ("east-recovery", "north-credit", "west-field")
OUTCOMES = ("paid", "paid", "paid", "written_off", "closed_by_servicing", "litigation", "bankruptcy")


def stage_at(dpd: int) -> str:
    """The stage the default strategy reaches at `dpd` (near enough for a benchmark)."""
    if dpd < 15:
        return "reminder"
    if dpd < 45:
        return "deep_contact"
    if dpd < 60:
        return "agency"
    if dpd < 180:
        return "legal"
    return "closed"


def _weighted(rng: random.Random, options: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return rng.choices(options, weights=[option[-1] for option in options])[0]


def portfolio_rows(count: int, *, seed: int = 1, today: date | None = None) -> Iterator[tuple[Any, ...]]:
    """`count` rows in COLUMNS order, the same for the same seed and day."""
    rng = random.Random(seed)
    today = today or date.today()
    now = datetime.now(UTC)
    for number in range(1, count + 1):
        jurisdiction, zones, locale, currency, _ = _weighted(rng, REGIONS)
        if jurisdiction == "cn":
            name = rng.choice(CN_SURNAMES) + rng.choice(CN_GIVEN)
        else:
            name = f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"
        # Most loans are early: DPD is exponential-ish, with a long tail to 400.
        dpd = min(400, int(rng.expovariate(1 / 35)))
        segment = _weighted(rng, SEGMENTS)[0]
        scale = 100 if currency == "CNY" else 15
        amount = int(rng.lognormvariate(8.3, 1.0) * scale) + 100
        if segment == "high_balance":
            amount *= 8
        principal = amount * rng.randint(3, 12)
        outcome = rng.choice(OUTCOMES) if rng.random() < 0.15 else None
        stage = "closed" if outcome == "written_off" else stage_at(dpd)
        hold = None
        draw = rng.random()
        if draw < 0.04:
            hold = f"hardship hold until {today + timedelta(days=rng.randint(1, 60)):%Y-%m-%d}"
        elif draw < 0.07:
            hold = "dispute"
        agency = (
            rng.choice(AGENCIES) if stage == "agency" or (stage == "legal" and rng.random() < 0.3) else None
        )
        promise = (
            today + timedelta(days=rng.randint(0, 14)) if outcome is None and rng.random() < 0.1 else None
        )
        anchor = now - timedelta(days=rng.randint(0, 30), seconds=rng.randint(0, 86_399))
        yield (
            f"BENCH-{number:07d}",
            name,
            jurisdiction,
            rng.choice(zones),
            locale,
            currency,
            segment,
            _weighted(rng, STRATEGIES)[0],
            stage,
            outcome,
            today - timedelta(days=dpd),
            0 if outcome == "paid" else amount,
            principal,
            amount if outcome == "paid" else rng.randint(0, principal // 4),
            hold,
            agency,
            promise,
            rng.choices((0, 1, 2), weights=(85, 10, 5))[0],
            anchor,
            anchor,
            1.0,
            now,
        )


async def seed_portfolio(
    connection: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, count: int, *, seed: int = 1
) -> None:
    """Write `count` rows with COPY (asyncpg streams the rows as they are made), then ANALYZE (the planner
    needs the statistics at once)."""
    await connection.copy_records_to_table(
        "portfolio", records=portfolio_rows(count, seed=seed), columns=COLUMNS
    )
    await connection.execute("ANALYZE portfolio")


@asynccontextmanager
async def migrated_database(url: str | None = None) -> AsyncIterator[str]:
    """`url` migrated, or a database on a throw-away embedded PostgreSQL (stopped and deleted afterwards)."""
    if url:
        await apply_migrations(url)
        yield url
        return
    base = Path(tempfile.mkdtemp(prefix="overdue-bench-pg-"))
    try:
        async with EmbeddedPostgres(base / "pgdata", database="overdue_bench") as server:
            await apply_migrations(server.url)
            yield server.url
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _main(count: int, seed: int, url: str | None, keep: bool) -> None:
    async with migrated_database(url) as database:
        connection = await asyncpg.connect(database)
        try:
            started = time.perf_counter()
            await seed_portfolio(connection, count, seed=seed)
            elapsed = time.perf_counter() - started
            total = await connection.fetchval("SELECT count(*) FROM portfolio")
        finally:
            await connection.close()
        print(f"seeded {count:,} rows in {elapsed:.1f} s ({total:,} in portfolio)")
        if keep and not url:
            print(f"database: {database} (Ctrl-C to stop and delete it)")
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="keep the embedded database running until Ctrl-C (to explore it)"
    )
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or None
    try:
        asyncio.run(_main(args.count, args.seed, url, args.keep))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
