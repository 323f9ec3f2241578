"""Borrower messages: render a template, record it in the outbox once, optionally deliver it via a channel.

Every message is written to the `messages` outbox first (status 'queued'), keyed by its idempotency key, so
the record of what was sent to whom survives and a retried activity never sends twice. With a
`ChannelAdapter` (an SMS gateway, an e-mail provider) the activity delivers at once and marks the row
'sent'; without one, messages stay queued for a dispatcher that reads the outbox.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import asyncpg
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.contracts import MessageReceipt, MessageRequest
from activities.db import insert_once
from activities.errors import permanent, rejected_data_is_permanent, require_same_loan
from domain.loan import E164, EMAIL
from stack.settings import DEFAULT_PAY_URL

TEMPLATES_FILE = Path(__file__).with_name("message_templates.toml")

# The variables the templates use, formatted by the caller. Two have fallbacks (see `message_variables`):
# `due_date` defaults to the `overdue_since` variable, `pay_url` to the activities' pay-URL pattern.
TEMPLATE_VARIABLES = ("borrower_name", "amount", "due_date", "dpd", "lender", "pay_url")


_ACCOUNT = re.compile(r"^\S{1,200}$")


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True)
class Framing:
    header: str = ""
    footer: str = ""


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


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    status: Literal["queued", "sent"]
    duplicate: bool
    provider_id: str | None = None  # set once 'sent': a retry returns it without delivering again


class ChannelAdapter(Protocol):
    """Delivers a rendered message through a provider; returns the provider's message id.

    Implementations must pass `message.idempotency_key` to the provider (header or client reference) so a
    retry after a lost response does not deliver twice. Raise ApplicationError(type=CONTACT_POINT_INVALID,
    non_retryable=True) when the provider rejects the recipient; let transient errors propagate.
    """

    async def deliver(self, message: RenderedMessage) -> str: ...


class TemplateCatalogue:
    """Message templates per name and locale, loaded from plain TOML data."""

    def __init__(self, templates: dict[str, dict[str, Template]], framing: dict[tuple[str, str], Framing]):
        self._templates = templates
        self._framing = framing

    @classmethod
    def load(cls, path: Path = TEMPLATES_FILE) -> TemplateCatalogue:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        templates = {
            name: {locale: Template(subject=t["subject"], body=t["body"]) for locale, t in locales.items()}
            for name, locales in raw.get("templates", {}).items()
        }
        framing = {
            (locale, channel): Framing(header=f.get("header", ""), footer=f.get("footer", ""))
            for locale, channels in raw.get("channels", {}).items()
            for channel, f in channels.items()
        }
        return cls(templates, framing)

    @property
    def names(self) -> list[str]:
        return sorted(self._templates)

    def locales(self, name: str) -> list[str]:
        return sorted(self._templates.get(name, {}))

    def variables(self) -> set[str]:
        """Every placeholder any template or channel framing uses."""
        texts = [t.subject + t.body for locales in self._templates.values() for t in locales.values()]
        texts += [f.header + f.footer for f in self._framing.values()]
        return {field for text in texts for field in _placeholders(text)}

    def render(self, request: MessageRequest, variables: dict[str, str] | None = None) -> RenderedMessage:
        """Fill the template for the request's locale and channel; non-retryable errors for bad input.

        `variables` replaces the request's own (e.g. with fallbacks added by `message_variables`).
        """
        values = request.variables if variables is None else variables
        locales = self._templates.get(request.template)
        if locales is None:
            raise permanent(
                contracts.UNKNOWN_TEMPLATE,
                f"template: unknown template {request.template!r}; known: {', '.join(self.names)}",
            )
        template = locales.get(request.locale)
        if template is None:
            raise permanent(
                contracts.UNKNOWN_TEMPLATE,
                f"locale: template {request.template!r} has no {request.locale!r} version "
                f"(has {', '.join(sorted(locales))})",
            )
        check_contact_point(request.channel, request.recipient)
        framing = self._framing.get((request.locale, request.channel), Framing())
        body = _fill(framing.header + template.body.strip(), values, request.template)
        if framing.footer:
            separator = "\n\n" if request.channel == "email" else " "
            body = f"{body}{separator}{_fill(framing.footer, values, request.template)}"
        subject = None if request.channel == "sms" else _fill(template.subject, values, request.template)
        return RenderedMessage(
            idempotency_key=request.idempotency_key,
            loan_id=request.loan_id,
            step_key=request.step_key,
            channel=request.channel,
            template=request.template,
            locale=request.locale,
            recipient=request.recipient,
            subject=subject,
            body=body,
        )


def message_variables(request: MessageRequest, pay_url: str = DEFAULT_PAY_URL) -> dict[str, str]:
    """The request's variables plus fallbacks for those a caller may leave out; the caller's always win."""
    fallbacks = {"pay_url": pay_url.format(loan_id=request.loan_id)}
    if "overdue_since" in request.variables:
        fallbacks["due_date"] = request.variables["overdue_since"]
    return fallbacks | request.variables


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _fill(text: str, variables: dict[str, str], template: str) -> str:
    missing = sorted(_placeholders(text) - variables.keys())
    if missing:
        raise permanent(
            contracts.TEMPLATE_VARIABLE_MISSING,
            f"variables: template {template!r} needs {', '.join(missing)}",
        )
    return text.format_map(variables)


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

    async def store(self, message: RenderedMessage) -> StoredMessage:
        async with self._pool.acquire() as connection:
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
                        "status": "queued",
                    },
                )
        require_same_loan(row["loan_id"], message.loan_id, message.idempotency_key, "message")
        status: Literal["queued", "sent"] = "sent" if row["status"] == "sent" else "queued"
        return StoredMessage(
            message_id=str(row["id"]), status=status, duplicate=duplicate, provider_id=row["provider_id"]
        )

    async def mark_failed(self, message_id: str) -> None:
        """The provider refused the message for good: the outbox must not show it 'queued' forever."""
        async with self._pool.acquire() as connection:
            await connection.execute(
                "UPDATE messages SET status = 'failed' WHERE id = $1::uuid AND status = 'queued'", message_id
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
    """Render, record once, and deliver through `channel` if there is one and it has not delivered yet."""
    message = catalogue.render(request, message_variables(request, pay_url))
    stored = await outbox.store(message)
    if channel is None or stored.status == "sent":
        return MessageReceipt(
            message_id=stored.message_id,
            channel=request.channel,
            status=stored.status,
            duplicate=stored.duplicate,
        )
    # A queued duplicate means an earlier attempt stored it but may have died before or during delivery:
    # deliver again under the same idempotency key and let the provider drop the repeat.
    try:
        provider_id = await channel.deliver(message)
    except ApplicationError as error:
        if error.non_retryable:
            await outbox.mark_failed(stored.message_id)
        raise
    await outbox.mark_sent(stored.message_id, provider_id)
    return MessageReceipt(
        message_id=stored.message_id, channel=request.channel, status="sent", duplicate=stored.duplicate
    )
