"""The journal of real workflow runs (time-skipping server, fake activities), written by the real journal
activity on PostgreSQL: every label value the metrics produce is a declared closed value, none falls back to
"other" (a value the closed sets forgot would), and none carries the loan id or the borrower's name."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from activities.contracts import JournalBatch
from activities.journal import Journal
from domain.loan import Payment
from domain.promise import PromiseRequest
from observability.labels import LABEL_VALUES
from tests.observability.registry import delta, samples
from tests.workflows.conftest import Harness, make_loan
from tests.workflows.conftest import harness as harness  # the time-skipping workflow harness
from workflows.messages import PAYMENT_SIGNAL, PROMISE_UPDATE


async def test_every_label_of_a_real_run_is_a_closed_value(harness: Harness, db_pool: asyncpg.Pool) -> None:
    # A loan that goes all the way (messages, placement, recall, letter, write-off) ...
    written_off = make_loan(await harness.now(), dpd=0, amount=150_000)
    await (await harness.start(written_off)).result()
    # ... and one with a promise broken after a part payment.
    promised = make_loan(await harness.now(), dpd=16)
    handle = await harness.start(promised)
    today = await harness.today()
    await handle.execute_update(
        PROMISE_UPDATE,
        PromiseRequest(amount_minor=50_000, due_date=today + timedelta(days=2), collector="c1"),
    )
    paid = Payment(payment_id="part-1", amount_minor=10_000, currency="CNY", received_at=await harness.now())
    await handle.signal(PAYMENT_SIGNAL, paid)
    await harness.env.sleep(timedelta(days=8))
    await handle.terminate("test finished")

    entries = harness.fakes.journal
    before = samples()
    for start in range(0, len(entries), 500):
        await Journal(db_pool).record(JournalBatch(entries=entries[start : start + 500]))
    counted = delta(before, samples())

    kinds = {dict(labels).get("kind") for name, labels in counted if name == "overdue_journal_entries_total"}
    assert {"contact_attempt", "stage_transition", "promise", "payment"} <= kinds
    personal = {written_off.loan_id, promised.loan_id, written_off.borrower.name, promised.borrower.name}
    for name, labels in counted:
        for label, value in labels:
            assert value in LABEL_VALUES[label], f"{name}: {label}={value!r} is not a declared value"
            assert not any(p in value for p in personal), f"{name}: {label}={value!r}"
