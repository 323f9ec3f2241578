"""Only a verified actor changes a loan: what a raw Temporal client sends without a valid assertion is refused
inside the workflow with its reason, and changes nothing (issue 10, point 3)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from authority import Actor, Signer, SigningKey, TrustedKeys, trust
from domain.arrangements import InterestWaiver, SettlementApproval, StageHold
from domain.contact_rules import ContactState
from domain.holds import HardshipHold, RaiseDispute
from domain.loan import Payment
from tests.authority.keys import ADMIN_KEY, COLLECTOR, SERVICING, SUPERVISOR, TEST_RING, TEST_SIGNER
from tests.workflows.conftest import SHANGHAI, Harness, make_loan
from workflows.actors import ASSERTION_REFUSED, SIGNAL_REFUSED, UNVERIFIED
from workflows.agency_placement import PLACED_SIGNAL
from workflows.messages import (
    HARDSHIP_HOLD_UPDATE,
    HOLD_STAGE_UPDATE,
    PAYMENT_SIGNAL,
    RAISE_DISPUTE_UPDATE,
    SETTLEMENT_UPDATE,
    STATUS_QUERY,
    WAIVE_INTEREST_UPDATE,
    CollectionStatus,
    workflow_id,
)


def raw(harness: Harness) -> Client:
    """The test server's own client: pydantic converter, no signing interceptor."""
    return harness.env.client


async def status(handle: WorkflowHandle) -> CollectionStatus:
    return await handle.query(STATUS_QUERY, result_type=CollectionStatus)


async def refused(handle: WorkflowHandle, name: str, *args: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(name, args=list(args), result_type=CollectionStatus)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ASSERTION_REFUSED
    return cause.message


async def started(harness: Harness) -> tuple[WorkflowHandle, WorkflowHandle, date]:
    """The loan through the signing client and through the raw one, and the borrower's today."""
    loan = make_loan(await harness.now(), dpd=10)
    signed_handle = await harness.start(loan)
    today = (await harness.now()).astimezone(SHANGHAI).date()
    return signed_handle, raw(harness).get_workflow_handle(signed_handle.id), today


def hold(today: date, approver: str = "wang.boss") -> StageHold:
    return StageHold(approver=approver, until=today + timedelta(days=10), reason="talking to the borrower")


async def token(
    harness: Harness,
    handle: WorkflowHandle,
    action: str,
    request: BaseModel,
    actor: Actor = SUPERVISOR,
    signer: Signer = TEST_SIGNER,
    at: datetime | None = None,
) -> str:
    return signer.mint(actor, handle.id, action, request, now=at or await harness.now())


async def test_hold_stage_from_a_raw_client_without_an_assertion_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    _, handle, today = await started(harness)

    reason = await refused(handle, HOLD_STAGE_UPDATE, hold(today, approver="not.a.real.user"))

    assert reason.startswith("assertion: missing")
    after = await status(handle)
    assert after.stage_hold is None


async def test_each_bad_assertion_is_refused_with_its_reason(harness: Harness) -> None:
    _, handle, today = await started(harness)
    request = hold(today)
    forger = Signer([SigningKey.generate(ADMIN_KEY.kid, "admin", ("supervisor",), seed=b"f" * 32)])
    other_loan = raw(harness).get_workflow_handle(workflow_id("L-other"))
    cases = {
        "bad signature": await token(harness, handle, HOLD_STAGE_UPDATE, request, signer=forger),
        "expired": await token(
            harness, handle, HOLD_STAGE_UPDATE, request, at=await harness.now() - timedelta(minutes=11)
        ),
        "issued for another workflow": await token(harness, other_loan, HOLD_STAGE_UPDATE, request),
        "issued for escalate_stage, not hold_stage": await token(harness, handle, "escalate_stage", request),
        "role collector may not hold_stage": await token(
            harness, handle, HOLD_STAGE_UPDATE, hold(today, "c1"), actor=COLLECTOR
        ),
        "approver must be the asserted actor": await token(
            harness, handle, HOLD_STAGE_UPDATE, hold(today, "someone.else")
        ),
        # another content: signed for a hold until another day
        "does not match the request": await token(
            harness,
            handle,
            HOLD_STAGE_UPDATE,
            request.model_copy(update={"until": request.until + timedelta(1)}),
        ),
    }
    sent = {
        "role collector may not hold_stage": hold(today, "c1"),
        "approver must be the asserted actor": hold(today, "someone.else"),
    }

    for expected, signed in cases.items():
        reason = await refused(handle, HOLD_STAGE_UPDATE, sent.get(expected, request), signed)
        assert reason.startswith(f"assertion: {expected}"), (expected, reason)
    assert (await status(handle)).stage_hold is None


async def test_a_token_is_bound_to_its_amount(harness: Harness) -> None:
    _, handle, today = await started(harness)
    approved = SettlementApproval(
        approver="wang.boss", amount_minor=100_000, due_date=today + timedelta(days=5)
    )
    signed = await token(harness, handle, SETTLEMENT_UPDATE, approved)
    lower = approved.model_copy(update={"amount_minor": 10_000})

    reason = await refused(handle, SETTLEMENT_UPDATE, lower, signed)
    waiver = await refused(
        handle,
        WAIVE_INTEREST_UPDATE,
        InterestWaiver(approver="wang.boss", amount_minor=100_000, reason="x"),
        signed,
    )

    assert reason.startswith("assertion: does not match the request")
    assert waiver.startswith("assertion: issued for approve_settlement, not waive_interest")
    assert (await status(handle)).settlement is None


async def test_a_valid_assertion_acts_once(harness: Harness) -> None:
    _, handle, today = await started(harness)
    request = hold(today)
    signed = await token(harness, handle, HOLD_STAGE_UPDATE, request)

    accepted = await handle.execute_update(
        HOLD_STAGE_UPDATE, args=[request, signed], result_type=CollectionStatus
    )
    again = await refused(handle, HOLD_STAGE_UPDATE, request, signed)

    assert accepted.stage_hold is not None and accepted.stage_hold.approver == "wang.boss"
    assert again.startswith("assertion: already used")


async def test_an_unsigned_payment_changes_nothing_and_is_recorded(harness: Harness) -> None:
    _, handle, _ = await started(harness)
    before = await status(handle)
    payment = Payment(
        payment_id="P-forged",
        amount_minor=before.amount_overdue_minor,
        currency="CNY",
        received_at=await harness.now(),
    )

    await handle.signal(PAYMENT_SIGNAL, payment)
    await handle.signal(PLACED_SIGNAL, {"placement_id": "x"})  # not from a child of this loan
    after = await status(handle)
    await harness.env.sleep(timedelta(minutes=5))  # the journal is written when the loop next waits
    assert (after.paid_total_minor, after.amount_overdue_minor) == (0, before.amount_overdue_minor)
    assert after.refused_signals == 2 and after.outcome is None
    refusals = [
        (e.data["collector"], e.data["outcome"], e.data["detail"])
        for e in harness.fakes.journal_of("collector_action")
        if e.data["action"] == SIGNAL_REFUSED
    ]
    assert refusals[0] == (UNVERIFIED, PAYMENT_SIGNAL, refusals[0][2])
    assert str(refusals[0][2]).startswith("missing")
    assert refusals[1][1] == PLACED_SIGNAL


async def test_a_signed_payment_applies(harness: Harness) -> None:
    _, handle, _ = await started(harness)
    payment = Payment(payment_id="P-1", amount_minor=1_000, currency="CNY", received_at=await harness.now())

    await handle.signal(
        PAYMENT_SIGNAL, args=[payment, await token(harness, handle, PAYMENT_SIGNAL, payment, SERVICING)]
    )

    assert (await status(handle)).paid_total_minor == 1_000


async def test_rotation_an_old_key_verifies_while_trusted_and_not_once_removed(harness: Harness) -> None:
    _, handle, _ = await started(harness)
    new = SigningKey.generate("test-admin-2", "admin", ("collector", "supervisor", "admin"), seed=b"n" * 32)
    old_key = TEST_RING.get(ADMIN_KEY.kid)
    assert old_key is not None
    trust.install(TrustedKeys([old_key, new.public()]))  # rotation under way: both verify
    hardship = HardshipHold(collector="c1", days=5)
    signed_old = await token(harness, handle, HARDSHIP_HOLD_UPDATE, hardship, COLLECTOR)
    await handle.execute_update(HARDSHIP_HOLD_UPDATE, args=[hardship, signed_old], result_type=ContactState)

    trust.install(TrustedKeys([new.public()]))  # the old key removed from the ring
    dispute = RaiseDispute(collector="c1")
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        signed = await token(harness, handle, RAISE_DISPUTE_UPDATE, dispute, COLLECTOR)
        await handle.execute_update(RAISE_DISPUTE_UPDATE, args=[dispute, signed], result_type=ContactState)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message.startswith(f"assertion: unknown key {ADMIN_KEY.kid!r}")
    signed_new = await token(harness, handle, RAISE_DISPUTE_UPDATE, dispute, COLLECTOR, Signer([new]))
    state = await handle.execute_update(
        RAISE_DISPUTE_UPDATE, args=[dispute, signed_new], result_type=ContactState
    )

    assert state.dispute_open and state.hardship_until is not None
