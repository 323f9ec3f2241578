"""The status query as the short table `python -m starter status` prints in a terminal."""

from __future__ import annotations

from datetime import datetime

from domain.loan import format_money
from workflows.messages import CollectionStatus


def when(moment: datetime) -> str:
    offset = moment.strftime("%z")
    zone = "UTC" if offset in ("", "+0000") else f"{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%d %H:%M} {zone}"


def format_status(status: CollectionStatus) -> str:
    """The status query as a short table an operator reads in a terminal."""

    def money(amount: int) -> str:
        return format_money(amount, status.currency)

    rows: list[tuple[str, str]] = [
        ("Loan", f"{status.loan_id} · segment {status.segment} · strategy {status.strategy}"),
        ("Stage", status.stage),
        ("DPD", f"{status.dpd} (overdue since {status.overdue_since.isoformat()})"),
        (
            "Arrears",
            f"{money(status.amount_overdue_minor)} overdue · "
            f"{money(status.principal_outstanding_minor)} principal outstanding · "
            f"{money(status.paid_total_minor)} paid",
        ),
    ]
    promise = status.open_promise
    if promise is not None:
        rows.append(
            (
                "Open promise",
                f"{format_money(promise.amount_minor, promise.currency)} by {promise.due_date.isoformat()} "
                f"(kept if paid before {when(promise.deadline)}) · collector {promise.collector} · "
                f"{format_money(promise.paid_toward_minor, promise.currency)} paid toward it",
            )
        )
    else:
        rows.append(("Open promise", "none"))
    if status.promises:
        rows.append(("Promises", f"{len(status.promises)} made, {status.broken_promises} broken"))
    last = status.last_step
    rows.append(
        (
            "Last step",
            f"{when(last.at)} · {last.key} ({last.stage}, {last.action}): {last.result}" if last else "none",
        )
    )
    upcoming = status.next_step
    rows.append(
        (
            "Next step",
            f"{when(upcoming.due_at)} · {upcoming.key} ({upcoming.stage}, {upcoming.action})"
            + (f": {upcoming.summary}" if upcoming.summary else "")
            if upcoming
            else "none",
        )
    )
    rows.append(("Waiting for", status.waiting_for or "-"))
    if status.agency_name or status.agency_placement_id:
        rows.append(
            ("Agency", f"{status.agency_name or '?'} (placement {status.agency_placement_id or '?'})")
        )
    if status.documents:
        rows.append(("Documents", ", ".join(status.documents)))
    outcome: str = status.outcome or "open"
    if status.outcome_reason:
        outcome += f" ({status.outcome_reason})"
    rows.append(("Outcome", outcome))
    clock = when(status.collections_now)
    if status.demo_speed and status.demo_speed != 1.0:
        clock += f" · demo clock ×{status.demo_speed:g}"
    rows.append(("Collections now", clock))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
