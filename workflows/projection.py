"""What others read of the case: the `status` query, the portfolio snapshot, search attributes and the
details an operator reads on the workflow's page in the Web UI. Pure reads of the case; no decisions."""

from __future__ import annotations

from datetime import UTC, datetime, time

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.arrangements import stage_hold_active
    from domain.borrower_plans import band_for
    from domain.case import CollectionCase, Placement
    from domain.decision import freezing_hold
    from domain.herd import describe_offset
    from domain.loan import format_money
    from workflows import search_attributes as sa
    from workflows.messages import CollectionStatus, NextStep


def placement_of(receipt: contracts.PlacementReceipt, now: datetime) -> Placement:
    return Placement(
        placement_id=receipt.placement_id,
        agency_id=receipt.agency_id,
        agency_name=receipt.agency_name,
        placed_at=now,
        expires_at=receipt.expires_at,
    )


def stage_hold_label(case: CollectionCase, now: datetime) -> str | None:
    hold = case.stage_hold
    if hold is None or not stage_hold_active(hold, now):
        return None
    return f"stage held until {hold.until} by {hold.approver}: {hold.reason}"


def hold_label(case: CollectionCase, now: datetime) -> str | None:
    hold = freezing_hold(case, now)
    return hold[0] if hold else stage_hold_label(case, now)


def status(
    case: CollectionCase, now: datetime, next_step: NextStep | None, waiting_for: str
) -> CollectionStatus:
    placement = case.placement
    return CollectionStatus(
        loan_id=case.loan.loan_id,
        stage=case.stage,
        segment=case.segment,
        strategy=f"{case.strategy.name} v{case.strategy.version}",
        dpd=case.dpd(now),
        currency=case.loan.currency,
        amount_overdue_minor=case.arrears_minor,
        principal_outstanding_minor=case.principal_outstanding_minor,
        paid_total_minor=case.paid_total_minor,
        overdue_since=case.anchor,
        cycle=case.cycle,
        open_promise=case.open_promise,
        promises=case.promises,
        broken_promises=case.broken_promises,
        last_step=case.history[-1] if case.history else None,
        next_step=None if case.closed else next_step,
        waiting_for="nothing: closed" if case.closed else waiting_for,
        agency_placement_id=placement.placement_id if placement else None,
        agency_name=placement.agency_name if placement else None,
        documents=case.documents,
        outcome=case.outcome,
        outcome_reason=case.outcome_reason,
        collections_now=now,
        demo_speed=case.clock.speed,
        contact_profile=case.profile.name if case.profile else None,
        contact=case.contact if case.profile else None,
        escalation_hold=hold_label(case, now),
        deferred=case.deferrals,
        callbacks=case.callbacks,
        loan=case.loan,
        repayment_plan=case.open_plan or (case.plans[-1] if case.plans else None),
        settlement=case.open_settlement or (case.settlements[-1] if case.settlements else None),
        borrower_plan=band_for(case.strategy.borrower_plans, case.arrears_minor, case.loan.currency),
        borrower_hardship_hold_days=case.profile.borrower_hardship_hold_days if case.profile else None,
        waived_total_minor=case.waived_total_minor,
        waivers=case.waivers,
        stage_hold=case.stage_hold if stage_hold_active(case.stage_hold, now) else None,
        letter=case.letter,
        contact_time=case.contact_time,
        contact_offset_seconds=offset_seconds(case),
    )


def offset_seconds(case: CollectionCase) -> int:
    own, base = case.contact_time, case.strategy.contact_time
    return (own.hour - base.hour) * 3600 + (own.minute - base.minute) * 60 + own.second - base.second


def snapshot(case: CollectionCase, now: datetime) -> contracts.PortfolioSnapshot:
    promise = case.open_promise
    return contracts.PortfolioSnapshot(
        loan_id=case.loan.loan_id,
        cycle=case.cycle,
        borrower_name=case.loan.borrower.name,
        jurisdiction=case.loan.jurisdiction,
        timezone=case.loan.borrower.timezone,
        locale=case.loan.borrower.locale,
        currency=case.loan.currency,
        segment=case.segment,
        strategy=case.strategy.name,
        stage=case.stage,
        outcome=case.outcome,
        overdue_since=case.anchor,
        amount_overdue_minor=case.arrears_minor,
        principal_outstanding_minor=case.principal_outstanding_minor,
        paid_total_minor=case.paid_total_minor,
        hold=hold_label(case, now),
        agency_id=case.placement.agency_id if case.placement else None,
        open_promise_due=promise.due_date if promise else None,
        broken_promises=case.broken_promises,
        clock_real_anchor=case.clock.real_anchor,
        clock_collections_anchor=case.clock.collections_anchor,
        clock_speed=case.clock.speed,
        as_of=now,
    )


def search_attribute_updates(case: CollectionCase) -> list[tuple[str, object, SearchAttributeUpdate]]:
    """Every typed search attribute with its current value (never PII: they are stored unencrypted)."""
    anchor = datetime.combine(case.anchor, time(0), tzinfo=UTC)
    outcome = case.outcome or "open"
    return [
        (sa.COLLECTION_STAGE.name, case.stage, sa.COLLECTION_STAGE.value_set(case.stage)),
        (sa.OVERDUE_SINCE.name, anchor, sa.OVERDUE_SINCE.value_set(anchor)),
        (sa.AMOUNT_OVERDUE.name, case.arrears_minor, sa.AMOUNT_OVERDUE.value_set(case.arrears_minor)),
        (sa.CURRENCY.name, case.loan.currency, sa.CURRENCY.value_set(case.loan.currency)),
        (sa.SEGMENT.name, case.segment, sa.SEGMENT.value_set(case.segment)),
        (sa.COLLECTION_OUTCOME.name, outcome, sa.COLLECTION_OUTCOME.value_set(outcome)),
    ]


def details(case: CollectionCase, now: datetime, waiting_for: str) -> str:
    """The Markdown an operator reads at the top of the workflow's page."""
    money = case.loan.currency
    lines = [
        f"**Stage** {case.stage} · **DPD** {case.dpd(now)} · **segment** {case.segment}",
        f"**Overdue** {format_money(case.arrears_minor, money)}"
        f" · paid so far {format_money(case.paid_total_minor, money)}",
    ]
    if case.open_promise:
        p = case.open_promise
        lines.append(
            f"**Promise** {format_money(p.amount_minor, p.currency)} by {p.due_date} ({p.collector})"
        )
    if case.open_plan and (due := case.open_plan.next_instalment):
        lines.append(
            f"**Repayment plan** instalment {due.number} of {len(case.open_plan.instalments)}: "
            f"{format_money(due.amount_minor, money)} by {due.due_date}"
        )
    if case.open_settlement:
        offer = case.open_settlement
        lines.append(
            f"**Settlement offer** {format_money(offer.amount_minor, offer.currency)} by {offer.due_date}"
            f" ({offer.approver})"
        )
    if not case.closed:
        lines.append(f"**Contact time** {describe_offset(case.strategy.contact_time, case.contact_time)}")
    if (held := hold_label(case, now)) is not None:
        lines.append(f"**Hold** {held}")
    if case.placement:
        lines.append(f"**Agency** {case.placement.agency_name} until {case.placement.expires_at:%Y-%m-%d}")
    if case.letter:
        lines.append(f"**Lawyer's letter** sent; response by {case.letter.respond_by}")
    if case.outcome:
        lines.append(f"**Outcome** {case.outcome}: {case.outcome_reason}")
    else:
        lines.append(f"**Waiting for** {waiting_for}")
    if case.clock.speed != 1.0:
        lines.append(f"_demo time scale ×{case.clock.speed:.0f}_")
    return "\n\n".join(lines)
