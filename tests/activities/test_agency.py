"""Agency selection and recall. Each test owns its database, so it decides which agencies exist.

The agencies here are file agencies (no API; the migration's default endpoint), so these tests are about the
database side: the assignment rule, capacity, idempotency, recall. The HTTP side is tests/channels/
test_agency_http.py against the sandbox agency.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.agency import DatabaseAgencyAdapter, sync_agencies
from domain.agencies import AgencyConfig
from tests.activities.builders import key, placement_request, recall_request


async def _agencies(pool: asyncpg.Pool, *agencies: tuple[str, int, list[str]]) -> DatabaseAgencyAdapter:
    """Replace the seeded agencies with (id, capacity, segments) ones."""
    await pool.execute("DELETE FROM agencies")
    await pool.executemany(
        "INSERT INTO agencies (id, name, capacity, segments, commission_bps) VALUES ($1, $2, $3, $4, 2000)",
        [(agency, f"Agency {agency}", capacity, segments) for agency, capacity, segments in agencies],
    )
    return DatabaseAgencyAdapter(pool)


def _loan() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"


async def test_placement_is_stored_with_its_expiry(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    request = placement_request(_loan())

    receipt = await adapter.place(request)

    assert (receipt.agency_id, receipt.agency_name, receipt.duplicate) == ("a", "Agency a", False)
    assert receipt.expires_at == request.placed_at + timedelta(days=60)
    row = await own_db_pool.fetchrow(
        "SELECT * FROM agency_placements WHERE id = $1::uuid", receipt.placement_id
    )
    assert row is not None
    assert (row["loan_id"], row["amount_overdue_minor"], row["currency"]) == (request.loan_id, 500_000, "CNY")


async def test_same_key_twice_places_once_and_reports_duplicate(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []), ("b", 10, []))
    request = placement_request(_loan())

    first = await adapter.place(request)
    second = await adapter.place(request)

    assert await own_db_pool.fetchval("SELECT count(*) FROM agency_placements") == 1
    assert (second.placement_id, second.duplicate) == (first.placement_id, True)
    assert second.agency_id == first.agency_id


async def test_agency_only_takes_its_segments(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a-risk", 10, ["high_risk"]), ("b-std", 10, ["standard"]))

    receipt = await adapter.place(placement_request(_loan(), segment="standard"))

    assert receipt.agency_id == "b-std"


async def test_agency_without_segments_takes_any(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a-risk", 10, ["high_risk"]), ("z-any", 10, []))

    receipt = await adapter.place(placement_request(_loan(), segment="low_risk_small"))

    assert receipt.agency_id == "z-any"


async def test_full_agency_is_skipped(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 1, []), ("b", 5, []))
    await adapter.place(placement_request(_loan()))  # a and b tie at 0: a, now full

    placed = [(await adapter.place(placement_request(_loan()))).agency_id for _ in range(3)]

    assert placed == ["b", "b", "b"]


async def test_equal_agencies_take_turns(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("b", 10, []), ("a", 10, []), ("c", 10, []))

    placed = [(await adapter.place(placement_request(_loan()))).agency_id for _ in range(6)]

    assert placed == ["a", "b", "c", "a", "b", "c"]


async def test_inactive_agency_is_never_chosen(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []), ("b", 10, []))
    await own_db_pool.execute("UPDATE agencies SET active = false WHERE id = 'a'")

    receipt = await adapter.place(placement_request(_loan()))

    assert receipt.agency_id == "b"


async def test_no_agency_with_capacity_is_non_retryable(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 1, []), ("b-risk", 10, ["high_risk"]))
    await adapter.place(placement_request(_loan()))

    with pytest.raises(ApplicationError) as error:
        await adapter.place(placement_request(_loan()))

    assert (error.value.type, error.value.non_retryable) == (contracts.NO_AGENCY_AVAILABLE, True)


async def test_concurrent_placements_never_exceed_capacity(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 2, []))

    results = await asyncio.gather(
        *(adapter.place(placement_request(_loan())) for _ in range(6)), return_exceptions=True
    )

    placed = [r for r in results if not isinstance(r, BaseException)]
    refused = [
        r for r in results if isinstance(r, ApplicationError) and r.type == contracts.NO_AGENCY_AVAILABLE
    ]
    assert (len(placed), len(refused)) == (2, 4)


async def test_recall_frees_capacity(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 1, []))
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert (await adapter.place(placement_request(_loan()))).agency_id == "a"


async def test_recall_twice_with_the_same_key_answers_the_same(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    first = await adapter.recall(recall_request(loan_id, placement.placement_id))
    retry = await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert (first.recalled, retry.recalled) == (True, True)
    row = await own_db_pool.fetchrow(
        "SELECT recall_reason, recall_key FROM agency_placements WHERE id = $1::uuid", placement.placement_id
    )
    assert row is not None
    assert (row["recall_reason"], row["recall_key"]) == ("paid", key(loan_id, "agency_recall:paid"))


async def test_recall_of_an_already_recalled_placement_changes_nothing(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))
    await adapter.recall(recall_request(loan_id, placement.placement_id))

    other_key = key(loan_id, "agency_recall:closed")

    again = await adapter.recall(
        recall_request(loan_id, placement.placement_id, idempotency_key=other_key, reason="closed")
    )

    assert again.recalled is False
    reason = await own_db_pool.fetchval(
        "SELECT recall_reason FROM agency_placements WHERE id = $1::uuid", placement.placement_id
    )
    assert reason == "paid"


async def test_recall_of_another_loans_placement_is_not_found(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    placement = await adapter.place(placement_request(_loan()))

    with pytest.raises(ApplicationError) as error:
        await adapter.recall(recall_request(_loan(), placement.placement_id))

    assert (error.value.type, error.value.non_retryable) == (contracts.PLACEMENT_NOT_FOUND, True)


async def test_placing_a_placed_loan_under_another_key_is_refused(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    loan_id = _loan()
    await adapter.place(placement_request(loan_id))

    with pytest.raises(ApplicationError) as error:
        await adapter.place(placement_request(loan_id, idempotency_key=key(loan_id, "agency_placement@100")))

    assert (error.value.type, error.value.non_retryable) == (contracts.LOAN_ALREADY_PLACED, True)


async def test_unsupported_currency_is_non_retryable(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))

    with pytest.raises(ApplicationError) as error:
        await adapter.place(placement_request(_loan(), currency="RMB"))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)


# --------------------------------------------------------------------- the assignment rule of this issue


def _config(agency_id: str, **fields: object) -> AgencyConfig:
    values: dict[str, object] = {"id": agency_id, "name": f"Agency {agency_id}", "endpoint": "file"}
    return AgencyConfig.model_validate(values | {"capacity": 10, "commission_bps": 2000} | fields)


async def _configured(pool: asyncpg.Pool, *agencies: AgencyConfig) -> DatabaseAgencyAdapter:
    await sync_agencies(pool, agencies)
    return DatabaseAgencyAdapter(pool)


async def test_file_agency_placement_is_accepted_at_once_without_reference(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _configured(own_db_pool, _config("a"))

    receipt = await adapter.place(placement_request(_loan()))

    assert (receipt.agency_id, receipt.agency_reference) == ("a", None)
    row = await own_db_pool.fetchrow(
        "SELECT status, accepted_at FROM agency_placements WHERE id = $1::uuid", receipt.placement_id
    )
    assert row is not None and row["status"] == "accepted" and row["accepted_at"] is not None


async def test_amount_limits_apply_per_currency(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _configured(
        own_db_pool,
        _config("a-big", min_amount_overdue_minor={"CNY": 1_000_000}),
        _config("b-small", max_amount_overdue_minor={"CNY": 999_999, "USD": 100_000}),
    )

    big = await adapter.place(placement_request(_loan(), amount_overdue_minor=1_000_000))
    small = await adapter.place(placement_request(_loan(), amount_overdue_minor=999_999))
    usd = await adapter.place(placement_request(_loan(), currency="USD", amount_overdue_minor=50_000))

    assert (big.agency_id, small.agency_id, usd.agency_id) == ("a-big", "b-small", "b-small")
    with pytest.raises(ApplicationError) as error:  # GBP: in neither agency's limits
        await adapter.place(placement_request(_loan(), currency="GBP"))
    assert error.value.type == contracts.NO_AGENCY_AVAILABLE


async def test_re_placement_excludes_the_agencies_the_loan_was_with(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _configured(own_db_pool, _config("a"), _config("b"))
    loan_id = _loan()
    first = await adapter.place(placement_request(loan_id))
    await adapter.recall(recall_request(loan_id, first.placement_id, reason="expired"))

    second = await adapter.place(
        placement_request(
            loan_id, idempotency_key=key(loan_id, "agency#2"), exclude_agencies=[first.agency_id]
        )
    )

    assert (first.agency_id, second.agency_id) == ("a", "b")
    with pytest.raises(ApplicationError) as error:
        await adapter.place(
            placement_request(_loan(), idempotency_key=key(_loan(), "x"), exclude_agencies=["a", "b"])
        )
    assert (error.value.type, error.value.non_retryable) == (contracts.NO_AGENCY_AVAILABLE, True)
    assert "not a, b" in str(error.value)


async def test_equal_load_goes_to_the_least_recently_assigned(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _configured(own_db_pool, _config("a"), _config("b"))
    loans = [_loan() for _ in range(3)]
    one = await adapter.place(placement_request(loans[0]))  # a (both new: lowest id)
    two = await adapter.place(placement_request(loans[1]))  # b
    await adapter.recall(recall_request(loans[0], one.placement_id))
    three = await adapter.place(placement_request(loans[2]))  # a: fewer active placements
    await adapter.recall(recall_request(loans[1], two.placement_id))
    await adapter.recall(recall_request(loans[2], three.placement_id))

    # Both hold nothing now; b was assigned longer ago than a, so b goes first (lowest id would say a).
    four = await adapter.place(placement_request(_loan()))

    assert [r.agency_id for r in (one, two, three, four)] == ["a", "b", "a", "b"]


async def test_sync_upserts_and_deactivates_but_never_deletes(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _configured(own_db_pool, _config("a"), _config("b", segments=["high_risk"]))
    loan_id = _loan()
    placed = await adapter.place(placement_request(loan_id, segment="high_risk"))  # a and b tie: a
    assert placed.agency_id == "a"

    result = await sync_agencies(own_db_pool, [_config("b", capacity=3, name="B renamed"), _config("c")])

    assert (result.added, result.deactivated, result.active) == (["c"], ["a"], ["b", "c"])
    rows = {
        r["id"]: r
        for r in await own_db_pool.fetch("SELECT id, name, capacity, active, segments FROM agencies")
    }
    assert set(rows) == {"a", "b", "c", "east-recovery", "north-credit"}  # nothing deleted
    assert not rows["a"]["active"] and not rows["east-recovery"]["active"]  # the seeded demo rows too
    assert (rows["b"]["name"], rows["b"]["capacity"], rows["b"]["segments"]) == ("B renamed", 3, [])
    # a's placement stays a's, and can still be recalled.
    assert (await adapter.recall(recall_request(loan_id, placed.placement_id))).recalled is True
    assert (await adapter.place(placement_request(_loan()))).agency_id == "b"

    again = await sync_agencies(own_db_pool, [_config("a"), _config("b")])
    assert (again.added, again.deactivated) == ([], ["c"])
    assert await own_db_pool.fetchval("SELECT active FROM agencies WHERE id = 'a'") is True


async def test_sync_stores_limits_and_contact_flag(own_db_pool: asyncpg.Pool) -> None:
    await sync_agencies(
        own_db_pool,
        [
            _config(
                "f",
                min_amount_overdue_minor={"CNY": 5},
                receives_contact_details=True,
                endpoint="https://agency.example/api",
                api_key_env="F_KEY",
            )
        ],
    )

    row = await own_db_pool.fetchrow("SELECT * FROM agencies WHERE id = 'f'")

    assert row is not None
    assert (row["endpoint"], row["receives_contact_details"]) == ("https://agency.example/api", True)
    assert (row["min_amount_overdue_minor"], row["max_amount_overdue_minor"]) == ('{"CNY": 5}', None)


async def test_recall_because_of_a_dispute_is_stored(own_db_pool: asyncpg.Pool) -> None:
    adapter = await _agencies(own_db_pool, ("a", 10, []))
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    await adapter.recall(recall_request(loan_id, placement.placement_id, reason="disputed"))

    reason = await own_db_pool.fetchval(
        "SELECT recall_reason FROM agency_placements WHERE id = $1::uuid", placement.placement_id
    )
    assert reason == "disputed"
