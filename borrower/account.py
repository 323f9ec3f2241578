"""What the account page says about the loan, in the borrower's words: amounts, the stage in plain
language, what is agreed or paused, and the borrower's rights where they live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.loan import CURRENCIES, format_money
from workflows.messages import CollectionStatus

RIGHTS = {"us": "rights_us", "uk": "rights_uk", "cn": "rights_cn"}


def plain_amount(amount_minor: int, currency: str) -> str:
    """'800.00': what the amount fields start with."""
    digits = CURRENCIES.get(currency, 2)
    if digits == 0:
        return str(amount_minor)
    major, minor = divmod(amount_minor, 10**digits)
    return f"{major}.{minor:0{digits}d}"


def summary(loan: CollectionStatus, t: Callable[..., str]) -> dict[str, Any]:
    situation: list[str] = []
    if loan.open_promise is not None:
        promise = loan.open_promise
        situation.append(
            t(
                "open_promise",
                amount=format_money(promise.amount_minor, promise.currency),
                date=promise.due_date,
            )
        )
    plan = loan.repayment_plan
    if plan is not None and plan.status == "open" and (upcoming := plan.next_instalment) is not None:
        situation.append(
            t("open_plan", amount=format_money(upcoming.amount_minor, plan.currency), date=upcoming.due_date)
        )
    contact = loan.contact
    if contact is not None:
        if contact.dispute_open:
            situation.append(t("on_hold", reason=t("hold_dispute")))
        if contact.hardship_until is not None and contact.hardship_until > loan.collections_now:
            situation.append(t("on_hold", reason=t("hold_hardship")))
        if contact.breathing_space_until is not None and contact.breathing_space_until > loan.collections_now:
            situation.append(t("on_hold", reason=t("hold_breathing_space")))
    jurisdiction = loan.loan.jurisdiction if loan.loan is not None else ""
    return {
        "amount": format_money(loan.amount_overdue_minor, loan.currency),
        "amount_plain": plain_amount(loan.amount_overdue_minor, loan.currency),
        "currency": loan.currency,
        "overdue_since": loan.overdue_since.isoformat(),
        "dpd": loan.dpd,
        "stage": t(f"stage_{loan.stage}") if f"stage_{loan.stage}" in STAGES else loan.stage,
        "situation": situation,
        "rights": t(RIGHTS.get(jurisdiction, "rights_other")),
    }


STAGES = {"stage_reminder", "stage_deep_contact", "stage_agency", "stage_legal", "stage_closed"}
