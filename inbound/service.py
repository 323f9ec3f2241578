"""What each inbound event does. Every method answers nothing about the borrower: the app's HTTP answer is
the same whether the number, address or message was known or not.

Replies (SMS; e-mail): STOP and the like opt that channel out on every loan that messaged the sender, through
the loan's workflow; where the jurisdiction requires it, one SMS confirms. HELP answers with the help text.
Receipts (SMS, push; e-mail delivered and bounces): stored on the outbox row; a permanent failure records
the contact point as unreachable for the loan (`unreachable_contact_points`).

Each event is claimed once (inbound/store.py). An opt-out the workflow could not take yet (refused for a
reason other than "already", or Temporal down) leaves the event 'pending': the provider's retry of the same
event tries again; any other replay changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import structlog

from domain.holds import ContactPointUnreachable
from inbound import store
from inbound.desk import LoanDesk, ReplySender
from inbound.keywords import intent
from inbound.models import EmailEvent, Receipt, SmsReply

log = structlog.get_logger("overdue.inbound")

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|回复|答复)\s*[:：]\s*)+", re.IGNORECASE)


class InboundService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        desk: LoanDesk,
        replies: ReplySender | None = None,
        confirm_in: frozenset[str] = frozenset({"us"}),
    ) -> None:
        self.pool = pool
        self.desk = desk
        self.replies = replies
        self.confirm_in = confirm_in

    # -- replies ---------------------------------------------------------------------------------------------

    async def sms_reply(self, reply: SmsReply) -> str:
        wanted = intent(reply.text)
        async with self.pool.acquire() as connection:
            event = await store.claim(connection, "sms", reply.event_id, "reply", wanted)
            if event is None:
                return "duplicate"
            rows = await store.loans_messaged(connection, "sms", reply.sender)
            loans = [r.loan_id for r in rows]
            if not rows or wanted == "other":
                outcome = "unknown" if not rows else "ignored"
                await store.settle(connection, event, outcome, loan_ids=loans)
                return outcome
            if wanted == "help":
                status = await self._send(rows[0].loan_id, event, "help", rows[0].locale, reply.sender)
                await store.settle(connection, event, "help_sent", loan_ids=loans, detail=status)
                return "help_sent"
        outcome, detail = await self._opt_out(event, loans, "sms", "STOP by SMS")
        if outcome == "opted_out" and await self._confirms(rows[0].loan_id):
            status = await self._send(
                rows[0].loan_id, event, "opt_out_confirmation", rows[0].locale, reply.sender
            )
            detail = f"confirmation {status}" + (f"; {detail}" if detail else "")
        async with self.pool.acquire() as connection:
            await store.settle(connection, event, outcome, loan_ids=loans, detail=detail)
        return outcome

    async def email_event(self, event_in: EmailEvent) -> str:
        if event_in.type in ("delivered", "bounce"):
            kind: Literal["receipt", "bounce"] = "receipt" if event_in.type == "delivered" else "bounce"
            if not event_in.message_id:  # nothing to match it to: recorded once, changes nothing
                async with self.pool.acquire() as connection:
                    event = await store.claim(connection, "email", event_in.event_id, kind, "unknown")
                    if event is not None:
                        await store.settle(connection, event, "unknown")
                return "unknown"
            bounce_code = f"{event_in.bounce_type}_bounce" if event_in.bounce_type else None
            receipt = Receipt(
                event_id=event_in.event_id,
                message_id=event_in.message_id,
                status="delivered" if kind == "receipt" else "failed",
                code=event_in.code or bounce_code,
                permanent=event_in.is_hard_bounce(),
                at=event_in.at,
            )
            return await self.receipt("email", receipt, kind=kind)
        # A reply or a complaint ("this is spam"): a complaint is the strongest "stop" there is.
        first_line = next((line for line in (event_in.text or "").splitlines() if line.strip()), "")
        subject = _REPLY_PREFIX.sub("", event_in.subject or "")
        wanted = "stop" if event_in.type == "complaint" else intent(first_line)
        if wanted != "stop" and intent(subject) == "stop":
            wanted = "stop"
        async with self.pool.acquire() as connection:
            event = await store.claim(connection, "email", event_in.event_id, "reply", wanted)
            if event is None:
                return "duplicate"
            rows = await store.loans_messaged(connection, "email", (event_in.sender or "").strip().lower())
            if not rows:  # addresses are stored as the loan gave them: try the exact spelling too
                rows = await store.loans_messaged(connection, "email", (event_in.sender or "").strip())
            loans = [r.loan_id for r in rows]
            if not rows or wanted != "stop":
                outcome = "unknown" if not rows else "ignored"
                await store.settle(connection, event, outcome, loan_ids=loans)
                return outcome
        outcome, detail = await self._opt_out(event, loans, "email", f"{event_in.type} by e-mail")
        async with self.pool.acquire() as connection:
            await store.settle(connection, event, outcome, loan_ids=loans, detail=detail)
        return outcome

    # -- receipts --------------------------------------------------------------------------------------------

    async def receipt(
        self,
        provider: Literal["sms", "email", "push"],
        receipt: Receipt,
        kind: Literal["receipt", "bounce"] = "receipt",
    ) -> str:
        async with self.pool.acquire() as connection, connection.transaction():
            event = await store.claim(connection, provider, receipt.event_id, kind, receipt.status)
            if event is None:
                return "duplicate"
            row = await store.by_provider_id(connection, provider, receipt.message_id)
            if row is None:
                await store.settle(connection, event, "unknown")
                return "unknown"
            at = receipt.at or datetime.now(UTC)
            await store.record_receipt(connection, row.message_id, receipt.status, at, receipt.code)
            outcome = "receipt_recorded"
            detail = None
            tell = False
            reason = receipt.code or "permanent_failure"
            if receipt.is_permanent_failure():
                closed = await store.mark_unreachable(connection, row, reason)
                outcome = "unreachable"
                detail = "recorded" if closed else "already recorded"
                tell = await store.untold(connection, row)
            await store.settle(
                connection, event, outcome, loan_ids=[row.loan_id], message_id=row.message_id, detail=detail
            )
        if tell:
            # After the commit: the address is recorded whatever happens next. A workflow that cannot be told
            # now (Temporal down) leaves the row waiting (told_at NULL): the next permanent failure for that
            # contact point tells it again (the update is idempotent).
            request = ContactPointUnreachable(
                channel=provider, address=row.recipient, reason=reason, message_id=row.message_id
            )
            answer = await self.desk.unreachable(row.loan_id, request)
            if answer.told in ("unreachable", "closed"):
                async with self.pool.acquire() as connection:
                    await store.mark_told(connection, row)
            log.info("inbound unreachable told", channel=provider, told=answer.told)
        log.info("inbound receipt", channel=provider, status=receipt.status, outcome=outcome)
        return outcome

    # -- helpers ---------------------------------------------------------------------------------------------

    async def _opt_out(
        self, event: str, loans: list[str], channel: Literal["sms", "email"], via: str
    ) -> tuple[str, str | None]:
        """Tell every loan's workflow; 'opted_out' if any newly opted out, 'pending' if any could not."""
        answers = [await self.desk.opt_out(loan_id, channel, via) for loan_id in loans]
        told = {a.told for a in answers}
        details = "; ".join(a.detail for a in answers if a.detail) or None
        log.info("inbound opt-out", channel=channel, loans=len(loans), told=sorted(told))
        if "pending" in told:
            return "pending", details
        if "opted_out" in told:
            return "opted_out", details
        return ("already_opted_out" if "already_opted_out" in told else "closed"), details

    async def _confirms(self, loan_id: str) -> bool:
        async with self.pool.acquire() as connection:
            jurisdiction = await store.jurisdiction(connection, loan_id)
        return jurisdiction is not None and jurisdiction.lower() in self.confirm_in

    async def _send(self, loan_id: str, event: str, kind: str, locale: str, number: str) -> str:
        if self.replies is None:
            return "not sent: no SMS channel"
        return await self.replies.send_sms(loan_id, event, kind, locale, number)
