"""E-mail over SMTP (aiosmtplib): one connection per message, plain text plus an HTML alternative.

SMTP has no idempotency key, so the message carries its own: a `Message-ID` derived from the idempotency key
(the same on every attempt, so mail systems and clients that de-duplicate by Message-ID drop a repeat) and an
`X-Overdue-Idempotency-Key` header. The outbox row written before delivery is what keeps a retry from sending
again once delivery was recorded; the one gap left is a crash after the server accepted the mail but before
the row was marked sent, and the stable Message-ID is the answer there.

| SMTP answer | outcome |
|---|---|
| 5xx to RCPT (550 no such user, 553 bad address ...) | CONTACT_POINT_INVALID, non-retryable |
| 5xx to DATA with a 5.1.x status (recipient problem found late) | CONTACT_POINT_INVALID |
| other 5xx to DATA (552 too big, 554 5.7.1 refused as spam ...) | MESSAGE_REJECTED, non-retryable |
| 4xx anywhere, connection refused or lost, timeout | unavailable: retryable |
| AUTH refused, sender refused, 530, STARTTLS or AUTH not offered | misconfigured: retryable |
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

import aiosmtplib
from aiosmtplib import errors as smtp_errors

from activities.channels import errors
from activities.messaging import RenderedMessage

IDEMPOTENCY_HEADER = "X-Overdue-Idempotency-Key"

TlsMode = Literal["starttls", "implicit", "none"]

_URL = re.compile(r"https?://[^\s<>\"']+")
_RECIPIENT_STATUS = re.compile(r"\b5\.1\.\d{1,3}\b")


def message_id_for(idempotency_key: str, domain: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}.overdue@{domain}>"


def _html(body: str) -> str:
    """The text body as simple HTML: paragraphs, line breaks, clickable links; everything escaped."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", body.strip()):
        escaped = html.escape(paragraph)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "<!doctype html>\n<html><body>\n" + "\n".join(paragraphs) + "\n</body></html>\n"


class SmtpEmailAdapter:
    def __init__(
        self,
        host: str,
        *,
        port: int = 587,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = "starttls",
        timeout: float = 10.0,
    ) -> None:
        _, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError(f"email: the from address must be an e-mail address, got {sender!r}")
        if (username is None) != (password is None):
            raise ValueError("email: set both the SMTP username and password, or neither")
        self.host = host
        self.port = port
        self._sender = sender
        self._envelope_from = address
        self._domain = address.rsplit("@", 1)[1]
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = timeout

    def build(self, message: RenderedMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.recipient
        mail["Subject"] = " ".join((message.subject or "").split())  # one line, whatever the variables held
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id_for(message.idempotency_key, self._domain)
        mail[IDEMPOTENCY_HEADER] = message.idempotency_key
        # An automated notice (RFC 3834): vacation responders must not answer it.
        mail["Auto-Submitted"] = "auto-generated"
        # 7-bit safe (quoted-printable) so it passes servers without 8BITMIME too.
        mail.set_content(message.body, cte="quoted-printable")
        mail.add_alternative(_html(message.body), subtype="html", cte="quoted-printable")
        mail["Content-Language"] = message.locale  # after set_content, which drops Content-* headers
        return mail

    async def deliver(self, message: RenderedMessage) -> str:
        mail = self.build(message)
        try:
            # The whole exchange, not just each command, must end well inside the activity's timeout.
            async with asyncio.timeout(self._timeout):
                await aiosmtplib.send(
                    mail,
                    sender=self._envelope_from,
                    recipients=[message.recipient],
                    hostname=self.host,
                    port=self.port,
                    username=self._username,
                    password=self._password,
                    use_tls=self._tls == "implicit",
                    start_tls=self._tls == "starttls",
                    timeout=self._timeout,
                )
        except smtp_errors.SMTPRecipientsRefused as error:
            raise _refused([r.code for r in error.recipients]) from None
        except smtp_errors.SMTPRecipientRefused as error:
            raise _refused([error.code]) from None
        except smtp_errors.SMTPDataError as error:
            if 500 <= error.code < 600:
                if _RECIPIENT_STATUS.search(error.message):
                    raise errors.contact_point_invalid("email", f"SMTP {error.code} at DATA") from None
                raise errors.message_rejected("email", f"SMTP {error.code}") from None
            raise errors.unavailable("email", f"SMTP {error.code} at DATA") from None
        except (smtp_errors.SMTPAuthenticationError, smtp_errors.SMTPSenderRefused) as error:
            raise errors.misconfigured("email", f"SMTP {error.code} from {self.host}") from None
        except smtp_errors.SMTPResponseException as error:
            if error.code == 530:
                raise errors.misconfigured("email", f"SMTP 530 from {self.host}") from None
            raise errors.unavailable("email", f"SMTP {error.code} from {self.host}") from None
        except smtp_errors.SMTPNotSupported as error:
            # STARTTLS or AUTH asked for but not offered by the server: the settings do not match it.
            raise errors.misconfigured("email", f"{error.message} ({self.host})") from None
        except (smtp_errors.SMTPException, OSError, TimeoutError) as error:
            raise errors.unavailable("email", f"{type(error).__name__} talking to {self.host}") from None
        return mail["Message-ID"]

    async def aclose(self) -> None:
        """Nothing to close: each message opens its own connection."""


def _refused(codes: list[int]) -> Exception:
    worst = max(codes, default=0)
    if 500 <= worst < 600:
        if worst == 530:
            return errors.misconfigured("email", "SMTP 530 authentication required")
        return errors.contact_point_invalid("email", f"SMTP {worst} at RCPT")
    return errors.unavailable("email", f"SMTP {worst} at RCPT")
