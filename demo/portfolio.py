"""A believable, deterministic demo portfolio of overdue consumer loans (fake people, valid data).

    python -m demo.portfolio --count 300 --out loans.jsonl  # then: python -m starter start --file loans.jsonl
    python -m demo.portfolio --count 300 --start            # or start them on Temporal directly

Same seed and day, same loans: ids DEMO-0001..., Chinese borrowers (+86 mobiles, Asia/Shanghai, CNY) beside US
(USD, New York / Los Angeles) and UK (GBP, London) ones; DPD 0-120, most of them early; risk grades A-E and
balances chosen so every segment of the default strategy (high_balance, high_risk, low_risk_small, standard)
has loans. Phone numbers for the US and UK are in the ranges reserved for fiction (555-01xx, 07700 900xxx);
e-mails are at example.com / example.cn. Most borrowers have a made-up postal address of their region (every
seventh has none, so visits and registered letters show the "trace the address" task).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, TypeVar

from domain.loan import Borrower, Instalment, Loan, RiskGrade
from starter.api import CollectionsStarter, StartFailed, summarize

Region = Literal["cn", "us", "uk"]
Profile = Literal["high_balance", "high_risk", "low_risk_small", "standard"]

# hanzi:pinyin (pinyin for the e-mail address)
_CN_SURNAMES = [tuple(pair.split(":")) for pair in (
    "王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 黄:huang 赵:zhao 吴:wu 周:zhou "
    "徐:xu 孙:sun 马:ma 朱:zhu 胡:hu 郭:guo 何:he 高:gao 林:lin 罗:luo"
).split()]  # fmt: skip
_CN_GIVEN = [tuple(pair.split(":")) for pair in (
    "伟:wei 芳:fang 娜:na 秀英:xiuying 敏:min 静:jing 丽:li 强:qiang 磊:lei 军:jun "
    "洋:yang 勇:yong 艳:yan 杰:jie 娟:juan 涛:tao 明:ming 超:chao 秀兰:xiulan 霞:xia "
    "平:ping 刚:gang 桂英:guiying 建华:jianhua 志强:zhiqiang 晓东:xiaodong 海燕:haiyan "
    "子涵:zihan 雨轩:yuxuan 浩然:haoran"
).split()]  # fmt: skip
_EN_FIRST = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Noah", "Emily", "Jack", "Sophie",
]  # fmt: skip
_EN_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Walker", "Hall",
    "Evans", "Wright", "Roberts", "Hughes", "Edwards", "Green", "Clarke", "Patel", "Wood", "Turner",
]  # fmt: skip

# Made-up postal addresses: real city districts and postcode areas, invented street numbers and flats.
_CN_STREETS = [
    ("北京市朝阳区建国路", "100022"), ("上海市浦东新区世纪大道", "200120"), ("广州市天河区天河路", "510620"),
    ("深圳市南山区科技园路", "518057"), ("杭州市西湖区文三路", "310012"), ("成都市武侯区人民南路", "610041"),
]  # fmt: skip
_US_STREETS = {
    "America/New_York": [
        ("Maple Avenue", "Brooklyn, NY", "112"),
        ("West 86th Street", "New York, NY", "100"),
        ("Ponce de Leon Avenue", "Atlanta, GA", "303"),
        ("Biscayne Boulevard", "Miami, FL", "331"),
    ],
    "America/Los_Angeles": [
        ("Sunset Boulevard", "Los Angeles, CA", "900"),
        ("Valencia Street", "San Francisco, CA", "941"),
        ("Pine Street", "Seattle, WA", "981"),
        ("Hawthorne Boulevard", "Portland, OR", "972"),
    ],
}
_UK_STREETS = [
    ("Mare Street", "London", "E8"),
    ("Coldharbour Lane", "London", "SE5"),
    ("Holloway Road", "London", "N7"),
    ("Deansgate", "Manchester", "M3"),
    ("Corporation Street", "Birmingham", "B4"),
    ("Park Row", "Leeds", "LS1"),
]
_WITHOUT_ADDRESS_EVERY = 7

_US_ZONES = [("America/New_York", ["212", "646", "718", "917", "305", "404"]),
             ("America/Los_Angeles", ["213", "310", "323", "415", "206", "503"])]  # fmt: skip

_CURRENCY: dict[Region, str] = {"cn": "CNY", "us": "USD", "uk": "GBP"}
_LENDER: dict[Region, str] = {
    "cn": "Overdue Demo Consumer Finance",
    "us": "Overdue Demo Lending, Inc.",
    "uk": "Overdue Demo Finance Ltd",
}
# Arrears ranges in minor units per currency, on either side of the default strategy's segment thresholds:
# low_risk_small <= CNY 3,000 / USD 500 / GBP 400; high_balance >= CNY 50,000 / USD 7,000 / GBP 6,000.
_SMALL = {"CNY": (30_000, 300_000), "USD": (5_000, 50_000), "GBP": (4_000, 40_000)}
_MID = {"CNY": (300_100, 4_800_000), "USD": (50_100, 680_000), "GBP": (40_100, 580_000)}
_HIGH = {"CNY": (5_000_000, 30_000_000), "USD": (700_000, 4_000_000), "GBP": (600_000, 3_000_000)}

_PROFILES: list[tuple[Profile, int]] = [
    ("standard", 40),
    ("high_risk", 25),
    ("low_risk_small", 25),
    ("high_balance", 10),
]
_REGIONS: list[tuple[Region, int]] = [("cn", 60), ("us", 25), ("uk", 15)]
# DPD buckets (low, high, weight): most loans are early in collections, a tail reaches legal.
_DPD_BUCKETS = [(0, 7, 30), (8, 14, 15), (15, 29, 15), (30, 44, 12), (45, 59, 9), (60, 89, 10), (90, 120, 9)]
_PRODUCTS = [("consumer_loan", 50), ("instalment_loan", 25), ("credit_card", 15), ("bnpl", 10)]


T = TypeVar("T")


def _weighted(rng: random.Random, options: list[tuple[T, int]]) -> T:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _postal_address(seed: int, region: Region, zone: str, number: int) -> str | None:
    """A made-up address for the borrower's region, or None for every seventh borrower. Drawn from its own
    random stream, so adding addresses changed none of the other demo fields."""
    if number % _WITHOUT_ADDRESS_EVERY == 0:
        return None
    rng = random.Random(f"{seed}-address-{number}")
    house = rng.randint(1, 480)
    if region == "cn":
        street, postcode = rng.choice(_CN_STREETS)
        return (
            f"{street}{house}号{rng.randint(1, 30)}栋{rng.randint(1, 28)}0{rng.randint(1, 6)}室\n{postcode}"
        )
    if region == "us":
        street, city, zip_prefix = rng.choice(_US_STREETS[zone])
        return f"{house} {street}, Apt {rng.randint(1, 40)}\n{city} {zip_prefix}{rng.randint(1, 99):02d}"
    street, town, district = rng.choice(_UK_STREETS)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    postcode = f"{district} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return f"Flat {rng.randint(1, 12)}, {house} {street}\n{town}\n{postcode}"


def _with_address(borrower: Borrower, seed: int, region: Region, number: int) -> Borrower:
    address = _postal_address(seed, region, borrower.timezone, number)
    return Borrower.model_validate({**borrower.model_dump(), "postal_address": address})


def _borrower(rng: random.Random, region: Region, number: int) -> Borrower:
    with_email = rng.random() < 0.9
    if region == "cn":
        surname, surname_py = rng.choice(_CN_SURNAMES)
        given, given_py = rng.choice(_CN_GIVEN)
        phone = f"+861{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        email = f"{given_py}.{surname_py}{number}@example.cn"
        return Borrower(
            name=surname + given,
            phone=phone,
            email=email if with_email else None,
            locale="zh-CN",
            timezone="Asia/Shanghai",
        )
    first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
    email = f"{first.lower()}.{last.lower()}{number}@example.com"
    if region == "us":
        zone, areas = rng.choice(_US_ZONES)
        phone = f"+1{rng.choice(areas)}55501{rng.randrange(100):02d}"
    else:
        zone, phone = "Europe/London", f"+447700900{rng.randrange(1000):03d}"
    return Borrower(
        name=f"{first} {last}", phone=phone, email=email if with_email else None, locale="en", timezone=zone
    )


def _grade_and_amount(rng: random.Random, profile: Profile, currency: str) -> tuple[RiskGrade, int]:
    grade: RiskGrade
    if profile == "high_balance":
        grade = rng.choice(["A", "B", "C", "C", "D", "E"])
        low, high = _HIGH[currency]
    elif profile == "high_risk":
        grade = rng.choice(["D", "D", "E"])
        low, high = rng.choice([_SMALL, _MID, _MID])[currency]
    elif profile == "low_risk_small":
        grade = rng.choice(["A", "B", "B"])
        low, high = _SMALL[currency]
    else:  # standard: grade C at any ordinary balance, or a good grade with a mid balance
        grade = rng.choice(["C", "C", "C", "A", "B"])
        low, high = _MID[currency] if grade in ("A", "B") else rng.choice([_SMALL, _MID, _MID])[currency]
    # Log-uniform: many modest balances, fewer large ones; whole currency units most of the time.
    amount = int(low * (high / low) ** rng.random())
    amount = max(low, min(high, amount - amount % 100 if rng.random() < 0.7 else amount))
    return grade, amount


def _instalments(
    rng: random.Random, overdue_since: date, today: date, amount: int
) -> list[Instalment] | None:
    """Sometimes the missed instalments themselves: 2 or 3 monthly, all already due, adding up to arrears."""
    if rng.random() >= 0.35:
        return None
    for count in (3, 2):
        if _add_months(overdue_since, count - 1) <= today and rng.random() < 0.7:
            share, remainder = divmod(amount, count)
            if share == 0:
                return None
            return [
                Instalment(
                    due_date=_add_months(overdue_since, k), amount_minor=share + (remainder if k == 0 else 0)
                )
                for k in range(count)
            ]
    return None


def demo_portfolio(count: int = 300, *, seed: int = 7, today: date) -> list[Loan]:
    """`count` valid loans, identical for the same seed and day. The first four cover the four segments and
    the first three the three jurisdictions, so even a tiny demo shows them."""
    if not 1 <= count <= 9999:
        raise ValueError("count must be between 1 and 9999 (loan ids are DEMO-0001 to DEMO-9999)")
    rng = random.Random(seed)
    forced_profiles: list[Profile] = ["high_balance", "high_risk", "low_risk_small", "standard"]
    forced_regions: list[Region] = ["cn", "us", "uk"]
    loans = []
    for index in range(count):
        number = index + 1
        region = forced_regions[index] if index < len(forced_regions) else _weighted(rng, _REGIONS)
        profile = forced_profiles[index] if index < len(forced_profiles) else _weighted(rng, _PROFILES)
        currency = _CURRENCY[region]
        low, high, _ = rng.choices(_DPD_BUCKETS, weights=[w for *_, w in _DPD_BUCKETS])[0]
        dpd = rng.randint(low, high)
        overdue_since = today - timedelta(days=dpd)
        grade, amount = _grade_and_amount(rng, profile, currency)
        principal = amount + int(amount * rng.uniform(1.5, 11.0)) // 100 * 100
        loans.append(
            Loan(
                loan_id=f"DEMO-{number:04d}",
                borrower=_with_address(_borrower(rng, region, number), seed, region, number),
                currency=currency,
                amount_overdue_minor=amount,
                principal_outstanding_minor=principal,
                overdue_since=overdue_since,
                product=_weighted(rng, _PRODUCTS),
                risk_grade=grade,
                jurisdiction=region,
                lender=_LENDER[region],
                overdue_instalments=_instalments(rng, overdue_since, today, amount),
            )
        )
    return loans


async def load_demo(
    starter: CollectionsStarter,
    count: int = 300,
    seed: int = 7,
    today: date | None = None,
    *,
    progress: bool = True,
) -> dict[str, int]:
    """Start the demo portfolio. Idempotent: a second run reports the loans as already running and starts
    nothing twice. Returns {"loans", "started", "new_cycle", "already_running", "already_closed"} counts
    (new_cycle: a demo loan whose collection ended is overdue again on a later day)."""
    loans = demo_portfolio(count, seed=seed, today=today or date.today())
    results = await starter.start_many(loans, progress=progress)
    return {"loans": len(loans), **summarize(results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.portfolio", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="number of loans (default 300)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--today", type=date.fromisoformat, help="the day DPD counts to (default today)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the loans to this .jsonl or .json file")
    target.add_argument("--start", action="store_true", help="start them on Temporal (TEMPORAL_ADDRESS)")
    args = parser.parse_args(argv)
    today = args.today or date.today()
    try:
        loans = demo_portfolio(args.count, seed=args.seed, today=today)
    except ValueError as error:
        print(f"--count: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        from starter.loaders import write_loans

        try:
            write_loans(args.out, loans)
        except (ValueError, OSError) as error:
            print(f"--out: {error}", file=sys.stderr)
            return 2
        print(f"{len(loans)} demo loans written to {args.out}")
        return 0
    return asyncio.run(_start(args.count, args.seed, today))


async def _start(count: int, seed: int, today: date) -> int:
    from stack.settings import Settings
    from starter.connect import TemporalUnreachable, connect

    settings = Settings()
    try:
        client = await connect(settings)
    except TemporalUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    starter = CollectionsStarter(
        client, task_queue=settings.task_queue, demo_day_seconds=settings.demo_day_seconds, settings=settings
    )
    try:
        summary = await load_demo(starter, count, seed, today)
    except StartFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"{summary['loans']} demo loans: {summary['started']} started, {summary['new_cycle']} new cycles, "
        f"{summary['already_running']} already running, {summary['already_closed']} already closed"
    )
    return 0


if __name__ == "__main__":
    from stack.process import exit_process  # skips interpreter teardown: temporalio/sdk-python#300

    exit_process(main())
