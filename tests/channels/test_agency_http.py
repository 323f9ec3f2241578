"""Placements and recalls over HTTP to the real sandbox agency (stack/sandbox/agency.py) on a free port.

Each test gets a database of its own (copied from a migrated template on the session's embedded PostgreSQL),
because agency selection looks at the whole `agencies` table; the agencies are synced into it from config.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.agency import DatabaseAgencyAdapter, sync_agencies
from activities.agency_http import (
    AGENCY_MISCONFIGURED,
    AGENCY_REJECTED,
    AGENCY_UNAVAILABLE,
    SANDBOX_API_KEY,
    AgencyHttpClient,
    report_agency_payment,
)
from authority.signer import CannotAct, Signer
from authority.tokens import claims_of, verify
from domain.agencies import AgencyConfig
from domain.loan import Payment
from stack import sandbox as stack_sandbox
from stack.sandbox import AgencySandbox, SandboxError
from stack.sandbox import agency as agency_sandbox_module
from stack.settings import Settings
from tests.activities.builders import key, placement_request, recall_request
from tests.authority.keys import TEST_RING

API_KEY = SANDBOX_API_KEY  # what the client sends to endpoint "sandbox" unless the agency has its own key


@pytest.fixture
def pool(own_db_pool: asyncpg.Pool) -> asyncpg.Pool:
    """A database of this test's own: agency selection looks at the whole agencies table."""
    return own_db_pool


class FakeHandle:
    def __init__(self, client: FakeClient, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    async def signal(self, name: str, *, args: list[Any]) -> None:
        # The workflow refuses an unsigned payment: check the assertion as its validator would.
        payment, token = args
        verify(
            token,
            TEST_RING,
            workflow_id=self.workflow_id,
            action=name,
            request=payment,
            now=payment.received_at,
        )
        self._client.signals.append((self.workflow_id, name, payment))
        self._client.tokens.append(token)

    async def query(self, name: str, result_type: Any = None) -> Any:
        self._client.queries.append((self.workflow_id, name))
        return SimpleNamespace(currency="USD")


class FakeClient:
    """Records the signals `report_agency_payment` sends (what a Temporal client would deliver)."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str, Any]] = []
        self.tokens: list[str] = []
        self.queries: list[tuple[str, str]] = []

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@pytest.fixture
def temporal() -> FakeClient:
    return FakeClient()


@pytest_asyncio.fixture
async def agency(tmp_path: Path, temporal: FakeClient) -> AsyncIterator[AgencySandbox]:
    sandbox = AgencySandbox(
        tmp_path / "agency.jsonl",
        api_key=API_KEY,
        on_payment=functools.partial(report_agency_payment, cast(Client, temporal)),
    )
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def http(agency: AgencySandbox) -> AsyncIterator[AgencyHttpClient]:
    client = AgencyHttpClient(sandbox_url=agency.base_url, timeout=5.0)
    yield client
    await client.aclose()


def _agency(agency_id: str, endpoint: str = "sandbox", **fields: Any) -> AgencyConfig:
    values: dict[str, Any] = {"id": agency_id, "name": f"Agency {agency_id}", "capacity": 10}
    return AgencyConfig(**(values | {"endpoint": endpoint, "commission_bps": 2000} | fields))


@pytest_asyncio.fixture
async def adapter(pool: asyncpg.Pool, http: AgencyHttpClient) -> DatabaseAgencyAdapter:
    await sync_agencies(pool, [_agency("east")])
    return DatabaseAgencyAdapter(pool, http=http)


def _loan() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"


async def _row(pool: asyncpg.Pool, placement_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM agency_placements WHERE id = $1::uuid", placement_id)
    assert row is not None
    return row


# -------------------------------------------------------------------------------------------- placement


async def test_placement_is_delivered_once_with_its_idempotency_key(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    request = placement_request(_loan())

    receipt = await adapter.place(request)
    again = await adapter.place(request)

    [entry] = agency.entries()
    assert (entry["event"], entry["agency_id"], entry["idempotency_key"]) == (
        "placement",
        "east",
        request.idempotency_key,
    )
    assert (entry["placement_id"], entry["loan_id"], entry["amount_overdue_minor"]) == (
        receipt.placement_id,
        request.loan_id,
        500_000,
    )
    assert (entry["currency"], entry["dpd"], entry["segment"], entry["period_days"]) == (
        "CNY",
        45,
        "standard",
        60,
    )
    assert entry["expires_at"] == receipt.expires_at.isoformat()
    assert receipt.agency_reference == entry["reference"] == "EAST-000001"
    row = await _row(pool, receipt.placement_id)
    assert (row["status"], row["agency_reference"]) == ("accepted", "EAST-000001")
    assert (again.duplicate, again.agency_reference, again.placement_id) == (
        True,
        "EAST-000001",
        receipt.placement_id,
    )
    assert agency.requests == 1  # the row said accepted: the agency was not asked again


async def test_503_then_success_places_once(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    request = placement_request(_loan())
    agency.fail_next(1, status=503)

    with pytest.raises(ApplicationError) as error:
        await adapter.place(request)
    assert (error.value.type, error.value.non_retryable) == (AGENCY_UNAVAILABLE, False)
    assert error.value.next_retry_delay is not None  # the sandbox's Retry-After: 1
    pending = await pool.fetchrow(
        "SELECT status FROM agency_placements WHERE idempotency_key = $1", request.idempotency_key
    )
    assert pending is not None and pending["status"] == "pending"  # written before the call

    retried = await adapter.place(request)

    assert len(agency.placements) == 1 and agency.requests == 2
    assert (await _row(pool, retried.placement_id))["status"] == "accepted"
    assert retried.agency_reference == "EAST-000001"


async def test_crash_after_the_agency_accepted_does_not_place_twice(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    request = placement_request(_loan())
    first = await adapter.place(request)
    # The worker died after the agency's 2xx, before it marked the row: the row is still pending.
    await pool.execute(
        "UPDATE agency_placements SET status = 'pending', agency_reference = NULL WHERE id = $1::uuid",
        first.placement_id,
    )

    retried = await adapter.place(request)

    assert len(agency.entries()) == 1  # same Idempotency-Key: the agency replayed its first answer
    assert (retried.placement_id, retried.agency_reference) == (first.placement_id, first.agency_reference)
    assert (await _row(pool, first.placement_id))["status"] == "accepted"


async def test_permanent_4xx_is_non_retryable_and_frees_the_loan(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    loan_id = _loan()
    request = placement_request(loan_id)
    agency.fail_next(1, status=422)

    with pytest.raises(ApplicationError) as error:
        await adapter.place(request)

    assert (error.value.type, error.value.non_retryable) == (AGENCY_REJECTED, True)
    row = await pool.fetchrow(
        "SELECT status, rejected_code FROM agency_placements WHERE idempotency_key = $1",
        request.idempotency_key,
    )
    assert row is not None and (row["status"], row["rejected_code"]) == ("rejected", "sandbox_failure")
    with pytest.raises(ApplicationError) as again:
        await adapter.place(request)  # the same key answers the same, without asking again
    assert again.value.type == AGENCY_REJECTED and agency.requests == 1
    # A rejected placement holds neither the loan nor a slot: the next placement goes through.
    other = await adapter.place(placement_request(loan_id, idempotency_key=key(loan_id, "agency#2")))
    assert other.agency_id == "east" and len(agency.placements) == 1


async def test_wrong_api_key_is_a_retryable_misconfiguration(
    pool: asyncpg.Pool, agency: AgencySandbox
) -> None:
    await sync_agencies(pool, [_agency("east")])
    wrong = AgencyHttpClient(api_keys={"east": "not-the-key"}, sandbox_url=agency.base_url, timeout=5.0)
    try:
        with pytest.raises(ApplicationError) as error:
            await DatabaseAgencyAdapter(pool, http=wrong).place(placement_request(_loan()))
    finally:
        await wrong.aclose()

    assert (error.value.type, error.value.non_retryable) == (AGENCY_MISCONFIGURED, False)
    assert agency.placements == {}


async def test_unreachable_agency_is_retryable(pool: asyncpg.Pool, http: AgencyHttpClient) -> None:
    await sync_agencies(pool, [_agency("gone", endpoint="http://127.0.0.1:9/v1")])

    with pytest.raises(ApplicationError) as error:
        await DatabaseAgencyAdapter(pool, http=http).place(placement_request(_loan()))

    assert (error.value.type, error.value.non_retryable) == (AGENCY_UNAVAILABLE, False)
    assert "127.0.0.1:9" in str(error.value) and "/v1" not in str(error.value)


async def test_agency_with_its_own_url_and_key(pool: asyncpg.Pool, agency: AgencySandbox) -> None:
    await sync_agencies(pool, [_agency("north", endpoint=agency.agency_url("north") + "/")])
    client = AgencyHttpClient(api_keys={"north": API_KEY}, timeout=5.0)
    try:
        receipt = await DatabaseAgencyAdapter(pool, http=client).place(placement_request(_loan()))
    finally:
        await client.aclose()

    assert (receipt.agency_id, receipt.agency_reference) == ("north", "NORTH-000001")
    assert agency.placements[receipt.placement_id]["agency_id"] == "north"


async def test_file_agency_gets_no_call(
    pool: asyncpg.Pool, agency: AgencySandbox, http: AgencyHttpClient
) -> None:
    await sync_agencies(pool, [_agency("paper", endpoint="file")])

    receipt = await DatabaseAgencyAdapter(pool, http=http).place(placement_request(_loan()))

    assert (receipt.agency_id, receipt.agency_reference, receipt.duplicate) == ("paper", None, False)
    assert (await _row(pool, receipt.placement_id))["status"] == "accepted"
    assert agency.requests == 0


# ----------------------------------------------------------------------------------------------- recall


async def test_recall_is_delivered_once(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    first = await adapter.recall(recall_request(loan_id, placement.placement_id))
    retry = await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert (first.recalled, retry.recalled) == (True, True)
    recalls = [e for e in agency.entries() if e["event"] == "recall"]
    assert [(e["placement_id"], e["reason"], e["idempotency_key"]) for e in recalls] == [
        (placement.placement_id, "paid", key(loan_id, "agency_recall:paid"))
    ]
    assert agency.placements[placement.placement_id]["status"] == "recalled"
    row = await _row(pool, placement.placement_id)
    assert (row["recall_status"], row["recall_delivered_at"] is not None) == ("delivered", True)
    assert agency.requests == 2  # one placement, one recall: the retry found it delivered


async def test_recall_after_a_503_is_delivered_on_retry(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))
    agency.fail_next(1, status=503)

    with pytest.raises(ApplicationError) as error:
        await adapter.recall(recall_request(loan_id, placement.placement_id))
    assert (error.value.type, error.value.non_retryable) == (AGENCY_UNAVAILABLE, False)
    row = await _row(pool, placement.placement_id)
    assert (row["recalled_at"] is not None, row["recall_status"]) == (True, "pending")

    receipt = await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert receipt.recalled is True
    assert len([e for e in agency.entries() if e["event"] == "recall"]) == 1
    assert (await _row(pool, placement.placement_id))["recall_status"] == "delivered"


async def test_recall_refused_by_the_agency_is_recorded_not_raised(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, pool: asyncpg.Pool
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))
    agency.fail_next(1, status=400)

    receipt = await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert receipt.recalled is True  # the lender's books say recalled; failing would fail the workflows
    row = await _row(pool, placement.placement_id)
    assert (row["recall_status"], row["recall_error_code"]) == ("refused", "sandbox_failure")


async def test_recall_of_a_placement_the_agency_does_not_hold_is_done(
    agency: AgencySandbox, http: AgencyHttpClient
) -> None:
    delivery = await http.recall("east", "sandbox", "k-1", str(uuid.uuid4()), "paid")

    assert (delivery.outcome, delivery.code) == ("delivered", "placement_not_found")


async def test_recall_of_a_file_placement_calls_nobody(
    pool: asyncpg.Pool, agency: AgencySandbox, http: AgencyHttpClient
) -> None:
    await sync_agencies(pool, [_agency("paper", endpoint="file")])
    adapter = DatabaseAgencyAdapter(pool, http=http)
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    receipt = await adapter.recall(recall_request(loan_id, placement.placement_id))

    assert receipt.recalled is True and agency.requests == 0
    assert (await _row(pool, placement.placement_id))["recall_status"] is None


# ------------------------------------------------------------------------------- agency payments


async def test_sandbox_payment_reaches_the_workflow_as_an_agency_payment(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, temporal: FakeClient
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    async with aiohttp.ClientSession(base_url=agency.base_url) as session:
        async with session.post(
            f"/placements/{placement.placement_id}/payments",
            json={"amount_minor": 10_000, "payment_id": "P-7"},
        ) as answer:
            body = await answer.json()

    assert (answer.status, body) == (200, {"payment_id": "P-7", "reported": True})
    [(workflow, signal, payment)] = temporal.signals
    assert (workflow, signal) == (f"collection-{loan_id}", "payment")
    assert isinstance(payment, Payment)
    assert (payment.payment_id, payment.amount_minor, payment.currency, payment.source) == (
        "east:P-7",
        10_000,
        "CNY",
        "agency",
    )
    assert temporal.queries == []  # the sandbox knew the currency
    assert agency.placements[placement.placement_id]["payments"][0]["amount_minor"] == 10_000


async def test_payment_button_on_the_page(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, temporal: FakeClient
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))

    async with aiohttp.ClientSession(base_url=agency.base_url) as session:
        async with session.get("/") as page:
            html = await page.text()
        async with session.post(
            f"/placements/{placement.placement_id}/payments",
            data={"amount_minor": "2500"},
            headers={"Origin": agency.base_url},
            allow_redirects=False,
        ) as form:
            form_status, location = form.status, form.headers.get("Location")
        async with session.post(
            f"/placements/{placement.placement_id}/payments",
            data={"amount_minor": "2500"},
            headers={"Origin": "http://evil.example"},
        ) as foreign:
            foreign_status = foreign.status
        async with session.get("/placements") as listing:
            placements = await listing.json()

    assert page.status == 200 and loan_id in html and "report payment" in html
    assert (form_status, location) == (303, "/")
    assert foreign_status == 403
    [(_, _, payment)] = temporal.signals
    assert payment.amount_minor == 2500 and payment.payment_id.startswith("east:PAY-")
    assert placements[0]["payments"][0]["amount_minor"] == 2500


async def test_payment_for_a_recalled_or_unknown_placement_is_refused(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, temporal: FakeClient
) -> None:
    loan_id = _loan()
    placement = await adapter.place(placement_request(loan_id))
    await adapter.recall(recall_request(loan_id, placement.placement_id))

    async with aiohttp.ClientSession(base_url=agency.base_url) as session:
        async with session.post(
            f"/placements/{placement.placement_id}/payments", json={"amount_minor": 100}
        ) as recalled:
            recalled_status = recalled.status
        async with session.post(
            f"/placements/{uuid.uuid4()}/payments", json={"amount_minor": 100}
        ) as unknown:
            unknown_status = unknown.status

    assert (recalled_status, unknown_status) == (409, 404)
    assert temporal.signals == []


async def test_report_agency_payment_asks_the_loan_currency_when_not_given() -> None:
    client = FakeClient()

    payment = await report_agency_payment(cast(Client, client), "L-9", 4200, "R-1", "north")

    assert client.queries == [("collection-L-9", "status")]
    assert client.signals == [("collection-L-9", "payment", payment)]
    assert (payment.payment_id, payment.currency, payment.source) == ("north:R-1", "USD", "agency")
    assert claims_of(client.tokens[0]).role == "servicing"


async def test_report_agency_payment_without_a_servicing_key_sends_nothing() -> None:
    client = FakeClient()

    with pytest.raises(CannotAct):
        await report_agency_payment(cast(Client, client), "L-9", 4200, "R-1", "north", signer=Signer([]))

    assert client.signals == [] and client.queries == []


# ----------------------------------------------------------------------------------------- the sandbox


async def test_sandbox_remembers_keys_across_a_restart(
    adapter: DatabaseAgencyAdapter, agency: AgencySandbox, tmp_path: Path
) -> None:
    request = placement_request(_loan())
    first = await adapter.place(request)
    await agency.stop()
    again = AgencySandbox(agency.log.path, port=agency.port, api_key=API_KEY)
    await again.start()
    try:
        client = AgencyHttpClient(sandbox_url=again.base_url, timeout=5.0)
        reference = await client.place("east", "sandbox", request.idempotency_key, {})
        await client.aclose()
    finally:
        await again.stop()

    assert reference == first.agency_reference  # replayed: the body is not even looked at
    assert len(again.entries()) == 1


async def test_sandbox_refuses_fields_outside_the_api(agency: AgencySandbox) -> None:
    body = {
        "placement_id": str(uuid.uuid4()),
        "loan_id": "L-1",
        "amount_overdue_minor": 1,
        "currency": "CNY",
        "dpd": 45,
        "segment": "standard",
        "period_days": 60,
        "expires_at": "2026-04-20T01:00:00+00:00",
        "borrower_name": "Li Na",
    }
    headers = {"Idempotency-Key": "k-1", "X-API-Key": API_KEY}
    async with aiohttp.ClientSession(base_url=agency.base_url) as session:
        async with session.post("/agencies/east/placements", json=body, headers=headers) as pii:
            pii_answer = (pii.status, (await pii.json())["error"])
        async with session.post(
            "/agencies/east/placements", json=body, headers={"X-API-Key": API_KEY}
        ) as nokey:
            nokey_answer = (nokey.status, (await nokey.json())["error"])

    assert pii_answer == (422, "unknown_field")
    assert nokey_answer == (400, "missing_idempotency_key")
    assert agency.entries() == []


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate({"state_dir": tmp_path, "sandbox_agency_port": 0, **values})


async def test_make_run_starts_the_sandbox_agency_for_sandbox_endpoints(tmp_path: Path) -> None:
    settings = _settings(tmp_path)  # the demo strategies/agencies.toml uses "sandbox"
    temporal = FakeClient()

    sandbox = await agency_sandbox_module.start_for_stack(
        settings,
        functools.partial(report_agency_payment, cast(Client, temporal)),
        stack_sandbox.SANDBOX_API_KEY,
    )
    try:
        assert sandbox is not None and sandbox.log.path == tmp_path / "agency.jsonl"
        lines = agency_sandbox_module.describe(settings, sandbox, str)
        assert sandbox.base_url in lines[0] and "agencies list" in lines[1]
    finally:
        if sandbox is not None:
            await sandbox.stop()
    assert SANDBOX_API_KEY == stack_sandbox.SANDBOX_API_KEY  # what the worker sends is what it accepts


async def test_make_run_starts_no_sandbox_agency_when_none_is_needed(tmp_path: Path) -> None:
    file = tmp_path / "agencies.toml"
    file.write_text(
        '[[agencies]]\nid = "a"\nname = "A"\nendpoint = "file"\ncapacity = 1\ncommission_bps = 0\n'
    )
    temporal = cast(Client, FakeClient())
    callback = functools.partial(report_agency_payment, temporal)

    assert (
        await agency_sandbox_module.start_for_stack(_settings(tmp_path, agencies_file=file), callback, "k")
        is None
    )
    elsewhere = _settings(tmp_path, agency_sandbox_url="http://127.0.0.1:1")
    assert await agency_sandbox_module.start_for_stack(elsewhere, callback, "k") is None

    file.write_text('[[agencies]]\nid = "a"\n')
    with pytest.raises(SandboxError, match=r"agencies\[0 id=a\]\.name"):
        await agency_sandbox_module.start_for_stack(_settings(tmp_path, agencies_file=file), callback, "k")


async def test_no_agency_left_is_still_non_retryable(pool: asyncpg.Pool, http: AgencyHttpClient) -> None:
    await sync_agencies(pool, [_agency("east", capacity=0)])

    with pytest.raises(ApplicationError) as error:
        await DatabaseAgencyAdapter(pool, http=http).place(placement_request(_loan()))

    assert (error.value.type, error.value.non_retryable) == (contracts.NO_AGENCY_AVAILABLE, True)
