"""Build the activity request for a strategy step from the case: pure, so the workflow only orchestrates."""

from __future__ import annotations

from datetime import datetime, timedelta

from activities.contracts import (
    CollectorTaskRequest,
    LawyerLetterRequest,
    LitigationReferralRequest,
    MessageRequest,
    PlacementRequest,
    ReminderSent,
)
from domain.case import CollectionCase
from domain.loan import format_money
from domain.schedule import Occurrence


def idempotency_key(case: CollectionCase, step_key: str) -> str:
    """Loan, cycle and step. Stable across retries, worker restarts and continue-as-new (no run id)."""
    return f"{case.loan.loan_id}:{case.cycle.isoformat()}:{step_key}"


def recipient_for(case: CollectionCase, channel: str) -> tuple[str, str]:
    """(channel, recipient). A borrower without an e-mail address gets the e-mail step as an SMS."""
    borrower = case.loan.borrower
    if channel == "email":
        return ("email", borrower.email) if borrower.email else ("sms", borrower.phone)
    if channel == "push":
        # App pushes address the borrower's app account, which servicing keys by loan id.
        return "push", case.loan.loan_id
    return "sms", borrower.phone


def message_variables(case: CollectionCase, now: datetime) -> dict[str, str]:
    return {
        "borrower_name": case.loan.borrower.name,
        "loan_id": case.loan.loan_id,
        "amount": format_money(case.arrears_minor, case.loan.currency),
        "amount_minor": str(case.arrears_minor),
        "currency": case.loan.currency,
        "dpd": str(case.dpd(now)),
        "overdue_since": case.anchor.isoformat(),
        "lender": case.loan.lender,
        "product": case.loan.product,
        "jurisdiction": case.loan.jurisdiction,  # templates add the opt-out line where the law requires it
    }


def message_request(
    case: CollectionCase, step_key: str, channel: str, template: str, now: datetime
) -> MessageRequest:
    actual_channel, recipient = recipient_for(case, channel)
    return MessageRequest(
        idempotency_key=idempotency_key(case, step_key),
        loan_id=case.loan.loan_id,
        step_key=step_key,
        channel=actual_channel,
        template=template,
        locale=case.loan.borrower.locale,
        recipient=recipient,
        variables=message_variables(case, now),
    )


def placement_request(
    case: CollectionCase,
    step_key: str,
    period_days: int,
    now: datetime,
    exclude_agencies: list[str] | None = None,
) -> PlacementRequest:
    return PlacementRequest(
        idempotency_key=idempotency_key(case, step_key),
        loan_id=case.loan.loan_id,
        currency=case.loan.currency,
        amount_overdue_minor=case.arrears_minor,
        principal_outstanding_minor=case.principal_outstanding_minor,
        segment=case.segment,
        dpd=case.dpd(now),
        period_days=period_days,
        placed_at=now,
        exclude_agencies=list(exclude_agencies or []),
    )


def task_priority(case: CollectionCase, now: datetime) -> int:
    """Older debts, larger balances and broken promises first (0-1000)."""
    balance_weight = min(300, case.arrears_minor // 100_000)  # +1 per 1,000.00 overdue, capped
    return min(1000, case.dpd(now) * 3 + balance_weight + case.broken_promises * 100)


def collector_task_request(
    case: CollectionCase, step_key: str, kind: str, real_now: datetime, now: datetime, note: str
) -> CollectorTaskRequest:
    return CollectorTaskRequest(
        idempotency_key=idempotency_key(case, step_key),
        loan_id=case.loan.loan_id,
        step_key=step_key,
        kind=kind,
        due_at=real_now,
        priority=task_priority(case, now),
        pool=case.segment,
        note=note,
    )


def lawyer_letter_request(case: CollectionCase, occurrence: Occurrence, now: datetime) -> LawyerLetterRequest:
    issued_on = case.local_today(now)
    return LawyerLetterRequest(
        idempotency_key=idempotency_key(case, occurrence.key),
        loan_id=case.loan.loan_id,
        locale=case.loan.borrower.locale,
        lender=case.loan.lender,
        borrower_name=case.loan.borrower.name,
        currency=case.loan.currency,
        amount_overdue_minor=case.arrears_minor,
        principal_outstanding_minor=case.principal_outstanding_minor,
        overdue_since=case.anchor,
        dpd=case.dpd(now),
        issued_on=issued_on,
        respond_by=issued_on + timedelta(days=occurrence.step.response_days or 15),
        product=case.loan.product,
        reminders=reminders_sent(case),
        postal_address=case.loan.borrower.postal_address,
    )


def reminders_sent(case: CollectionCase) -> list[ReminderSent]:
    """The contacts that really went out (not skipped or deferred steps), as the letter states them."""
    return [
        ReminderSent(channel=made.channel, sent_on=case.local_today(made.at))
        for made in case.contacts_made
        if made.channel != "letter"
    ]


def ledger_summary(case: CollectionCase) -> str:
    """For the court file: payments, promises and the contacts actually made, by channel (never steps that
    were skipped or deferred)."""
    kept = sum(1 for p in case.promises if p.status == "kept")
    by_channel: dict[str, int] = {}
    for made in case.contacts_made:
        by_channel[made.channel] = by_channel.get(made.channel, 0) + 1
    contacts = ", ".join(f"{channel} {n}" for channel, n in sorted(by_channel.items())) or "none"
    return (
        f"paid {format_money(case.paid_total_minor, case.loan.currency)} in "
        f"{len(case.applied_payment_ids)} payments; promises {len(case.promises)} "
        f"(kept {kept}, broken {case.broken_promises}); contacts made: {contacts}"
    )


def litigation_request(
    case: CollectionCase, occurrence: Occurrence, now: datetime
) -> LitigationReferralRequest:
    return LitigationReferralRequest(
        idempotency_key=idempotency_key(case, occurrence.key),
        loan_id=case.loan.loan_id,
        currency=case.loan.currency,
        amount_overdue_minor=case.arrears_minor,
        principal_outstanding_minor=case.principal_outstanding_minor,
        dpd=case.dpd(now),
        document_ids=list(case.documents),
        summary=ledger_summary(case),
        property_preservation=occurrence.step.property_preservation,
    )
