"""The portfolio search as data: query parameters → a checked `PortfolioFilter` → parameterized SQL.

Pure functions, no I/O: admin/portfolio.py runs what they build against `portfolio_now` (migrations/0008).
Every value the user typed travels as a `$n` parameter; only fixed fragments of this module (column names,
sort orders) are ever put into the SQL text.

What each filter means, and which index serves it (migrations/0008 and 0009):

- status: open (default, `outcome IS NULL`), closed, all.
- cycles: latest (default: each loan's latest collection cycle, `portfolio_now`) or all (every cycle of a loan
  cured and overdue again, `portfolio_cycles_now`, migrations/0013); rows show the cycle's overdue_since.
- stage, segment, strategy: equality.
- dpd: one of DPD_BUCKETS, on the view's computed `dpd` (it moves with time, so no index: a scan).
- agency: an agency id, "any" (placed with some agency) or "none".
- hold: "any" (escalation frozen by some hold) or "none".
- amount_min / amount_max: amounts overdue in major units of each loan's own currency (no exchange rates:
  "1000" is CNY 1,000.00 for a CNY loan and JPY 1,000 for a JPY loan), both ends inclusive.
- q, free text, case-insensitive: a loan id *prefix* (index on lower(loan_id) text_pattern_ops) or part of
  the borrower's name: with 3 or more characters any *substring* (pg_trgm GIN index; "smith" finds
  "James Smith"), with 1 or 2 characters a name *prefix* (lower(borrower_name) text_pattern_ops; "王伟").
- pools: not a field of the form: the segments a user whose pools bind them may see (admin/access.py
  visible_pools), `segment = ANY(...)`; None: every segment.
- sort: dpd (most days past due first, the default), amount (largest arrears first), loan_id.
- page: 1-based, PAGE_SIZE rows a page, OFFSET pagination (measured: bench/README.md).

DPD is computed per row from the loan's clock, so neither a DPD bucket nor the DPD order can use an index as
such. But a loan on a real clock (speed 1, anchors equal: every loan outside the demo) is `D - overdue_since`
days past due, give or take one day for its time zone (D: today in UTC). So:

- a DPD bucket also bounds `overdue_since` for real-clock loans (index portfolio_real_clock_idx, 0009);
- the DPD order first finds `b`, the overdue_since of the K-th real-clock match in overdue_since order
  (K = offset + page size; `build_dpd_bound`), then sorts only the matches with overdue_since <= b + 2 and
  the loans on other clocks: any real-clock loan past b + 2 has fewer days past due than those K loans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from domain.loan import CURRENCIES
from domain.strategy import STAGE_ORDER

PAGE_SIZE = 50
COUNT_CAP = 10_000  # counting stops here: "10,000+" (an exact count of everything is a full scan)
MAX_PAGE = 10_000
MAX_TEXT = 100  # longest free text / id accepted; longer cannot match anything useful
MAX_MAJOR = Decimal(10) ** 12  # an amount filter above this is a typo (and would overflow bigint in minor)
DEFAULT_DIGITS = 2  # format_money's digits for a currency not in CURRENCIES

# key: (lowest DPD, highest DPD or None); the keys are also what the form sends.
DPD_BUCKETS: dict[str, tuple[int, int | None]] = {
    "0-30": (0, 30),
    "31-60": (31, 60),
    "61-90": (61, 90),
    "91-180": (91, 180),
    "180+": (181, None),
}
# English labels of the buckets (translated in admin/translations/*.toml); the dashboard shows them too.
DPD_LABELS: dict[str, str] = {
    "0-30": "0-30 days",
    "31-60": "31-60 days",
    "61-90": "61-90 days",
    "91-180": "91-180 days",
    "180+": "Over 180 days",
}
STAGES: tuple[str, ...] = STAGE_ORDER
STATUSES = ("open", "closed", "all")
CYCLES: dict[str, str] = {"latest": "portfolio_now", "all": "portfolio_cycles_now"}  # choice -> view
HOLDS = ("any", "none")
AGENCY_ANY, AGENCY_NONE = "any", "none"
SORTS: dict[str, str] = {  # a loan's cycles (cycles=all) newest first
    "dpd": "dpd DESC, loan_id, cycle DESC",
    "amount": "amount_overdue_minor DESC, loan_id, cycle DESC",
    "loan_id": "loan_id, cycle DESC",
}
DEFAULT_SORT = "dpd"
# 0 for a loan whose DPD is `D - overdue_since` give or take a day (D: today in UTC), 1 for any other (the
# demo's fast clocks). Exactly the expression of portfolio_clock_idx (migrations/0009): the planner takes its
# statistics and its index for `CLOCK_KIND = 0`.
CLOCK_KIND = "(CASE WHEN clock_speed = 1 AND clock_collections_anchor = clock_real_anchor THEN 0 ELSE 1 END)"
REAL_CLOCK = f"{CLOCK_KIND} = 0"
OTHER_CLOCK = f"{CLOCK_KIND} = 1"
TODAY_UTC = "(now() AT TIME ZONE 'UTC')::date"
# Columns a dropdown lists the distinct values of (each has an index: a loose index scan is cheap).
OPTION_COLUMNS = ("segment", "strategy", "agency_id")
# What a results row shows.
ROW_COLUMNS = (
    "loan_id",
    "cycle",  # the cycle's overdue_since
    "borrower_name",
    "stage",
    "dpd",
    "currency",
    "amount_overdue_minor",
    "segment",
    "strategy",
    "agency_id",
    "hold",
    "open_promise_due",
    "outcome",
)


@dataclass(frozen=True)
class PortfolioFilter:
    """A checked search: every field is either empty (no filter) or a value the builder accepts."""

    stage: str = ""
    dpd: str = ""
    segment: str = ""
    strategy: str = ""
    agency: str = ""
    hold: str = ""
    status: str = "open"
    cycles: str = "latest"
    amount_min: Decimal | None = None  # major units, in each loan's own currency
    amount_max: Decimal | None = None
    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    pools: tuple[str, ...] | None = None  # the segments the user may see; None: every one

    def __post_init__(self) -> None:
        problems = [
            name
            for name, value, allowed in (
                ("stage", self.stage, STAGES),
                ("dpd", self.dpd, tuple(DPD_BUCKETS)),
                ("hold", self.hold, HOLDS),
            )
            if value and value not in allowed
        ]
        if self.status not in STATUSES:
            problems.append("status")
        if self.cycles not in CYCLES:
            problems.append("cycles")
        if self.sort not in SORTS:
            problems.append("sort")
        if not 1 <= self.page <= MAX_PAGE:
            problems.append("page")
        for name in ("amount_min", "amount_max"):
            amount = getattr(self, name)
            if amount is not None and not (amount.is_finite() and 0 <= amount <= MAX_MAJOR):
                problems.append(name)
        if problems:
            raise ValueError(f"invalid portfolio filter: {', '.join(problems)}")


@dataclass
class ParsedQuery:
    """What the form sent: the filter (None when a field is wrong), the field errors, the values as typed."""

    filter: PortfolioFilter | None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


# -- parsing the query string --------------------------------------------------------------------------------

FIELDS = (
    "stage",
    "dpd",
    "segment",
    "strategy",
    "agency",
    "hold",
    "status",
    "cycles",
    "amount_min",
    "amount_max",
    "q",
    "sort",
    "page",
)
# Field errors are English, translated by the page (admin/translations/portfolio.toml).
ERROR_AMOUNT = "Enter an amount like 500 or 1,250.50."
ERROR_NEGATIVE = "The amount cannot be negative."
ERROR_TOO_LARGE = "The amount is too large."
ERROR_RANGE = "The maximum is below the minimum."
ERROR_CHOICE = "Choose one of the listed values."
ERROR_TOO_LONG = "At most 100 characters."
ERROR_CONTROL = "Remove the control characters (such as NUL)."


def _amount(text: str) -> tuple[Decimal | None, str | None]:
    text = text.replace(",", "").replace("_", "").strip()
    if not text:
        return None, None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, ERROR_AMOUNT
    if not value.is_finite():
        return None, ERROR_AMOUNT
    if value < 0:
        return None, ERROR_NEGATIVE
    if value > MAX_MAJOR:
        return None, ERROR_TOO_LARGE
    return value, None


def parse_query(params: Mapping[str, str]) -> ParsedQuery:
    """The search the query string asks for; a wrong field gives an error for that field, never an exception.

    Empty fields mean "no filter". An unknown sort falls back to the default, a missing or wrong page to 1:
    they come from links, not from typing."""
    values = {name: str(params.get(name, "") or "").strip() for name in FIELDS}
    errors: dict[str, str] = {}
    for name, allowed in (
        ("stage", STAGES),
        ("dpd", tuple(DPD_BUCKETS)),
        ("hold", HOLDS),
        ("status", STATUSES),
        ("cycles", tuple(CYCLES)),
    ):
        if values[name] and values[name] not in allowed:
            errors[name] = ERROR_CHOICE
    for name in ("segment", "strategy", "agency", "q"):
        if len(values[name]) > MAX_TEXT:
            errors[name] = ERROR_TOO_LONG
        elif not values[name].isprintable():  # PostgreSQL cannot even compare text holding NUL
            errors[name] = ERROR_CONTROL
    amount_min, problem = _amount(values["amount_min"])
    if problem:
        errors["amount_min"] = problem
    amount_max, problem = _amount(values["amount_max"])
    if problem:
        errors["amount_max"] = problem
    if amount_min is not None and amount_max is not None and amount_max < amount_min:
        errors["amount_max"] = ERROR_RANGE
    sort = values["sort"] if values["sort"] in SORTS else DEFAULT_SORT
    page_text = values["page"]
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) <= 6 else 1
    page = min(max(page, 1), MAX_PAGE)
    values["sort"], values["page"] = sort, str(page)
    values["status"] = values["status"] or "open"
    values["cycles"] = values["cycles"] or "latest"
    if errors:
        return ParsedQuery(None, errors, values)
    found = PortfolioFilter(
        stage=values["stage"],
        dpd=values["dpd"],
        segment=values["segment"],
        strategy=values["strategy"],
        agency=values["agency"],
        hold=values["hold"],
        status=values["status"],
        cycles=values["cycles"],
        amount_min=amount_min,
        amount_max=amount_max,
        q=values["q"],
        sort=sort,
        page=page,
    )
    return ParsedQuery(found, {}, values)


# -- building the SQL ----------------------------------------------------------------------------------------


def escape_like(text: str) -> str:
    """`text` matched literally in a LIKE pattern (backslash is LIKE's default escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _digit_groups() -> list[tuple[int, list[str]]]:
    """Currencies by their number of minor digits; the default group also takes any currency not listed."""
    groups: dict[int, list[str]] = {}
    for currency, digits in sorted(CURRENCIES.items()):
        if digits != DEFAULT_DIGITS:
            groups.setdefault(digits, []).append(currency)
    return sorted(groups.items())


class _Args:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _amount_condition(args: _Args, amount: Decimal, op: str) -> str:
    """amount_overdue_minor `op` `amount` major units, by each currency's digits (the amount index serves)."""
    rounding = ROUND_CEILING if op == ">=" else ROUND_FLOOR
    others: list[str] = []
    parts: list[str] = []
    for digits, currencies in _digit_groups():
        minor = int(amount.scaleb(digits).to_integral_value(rounding))
        listed = args.add(currencies)
        parts.append(f"(currency = ANY({listed}::bpchar[]) AND amount_overdue_minor {op} {args.add(minor)})")
        others.extend(currencies)
    minor = int(amount.scaleb(DEFAULT_DIGITS).to_integral_value(rounding))
    if others:
        parts.append(
            f"(currency <> ALL({args.add(others)}::bpchar[]) AND amount_overdue_minor {op} {args.add(minor)})"
        )
    else:
        parts.append(f"amount_overdue_minor {op} {args.add(minor)}")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _conditions(search: PortfolioFilter, args: _Args) -> list[str]:
    """The conditions of every filter, on any clock."""
    conditions: list[str] = []
    if search.pools is not None:
        conditions.append(f"segment = ANY({args.add(list(search.pools))}::text[])")
    if search.status == "open":
        conditions.append("outcome IS NULL")
    elif search.status == "closed":
        conditions.append("outcome IS NOT NULL")
    for column in ("stage", "segment", "strategy"):
        value = getattr(search, column)
        if value:
            conditions.append(f"{column} = {args.add(value)}")
    if search.dpd:
        low, high = DPD_BUCKETS[search.dpd]
        conditions.append(f"dpd >= {args.add(low)}")
        if high is not None:
            conditions.append(f"dpd <= {args.add(high)}")
    if search.agency == AGENCY_ANY:
        conditions.append("agency_id IS NOT NULL")
    elif search.agency == AGENCY_NONE:
        conditions.append("agency_id IS NULL")
    elif search.agency:
        conditions.append(f"agency_id = {args.add(search.agency)}")
    if search.hold == "any":
        conditions.append("hold IS NOT NULL")
    elif search.hold == "none":
        conditions.append("hold IS NULL")
    if search.amount_min is not None:
        conditions.append(_amount_condition(args, search.amount_min, ">="))
    if search.amount_max is not None:
        conditions.append(_amount_condition(args, search.amount_max, "<="))
    if search.q:
        text = escape_like(search.q)
        by_id = f"lower(loan_id) LIKE lower({args.add(text + '%')})"
        if len(search.q) >= 3:
            by_name = f"lower(borrower_name) LIKE lower({args.add('%' + text + '%')})"
        else:
            by_name = f"lower(borrower_name) LIKE lower({args.add(text + '%')})"
        conditions.append(f"({by_id} OR {by_name})")
    return conditions


def _real_clock_bounds(search: PortfolioFilter, args: _Args) -> list[str]:
    """What the DPD bucket implies for overdue_since of a real-clock loan (DPD is D - overdue_since, give or
    take a day): conditions an index on overdue_since serves. The exact DPD condition stays as well."""
    if not search.dpd:
        return []
    low, high = DPD_BUCKETS[search.dpd]
    bounds = [f"overdue_since <= {TODAY_UTC} - {args.add(low - 1)}::integer"] if low > 0 else []
    if high is not None:
        bounds.append(f"overdue_since >= {TODAY_UTC} - {args.add(high + 1)}::integer")
    return bounds


def _by_clock(search: PortfolioFilter) -> bool:
    """Whether the search reads real-clock and other loans apart (DPD decides what matches or its order)."""
    return bool(search.dpd) or search.sort == "dpd"


def _matches(search: PortfolioFilter, args: _Args, columns: str, *, dpd_bound: date | None = None) -> str:
    """A SELECT of `columns` from the matches of `search`: in one go, or (when DPD matters) the real-clock
    loans, with overdue_since bounded, UNION ALL the loans on other clocks."""
    common = _conditions(search, args)
    view = CYCLES[search.cycles]
    if not _by_clock(search):
        return f"SELECT {columns} FROM {view} WHERE {' AND '.join(common) or 'TRUE'}"
    real = [*common, REAL_CLOCK, *_real_clock_bounds(search, args)]
    if dpd_bound is not None:
        real.append(f"overdue_since <= {args.add(dpd_bound)}")
    other = [*common, OTHER_CLOCK]
    return (
        f"SELECT {columns} FROM {view} WHERE {' AND '.join(real)} UNION ALL "
        f"SELECT {columns} FROM {view} WHERE {' AND '.join(other)}"
    )


def build_dpd_bound(search: PortfolioFilter, page_size: int = PAGE_SIZE) -> tuple[str, list[Any]] | None:
    """For the DPD order: the latest overdue_since a real-clock loan of this page can have (a date; NULL or
    no row: no bound). None when `search` is not in DPD order."""
    if search.sort != "dpd":
        return None
    args = _Args()
    real = [*_conditions(search, args), REAL_CLOCK, *_real_clock_bounds(search, args)]
    kth = args.add(search.page * page_size - 1)
    sql = (
        f"SELECT CASE WHEN overdue_since < {TODAY_UTC} - 1 THEN overdue_since + 2 END "
        f"FROM {CYCLES[search.cycles]} WHERE {' AND '.join(real)} ORDER BY overdue_since LIMIT 1 OFFSET {kth}"
    )
    return sql, args.values


def build_search(
    search: PortfolioFilter, page_size: int = PAGE_SIZE, *, dpd_bound: date | None = None
) -> tuple[str, list[Any]]:
    """The page of rows `search` asks for (ROW_COLUMNS, in its sort order). In DPD order, `dpd_bound` is what
    `build_dpd_bound` found (None: no bound, every match is sorted)."""
    args = _Args()
    matches = _matches(
        search, args, ", ".join(ROW_COLUMNS), dpd_bound=dpd_bound if search.sort == "dpd" else None
    )
    limit = args.add(page_size)
    offset = args.add((search.page - 1) * page_size)
    sql = f"SELECT * FROM ({matches}) AS found ORDER BY {SORTS[search.sort]} LIMIT {limit} OFFSET {offset}"
    return sql, args.values


def build_count(search: PortfolioFilter, cap: int = COUNT_CAP) -> tuple[str, list[Any]]:
    """How many rows match, counting at most cap + 1 (more than `cap` shows as "cap+")."""
    args = _Args()
    matches = _matches(search, args, "1")
    limit = args.add(cap + 1)
    return f"SELECT count(*) FROM (SELECT 1 FROM ({matches}) AS found LIMIT {limit}) AS matching", args.values


def build_options(column: str) -> str:
    """The distinct non-NULL values of `column` (one of OPTION_COLUMNS), by a loose index scan: one index
    probe per distinct value instead of reading the whole table."""
    if column not in OPTION_COLUMNS:
        raise ValueError(f"no options for {column!r}")
    return (
        f"WITH RECURSIVE found(value) AS ("
        f"(SELECT {column} FROM portfolio WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1) "
        f"UNION ALL SELECT (SELECT {column} FROM portfolio WHERE {column} > found.value "
        f"ORDER BY {column} LIMIT 1) FROM found WHERE found.value IS NOT NULL) "
        f"SELECT value FROM found WHERE value IS NOT NULL"
    )


def query_string(values: Mapping[str, str], **changes: str | int) -> str:
    """The query string of this search with `changes` (a page link), leaving out empty and default fields,
    and always the free text `q`: it may be a borrower's name, which is never put in an address."""
    merged = {**{name: values.get(name, "") for name in FIELDS}, **{k: str(v) for k, v in changes.items()}}
    merged.pop("q", None)
    defaults = {"status": "open", "cycles": "latest", "sort": DEFAULT_SORT, "page": "1"}
    return urlencode([(k, v) for k, v in merged.items() if v and defaults.get(k) != v])
