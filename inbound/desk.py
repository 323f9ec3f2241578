"""What the inbound app does outside its own tables: tell the loan's workflow, answer the borrower.

`WorkflowDesk` sends the opt-out through the loan's own update (`opt_out`, the same validators as a
collector's), signed as the borrower (this process needs the borrower signing key, as the borrower page).
`ReplySender` sends the confirmation or help SMS through the outbox (one row per event, so a retried webhook
never sends twice) and the configured SMS channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import structlog
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.messaging import ChannelAdapter, OutboxAdapter, RenderedMessage
from authority.signer import Actor
from domain.holds import ContactPointUnreachable, OptOut
from starter.api import (
    CollectionClosed,
    CollectionsStarter,
    InvalidRequest,
    NotALoan,
    RequestRefused,
    UnknownLoan,
)
from workflows.messages import CONTACT_POINT_UNREACHABLE_UPDATE, OPT_OUT_UPDATE

log = structlog.get_logger("overdue.inbound")

Told = Literal["opted_out", "already_opted_out", "unreachable", "closed", "pending"]


@dataclass(frozen=True)
class DeskAnswer:
    told: Told
    detail: str | None = None  # the workflow's reason when pending (names fields, never the address)


class LoanDesk(Protocol):
    async def opt_out(self, loan_id: str, channel: Literal["sms", "email"], via: str) -> DeskAnswer: ...

    async def unreachable(self, loan_id: str, request: ContactPointUnreachable) -> DeskAnswer: ...


# The borrower acts for their own reply (role and identity "borrower", the key of the borrower page): the
# role allows only the borrower's own requests, opt-outs among them (workflows/actors.py).
BORROWER = Actor("borrower", "borrower")
# A provider's receipt is no one's own act: the inbound intake tells the loan for servicing, as the agency
# payment intake does (workflows/actors.py allows servicing and operators).
SERVICING = Actor("servicing", "servicing")


class WorkflowDesk:
    def __init__(self, starter: CollectionsStarter) -> None:
        self.starter = starter

    async def opt_out(self, loan_id: str, channel: Literal["sms", "email"], via: str) -> DeskAnswer:
        try:
            request = OptOut(collector=BORROWER.name, channel=channel, note=f"the borrower replied {via}")
            await self.starter.collector_action(loan_id, OPT_OUT_UPDATE, request, actor=BORROWER)
        except RequestRefused as refused:
            if refused.reason.startswith("channel: already opted out"):
                return DeskAnswer("already_opted_out")
            return DeskAnswer("pending", refused.reason)
        except (UnknownLoan, CollectionClosed, NotALoan):
            return DeskAnswer("closed")
        except (InvalidRequest, ValueError) as error:  # no key may act (CannotAct is a ValueError)
            return DeskAnswer("pending", str(error))
        except RPCError as error:  # Temporal unreachable or overloaded: the provider's retry tries again
            return DeskAnswer("pending", f"temporal: {error.status.name if error.status else 'error'}")
        return DeskAnswer("opted_out")

    async def unreachable(self, loan_id: str, request: ContactPointUnreachable) -> DeskAnswer:
        """The loan's workflow closes the contact point; its next step falls back to another channel."""
        try:
            await self.starter.collector_action(
                loan_id, CONTACT_POINT_UNREACHABLE_UPDATE, request, actor=SERVICING
            )
        except RequestRefused as refused:
            return DeskAnswer("pending", refused.reason)
        except (UnknownLoan, CollectionClosed, NotALoan):
            return DeskAnswer("closed")
        except (InvalidRequest, ValueError) as error:  # no key may act (CannotAct is a ValueError)
            return DeskAnswer("pending", str(error))
        except RPCError as error:
            return DeskAnswer("pending", f"temporal: {error.status.name if error.status else 'error'}")
        return DeskAnswer("unreachable")


# One text per locale; the channel's opt-out line in the outgoing messages promises exactly these.
TEXTS: dict[str, dict[str, str]] = {
    "opt_out_confirmation": {
        "en": "You have been unsubscribed and will receive no more text messages about this account.",
        "zh-CN": "您已退订，将不再收到关于此账户的短信。",
    },
    "help": {
        "en": "Reply STOP to stop text messages. To talk to us, open the link in our last message.",
        "zh-CN": "回复TD退订短信。如需帮助，请打开我们上一条短信中的链接。",
    },
}


def text_for(kind: str, locale: str) -> tuple[str, str]:
    """(locale used, text): the loan's locale, else English."""
    texts = TEXTS[kind]
    if locale in texts:
        return locale, texts[locale]
    language = locale.split("-")[0]
    for known, text in texts.items():
        if known.split("-")[0] == language:
            return known, text
    return "en", texts["en"]


class ReplySender:
    def __init__(self, outbox: OutboxAdapter, channel: ChannelAdapter | None) -> None:
        self.outbox = outbox
        self.channel = channel

    async def send_sms(self, loan_id: str, event: str, kind: str, locale: str, number: str) -> str:
        """Store and deliver one SMS for this event; its status ('sent', 'queued', 'failed: ...')."""
        used, body = text_for(kind, locale)
        message = RenderedMessage(
            idempotency_key=f"{loan_id}:inbound:{event}:{kind}",
            loan_id=loan_id,
            step_key=f"inbound:{kind}",
            channel="sms",
            template=f"inbound_{kind}",
            locale=used,
            recipient=number,
            subject=None,
            body=body,
        )
        stored = await self.outbox.store(message)
        if stored.status == "sent" or self.channel is None:
            return stored.status
        try:
            provider_id = await self.channel.deliver(message)
        except ApplicationError as error:
            if error.non_retryable:
                await self.outbox.mark_failed(stored.message_id, f"{error.type}: {error.message}")
            log.warning("inbound reply not delivered", kind=kind, error_type=error.type)
            return f"failed: {error.type}"
        await self.outbox.mark_sent(stored.message_id, provider_id)
        return "sent"
