"""The workflow keeps the portfolio read model current: a snapshot of the case with its journal batches, and
on its own when the case changed without a journal entry (a new case waiting for its first step)."""

from __future__ import annotations

from datetime import timedelta

from domain.loan import Payment
from tests.workflows.conftest import Harness, make_loan
from workflows.messages import PAYMENT_SIGNAL


async def test_a_new_case_is_in_the_portfolio_before_its_first_step(harness: Harness) -> None:
    # DPD 2: the first reminder (DPD 1) is behind; nothing is journaled until the next step is due.
    loan = make_loan(await harness.now(), dpd=2, amount=80_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(minutes=1))

    first = harness.fakes.snapshots[0]
    assert (first.loan_id, first.borrower_name, first.currency) == (loan.loan_id, "李雷", "CNY")
    assert (first.stage, first.outcome, first.amount_overdue_minor) == ("reminder", None, 80_000)
    assert first.overdue_since == loan.overdue_since and first.timezone == "Asia/Shanghai"
    await handle.terminate("test finished")


async def test_a_payment_moves_the_snapshot_and_the_outcome_lands(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5, amount=50_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))

    received = await harness.now()
    await handle.signal(
        PAYMENT_SIGNAL, Payment(payment_id="p1", amount_minor=20_000, currency="CNY", received_at=received)
    )
    await harness.env.sleep(timedelta(hours=1))
    assert harness.fakes.snapshots[-1].amount_overdue_minor == 30_000
    assert harness.fakes.snapshots[-1].paid_total_minor == 20_000

    await handle.signal(
        PAYMENT_SIGNAL, Payment(payment_id="p2", amount_minor=30_000, currency="CNY", received_at=received)
    )
    await handle.result()
    last = harness.fakes.snapshots[-1]
    assert (last.outcome, last.amount_overdue_minor) == ("paid", 0)
    # Snapshots only move forward in collections time: the read model's upsert relies on it.
    times = [s.as_of for s in harness.fakes.snapshots]
    assert times == sorted(times)
