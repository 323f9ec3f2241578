"""Borrower messages: render a template, record it in the outbox once, optionally deliver it via a channel.

Every message is written to the `messages` outbox first (status 'queued'), keyed by its idempotency key, so
the record of what was sent to whom survives and a retried activity never sends twice. With a
`ChannelAdapter` (an SMS gateway, an e-mail provider) the activity delivers at once and marks the row
'sent'; without one, messages stay queued for a dispatcher that reads the outbox. A provider's refusal for
good (CONTACT_POINT_INVALID, MESSAGE_REJECTED) marks the row 'failed' with the reason; earlier messages of
the same step named in `supersedes` that never went out are marked 'superseded' in the same transaction as
the new row is stored, and are never sent (a later send under such a key returns status 'superseded').

Templates are Jinja2 files (activities/templates, see activities/templating.py); the row and the receipt
record the template version each message was rendered from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import asyncpg
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.contracts import MessageReceipt, MessageRequest
from activities.db import insert_once
from activities.errors import invalid, permanent, rejected_data_is_permanent, require_same_loan
from activities.templating import TEMPLATE_VARIABLES as TEMPLATE_VARIABLES  # re-exported
from activities.templating import (
    TEMPLATES_DIR,
    InvalidVariable,
    MessageTemplates,
    TemplateVariableMissing,
    UnknownTemplate,
    template_context,
)
from borrower.links import mint_link
from domain.loan import E164, EMAIL
from stack.settings import DEFAULT_PAY_URL

# What MessageRequest.variables may carry (all strings). Required by the templates: borrower_name, lender,
# dpd, and the amount and due date in either form:
#   amount_minor + currency   raw; formatted here for the borrower's locale (preferred over `amount`)
#   amount                    already formatted (older workflows)
#   overdue_since             ISO date; formatted here (`due_date`, if sent, wins)
# Optional: loan_id (default: the request's), pay_url (default: the activities' pattern),
#   jurisdiction ("cn", "us", "uk": the US opt-out line on SMS and e-mail, the UK contact-preference line),
#   validation_notice ("included": e-mails carry the US validation notice paragraph; or "omitted").
REQUEST_VARIABLES = (
    "borrower_name",
    "lender",
    "dpd",
    "amount_minor",
    "currency",
    "amount",
    "overdue_since",
    "due_date",
    "loan_id",
    "pay_url",
    "jurisdiction",
    "validation_notice",
)


_ACCOUNT = re.compile(r"^\S{1,200}$")


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for a channel. Holds PII (recipient, names): never log it."""

    idempotency_key: str
    loan_id: str
    step_key: str
    channel: Literal["sms", "email", "push"]
    template: str
    locale: str
    recipient: str
    subject: str | None
    body: str
    template_version: str | None = None  # the template files' version, e.g. "3+_sms.1"


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    status: Literal["queued", "sent", "superseded"]  # 'failed' reads as 'queued': a new attempt may deliver
    duplicate: bool
    provider_id: str | None = None  # set once 'sent': a retry returns it without delivering again
    template_version: str | None = None  # as stored by the first attempt
    superseded: tuple[str, ...] = ()  # keys of the earlier messages this one replaced


class ChannelAdapter(Protocol):
    """Delivers a rendered message through a provider; returns the provider's message id.

    Implementations must pass `message.idempotency_key` to the provider (header or client reference) so a
    retry after a lost response does not deliver twice. Raise ApplicationError(type=CONTACT_POINT_INVALID,
    non_retryable=True) when the provider rejects the recipient, type=MESSAGE_REJECTED (non-retryable) when
    it rejects the message itself for good; let transient errors (outages, timeouts) propagate.
    """

    async def deliver(self, message: RenderedMessage) -> str: ...


class TemplateCatalogue:
    """The message templates, rendered for a request: non-retryable ApplicationErrors for bad input."""

    def __init__(self, templates: MessageTemplates) -> None:
        self.templates = templates

    @classmethod
    def load(cls, directory: Path = TEMPLATES_DIR) -> TemplateCatalogue:
        return cls(MessageTemplates.load(directory))

    @property
    def names(self) -> list[str]:
        return self.templates.names

    def locales(self, name: str) -> list[str]:
        return self.templates.locales(name)

    def variables(self) -> set[str]:
        """Every variable any template or layout uses."""
        return self.templates.variables()

    def render(
        self,
        request: MessageRequest,
        variables: dict[str, str] | None = None,
        *,
        pay_url: str = DEFAULT_PAY_URL,
    ) -> RenderedMessage:
        """Fill the template for the request's locale and channel.

        `variables` replaces the request's own; `pay_url` is the payment-link pattern used when they hold
        no `pay_url`. Raises non-retryable ApplicationErrors, checked in this order: UnknownTemplate,
        ContactPointInvalid, then InvalidRequest (an unusable value) or TemplateVariableMissing.
        """
        values = request.variables if variables is None else variables
        with _permanent_template_problems():
            self.templates.check(request.template, request.locale, request.channel)
        check_contact_point(request.channel, request.recipient)
        with _permanent_template_problems():
            context = template_context(
                values, locale=request.locale, loan_id=request.loan_id, pay_url=pay_url
            )
            text = self.templates.render(request.template, request.locale, request.channel, context)
        return RenderedMessage(
            idempotency_key=request.idempotency_key,
            loan_id=request.loan_id,
            step_key=request.step_key,
            channel=request.channel,
            template=request.template,
            locale=request.locale,
            recipient=request.recipient,
            subject=text.subject,
            body=text.body,
            template_version=text.version,
        )


@contextmanager
def _permanent_template_problems() -> Iterator[None]:
    """Template problems never go away on a retry: non-retryable, typed for the workflow."""
    try:
        yield
    except UnknownTemplate as error:
        raise permanent(contracts.UNKNOWN_TEMPLATE, str(error)) from None
    except TemplateVariableMissing as error:
        raise permanent(contracts.TEMPLATE_VARIABLE_MISSING, str(error)) from None
    except InvalidVariable as error:
        raise permanent(contracts.INVALID_REQUEST, str(error)) from None


def check_contact_point(channel: str, recipient: str) -> None:
    """The recipient must suit the channel; the workflow falls back to another channel on this error."""
    pattern, expected = {
        "sms": (E164, "an E.164 phone number"),
        "email": (EMAIL, "an e-mail address"),
        "push": (_ACCOUNT, "an app account id"),
    }[channel]
    if not pattern.match(recipient):
        # The recipient itself is PII: the message names only the channel.
        raise permanent(contracts.CONTACT_POINT_INVALID, f"recipient: not {expected} for channel {channel!r}")


class OutboxAdapter:
    """The `messages` table: stores each rendered message once (status 'queued') and records delivery."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def store(self, message: RenderedMessage, supersedes: Sequence[str] = ()) -> StoredMessage:
        """Store the message once; mark the queued messages of `supersedes` (same loan) superseded by it, in
        the same transaction, so no dispatcher or retry can send them once this one exists."""
        async with self._pool.acquire() as connection, connection.transaction():
            with rejected_data_is_permanent("message"):
                row, duplicate = await insert_once(
                    connection,
                    "messages",
                    {
                        "idempotency_key": message.idempotency_key,
                        "loan_id": message.loan_id,
                        "step_key": message.step_key,
                        "channel": message.channel,
                        "template": message.template,
                        "locale": message.locale,
                        "recipient": message.recipient,
                        "subject": message.subject,
                        "body": message.body,
                        "template_version": message.template_version,
                        "status": "queued",
                    },
                )
            require_same_loan(row["loan_id"], message.loan_id, message.idempotency_key, "message")
            superseded: list[str] = []
            if supersedes:
                await connection.execute(
                    "UPDATE messages SET status = 'superseded', superseded_by = $3 "
                    "WHERE idempotency_key = ANY($1::text[]) AND loan_id = $2 AND status = 'queued'",
                    list(supersedes),
                    message.loan_id,
                    message.idempotency_key,
                )
                # Those this key replaced, now or on an earlier attempt: the same list on every retry.
                superseded = [
                    r["idempotency_key"]
                    for r in await connection.fetch(
                        "SELECT idempotency_key FROM messages WHERE superseded_by = $1 AND loan_id = $2 "
                        "AND idempotency_key = ANY($3::text[]) ORDER BY created_at, idempotency_key",
                        message.idempotency_key,
                        message.loan_id,
                        list(supersedes),
                    )
                ]
        status: Literal["queued", "sent", "superseded"] = (
            row["status"] if row["status"] in ("sent", "superseded") else "queued"
        )
        return StoredMessage(
            message_id=str(row["id"]),
            status=status,
            duplicate=duplicate,
            provider_id=row["provider_id"],
            template_version=row["template_version"],
            superseded=tuple(superseded),
        )

    async def mark_failed(self, message_id: str, reason: str | None = None) -> None:
        """The provider refused the message for good: the outbox must not show it 'queued' forever.

        `reason` is the error's type and message, which name the channel and the provider's status or code,
        never the recipient or the text (activities/channels/errors.py)."""
        async with self._pool.acquire() as connection:
            await connection.execute(
                "UPDATE messages SET status = 'failed', failure_reason = $2 "
                "WHERE id = $1::uuid AND status = 'queued'",
                message_id,
                reason[:500] if reason is not None else None,
            )

    async def mark_sent(self, message_id: str, provider_id: str) -> None:
        async with self._pool.acquire() as connection:
            await connection.execute(
                "UPDATE messages SET status = 'sent', provider_id = $2, sent_at = now() "
                "WHERE id = $1::uuid AND status <> 'sent'",
                message_id,
                provider_id,
            )


async def send_message(
    request: MessageRequest,
    *,
    catalogue: TemplateCatalogue,
    outbox: OutboxAdapter,
    channel: ChannelAdapter | None = None,
    pay_url: str = DEFAULT_PAY_URL,
) -> MessageReceipt:
    """Render, record once (superseding `request.supersedes`), and deliver through `channel` if there is one
    and it has not delivered yet. A message already superseded by a later one is never delivered."""
    if request.idempotency_key in request.supersedes:
        raise invalid("supersedes: a message cannot supersede itself")
    if "{token}" in pay_url and not request.variables.get("pay_url"):
        # The borrower page's link (borrower/links.py): an opaque token per message, the same on a retry.
        pay_url = await mint_link(
            outbox.pool,
            message_key=request.idempotency_key,
            loan_id=request.loan_id,
            channel=request.channel,
            pattern=pay_url,
        )
    message = catalogue.render(request, pay_url=pay_url)
    stored = await outbox.store(message, request.supersedes)
    if channel is None or stored.status in ("sent", "superseded"):
        return _receipt(request, stored, stored.status)
    # A queued duplicate means an earlier attempt stored it but may have died before or during delivery:
    # deliver again under the same idempotency key and let the provider drop the repeat.
    try:
        provider_id = await channel.deliver(message)
    except ApplicationError as error:
        # Only a refusal for good leaves 'queued': an outage stays queued so a retry delivers it once.
        if error.non_retryable:
            await outbox.mark_failed(stored.message_id, f"{error.type}: {error.message}")
        raise
    await outbox.mark_sent(stored.message_id, provider_id)
    return _receipt(request, stored, "sent")


def _receipt(
    request: MessageRequest, stored: StoredMessage, status: Literal["queued", "sent", "superseded"]
) -> MessageReceipt:
    return MessageReceipt(
        message_id=stored.message_id,
        channel=request.channel,
        status=status,
        duplicate=stored.duplicate,
        template_version=stored.template_version,
        superseded=list(stored.superseded),
    )
