"""Whole loan lifecycles under time skipping: months of collections in seconds."""

from __future__ import annotations

from datetime import timedelta

from activities import contracts
from activities.heartbeats import HEARTBEAT_TIMEOUT
from domain.loan import Payment
from domain.promise import PromiseRequest
from domain.strategy import default_strategy
from tests.workflows.conftest import SHANGHAI, Harness, make_loan
from workflows.messages import (
    PAYMENT_SIGNAL,
    PROMISE_UPDATE,
    STATUS_QUERY,
    CollectionStatus,
    PromiseAccepted,
    child_workflow_id,
    workflow_id,
)


async def status(handle) -> CollectionStatus:
    return await handle.query(STATUS_QUERY, result_type=CollectionStatus)


def payment(payment_id: str, amount: int, when) -> Payment:
    return Payment(payment_id=payment_id, amount_minor=amount, currency="CNY", received_at=when)


async def test_paid_during_reminders(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=0)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=2))  # past the DPD 1 SMS

    await handle.signal(PAYMENT_SIGNAL, payment("pay-1", loan.amount_overdue_minor, await harness.now()))
    result = await handle.result()

    assert result.outcome == "paid"
    assert result.amount_overdue_minor == 0
    sent = harness.fakes.of(contracts.SEND_MESSAGE)
    assert [m.template for m in sent] == ["reminder_polite"]
    assert sent[0].channel == "sms" and sent[0].recipient == "+8613800138000"
    assert contracts.PLACE_WITH_AGENCY not in harness.fakes.names()


async def test_promise_kept_closes_as_paid(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=10)
    handle = await harness.start(loan)
    today = await harness.today()

    accepted = await handle.execute_update(
        PROMISE_UPDATE,
        PromiseRequest(
            amount_minor=loan.amount_overdue_minor, due_date=today + timedelta(days=5), collector="c1"
        ),
        result_type=PromiseAccepted,
    )
    assert accepted.promise_id
    paused = await status(handle)
    assert paused.open_promise is not None and paused.next_step is None

    await harness.env.sleep(timedelta(days=4))
    calls_before_payment = len(harness.fakes.calls)
    await handle.signal(PAYMENT_SIGNAL, payment("pay-1", loan.amount_overdue_minor, await harness.now()))
    result = await handle.result()

    assert result.outcome == "paid"
    assert [p.status for p in result.promises] == ["kept"]
    # Escalation paused while the promise was open: the DPD 15 call never became a task.
    assert contracts.CREATE_COLLECTOR_TASK not in harness.fakes.names()[:calls_before_payment]


async def test_promise_broken_resumes_escalation_with_follow_up(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=16)
    handle = await harness.start(loan)
    today = await harness.today()
    await handle.execute_update(
        PROMISE_UPDATE,
        PromiseRequest(amount_minor=50_000, due_date=today + timedelta(days=2), collector="c1"),
    )
    await handle.signal(PAYMENT_SIGNAL, payment("part-1", 10_000, await harness.now()))

    await harness.env.sleep(timedelta(days=8))  # past due date + 2 grace days
    after = await status(handle)

    assert after.promises[0].status == "broken"
    assert after.broken_promises == 1
    # The promise broke at local midnight, outside contact hours: no SMS then, a task in the collectors'
    # broken-promise queue instead, due when contact is allowed (08:00 Shanghai).
    assert [m for m in harness.fakes.of(contracts.SEND_MESSAGE) if m.template == "broken_promise"] == []
    follow_ups = [
        t for t in harness.fakes.of(contracts.CREATE_COLLECTOR_TASK) if t.kind == "promise_follow_up"
    ]
    assert len(follow_ups) == 1
    assert follow_ups[0].due_at.astimezone(SHANGHAI).hour == 8
    calls = harness.fakes.of(contracts.CREATE_COLLECTOR_TASK)
    assert any(c.kind == "call" and c.step_key.startswith("collector_call@") for c in calls[1:])
    assert after.outcome is None and after.stage == "deep_contact"


async def test_second_broken_promise_escalates_to_next_stage(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=16)
    handle = await harness.start(loan)
    for round_ in range(2):
        today = await harness.today()
        await handle.execute_update(
            PROMISE_UPDATE,
            PromiseRequest(amount_minor=20_000, due_date=today + timedelta(days=1), collector=f"c{round_}"),
        )
        await harness.env.sleep(timedelta(days=4))

    after = await status(handle)
    assert after.broken_promises == 2
    assert after.stage == "agency"  # DPD ~24: escalated ahead of the DPD 45 placement
    assert len(harness.fakes.of(contracts.PLACE_WITH_AGENCY)) == 1


async def test_unpaid_small_balance_goes_to_legal_then_write_off(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=0, amount=150_000)  # below the litigation threshold
    handle = await harness.start(loan)

    result = await handle.result()

    assert result.outcome == "written_off"
    names = harness.fakes.names()
    templates = [m.template for m in harness.fakes.of(contracts.SEND_MESSAGE)]
    assert templates == ["reminder_polite", "statement", "second_reminder"]
    assert names.index(contracts.PLACE_WITH_AGENCY) < names.index(contracts.RECALL_FROM_AGENCY)
    assert names.index(contracts.RECALL_FROM_AGENCY) < names.index(contracts.GENERATE_LAWYER_LETTER)
    assert contracts.REFER_TO_LITIGATION not in names
    assert harness.fakes.of(contracts.RECALL_FROM_AGENCY)[0].reason == "escalated"
    assert result.documents == ["doc-1"]


async def test_large_balance_is_referred_to_litigation(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=85, amount=1_500_000)
    handle = await harness.start(loan)

    result = await handle.result()

    assert result.outcome == "litigation"
    referral = harness.fakes.of(contracts.REFER_TO_LITIGATION)[0]
    assert referral.document_ids == ["doc-1"]
    assert referral.amount_overdue_minor == 1_500_000


async def test_partial_payment_reanchors_and_replans(harness: Harness) -> None:
    loan = make_loan(
        await harness.now(), dpd=50, amount=300_000, instalments=[(50, 100_000), (20, 100_000), (0, 100_000)]
    )
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    before = await status(handle)
    assert before.stage == "agency" and before.dpd == 50

    await handle.signal(PAYMENT_SIGNAL, payment("pay-oldest", 100_000, await harness.now()))
    await harness.env.sleep(timedelta(minutes=1))
    after = await status(handle)

    assert after.amount_overdue_minor == 200_000
    assert after.dpd == 20  # DPD now counts from the oldest instalment still unpaid
    assert after.stage == "agency"  # stages never go backwards
    assert before.next_step is not None and after.next_step is not None
    assert after.next_step.key == "lawyer_letter"
    assert after.next_step.due_at - before.next_step.due_at == timedelta(days=30)


async def test_duplicate_payment_is_counted_once(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=3)
    handle = await harness.start(loan)
    received = await harness.now()

    for _ in range(3):
        await handle.signal(PAYMENT_SIGNAL, payment("pay-dup", 40_000, received))
    await harness.env.sleep(timedelta(minutes=1))
    after = await status(handle)

    assert after.paid_total_minor == 40_000
    assert after.amount_overdue_minor == loan.amount_overdue_minor - 40_000


async def test_payment_in_another_currency_is_not_applied(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=3)
    handle = await harness.start(loan)
    wrong = Payment(payment_id="usd-1", amount_minor=1_000, currency="USD", received_at=await harness.now())

    await handle.signal(PAYMENT_SIGNAL, wrong)
    await harness.env.sleep(timedelta(minutes=1))

    assert (await status(handle)).paid_total_minor == 0


async def test_loan_entering_at_dpd_40_does_not_replay_reminders(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=40)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))

    after = await status(handle)

    assert after.stage == "deep_contact"
    assert contracts.SEND_MESSAGE not in harness.fakes.names()
    tasks = harness.fakes.of(contracts.CREATE_COLLECTOR_TASK)
    assert [t.step_key for t in tasks] == ["supervisor_review", "collector_call@39"]
    assert after.next_step is not None and after.next_step.key == "collector_call@42"


async def test_email_step_without_address_goes_by_sms(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=2, email=None)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=2))

    statement = [m for m in harness.fakes.of(contracts.SEND_MESSAGE) if m.template == "statement"]
    assert [(m.channel, m.recipient) for m in statement] == [("sms", "+8613800138000")]
    await handle.signal(PAYMENT_SIGNAL, payment("p", loan.amount_overdue_minor, await harness.now()))


async def test_failed_push_falls_back_to_sms(harness: Harness) -> None:
    harness.fakes.failing_channels.add("push")
    loan = make_loan(await harness.now(), dpd=8)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))

    sent = [(m.channel, m.step_key) for m in harness.fakes.of(contracts.SEND_MESSAGE)]
    assert sent == [("push", "push_second_reminder"), ("sms", "push_second_reminder:sms")]
    last = (await status(handle)).last_step
    assert last is not None and last.result.startswith("sms ")


async def test_close_signal_recalls_placement_and_ends(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=46)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    assert (await status(handle)).agency_name == "Acme Recoveries"

    from workflows.messages import CLOSE_SIGNAL, CloseRequest

    await handle.signal(CLOSE_SIGNAL, CloseRequest(reason="restructured", note="new schedule agreed"))
    result = await handle.result()

    assert result.outcome == "closed_by_servicing"
    assert result.outcome_reason == "restructured: new schedule agreed"
    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["closed"]


async def test_placement_expires_and_is_placed_again_once(harness: Harness) -> None:
    strategy = default_strategy()
    short = [
        s.model_copy(update={"period_days": 20}) if s.id == "agency_placement" else s for s in strategy.steps
    ]
    loan = make_loan(await harness.now(), dpd=46)
    handle = await harness.start(loan, strategy=strategy.model_copy(update={"steps": short}))
    await harness.env.sleep(timedelta(hours=1))
    first = await status(handle)
    assert first.agency_name == "Acme Recoveries" and first.agency_placement_id is not None

    await harness.env.sleep(timedelta(days=21))
    second = await status(handle)

    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["expired"]
    placements = harness.fakes.of(contracts.PLACE_WITH_AGENCY)
    assert len(placements) == 2 and placements[0].idempotency_key != placements[1].idempotency_key
    assert second.agency_placement_id not in (None, first.agency_placement_id)

    await harness.env.sleep(timedelta(days=21))
    third = await status(handle)

    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["expired", "expired"]
    assert len(harness.fakes.of(contracts.PLACE_WITH_AGENCY)) == 2  # at most two agencies in turn
    assert third.agency_placement_id is None and third.stage == "agency" and third.outcome is None
    assert third.next_step is not None and third.next_step.key == "lawyer_letter"


async def test_loan_placed_at_dpd_45_is_recalled_when_paid_at_dpd_60(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=44)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))
    placed = await status(handle)
    assert placed.stage == "agency" and placed.agency_placement_id is not None

    await harness.env.sleep(timedelta(days=15))  # DPD 60
    await handle.signal(PAYMENT_SIGNAL, payment("pay-60", loan.amount_overdue_minor, await harness.now()))
    result = await handle.result()

    assert result.outcome == "paid" and result.dpd == 60
    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["paid"]
    child = harness.client.get_workflow_handle(
        child_workflow_id(workflow_id(loan.loan_id), loan.overdue_since, "placement-1")
    )
    outcome = await child.result()
    assert outcome["ended"] == "paid"


async def test_legal_case_sends_the_letter_waits_the_window_then_refers(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=89, amount=1_500_000)
    handle = await harness.start(loan)

    result = await handle.result()

    names = harness.fakes.names()
    letter_at = harness.fakes.times[names.index(contracts.GENERATE_LAWYER_LETTER)]
    mail_at = harness.fakes.times[names.index(contracts.DISPATCH_REGISTERED_MAIL)]
    referral_at = harness.fakes.times[names.index(contracts.REFER_TO_LITIGATION)]
    assert letter_at <= mail_at < referral_at
    assert referral_at - letter_at >= timedelta(days=15)  # the response window was waited out
    assert result.outcome == "litigation"
    referral = harness.fakes.of(contracts.REFER_TO_LITIGATION)[0]
    assert referral.document_ids == ["doc-1"]
    legal_handle = harness.client.get_workflow_handle(
        child_workflow_id(workflow_id(loan.loan_id), loan.overdue_since, "legal")
    )
    legal = await legal_handle.result()
    assert legal["ended"] == "referred" and legal["tracking_reference"] == "RR000000000CN"
    # The legal activities can run for minutes: each is scheduled with a heartbeat timeout, so a worker that
    # dies mid-activity is noticed within it rather than at the start-to-close timeout.
    history = await legal_handle.fetch_history()
    scheduled = {
        attributes.activity_type.name: attributes
        for attributes in (e.activity_task_scheduled_event_attributes for e in history.events)
        if attributes.activity_id
    }
    assert set(scheduled) == {
        contracts.GENERATE_LAWYER_LETTER,
        contracts.DISPATCH_REGISTERED_MAIL,
        contracts.REFER_TO_LITIGATION,
    }
    for attributes in scheduled.values():
        assert attributes.heartbeat_timeout.ToTimedelta() == HEARTBEAT_TIMEOUT
        assert attributes.start_to_close_timeout.ToTimedelta() > HEARTBEAT_TIMEOUT


async def test_property_preservation_is_requested_when_the_strategy_says_so(harness: Harness) -> None:
    strategy = default_strategy()
    steps = [
        s.model_copy(update={"property_preservation": True}) if s.id == "litigation_referral" else s
        for s in strategy.steps
    ]
    loan = make_loan(await harness.now(), dpd=89, amount=1_500_000)
    handle = await harness.start(loan, strategy=strategy.model_copy(update={"steps": steps}))

    await handle.result()

    assert [r.property_preservation for r in harness.fakes.of(contracts.REFER_TO_LITIGATION)] == [True]
