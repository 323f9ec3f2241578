"""Holds and arrangements that end by themselves: hardship and Breathing Space past their date, a settlement
offer past its due date, a supervisor's stage hold past its day. Pure: changes the case, returns what ended
so the workflow journals it like the start."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from domain.case import CollectionCase
from domain.loan import format_money


class Expired(BaseModel):
    what: Literal["hold", "settlement", "stage_hold"]
    kind: str  # hold kind (hardship, breathing_space), or the collector action that records the end
    key: str  # journal key, stable on replay and retries
    until: datetime | None = None
    detail: str | None = None


def expire(case: CollectionCase, now: datetime) -> list[Expired]:
    ended: list[Expired] = []
    state = case.contact
    for kind, field, until in (
        ("hardship", "hardship_until", state.hardship_until),
        ("breathing_space", "breathing_space_until", state.breathing_space_until),
    ):
        if until is not None and until <= now:
            case.contact = case.contact.model_copy(update={field: None})
            ended.append(
                Expired(what="hold", kind=kind, key=f"hold:{kind}:{until.isoformat()}:expired", until=until)
            )
    offer = case.open_settlement
    if offer is not None and now >= offer.deadline:
        offer.end("lapsed", now)
        ended.append(
            Expired(
                what="settlement",
                kind="settlement_lapsed",
                key=f"settlement:{offer.offer_id}:lapsed",
                detail=f"{format_money(offer.paid_toward_minor, offer.currency)} of "
                f"{format_money(offer.amount_minor, offer.currency)} paid by {offer.due_date}",
            )
        )
    hold = case.stage_hold
    if hold is not None and now >= hold.resumes_at:
        case.stage_hold = None
        ended.append(
            Expired(
                what="stage_hold",
                kind="stage_hold_expired",
                key=f"stage_hold:{hold.until}:expired",
                detail=f"until {hold.until}",
            )
        )
    return ended
