"""The dashboard's queries (admin/metrics.py) against a real PostgreSQL: each test has a database of its own
(own_db_pool), so the counts and rates asserted are exact. Journal tables are append-only: rows are inserted,
never changed. Times are placed relative to the database's now() and its week and month starts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg
import pytest

from admin import metrics

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Anchors:
    now: datetime
    week: datetime  # this week's Monday, 00:00 in the session's zone
    month: datetime  # the first of this month, 00:00
    previous_month: datetime
    week_day: date
    month_day: date
    previous_month_day: date


async def anchors(pool: asyncpg.Pool) -> Anchors:
    row = await pool.fetchrow(
        "SELECT now() AS now, date_trunc('week', now()) AS week, date_trunc('month', now()) AS month, "
        "date_trunc('month', now()) - interval '1 month' AS previous_month"
    )
    assert row is not None
    day = await pool.fetchrow(
        "SELECT $1::timestamptz::date AS w, $2::timestamptz::date AS m, $3::timestamptz::date AS p",
        row["week"],
        row["month"],
        row["previous_month"],
    )
    assert day is not None
    return Anchors(row["now"], row["week"], row["month"], row["previous_month"], day["w"], day["m"], day["p"])


async def add_loan(
    pool: asyncpg.Pool,
    loan_id: str,
    *,
    currency: str = "CNY",
    stage: str = "reminder",
    outcome: str | None = None,
    dpd: int = 10,
    overdue_since: date | None = None,
    amount: int = 10_000,
    as_of: datetime | None = None,
    agency_id: str | None = None,
) -> None:
    """A portfolio row; DPD counts from today in UTC (the loan's zone) unless `overdue_since` is given."""
    await pool.execute(
        """
        INSERT INTO portfolio (loan_id, borrower_name, jurisdiction, timezone, locale, currency, segment,
            strategy, stage, outcome, overdue_since, amount_overdue_minor, principal_outstanding_minor,
            paid_total_minor, agency_id, clock_real_anchor, clock_collections_anchor, as_of)
        VALUES ($1, 'Test Borrower', 'cn', 'UTC', 'zh-CN', $2, 'standard', 'default', $3, $4,
                coalesce($5, (now() AT TIME ZONE 'UTC')::date - $6::int), $7, $7, 0, $8, now(), now(),
                coalesce($9, now()))
        """,
        loan_id,
        currency,
        stage,
        outcome,
        overdue_since,
        dpd,
        amount,
        agency_id,
        as_of,
    )


def key() -> str:
    return uuid.uuid4().hex


async def add_transition(
    pool: asyncpg.Pool, loan_id: str, at: datetime, from_stage: str, to_stage: str
) -> None:
    await pool.execute(
        "INSERT INTO journal_stage_transitions (idempotency_key, loan_id, jurisdiction, at, from_stage, "
        "to_stage, dpd, reason) VALUES ($1, $2, 'cn', $3, $4, $5, 10, 'test')",
        key(),
        loan_id,
        at,
        from_stage,
        to_stage,
    )


async def add_promise(
    pool: asyncpg.Pool, loan_id: str, promise_id: str, due: date, fates: list[str], at: datetime
) -> None:
    for n, fate in enumerate(fates):
        await pool.execute(
            "INSERT INTO journal_promises (idempotency_key, loan_id, jurisdiction, at, promise_id, "
            "amount_minor, currency, due_date, fate, actor) "
            "VALUES ($1, $2, 'cn', $3, $4, 100, 'CNY', $5, $6, 'test')",
            key(),
            loan_id,
            at + timedelta(minutes=n),
            promise_id,
            due,
            fate,
        )


async def add_payment(
    pool: asyncpg.Pool,
    loan_id: str,
    amount: int,
    received_at: datetime,
    *,
    currency: str = "CNY",
    source: str = "servicing",
    applied: bool = True,
) -> None:
    await pool.execute(
        "INSERT INTO journal_payments (idempotency_key, loan_id, jurisdiction, at, payment_id, amount_minor, "
        "currency, received_at, source, applied) VALUES ($1, $2, 'cn', $3, $4, $5, $6, $3, $7, $8)",
        key(),
        loan_id,
        received_at,
        key(),
        amount,
        currency,
        source,
        applied,
    )


async def add_placement(
    pool: asyncpg.Pool,
    loan_id: str,
    agency_id: str,
    placed_at: datetime,
    *,
    recalled_at: datetime | None = None,
    status: str = "accepted",
) -> None:
    await pool.execute(
        "INSERT INTO agency_placements (idempotency_key, loan_id, agency_id, segment, dpd, "
        "amount_overdue_minor, principal_outstanding_minor, currency, placed_at, expires_at, recalled_at, "
        "recall_reason, status) VALUES ($1, $2, $3, 'standard', 60, 1000, 1000, 'CNY', $4::timestamptz, "
        "$4::timestamptz + interval '90 days', $5, $6, $7)",
        key(),
        loan_id,
        agency_id,
        placed_at,
        recalled_at,
        "expired" if recalled_at else None,
        status,
    )


async def add_deferral(
    pool: asyncpg.Pool, loan_id: str, rule: str, at: datetime, *, dropped: bool = False
) -> None:
    await pool.execute(
        "INSERT INTO journal_deferrals (idempotency_key, loan_id, jurisdiction, at, step_key, channel, rule, "
        "reason, deferred_from, deferred_until) VALUES ($1, $2, 'cn', $3, 'step', 'sms', $4, 'test', $3, $5)",
        key(),
        loan_id,
        at,
        rule,
        None if dropped else at + timedelta(hours=8),
    )


# -- open loans ----------------------------------------------------------------------------------------------


async def test_open_loans_by_stage_and_dpd_bucket_in_one_currency(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    await add_loan(pool, "C1", dpd=0, amount=1_000)
    await add_loan(pool, "C2", dpd=30, amount=2_000)
    await add_loan(pool, "C3", dpd=31, amount=4_000, stage="deep_contact")
    await add_loan(pool, "C4", dpd=180, amount=8_000, stage="agency")
    await add_loan(pool, "C5", dpd=181, amount=16_000, stage="legal")
    await add_loan(pool, "C6", dpd=61, amount=32_000, stage="closed", outcome="paid")  # not open
    await add_loan(pool, "U1", dpd=5, amount=999, currency="USD")
    await add_loan(pool, "U2", dpd=5, amount=999, currency="USD", stage="closed", outcome="paid")
    await add_loan(pool, "G1", dpd=5, amount=999, currency="GBP", stage="closed", outcome="written_off")

    currencies = await metrics.open_currencies(pool)
    assert [(c.currency, c.open_loans) for c in currencies] == [("CNY", 5), ("USD", 1), ("GBP", 0)]

    book = await metrics.open_book(pool, "CNY")
    assert [(b.key, b.loans, b.amount_overdue_minor) for b in book.by_stage] == [
        ("reminder", 2, 3_000),
        ("deep_contact", 1, 4_000),
        ("agency", 1, 8_000),
        ("legal", 1, 16_000),
    ]
    assert [(b.key, b.loans, b.amount_overdue_minor) for b in book.by_dpd] == [
        ("0-30", 2, 3_000),
        ("31-60", 1, 4_000),
        ("61-90", 0, 0),
        ("91-180", 1, 8_000),
        ("180+", 1, 16_000),
    ]
    assert (book.loans, book.amount_overdue_minor) == (5, 31_000)

    usd = await metrics.open_book(pool, "USD")
    assert (usd.loans, usd.amount_overdue_minor) == (1, 999)


# -- promises ------------------------------------------------------------------------------------------------


async def test_promise_kept_rate_counts_each_promise_by_its_final_fate(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    last_week, three_weeks_ago = a.week_day - 7 * DAY + 2 * DAY, a.week_day - 21 * DAY + 2 * DAY
    at = a.now - 60 * DAY
    await add_promise(pool, "P1", "p1", last_week, ["made", "kept"], at)
    await add_promise(pool, "P2", "p2", last_week, ["made", "broken"], at)
    await add_promise(pool, "P3", "p3", last_week, ["made", "broken", "kept"], at)  # kept in the end
    await add_promise(pool, "P4", "p4", last_week, ["made", "cancelled"], at)  # neither
    await add_promise(pool, "P5", "p5", last_week, ["made"], at)  # still open: neither
    await add_promise(pool, "P6", "p6", three_weeks_ago, ["made", "broken"], at)
    await add_promise(pool, "P7", "p7", a.week_day - 20 * 7 * DAY, ["made", "kept"], at)  # before the window

    result = await metrics.promise_kept(pool)
    assert len(result.weeks) == 12 and result.weeks[-1].week == a.week_day
    assert result.weeks[0].week == a.week_day - 11 * 7 * DAY
    by_week = {w.week: w for w in result.weeks}
    assert (by_week[a.week_day - 7 * DAY].kept, by_week[a.week_day - 7 * DAY].broken) == (2, 1)
    assert by_week[a.week_day - 7 * DAY].rate == pytest.approx(2 / 3)
    assert (by_week[a.week_day - 21 * DAY].kept, by_week[a.week_day - 21 * DAY].broken) == (0, 1)
    assert by_week[a.week_day - 21 * DAY].rate == 0
    assert by_week[a.week_day].rate is None  # nothing resolved: no rate, not 0
    assert (result.kept, result.broken, result.rate) == (2, 2, 0.5)


# -- cure rate -----------------------------------------------------------------------------------------------


async def test_cure_rate_by_the_stage_a_loan_left_from(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    t = a.now - 40 * DAY
    loans = {
        "K1": ("paid", ["deep_contact"]),
        "K2": ("written_off", ["deep_contact", "agency"]),
        "K3": ("paid", []),
        "K4": ("litigation", ["deep_contact", "agency", "legal"]),
        "K5": ("written_off", []),
        "K6": ("paid", ["agency"]),
        "K7": ("closed_by_servicing", ["deep_contact"]),
        "K9": ("settled", ["deep_contact", "legal"]),  # settled counts as cured
    }
    for loan_id, (outcome, stages) in loans.items():
        await add_loan(pool, loan_id, stage="closed", outcome=outcome)
        previous = "reminder"
        for n, stage in enumerate(stages):
            await add_transition(pool, loan_id, t + n * DAY, previous, stage)
            previous = stage
    await add_loan(pool, "K8", stage="deep_contact")  # still open: not counted
    await add_transition(pool, "K8", t, "reminder", "deep_contact")

    cures = await metrics.cure_by_stage(pool)
    assert [(c.stage, c.left, c.cured) for c in cures] == [
        ("reminder", 2, 1),
        ("deep_contact", 2, 1),
        ("agency", 2, 1),
        ("legal", 2, 1),
    ]
    assert [c.rate for c in cures] == [0.5, 0.5, 0.5, 0.5]


# -- roll rates ----------------------------------------------------------------------------------------------


async def test_roll_rates_month_over_month(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    m1, m0 = a.previous_month, a.month  # start of last month, of this month
    long_ago = a.previous_month_day - 200 * DAY
    # R1: reminder at the start of last month, rolled to deep_contact during it; then stays.
    await add_loan(pool, "R1", overdue_since=long_ago, stage="deep_contact")
    await add_transition(pool, "R1", m1 + 5 * DAY, "reminder", "deep_contact")
    # R2: reminder all along.
    await add_loan(pool, "R2", overdue_since=long_ago)
    # R3: closed before last month began: in neither month.
    await add_loan(pool, "R3", overdue_since=long_ago, stage="closed", outcome="paid", as_of=m1 - 10 * DAY)
    # R4: overdue only after last month began; jumps from reminder to agency this month.
    await add_loan(pool, "R4", overdue_since=a.previous_month_day + 3 * DAY, stage="agency")
    await add_transition(pool, "R4", m0 + timedelta(minutes=1), "reminder", "agency")
    # R5: deep_contact before last month, agency during it.
    await add_loan(pool, "R5", overdue_since=long_ago, stage="agency")
    await add_transition(pool, "R5", m1 - 5 * DAY, "reminder", "deep_contact")
    await add_transition(pool, "R5", m1 + 9 * DAY, "deep_contact", "agency")
    # R6: deep_contact before last month, closed during it without moving.
    await add_loan(pool, "R6", overdue_since=long_ago, stage="closed", outcome="paid", as_of=m1 + 10 * DAY)
    await add_transition(pool, "R6", m1 - 20 * DAY, "reminder", "deep_contact")

    rolls = await metrics.roll_rates(pool)
    assert len(rolls.months) == 6 and rolls.months[-2:] == [a.previous_month_day, a.month_day]

    def cells(month: date) -> list[tuple[str, int, int]]:
        return [(c.stage, c.at_start, c.rolled) for c in rolls.cells if c.month == month]

    assert cells(a.previous_month_day) == [("reminder", 2, 1), ("deep_contact", 2, 1), ("agency", 0, 0)]
    assert cells(a.month_day) == [("reminder", 2, 1), ("deep_contact", 1, 0), ("agency", 1, 0)]
    assert rolls.cell(a.previous_month_day, "reminder").rate == 0.5
    assert rolls.cell(a.previous_month_day, "agency").rate is None
    # Two months ago: R1, R2, R3 (closed during it) in reminder, and R5 and R6, which moved on during it.
    two_ago = rolls.months[-3]
    assert cells(two_ago) == [("reminder", 5, 2), ("deep_contact", 0, 0), ("agency", 0, 0)]


# -- amounts recovered ---------------------------------------------------------------------------------------


async def test_recovered_per_week_by_stage_at_the_time_of_payment(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    w0, w1, w2 = a.week + timedelta(hours=1), a.week - 7 * DAY + 2 * DAY, a.week - 14 * DAY + 2 * DAY
    await add_payment(pool, "A", 1_000, w0)  # no stage change ever: reminder
    await add_transition(pool, "B", w2 - DAY, "reminder", "deep_contact")
    await add_transition(pool, "B", w1 - DAY, "deep_contact", "agency")
    await add_payment(pool, "B", 300, w2)  # in deep_contact then
    await add_payment(pool, "B", 2_000, w1)  # in agency then
    await add_payment(pool, "B", 500, w1, applied=False)  # not applied: not recovered
    await add_payment(pool, "B", 700, w1, currency="USD")  # another currency
    await add_payment(pool, "A", 50_000, a.week - 13 * 7 * DAY)  # before the 12 weeks

    result = await metrics.recovered_by_stage(pool, "CNY")
    assert len(result.weeks) == 12 and result.weeks[-1] == a.week_day
    assert result.amounts == {
        (a.week_day, "reminder"): 1_000,
        (a.week_day - 7 * DAY, "agency"): 2_000,
        (a.week_day - 14 * DAY, "deep_contact"): 300,
    }
    assert result.keys == ["reminder", "deep_contact", "agency", "legal"]
    assert (result.total, result.total_of("agency"), result.week_total(a.week_day)) == (3_300, 2_000, 1_000)
    usd = await metrics.recovered_by_stage(pool, "USD")
    assert usd.amounts == {(a.week_day - 7 * DAY, "agency"): 700}


async def test_recovered_per_week_by_agency_of_the_active_placement(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    w0, w1, w2 = a.week + timedelta(hours=1), a.week - 7 * DAY, a.week - 14 * DAY
    await add_placement(pool, "C", "north-credit", w2 - 3 * DAY, status="rejected")
    await add_placement(pool, "C", "east-recovery", w2 - 2 * DAY, recalled_at=w1 + DAY)
    await add_placement(pool, "C", "north-credit", w1 + 2 * DAY)
    await add_payment(pool, "C", 5_000, w2 + DAY, source="agency")  # east-recovery's
    await add_payment(pool, "C", 6_000, w1 + 3 * DAY, source="agency")  # north-credit's
    await add_payment(pool, "C", 7_000, w0, source="agency")  # north-credit's
    await add_payment(pool, "C", 9_999, w0, source="servicing")  # not through an agency
    await add_payment(pool, "D", 100, w0, source="agency")  # no placement on record

    result = await metrics.recovered_by_agency(pool, "CNY")
    assert result.amounts == {
        (a.week_day - 14 * DAY, "east-recovery"): 5_000,
        (a.week_day - 7 * DAY, "north-credit"): 6_000,
        (a.week_day, "north-credit"): 7_000,
        (a.week_day, ""): 100,
    }
    assert result.labels["east-recovery"] == "East Recovery Partners"
    assert result.keys == ["", "east-recovery", "north-credit"]
    assert result.total == 18_100


# -- deferrals -----------------------------------------------------------------------------------------------


async def test_deferrals_by_rule_in_the_last_30_days(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    a = await anchors(pool)
    await add_deferral(pool, "D1", "contact_hours", a.now - DAY)
    await add_deferral(pool, "D1", "contact_hours", a.now - 2 * DAY)
    await add_deferral(pool, "D2", "contact_hours", a.now - 29 * DAY, dropped=True)
    await add_deferral(pool, "D2", "contact_hours", a.now - 31 * DAY)  # too old
    await add_deferral(pool, "D3", "weekly_cap", a.now - 3 * DAY)

    found = await metrics.deferrals_by_rule(pool)
    assert [(d.rule, d.deferrals, d.loans, d.dropped) for d in found] == [
        ("contact_hours", 3, 2, 1),
        ("weekly_cap", 1, 1, 0),
    ]


# -- nothing yet ---------------------------------------------------------------------------------------------


async def test_an_empty_database_gives_empty_metrics(own_db_pool: asyncpg.Pool) -> None:
    pool = own_db_pool
    assert await metrics.open_currencies(pool) == []
    book = await metrics.open_book(pool, "")
    assert book.loans == 0 and [b.key for b in book.by_dpd] == list(metrics.DPD_BUCKETS)
    promises = await metrics.promise_kept(pool)
    assert len(promises.weeks) == 12 and promises.rate is None
    assert all(c.left == 0 and c.rate is None for c in await metrics.cure_by_stage(pool))
    rolls = await metrics.roll_rates(pool)
    assert len(rolls.cells) == 6 * len(metrics.ROLL_STAGES) and all(c.at_start == 0 for c in rolls.cells)
    assert (await metrics.recovered_by_stage(pool, "")).total == 0
    assert (await metrics.recovered_by_agency(pool, "")).keys == []
    assert await metrics.deferrals_by_rule(pool) == []
