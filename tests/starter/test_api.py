"""CollectionsStarter without a server: request building, validation, and start_many's concurrency bound."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.loan import Loan
from domain.strategy import default_strategy
from starter.api import (
    CollectionsStarter,
    InvalidRequest,
    StartFailed,
    build_payment,
    check_demo_day_seconds,
    check_payment,
    start_details,
    start_summary,
    summarize,
)
from tests.starter.samples import loan_record
from workflows.messages import WORKFLOW_NAME, CollectionInput


class FakeClient:
    """Records start_workflow calls and how many were in flight at once."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail = fail or set()

    async def start_workflow(self, name: str, arg: Any, **kwargs: Any) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)
            if kwargs["id"] in self.fail:
                raise RuntimeError("server said no")
            self.calls.append((name, arg, kwargs))
        finally:
            self.in_flight -= 1


def starter_with(client: FakeClient, **kwargs: Any) -> CollectionsStarter:
    return CollectionsStarter(cast(Client, client), strategy=default_strategy(), **kwargs)


def loans(count: int) -> list[Loan]:
    return [Loan.model_validate(loan_record(f"L-{i}")) for i in range(count)]


async def test_start_loan_request() -> None:
    client = FakeClient()
    loan = loans(1)[0]

    assert await starter_with(client, task_queue="q", demo_day_seconds=10).start_loan(loan) == "started"

    ((name, arg, kwargs),) = client.calls
    assert name == WORKFLOW_NAME
    assert isinstance(arg, CollectionInput)
    assert (arg.loan, arg.strategy.name, arg.demo_day_seconds) == (loan, "default", 10)
    assert kwargs["id"] == "collection-L-0"
    assert kwargs["task_queue"] == "q"
    assert kwargs["id_conflict_policy"] == WorkflowIDConflictPolicy.FAIL
    assert kwargs["id_reuse_policy"] == WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    assert kwargs["static_summary"] == "Loan L-0 · CNY 1,234.50 overdue since 2026-10-01 · segment standard"


async def test_start_many_keeps_to_the_concurrency_bound() -> None:
    client = FakeClient()

    results = await starter_with(client).start_many(loans(40), concurrency=7, progress=False)

    assert client.most_in_flight == 7
    assert list(results) == [f"L-{i}" for i in range(40)]
    assert summarize(results) == {"started": 40, "new_cycle": 0, "already_running": 0, "already_closed": 0}


async def test_start_many_finishes_the_batch_and_reports_failures() -> None:
    client = FakeClient(fail={"collection-L-3"})

    with pytest.raises(StartFailed) as caught:
        await starter_with(client).start_many(loans(10), concurrency=3, progress=False)

    assert set(caught.value.failures) == {"L-3"}
    assert len(caught.value.results) == 9
    assert "1 loan(s) could not be started (first: L-3: server said no)" in str(caught.value)


def test_summary_and_details_carry_no_borrower_data() -> None:
    loan = loans(1)[0]
    strategy = default_strategy()

    text = start_summary(loan, "standard") + start_details(loan, strategy, "standard", 10)

    for private in (loan.borrower.name, loan.borrower.phone, loan.borrower.email or "@"):
        assert private not in text
    assert "**Strategy** default v1 · segment standard" in text
    assert "one collections day lasts 10 s" in text


def test_payment_validation_names_each_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_payment(0, "", "XYZ", datetime(2026, 11, 25, 10, 0), source="bank")

    assert [field for field, _ in caught.value.problems] == [
        "payment_id", "amount_minor", "currency", "received_at", "source",
    ]  # fmt: skip


def test_payment_without_currency_is_checked_for_the_rest() -> None:
    check_payment(100, "P-1")  # the currency comes from the loan later

    with pytest.raises(InvalidRequest) as caught:
        check_payment(-1, "P-1")
    assert [field for field, _ in caught.value.problems] == ["amount_minor"]


@pytest.mark.parametrize("seconds", [0.0, 0.05, 86401.0, float("nan")])
def test_demo_day_seconds_out_of_the_clocks_range(seconds: float) -> None:
    with pytest.raises(InvalidRequest, match=r"demo_day_seconds: must be between 0\.1 and 86400 seconds"):
        check_demo_day_seconds(seconds)


async def test_invalid_requests_are_refused_before_any_call() -> None:
    starter = starter_with(FakeClient())  # any call on the fake's missing handle API would fail

    with pytest.raises(InvalidRequest, match="loan_id"):
        await starter.status("bad id")
    with pytest.raises(InvalidRequest, match="amount_minor"):
        await starter.promise("L-1", 0, date(2026, 12, 1), collector="li.na")
    with pytest.raises(InvalidRequest, match="reason"):
        await starter.close("L-1", "bored")
    with pytest.raises(InvalidRequest, match="amount_minor"):
        await starter.pay("L-1", 0, payment_id="P-1")


async def test_start_many_refuses_repeated_loan_ids() -> None:
    client = FakeClient()
    batch = loans(3)

    with pytest.raises(ValueError, match="repeated: L-1"):
        await starter_with(client).start_many([*batch, batch[1]], progress=False)
    assert client.calls == []
