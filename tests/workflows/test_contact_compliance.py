"""No contact leaves the workflow unless the borrower's jurisdiction allows it then (time skipping)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities import contracts
from domain.contact_rules import ContactState
from domain.holds import ContactOutcome, HardshipHold, RaiseDispute, ResolveDispute, StartBreathingSpace
from domain.loan import Borrower, Loan, Payment
from domain.strategy import default_strategy
from tests.workflows.conftest import SHANGHAI, Harness, make_loan
from workflows.messages import (
    BREATHING_SPACE_UPDATE,
    CONTACT_OUTCOME_UPDATE,
    HARDSHIP_HOLD_UPDATE,
    PAYMENT_SIGNAL,
    RAISE_DISPUTE_UPDATE,
    RESOLVE_DISPUTE_UPDATE,
    STATUS_QUERY,
    CollectionStatus,
)


def foreign_loan(harness_now: datetime, jurisdiction: str, zone: str, currency: str, *, dpd: int) -> Loan:
    today = harness_now.astimezone(ZoneInfo(zone)).date()
    return Loan(
        loan_id=f"L-{uuid.uuid4().hex[:10]}",
        borrower=Borrower(
            name="Pat Doe", phone="+14155550100", email="pat@example.com", locale="en", timezone=zone
        ),
        currency=currency,
        amount_overdue_minor=50_000,
        principal_outstanding_minor=200_000,
        overdue_since=today - timedelta(days=dpd),
        jurisdiction=jurisdiction,
    )


async def status(handle: WorkflowHandle) -> CollectionStatus:
    return await handle.query(STATUS_QUERY, result_type=CollectionStatus)


async def test_step_due_at_2330_goes_out_at_0800_next_morning_cn(harness: Harness) -> None:
    late = default_strategy().model_copy(update={"contact_time": time(23, 30)})
    loan = make_loan(await harness.now(), dpd=0)
    handle = await harness.start(loan, strategy=late)

    await harness.env.sleep(timedelta(days=2))

    sms: list[tuple[contracts.MessageRequest, datetime]] = [
        (req, at)  # type: ignore[misc]
        for (name, req), at in zip(harness.fakes.calls, harness.fakes.times, strict=True)
        if name == contracts.SEND_MESSAGE
    ]
    # Due at DPD 1 23:30, deferred to DPD 2 08:00; the DPD 3 e-mail is not due yet.
    assert [r.step_key for r, _ in sms] == ["sms_reminder"]
    sent_local = sms[0][1].astimezone(SHANGHAI)
    assert (sent_local.hour, sent_local.minute) == (8, 0)
    deferral = harness.fakes.journal_of("deferral")[0]
    assert deferral.data["rule"] == "hours" and deferral.data["step_key"] == "sms_reminder"
    assert (await status(handle)).outcome is None


async def test_dispute_stops_contacts_until_resolved_us(harness: Harness) -> None:
    loan = foreign_loan(await harness.now(), "us", "America/New_York", "USD", dpd=0)
    handle = await harness.start(loan)
    await handle.execute_update(
        RAISE_DISPUTE_UPDATE, RaiseDispute(collector="c1", note="says not his debt"), result_type=ContactState
    )

    await harness.env.sleep(timedelta(days=20))
    during = await status(handle)
    assert contracts.SEND_MESSAGE not in harness.fakes.names()
    assert during.escalation_hold is not None and "dispute" in during.escalation_hold

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            RESOLVE_DISPUTE_UPDATE,
            ResolveDispute(collector="c1", verification_sent=False),
            result_type=ContactState,
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message.startswith("verification_sent:")

    await handle.execute_update(
        RESOLVE_DISPUTE_UPDATE,
        ResolveDispute(collector="c1", verification_sent=True),
        result_type=ContactState,
    )
    await harness.env.sleep(timedelta(days=1))
    assert (
        contracts.SEND_MESSAGE in harness.fakes.names()
        or contracts.CREATE_COLLECTOR_TASK in harness.fakes.names()
    )
    holds = [(e.data["kind"], e.data["action"]) for e in harness.fakes.journal_of("hold")]
    assert holds == [("dispute", "raised"), ("dispute", "resolved")]


async def test_breathing_space_freezes_for_60_days_then_resumes_uk(harness: Harness) -> None:
    loan = foreign_loan(await harness.now(), "uk", "Europe/London", "GBP", dpd=5)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    before = len(harness.fakes.calls)
    state = await handle.execute_update(
        BREATHING_SPACE_UPDATE,
        StartBreathingSpace(collector="c1", reference="DRS-1"),
        result_type=ContactState,
    )
    assert state.breathing_space_until is not None

    await harness.env.sleep(timedelta(days=59))
    frozen = [n for n in harness.fakes.names()[before:] if n != contracts.RECORD_JOURNAL]
    assert frozen == []
    assert (await status(handle)).stage == "reminder"

    await harness.env.sleep(timedelta(days=2))
    resumed = [n for n in harness.fakes.names()[before:] if n != contracts.RECORD_JOURNAL]
    assert resumed, "escalation resumes by itself after Breathing Space"
    after = await status(handle)
    assert after.escalation_hold is None and after.stage != "reminder"
    assert ("breathing_space", "expired") in [
        (e.data["kind"], e.data["action"]) for e in harness.fakes.journal_of("hold")
    ]


async def test_failed_sms_falls_back_to_email(harness: Harness) -> None:
    harness.fakes.failing_channels.add("sms")
    loan = make_loan(await harness.now(), dpd=1)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))

    sent = [(m.channel, m.step_key) for m in harness.fakes.of(contracts.SEND_MESSAGE)]
    assert sent == [("sms", "sms_reminder"), ("email", "sms_reminder:email")]
    after = await status(handle)
    assert after.contact is not None and after.contact.unreachable_addresses == ["+8613800138000"]


async def test_journal_matches_the_contacts_made(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=0)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=16))
    await handle.execute_update(
        CONTACT_OUTCOME_UPDATE, ContactOutcome(collector="c1", outcome="no_answer"), result_type=ContactState
    )
    await handle.signal(
        PAYMENT_SIGNAL,
        Payment(
            payment_id="p1",
            amount_minor=loan.amount_overdue_minor,
            currency="CNY",
            received_at=await harness.now(),
        ),
    )
    await handle.result()

    messages = [
        (m.idempotency_key.split(":")[-1], m.channel) for m in harness.fakes.of(contracts.SEND_MESSAGE)
    ]
    attempts = [
        e
        for e in harness.fakes.journal_of("contact_attempt")
        if e.data["channel"] in ("sms", "email", "push")
    ]
    assert [(e.data["channel"]) for e in attempts] == [c for _, c in messages]
    assert all(e.data["status"] == "queued" for e in attempts)
    calls = [e for e in harness.fakes.journal_of("contact_attempt") if e.data["channel"] == "call"]
    assert [e.data["status"] for e in calls] == ["no_answer"]
    payments = harness.fakes.journal_of("payment")
    assert [(p.data["payment_id"], p.data["applied"]) for p in payments] == [("p1", True)]
    stages = [
        (e.data["from_stage"], e.data["to_stage"]) for e in harness.fakes.journal_of("stage_transition")
    ]
    assert stages == [("reminder", "deep_contact")]


async def test_hardship_hold_resumes_by_itself(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=5)
    handle = await harness.start(loan)
    await handle.execute_update(
        HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=14), result_type=ContactState
    )

    await harness.env.sleep(timedelta(days=13))
    assert "hardship" in ((await status(handle)).escalation_hold or "")
    templates_during = [m.template for m in harness.fakes.of(contracts.SEND_MESSAGE)]

    await harness.env.sleep(timedelta(days=2))
    after = await status(handle)
    assert after.escalation_hold is None
    assert len(harness.fakes.of(contracts.SEND_MESSAGE)) + len(
        harness.fakes.of(contracts.CREATE_COLLECTOR_TASK)
    ) > len(templates_during)


async def test_payment_while_the_journal_is_written_is_not_missed(harness: Harness) -> None:
    harness.fakes.journal_delay = 1.0
    loan = make_loan(await harness.now(), dpd=1)
    handle = await harness.start(loan)
    while not harness.fakes.of(contracts.RECORD_JOURNAL):  # noqa: ASYNC110  (polls the fakes' call list)
        await asyncio.sleep(0.05)  # the SMS went out; its journal entry is being written
    paid_at = await harness.now()

    await handle.signal(
        PAYMENT_SIGNAL,
        Payment(payment_id="p1", amount_minor=loan.amount_overdue_minor, currency="CNY", received_at=paid_at),
    )
    result = await handle.result()

    assert result.outcome == "paid"
    assert result.collections_now - paid_at < timedelta(hours=1)  # not at the next step, days later


async def test_dispute_recalls_the_account_from_the_agency_us(harness: Harness) -> None:
    loan = foreign_loan(await harness.now(), "us", "America/New_York", "USD", dpd=46)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))
    assert (await status(handle)).agency_placement_id is not None

    await handle.execute_update(RAISE_DISPUTE_UPDATE, RaiseDispute(collector="c1"), result_type=ContactState)
    await harness.env.sleep(timedelta(hours=1))

    assert [r.reason for r in harness.fakes.of(contracts.RECALL_FROM_AGENCY)] == ["disputed"]
    assert (await status(handle)).agency_placement_id is None


async def test_provider_outage_defers_the_message_instead_of_closing_the_phone(harness: Harness) -> None:
    harness.fakes.outage_failures = 16  # more than the 15 attempts of one activity
    loan = make_loan(await harness.now(), dpd=1)
    handle = await harness.start(loan)

    await harness.env.sleep(timedelta(hours=3))
    after = await status(handle)

    sent = harness.fakes.of(contracts.SEND_MESSAGE)
    assert {(m.channel, m.step_key) for m in sent} == {("sms", "sms_reminder")}  # no e-mail fallback
    assert after.contact is not None and after.contact.unreachable_addresses == []
    assert after.last_step is not None and after.last_step.key == "sms_reminder"
    assert after.last_step.result.startswith("sms ")
    rules = [e.data["rule"] for e in harness.fakes.journal_of("deferral")]
    assert rules == ["provider_unavailable"]
