"""Where the rules meet the system: each test here failed on the workflow before `domain.decision`.

Litigation only after a letter and its whole window, whatever the entry point; holds bind children and
tasks; tasks follow the loan; human contact asks the rules; the validation notice only where it is carried;
deferrals never end before they start; a refused message falls back; letters state only facts; no postal
address means a trace task, never a letter.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities import contracts
from domain.contact_rules import ContactState
from domain.holds import HardshipHold, StartBreathingSpace
from domain.loan import Borrower, Loan, Payment
from tests.workflows.conftest import Harness, make_loan
from workflows.messages import (
    BREATHING_SPACE_UPDATE,
    CLAIM_CONTACT_UPDATE,
    CONTACT_NOT_ALLOWED,
    HARDSHIP_HOLD_UPDATE,
    PAYMENT_SIGNAL,
    STATUS_QUERY,
    CollectionStatus,
    ContactClaim,
    ContactClaimAccepted,
    child_workflow_id,
    workflow_id,
)


async def status(handle: WorkflowHandle) -> CollectionStatus:
    return await handle.query(STATUS_QUERY, result_type=CollectionStatus)


def calls_at(harness: Harness, name: str) -> list[tuple[object, datetime]]:
    return [
        (req, at) for (n, req), at in zip(harness.fakes.calls, harness.fakes.times, strict=True) if n == name
    ]


def uk_loan(now: datetime, *, dpd: int, amount: int) -> Loan:
    today = now.astimezone(ZoneInfo("Europe/London")).date()
    return Loan(
        loan_id=f"L-{uuid.uuid4().hex[:10]}",
        borrower=Borrower(
            name="Pat Doe",
            phone="+447700900123",
            email="pat@example.co.uk",
            locale="en",
            timezone="Europe/London",
            postal_address="1 High Street, London",
        ),
        currency="GBP",
        amount_overdue_minor=amount,
        principal_outstanding_minor=amount * 3,
        overdue_since=today - timedelta(days=dpd),
        jurisdiction="uk",
    )


def assert_letter_and_window_before_referral(harness: Harness, window_days: int = 15) -> datetime:
    """The referral came after a letter dispatched by registered mail and after its whole window."""
    [(_, referred_at)] = calls_at(harness, contracts.REFER_TO_LITIGATION)
    dispatched = [at for _, at in calls_at(harness, contracts.DISPATCH_REGISTERED_MAIL)]
    assert dispatched, "referred to litigation without a lawyer's letter"
    assert referred_at - dispatched[0] >= timedelta(days=window_days - 1)
    return referred_at


async def test_a_loan_joining_at_dpd_130_gets_its_letter_and_window_before_any_referral(
    harness: Harness,
) -> None:
    loan = make_loan(await harness.now(), dpd=130, amount=1_500_000)
    result = await (await harness.start(loan)).result()

    assert result.outcome == "litigation"
    assert_letter_and_window_before_referral(harness)
    [referral] = harness.fakes.of(contracts.REFER_TO_LITIGATION)
    assert "contacts made: none" in referral.summary  # skipped steps are not contacts
    [letter] = harness.fakes.of(contracts.GENERATE_LAWYER_LETTER)
    assert letter.reminders == []  # no reminder was sent, so the letter claims none
    assert letter.postal_address == loan.borrower.postal_address


async def test_resuming_past_the_letter_after_a_hold_still_sends_the_letter_first(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=85, amount=1_500_000)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))
    await handle.execute_update(
        HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=30), result_type=ContactState
    )

    result = await handle.result()  # the hold ends at DPD ~116, past the DPD 105 referral

    assert result.outcome == "litigation"
    assert_letter_and_window_before_referral(harness)


async def test_breathing_space_binds_the_legal_case(harness: Harness) -> None:
    loan = uk_loan(await harness.now(), dpd=89, amount=200_000)
    handle = await harness.start(loan)
    while not harness.fakes.of(contracts.DISPATCH_REGISTERED_MAIL):
        await harness.env.sleep(timedelta(hours=12))
    state = await handle.execute_update(
        BREATHING_SPACE_UPDATE, StartBreathingSpace(collector="c1"), result_type=ContactState
    )
    assert state.breathing_space_until is not None

    result = await handle.result()

    assert result.outcome == "litigation"
    referred_at = assert_letter_and_window_before_referral(harness)
    assert referred_at >= state.breathing_space_until  # the window ended inside it: the filing waited


async def test_a_hold_recalls_the_agency_and_cancels_open_tasks(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=46)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))
    assert (await status(handle)).agency_placement_id is not None

    await handle.execute_update(
        HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=10), result_type=ContactState
    )
    await harness.env.sleep(timedelta(hours=1))

    [recall] = harness.fakes.of(contracts.RECALL_FROM_AGENCY)
    assert recall.reason == "hold"
    assert (await status(handle)).agency_placement_id is None


async def test_tasks_follow_the_loan_through_a_hold_and_to_payment(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=15)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    assert harness.fakes.open_tasks, "the DPD 15 call task"

    await handle.execute_update(
        HARDSHIP_HOLD_UPDATE, HardshipHold(collector="c1", days=5), result_type=ContactState
    )
    await harness.env.sleep(timedelta(hours=1))
    assert harness.fakes.open_tasks == {}  # no call task stays claimable during the hold
    assert [c.reason for c in harness.fakes.cancelled] == ["hold"]

    await harness.env.sleep(timedelta(days=6))
    again = [t for t in harness.fakes.of(contracts.CREATE_COLLECTOR_TASK) if "after-hold" in t.step_key]
    assert again and again[0].kind == "call"  # created again when the hold ended

    await handle.signal(
        PAYMENT_SIGNAL,
        Payment(
            payment_id="p1",
            amount_minor=loan.amount_overdue_minor,
            currency="CNY",
            received_at=await harness.now(),
        ),
    )
    assert (await handle.result()).outcome == "paid"
    assert harness.fakes.open_tasks == {}
    assert harness.fakes.cancelled[-1].reason == "paid"


async def test_claiming_a_call_asks_the_rules_at_that_moment(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=15)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=13))  # 23:00 in Shanghai: outside 08:00-22:00
    claim = ContactClaim(task_id="t-1", channel="call", collector="c1")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CLAIM_CONTACT_UPDATE, claim, result_type=ContactClaimAccepted)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CONTACT_NOT_ALLOWED
    allowed_at = datetime.fromisoformat(cause.details[0])
    assert allowed_at.astimezone(ZoneInfo("Asia/Shanghai")).hour == 8

    await harness.env.sleep(timedelta(hours=10))
    accepted = await handle.execute_update(CLAIM_CONTACT_UPDATE, claim, result_type=ContactClaimAccepted)
    assert accepted.attempt_at >= allowed_at
    claimed = [e for e in harness.fakes.journal_of("contact_attempt") if e.data["status"] == "claimed"]
    await harness.env.sleep(timedelta(minutes=5))
    claimed = [e for e in harness.fakes.journal_of("contact_attempt") if e.data["status"] == "claimed"]
    assert len(claimed) == 1  # the claim is the attempt, outcome recorded or not


async def test_the_validation_notice_goes_first_in_writing_never_on_an_sms(harness: Harness) -> None:
    """US borrower without e-mail: the notice goes by letter before any SMS; the SMS never claims it."""
    now = await harness.now()
    zone = ZoneInfo("America/New_York")
    loan = Loan(
        loan_id=f"L-{uuid.uuid4().hex[:10]}",
        borrower=Borrower(
            name="Pat Doe",
            phone="+14155550100",
            email=None,
            locale="en",
            timezone=zone.key,
            postal_address="1 Main St, Springfield",
        ),
        currency="USD",
        amount_overdue_minor=50_000,
        principal_outstanding_minor=200_000,
        overdue_since=now.astimezone(zone).date() - timedelta(days=1),
        jurisdiction="us",
    )
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))

    names = harness.fakes.names()
    assert contracts.SEND_MESSAGE in names, "the DPD 1 SMS went out"
    assert names.index(contracts.DISPATCH_REGISTERED_MAIL) < names.index(contracts.SEND_MESSAGE)
    assert all("validation_notice" not in m.variables for m in harness.fakes.of(contracts.SEND_MESSAGE))
    contact = (await status(handle)).contact
    assert contact is not None and contact.validation_notice_sent_at is not None


async def test_a_us_borrower_with_an_email_gets_the_notice_by_email_first(harness: Harness) -> None:
    now = await harness.now()
    zone = ZoneInfo("America/New_York")
    loan = Loan(
        loan_id=f"L-{uuid.uuid4().hex[:10]}",
        borrower=Borrower(
            name="Pat Doe", phone="+14155550100", email="pat@example.com", locale="en", timezone=zone.key
        ),
        currency="USD",
        amount_overdue_minor=50_000,
        principal_outstanding_minor=200_000,
        overdue_since=now.astimezone(zone).date() - timedelta(days=1),
        jurisdiction="us",
    )
    await harness.start(loan)
    await harness.env.sleep(timedelta(days=1))

    sent = harness.fakes.of(contracts.SEND_MESSAGE)
    assert sent[0].channel == "email" and sent[0].variables.get("validation_notice") == "included"
    assert [m.channel for m in sent[1:2]] == ["sms"]


async def test_an_outage_deferral_ends_after_it_was_recorded(harness: Harness) -> None:
    harness.fakes.outage_failures = 40  # more than every retry of one send
    loan = make_loan(await harness.now(), dpd=1)
    await harness.start(loan)
    await harness.env.sleep(timedelta(hours=6))

    deferrals = [e for e in harness.fakes.journal_of("deferral") if e.data["rule"] == "provider_unavailable"]
    assert deferrals
    for entry in deferrals:
        assert str(entry.data["deferred_until"]) > str(entry.data["deferred_from"])


async def test_a_message_the_provider_refuses_falls_back_to_the_next_channel(harness: Harness) -> None:
    harness.fakes.rejecting_channels = {"sms"}
    loan = make_loan(await harness.now(), dpd=1)
    await harness.start(loan)
    await harness.env.sleep(timedelta(hours=3))

    sent = harness.fakes.of(contracts.SEND_MESSAGE)
    assert [m.channel for m in sent] == ["sms", "email"]  # once each: no hourly retry of a refused SMS
    assert sent[1].supersedes == [sent[0].idempotency_key]  # the refused row is marked, not left queued


async def test_no_postal_address_means_a_trace_task_never_a_letter(harness: Harness) -> None:
    loan = make_loan(await harness.now(), dpd=88, amount=1_500_000, postal_address=None)
    result = await (await harness.start(loan)).result()

    assert result.outcome == "written_off"
    assert not harness.fakes.of(contracts.GENERATE_LAWYER_LETTER)
    assert not harness.fakes.of(contracts.REFER_TO_LITIGATION)
    assert "trace_address" in [t.kind for t in harness.fakes.of(contracts.CREATE_COLLECTOR_TASK)]


async def test_child_ids_never_collide_with_another_loans_workflow(harness: Harness) -> None:
    now = await harness.now()
    loan = make_loan(now, dpd=89)
    twin = make_loan(now, dpd=1).model_copy(update={"loan_id": f"{loan.loan_id}-legal"})
    handle = await harness.start(loan)
    twin_handle = await harness.start(twin)
    await harness.env.sleep(timedelta(days=2))

    legal_id = child_workflow_id(workflow_id(loan.loan_id), loan.overdue_since, "legal")
    assert legal_id != workflow_id(twin.loan_id)
    assert (await harness.client.get_workflow_handle(legal_id).describe()).id == legal_id
    assert (await status(handle)).outcome is None
    assert (await status(twin_handle)).outcome is None


async def test_a_loan_has_at_most_one_open_call_task(harness: Harness) -> None:
    """A callback beside the scheduled call, and the next repeat while the last one waits, replace the open
    call task instead of adding another (the simulation found bursts of call tasks)."""
    loan = make_loan(await harness.now(), dpd=15)
    handle = await harness.start(loan)
    await harness.env.sleep(timedelta(hours=1))
    assert len(harness.fakes.open_tasks) == 1

    await harness.env.sleep(timedelta(days=7))  # two more repeats of the DPD 15 call: nobody worked them

    assert len(harness.fakes.open_tasks) == 1
    assert {c.reason for c in harness.fakes.cancelled} == {"superseded"}
    assert (await status(handle)).outcome is None
