"""The dashboard's numbers: one aggregate query per chart over the portfolio read model and the journal.

Everything is aggregated in PostgreSQL (the portfolio has 100k rows and more; the journal several per loan),
so Python only fills in the empty buckets and computes ratios. Windows are counted back from the database's
`now()` in the session's time zone (weeks start on Monday, as date_trunc('week') does).

Money is never added across currencies: the amounts are for one currency, chosen by the caller.

Stages: a loan starts in 'reminder' (not journaled) and only ever moves to a later stage of STAGE_ORDER; each
move is a journal_stage_transitions row. Closing sets the case's stage to 'closed' without a transition, so a
closed loan's stage "when it left" is its latest journaled stage (or 'reminder' if it never moved).

Cycles: a cured loan that goes overdue again starts a new collection cycle, with a portfolio row of its own
(migrations/0013) and journal rows naming it (`cycle`; older rows get theirs from SQL `journal_cycle`). Every
rate counts cycles apart: a loan cured and overdue again has left collection once and may leave it again, and
a stage reached in one cycle says nothing about the next (which starts in 'reminder').
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from admin.portfolio_query import DPD_BUCKETS as DPD_RANGES
from domain.strategy import STAGE_ORDER

# The stages a loan can be in while it is open, in order (closing is an outcome, not a stage to report).
OPEN_STAGES: tuple[str, ...] = tuple(stage for stage in STAGE_ORDER if stage != "closed")
# Stages a loan can roll out of into a later open stage (legal is the last one).
ROLL_STAGES: tuple[str, ...] = OPEN_STAGES[:-1]
# The portfolio search's DPD buckets (admin/portfolio_query.py), in order; the last one has no upper end.
DPD_BUCKETS: tuple[str, ...] = tuple(DPD_RANGES)
# The bucket of a row's `dpd`, as SQL (fixed text from the bounds above, no user input).
_DPD_BUCKET_SQL = (
    "CASE "
    + " ".join(
        f"WHEN dpd <= {high} THEN '{key}'" for key, (_, high) in DPD_RANGES.items() if high is not None
    )
    + f" ELSE '{DPD_BUCKETS[-1]}' END"
)
# The collection cycle of journal row `t` (the alias is the caller's), as SQL.
_CYCLE_OF = "coalesce({t}.cycle, journal_cycle({t}.loan_id, {t}.cycle, {t}.at))"
# Outcomes that count as cured (domain/case.py Outcome): paid in full, or settled for an agreed amount.
CURED_OUTCOMES: tuple[str, ...] = ("paid", "settled")
PROMISE_WEEKS = 12
ROLL_MONTHS = 6
RECOVERY_WEEKS = 12
DEFERRAL_DAYS = 30


@dataclass(frozen=True)
class CurrencyCount:
    currency: str
    open_loans: int


@dataclass(frozen=True)
class Bucket:
    key: str
    loans: int
    amount_overdue_minor: int


@dataclass(frozen=True)
class OpenBook:
    """Open loans of one currency (outcome NULL) by stage and by days-past-due bucket."""

    currency: str
    by_stage: list[Bucket]
    by_dpd: list[Bucket]

    @property
    def loans(self) -> int:
        return sum(bucket.loans for bucket in self.by_stage)

    @property
    def amount_overdue_minor(self) -> int:
        return sum(bucket.amount_overdue_minor for bucket in self.by_stage)


@dataclass(frozen=True)
class PromiseWeek:
    week: date  # the Monday of the week the promises were due
    kept: int
    broken: int

    @property
    def rate(self) -> float | None:
        return self.kept / (self.kept + self.broken) if self.kept + self.broken else None


@dataclass(frozen=True)
class PromiseKept:
    weeks: list[PromiseWeek]

    @property
    def kept(self) -> int:
        return sum(week.kept for week in self.weeks)

    @property
    def broken(self) -> int:
        return sum(week.broken for week in self.weeks)

    @property
    def rate(self) -> float | None:
        return self.kept / (self.kept + self.broken) if self.kept + self.broken else None


@dataclass(frozen=True)
class StageCure:
    stage: str
    left: int  # loans that left collection from this stage
    cured: int  # of which paid (or settled)

    @property
    def rate(self) -> float | None:
        return self.cured / self.left if self.left else None


@dataclass(frozen=True)
class RollCell:
    month: date  # the first day of the month
    stage: str
    at_start: int  # open loans in `stage` at the start of the month
    rolled: int  # of which reached a later stage during the month

    @property
    def rate(self) -> float | None:
        return self.rolled / self.at_start if self.at_start else None


@dataclass(frozen=True)
class RollRates:
    months: list[date]
    cells: list[RollCell]  # every month x ROLL_STAGES, in order

    def cell(self, month: date, stage: str) -> RollCell:
        for cell in self.cells:
            if cell.month == month and cell.stage == stage:
                return cell
        return RollCell(month, stage, 0, 0)


@dataclass(frozen=True)
class WeeklyAmounts:
    """Amounts recovered in one currency per week (Monday) and per key (a stage, or an agency)."""

    currency: str
    weeks: list[date]
    keys: list[str]
    labels: dict[str, str]  # key -> what to show (an agency's name)
    amounts: dict[tuple[date, str], int]

    def amount(self, week: date, key: str) -> int:
        return self.amounts.get((week, key), 0)

    def total_of(self, key: str) -> int:
        return sum(amount for (_, k), amount in self.amounts.items() if k == key)

    def week_total(self, week: date) -> int:
        return sum(amount for (w, _), amount in self.amounts.items() if w == week)

    @property
    def total(self) -> int:
        return sum(self.amounts.values())


@dataclass(frozen=True)
class RuleDeferrals:
    rule: str
    deferrals: int
    loans: int
    dropped: int  # deferred for good (deferred_until NULL: the step was dropped)


# -- queries -------------------------------------------------------------------------------------------------


async def open_currencies(pool: asyncpg.Pool) -> list[CurrencyCount]:
    """Currencies of the portfolio, the one with most open loans first (then by code)."""
    rows = await pool.fetch(
        "SELECT currency, count(*) FILTER (WHERE outcome IS NULL) AS open_loans FROM portfolio "
        "GROUP BY currency ORDER BY open_loans DESC, currency"
    )
    return [CurrencyCount(row["currency"].strip(), row["open_loans"]) for row in rows]


async def open_book(pool: asyncpg.Pool, currency: str) -> OpenBook:
    """Open loans and their amounts overdue, by stage and by DPD bucket (0-30, 31-60, 61-90, 91-180, 180+)."""
    rows = await pool.fetch(
        f"""
        SELECT grouping(stage) AS by_dpd, stage, bucket,
               count(*) AS loans, coalesce(sum(amount_overdue_minor), 0)::bigint AS amount
        FROM (
            SELECT stage, amount_overdue_minor, {_DPD_BUCKET_SQL} AS bucket
            FROM portfolio_now
            WHERE outcome IS NULL AND currency = $1
        ) open_loans
        GROUP BY GROUPING SETS ((stage), (bucket))
        """,
        currency,
    )
    stages = {row["stage"]: row for row in rows if not row["by_dpd"]}
    buckets = {row["bucket"]: row for row in rows if row["by_dpd"]}
    stage_keys = [*OPEN_STAGES, *sorted(set(stages) - set(OPEN_STAGES))]

    def bucket(key: str, row: asyncpg.Record | None) -> Bucket:
        return Bucket(key, row["loans"], row["amount"]) if row else Bucket(key, 0, 0)

    return OpenBook(
        currency,
        by_stage=[bucket(key, stages.get(key)) for key in stage_keys],
        by_dpd=[bucket(key, buckets.get(key)) for key in DPD_BUCKETS],
    )


async def promise_kept(pool: asyncpg.Pool) -> PromiseKept:
    """Kept and broken promises per week of their due date, the last 12 weeks (this one included).

    A promise counts by its final fate (its latest row other than 'made'); cancelled and still-open promises
    count in neither. Rate: kept / (kept + broken).
    """
    rows = await pool.fetch(
        """
        WITH weeks AS (
            SELECT generate_series(date_trunc('week', now())::date - 7 * ($1 - 1),
                                   date_trunc('week', now())::date, interval '1 week')::date AS week
        ),
        final AS (
            SELECT DISTINCT ON (loan_id, promise_id) due_date, fate
            FROM journal_promises
            WHERE fate <> 'made'
              AND due_date >= date_trunc('week', now())::date - 7 * ($1 - 1)
              AND due_date < date_trunc('week', now())::date + 7
            ORDER BY loan_id, promise_id, at DESC, id DESC
        )
        SELECT w.week,
               count(*) FILTER (WHERE f.fate = 'kept') AS kept,
               count(*) FILTER (WHERE f.fate = 'broken') AS broken
        FROM weeks w LEFT JOIN final f ON date_trunc('week', f.due_date)::date = w.week
        GROUP BY w.week ORDER BY w.week
        """,
        PROMISE_WEEKS,
    )
    return PromiseKept([PromiseWeek(row["week"], row["kept"], row["broken"]) for row in rows])


async def cure_by_stage(pool: asyncpg.Pool) -> list[StageCure]:
    """Collection cycles that ended (outcome set), by the stage they left from, and how many were cured. A
    loan cured, overdue again and ended again counts twice, each time with its own cycle's stage."""
    rows = await pool.fetch(
        f"""
        SELECT coalesce(nullif(p.stage, 'closed'), last.to_stage, 'reminder') AS stage,
               count(*) AS left_collection,
               count(*) FILTER (WHERE p.outcome = ANY($1::text[])) AS cured
        FROM portfolio p
        LEFT JOIN LATERAL (
            SELECT t.to_stage FROM journal_stage_transitions t
            WHERE t.loan_id = p.loan_id AND t.to_stage <> 'closed' AND {_CYCLE_OF.format(t="t")} = p.cycle
            ORDER BY t.at DESC, t.id DESC LIMIT 1
        ) last ON p.stage = 'closed'
        WHERE p.outcome IS NOT NULL
        GROUP BY 1
        """,
        list(CURED_OUTCOMES),
    )
    found = {row["stage"]: StageCure(row["stage"], row["left_collection"], row["cured"]) for row in rows}
    keys = [*OPEN_STAGES, *sorted(set(found) - set(OPEN_STAGES))]
    return [found.get(key, StageCure(key, 0, 0)) for key in keys]


async def roll_rates(pool: asyncpg.Pool) -> RollRates:
    """Roll rates, month over month, for the last 6 months (this one included, so far).

    Definition (a loan's collection cycles count apart, each from its own overdue_since): for a month M and a
    stage S, the loans *open at the start of M* (overdue before M began, and
    not closed before it) that were *in stage S at that moment* (their latest stage transition before M, or
    'reminder' if none); the roll rate is the share of them with a stage transition to a stage later than S
    during M (journal_stage_transitions.at in M). A loan's close time is its last snapshot's time
    (portfolio.as_of): the snapshot that carries the outcome is written when the case closes.
    """
    # Stages only move forward, so a loan's stage at a moment is the highest-ranked stage it had entered
    # by then, and it rolled during M exactly when that rank at the end of M is above the rank at the start.
    # One pass over the transitions gives each loan's rank at each month boundary (ranks[1..months+1]).
    boundaries = await pool.fetch(
        "SELECT m AS at, m::date AS day FROM generate_series(date_trunc('month', now()) - $1 * interval "
        "'1 month', date_trunc('month', now()) + interval '1 month', interval '1 month') AS m ORDER BY m",
        ROLL_MONTHS - 1,
    )
    bounds = [row["at"] for row in boundaries]
    months: list[date] = [row["day"] for row in boundaries][:-1]
    # Each boundary a parameter of its own ($4, $5, ...): a plain comparison per row, not an array lookup.
    ranks = ", ".join(f"max(rank) FILTER (WHERE at < ${k + 4}::timestamptz)" for k in range(len(bounds)))
    rows = await pool.fetch(
        f"""
        WITH months AS (
            SELECT i, m AS m_start FROM unnest($1::timestamptz[]) WITH ORDINALITY AS g(m, i)
            WHERE i < cardinality($1::timestamptz[])
        ),
        ranks AS (
            SELECT loan_id, cycle, ARRAY[{ranks}] AS ranks
            FROM (SELECT loan_id, {_CYCLE_OF.format(t="j")} AS cycle, at,
                         array_position($2::text[], to_stage) AS rank
                  FROM journal_stage_transitions j) t
            GROUP BY loan_id, cycle
        ),
        staged AS (
            SELECT m.m_start, coalesce(r.ranks[m.i], 1) AS rank_start,
                   coalesce(r.ranks[m.i + 1], 1) AS rank_end
            FROM months m
            JOIN portfolio p ON p.overdue_since < m.m_start::date
                            AND (p.outcome IS NULL OR p.as_of >= m.m_start)
            LEFT JOIN ranks r ON r.loan_id = p.loan_id AND r.cycle = p.cycle
        )
        SELECT m_start::date AS month, ($2::text[])[rank_start] AS stage, count(*) AS at_start,
               count(*) FILTER (WHERE rank_end > rank_start) AS rolled
        FROM staged
        WHERE rank_start <= cardinality($3::text[])
        GROUP BY 1, 2
        """,
        bounds,
        list(OPEN_STAGES),
        list(ROLL_STAGES),
        *bounds,
    )
    found = {(row["month"], row["stage"]): row for row in rows}
    cells = []
    for month in months:
        for stage in ROLL_STAGES:
            row = found.get((month, stage))
            cells.append(
                RollCell(month, stage, row["at_start"], row["rolled"])
                if row
                else RollCell(month, stage, 0, 0)
            )
    return RollRates(months, cells)


_RECOVERY_WEEKS_SQL = """
    SELECT generate_series(date_trunc('week', now()) - ($2 - 1) * interval '1 week',
                           date_trunc('week', now()), interval '1 week') AS week
"""


async def recovered_by_stage(pool: asyncpg.Pool, currency: str) -> WeeklyAmounts:
    """Payments applied in `currency` per week received (last 12 weeks), by the loan's stage when the
    payment was applied: the latest stage transition of the payment's cycle at or before its journal time."""
    rows = await pool.fetch(
        f"""
        WITH weeks AS ({_RECOVERY_WEEKS_SQL}),
        paid AS (
            SELECT date_trunc('week', p.received_at) AS week,
                   coalesce(s.to_stage, 'reminder') AS key, p.amount_minor
            FROM journal_payments p
            LEFT JOIN LATERAL (
                SELECT t.to_stage FROM journal_stage_transitions t
                WHERE t.loan_id = p.loan_id AND t.at <= p.at AND t.to_stage <> 'closed'
                  AND {_CYCLE_OF.format(t="t")} IS NOT DISTINCT FROM {_CYCLE_OF.format(t="p")}
                ORDER BY t.at DESC, t.id DESC LIMIT 1
            ) s ON true
            WHERE p.applied AND p.currency = $1
              AND p.received_at >= (SELECT min(week) FROM weeks)
              AND p.received_at < date_trunc('week', now()) + interval '1 week'
        )
        SELECT w.week::date AS week, paid.key, NULL::text AS label, sum(paid.amount_minor)::bigint AS amount
        FROM weeks w LEFT JOIN paid ON paid.week = w.week
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        currency,
        RECOVERY_WEEKS,
    )
    return _weekly(currency, rows, OPEN_STAGES)


async def recovered_by_agency(pool: asyncpg.Pool, currency: str) -> WeeklyAmounts:
    """Payments applied in `currency` with source 'agency' per week received (last 12 weeks), by the agency
    of the loan's placement active when the payment was received (else its latest placement before it)."""
    rows = await pool.fetch(
        f"""
        WITH weeks AS ({_RECOVERY_WEEKS_SQL}),
        paid AS (
            SELECT date_trunc('week', p.received_at) AS week,
                   coalesce(pl.agency_id, '') AS key, a.name AS label, p.amount_minor
            FROM journal_payments p
            LEFT JOIN LATERAL (
                SELECT ap.agency_id FROM agency_placements ap
                WHERE ap.loan_id = p.loan_id AND ap.status <> 'rejected' AND ap.placed_at <= p.received_at
                ORDER BY (ap.recalled_at IS NULL OR ap.recalled_at > p.received_at) DESC, ap.placed_at DESC
                LIMIT 1
            ) pl ON true
            LEFT JOIN agencies a ON a.id = pl.agency_id
            WHERE p.applied AND p.source = 'agency' AND p.currency = $1
              AND p.received_at >= (SELECT min(week) FROM weeks)
              AND p.received_at < date_trunc('week', now()) + interval '1 week'
        )
        SELECT w.week::date AS week, paid.key, min(paid.label) AS label,
               sum(paid.amount_minor)::bigint AS amount
        FROM weeks w LEFT JOIN paid ON paid.week = w.week
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        currency,
        RECOVERY_WEEKS,
    )
    return _weekly(currency, rows, ())


def _weekly(currency: str, rows: list[asyncpg.Record], first_keys: tuple[str, ...]) -> WeeklyAmounts:
    weeks: list[date] = []
    amounts: dict[tuple[date, str], int] = {}
    labels: dict[str, str] = {}
    for row in rows:
        if row["week"] not in weeks:
            weeks.append(row["week"])
        if row["key"] is not None:
            amounts[(row["week"], row["key"])] = row["amount"]
            labels[row["key"]] = row["label"] or row["key"]
    found = {key for _, key in amounts}
    keys = [*first_keys, *sorted(found - set(first_keys), key=lambda key: labels[key])]
    return WeeklyAmounts(currency, weeks, keys, labels, amounts)


async def deferrals_by_rule(pool: asyncpg.Pool) -> list[RuleDeferrals]:
    """Contact steps deferred in the last 30 days (journal_deferrals.at), by the rule that deferred them."""
    rows = await pool.fetch(
        """
        SELECT rule, count(*) AS deferrals, count(DISTINCT loan_id) AS loans,
               count(*) FILTER (WHERE deferred_until IS NULL) AS dropped
        FROM journal_deferrals
        WHERE at >= now() - make_interval(days => $1)
        GROUP BY rule ORDER BY deferrals DESC, rule
        """,
        DEFERRAL_DAYS,
    )
    return [RuleDeferrals(row["rule"], row["deferrals"], row["loans"], row["dropped"]) for row in rows]
