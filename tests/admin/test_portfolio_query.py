"""The portfolio search builder (admin/portfolio_query.py): parsing the query string, the SQL it builds, and
(property) that every combination of filters builds SQL PostgreSQL runs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin.portfolio_query import (
    COUNT_CAP,
    DPD_BUCKETS,
    ERROR_AMOUNT,
    ERROR_CHOICE,
    ERROR_NEGATIVE,
    ERROR_RANGE,
    ERROR_TOO_LARGE,
    HOLDS,
    MAX_PAGE,
    OTHER_CLOCK,
    PAGE_SIZE,
    REAL_CLOCK,
    SORTS,
    STAGES,
    STATUSES,
    PortfolioFilter,
    build_count,
    build_dpd_bound,
    build_options,
    build_search,
    escape_like,
    parse_query,
    query_string,
)

# -- parsing -------------------------------------------------------------------------------------------------


def test_no_parameters_is_every_open_loan_by_dpd_page_one() -> None:
    parsed = parse_query({})
    assert parsed.errors == {}
    assert parsed.filter == PortfolioFilter()
    assert parsed.filter.status == "open" and parsed.filter.sort == "dpd" and parsed.filter.page == 1


def test_every_field_is_parsed() -> None:
    parsed = parse_query(
        {
            "stage": "legal",
            "dpd": "91-180",
            "segment": "high_risk",
            "strategy": "default",
            "agency": "east-recovery",
            "hold": "none",
            "status": "all",
            "amount_min": " 1,000.50 ",
            "amount_max": "20000",
            "q": "  Smith ",
            "sort": "amount",
            "page": "3",
        }
    )
    assert parsed.errors == {}
    assert parsed.filter == PortfolioFilter(
        stage="legal",
        dpd="91-180",
        segment="high_risk",
        strategy="default",
        agency="east-recovery",
        hold="none",
        status="all",
        amount_min=Decimal("1000.50"),
        amount_max=Decimal("20000"),
        q="Smith",
        sort="amount",
        page=3,
    )


@pytest.mark.parametrize(
    ("field", "text", "error"),
    [
        ("amount_min", "12abc", ERROR_AMOUNT),
        ("amount_min", "NaN", ERROR_AMOUNT),
        ("amount_max", "Infinity", ERROR_AMOUNT),
        ("amount_min", "1e999999", ERROR_TOO_LARGE),
        ("amount_max", "-5", ERROR_NEGATIVE),
        ("amount_min", "1.2.3", ERROR_AMOUNT),
        ("stage", "nonsense", ERROR_CHOICE),
        ("dpd", "1-2", ERROR_CHOICE),
        ("hold", "maybe", ERROR_CHOICE),
        ("status", "gone", ERROR_CHOICE),
    ],
)
def test_a_wrong_field_is_an_error_for_that_field_and_no_filter(field: str, text: str, error: str) -> None:
    parsed = parse_query({field: text})
    assert parsed.filter is None
    assert parsed.errors == {field: error}
    assert parsed.values[field] == text.strip()  # shown again as typed


def test_a_maximum_below_the_minimum_is_an_error_on_the_maximum() -> None:
    parsed = parse_query({"amount_min": "500", "amount_max": "100"})
    assert parsed.filter is None and parsed.errors == {"amount_max": ERROR_RANGE}


def test_link_fields_fall_back_instead_of_failing() -> None:
    for page in ("0", "-1", "abc", "1.5", "٣", "99999999999"):
        parsed = parse_query({"page": page, "sort": "bogus"})
        assert parsed.filter is not None
        assert parsed.filter.page in (1, MAX_PAGE) and parsed.filter.sort == "dpd"


def test_the_filter_refuses_values_the_builder_does_not_know() -> None:
    with pytest.raises(ValueError, match="stage"):
        PortfolioFilter(stage="x'; DROP TABLE portfolio; --")
    with pytest.raises(ValueError, match="sort"):
        PortfolioFilter(sort="borrower_name; --")
    with pytest.raises(ValueError, match="page"):
        PortfolioFilter(page=0)


# -- the SQL -------------------------------------------------------------------------------------------------


def test_no_filter_reads_open_loans_in_dpd_order() -> None:
    sql, args = build_search(PortfolioFilter())
    assert f"FROM portfolio_now WHERE outcome IS NULL AND {REAL_CLOCK} UNION ALL" in sql
    assert f"FROM portfolio_now WHERE outcome IS NULL AND {OTHER_CLOCK}) AS found" in sql
    assert sql.endswith("ORDER BY dpd DESC, loan_id, cycle DESC LIMIT $1 OFFSET $2")
    assert args == [PAGE_SIZE, 0]


def test_the_dpd_order_sorts_real_clock_loans_up_to_the_bound_only() -> None:
    bound_query = build_dpd_bound(PortfolioFilter(stage="legal", page=3))
    assert bound_query is not None
    sql, args = bound_query
    assert "ORDER BY overdue_since LIMIT 1 OFFSET $2" in sql and args == ["legal", 3 * PAGE_SIZE - 1]
    sql, args = build_search(PortfolioFilter(stage="legal", page=3), dpd_bound=date(2024, 5, 1))
    assert f"{REAL_CLOCK} AND overdue_since <= $2 UNION ALL" in sql
    assert args == ["legal", date(2024, 5, 1), PAGE_SIZE, 2 * PAGE_SIZE]
    assert build_dpd_bound(PortfolioFilter(sort="amount")) is None


def test_other_orders_read_the_matches_in_one_go() -> None:
    sql, _ = build_search(PortfolioFilter(sort="amount"), dpd_bound=date(2024, 5, 1))
    assert "UNION" not in sql and "overdue_since" not in sql
    assert sql.endswith("ORDER BY amount_overdue_minor DESC, loan_id, cycle DESC LIMIT $1 OFFSET $2")


def test_user_values_are_parameters_never_sql_text() -> None:
    evil = "x' OR 1=1; --"
    search = PortfolioFilter(segment=evil, strategy=evil, agency=evil, q=evil, status="all", page=2)
    sql, args = build_search(search)
    assert evil not in sql and "1=1" not in sql
    assert args.count(evil) == 3  # segment, strategy, agency
    assert "x' OR 1=1; --%" in args  # the id prefix pattern
    assert "%x' OR 1=1; --%" in args  # the name substring pattern
    assert args[-2:] == [PAGE_SIZE, PAGE_SIZE]


def test_free_text_is_an_id_prefix_or_a_name_substring_from_three_characters() -> None:
    sql, args = build_search(PortfolioFilter(q="smi"))
    assert "(lower(loan_id) LIKE lower($1) OR lower(borrower_name) LIKE lower($2))" in sql
    assert args[:2] == ["smi%", "%smi%"]
    _, args = build_search(PortfolioFilter(q="王伟"))
    assert args[:2] == ["王伟%", "王伟%"]  # short: a name prefix (its btree index), not a substring


def test_like_wildcards_in_free_text_match_literally() -> None:
    assert escape_like(r"50%_a\b") == r"50\%\_a\\b"
    _, args = build_search(PortfolioFilter(q="a_%"))
    assert args[:2] == [r"a\_\%%", r"%a\_\%%"]


def test_dpd_buckets_cover_every_day_once() -> None:
    days = [
        d for low, high in DPD_BUCKETS.values() for d in range(low, (high if high is not None else 400) + 1)
    ]
    assert sorted(days) == list(range(401))
    sql, args = build_search(PortfolioFilter(dpd="180+"))
    assert "dpd >= $1" in sql and "dpd <=" not in sql and args[0] == 181


def test_amounts_are_in_major_units_of_each_loans_currency() -> None:
    sql, args = build_search(PortfolioFilter(amount_min=Decimal("10.005"), amount_max=Decimal("20.5")))
    # JPY has no minor unit; every other currency two digits. The minimum rounds up, the maximum down.
    assert "(currency = ANY($1::bpchar[]) AND amount_overdue_minor >= $2)" in sql
    assert "(currency <> ALL($3::bpchar[]) AND amount_overdue_minor >= $4)" in sql
    assert args[:8] == [["JPY"], 11, ["JPY"], 1001, ["JPY"], 20, ["JPY"], 2050]


def test_agency_and_hold_choices() -> None:
    assert "agency_id IS NOT NULL" in build_search(PortfolioFilter(agency="any"))[0]
    assert "agency_id IS NULL" in build_search(PortfolioFilter(agency="none"))[0]
    sql, args = build_search(PortfolioFilter(agency="west-field"))
    assert "agency_id = $1" in sql and args[0] == "west-field"
    assert "hold IS NOT NULL" in build_search(PortfolioFilter(hold="any"))[0]
    assert "hold IS NULL" in build_search(PortfolioFilter(hold="none"))[0]
    assert "outcome IS NOT NULL" in build_search(PortfolioFilter(status="closed"))[0]
    assert "WHERE TRUE) AS found" in build_search(PortfolioFilter(status="all", sort="loan_id"))[0]


def test_the_count_stops_after_the_cap() -> None:
    sql, args = build_count(PortfolioFilter(stage="legal"))
    assert sql.startswith("SELECT count(*) FROM (SELECT 1 FROM (SELECT 1 FROM portfolio_now WHERE")
    assert args == ["legal", COUNT_CAP + 1]


def test_options_only_for_known_columns() -> None:
    assert "ORDER BY segment LIMIT 1" in build_options("segment")
    with pytest.raises(ValueError):
        build_options("borrower_name")


def test_page_links_keep_the_filters_and_leave_out_defaults_and_the_free_text() -> None:
    values = parse_query({"stage": "legal", "dpd": "31-60", "q": "王 & co", "page": "2"}).values
    assert query_string(values, page=3) == "stage=legal&dpd=31-60&page=3"  # the text may be a name
    assert query_string(values, page=1) == "stage=legal&dpd=31-60"


@pytest.mark.parametrize("field", ["q", "segment", "strategy", "agency"])
def test_control_characters_are_an_error_for_their_field(field: str) -> None:
    parsed = parse_query({field: "a\x00b"})
    assert parsed.filter is None and parsed.errors == {field: "Remove the control characters (such as NUL)."}


def test_pools_bind_the_segments_searched() -> None:
    sql, args = build_search(PortfolioFilter(pools=("high_risk",)))
    assert "segment = ANY($1::text[])" in sql and args[0] == ["high_risk"]
    assert "segment = ANY" not in build_search(PortfolioFilter())[0]


# -- property: any combination of filters runs on PostgreSQL -------------------------------------------------

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["", "%", "_", "\\", "'", '"', "DEMO-", "王伟", "smith", "x' OR 1=1 --"])
amounts = st.none() | st.decimals(
    min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=3
)

filters = st.builds(
    PortfolioFilter,
    stage=st.sampled_from(["", *STAGES]),
    dpd=st.sampled_from(["", *DPD_BUCKETS]),
    segment=text,
    strategy=text,
    agency=st.sampled_from(["", "any", "none", "east-recovery"]) | text,
    hold=st.sampled_from(["", *HOLDS]),
    status=st.sampled_from(STATUSES),
    amount_min=amounts,
    amount_max=amounts,
    q=text,
    sort=st.sampled_from(list(SORTS)),
    page=st.integers(min_value=1, max_value=MAX_PAGE),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(search=filters)
async def test_any_combination_of_filters_runs(db_pool: asyncpg.Pool, search: PortfolioFilter) -> None:
    bound_query = build_dpd_bound(search)
    if bound_query is not None:
        await db_pool.fetch(*bound_query[:1], *bound_query[1])
    sql, args = build_search(search, dpd_bound=date(2024, 1, 1))
    await db_pool.fetch(sql, *args)
    sql, args = build_count(search)
    count = await db_pool.fetchval(sql, *args)
    assert 0 <= count <= COUNT_CAP + 1


async def test_the_options_run(db_pool: asyncpg.Pool) -> None:
    for column in ("segment", "strategy", "agency_id"):
        await db_pool.fetch(build_options(column))
