"""A local SMTP server that keeps every mail it receives as a .eml file, and a read-only web mailbox.

    SMTP 127.0.0.1:{smtp_port}   accepts any mail (AUTH only when credentials are given)
    GET  /                       the mailbox, newest first (HTML)
    GET  /messages/{id}          one mail: headers and text (HTML); /messages/{id}.eml is the raw file
    GET  /api/messages           the list as JSON; /api/messages/{id} one mail with its text, as JSON

Connected to the inbound app (`make run`, stack/sandbox/inbound_controls.py), each mail's page can send a
delivery receipt, a hard bounce or the borrower's reply, and a mail sent over SMTP to the lender's own address
(OVERDUE_SMTP_FROM) is forwarded to it as a reply.

Recipients whose local part ends in 0000 are refused with 550 5.1.1 (the "no such user" bounce);
`fail_next(n)` makes the next n recipients get 451 4.3.0 (a transient refusal).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import time
import warnings
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from stack.sandbox.common import HOST, HttpSandbox, bind, now_iso
from stack.sandbox.gateway import INVALID_SUFFIX
from stack.sandbox.inbound_controls import (
    EMAIL_EVENTS,
    InboundLink,
    forwarded_reply,
    mail_controls,
    mail_event,
)

_ID = r"[0-9]{19,20}-[0-9a-f]{8}"
_ID_PATTERN = re.compile(f"^{_ID}$")
SHOWN_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "X-Overdue-Idempotency-Key",
    "Content-Language",
)

# aiosmtpd logs every connection at INFO; the sandbox's own story is the mailbox.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class _Capture:
    """The aiosmtpd handler: refuses the simulated bad recipients, stores the rest."""

    def __init__(self, mailbox: MailCapture) -> None:
        self._mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self._mailbox.take_failure():
            return "451 4.3.0 Mailbox temporarily unavailable, try again later (sandbox)"
        if address.rsplit("@", 1)[0].endswith(INVALID_SUFFIX):
            return "550 5.1.1 No such user here (sandbox)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail_id = self._mailbox.store(envelope)
        await self._mailbox.forward_reply(mail_id, envelope.rcpt_tos)
        return f"250 OK queued as {mail_id}"


class MailCapture(HttpSandbox):
    def __init__(
        self,
        directory: Path,
        *,
        host: str = HOST,
        smtp_port: int = 0,
        http_port: int = 0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(host=host, port=http_port, setting="OVERDUE_SANDBOX_MAILBOX_PORT")
        self.directory = directory
        self._wanted_smtp_port = smtp_port
        self._credentials = credentials
        self._server: asyncio.Server | None = None
        self._connections: set[SMTP] = set()
        self._failures = 0
        self.smtp_port = 0
        self.inbound: InboundLink | None = None
        self.reply_address: str | None = None  # the lender's own address: mail to it is a reply

    def connect_inbound(self, url: str, secret: str, reply_address: str | None = None) -> None:
        self.inbound = InboundLink(url, secret)
        self.reply_address = reply_address

    async def forward_reply(self, mail_id: str, recipients: list[str]) -> None:
        """A mail to the lender's own address goes to the inbound app as the borrower's reply."""
        wanted = (self.reply_address or "").lower()
        if self.inbound is None or not wanted or wanted not in (r.lower() for r in recipients):
            return
        mail = self.read(mail_id)
        event = forwarded_reply(str(mail.get("From", "")), str(mail.get("Subject", "")), text_of(mail))
        try:
            await self.inbound.send(EMAIL_EVENTS, event)
        except (OSError, TimeoutError, aiohttp.ClientError):
            logging.getLogger("overdue.sandbox").warning("sandbox mailbox: inbound app unreachable")

    @property
    def url(self) -> str:
        return self.base_url + "/"

    def fail_next(self, count: int = 1) -> None:
        self._failures += count

    def take_failure(self) -> bool:
        if self._failures:
            self._failures -= 1
            return True
        return False

    # SMTP -------------------------------------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self._credentials is not None
        login, password = self._credentials
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            login.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is the point of a local sandbox; aiosmtpd warns about it.
            warnings.simplefilter("ignore")
            smtp = SMTP(
                _Capture(self),
                hostname="sandbox.overdue.local",
                ident="Overdue sandbox SMTP",
                authenticator=self._authenticate if self._credentials else None,
                auth_required=self._credentials is not None,
                auth_require_tls=False,
                timeout=30,
            )
        self._connections.add(smtp)
        return smtp

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        sock = bind(self.host, self._wanted_smtp_port, "OVERDUE_SANDBOX_SMTP_PORT")
        self.smtp_port = int(sock.getsockname()[1])
        self._server = await asyncio.get_running_loop().create_server(self._protocol, sock=sock)
        try:
            await super().start()
        except BaseException:
            await self._stop_smtp()
            raise

    async def stop(self) -> None:
        await self._stop_smtp()
        await super().stop()

    async def _stop_smtp(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for smtp in self._connections:
            if smtp.transport is not None:
                smtp.transport.close()
        self._connections.clear()
        await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        self._server = None

    def store(self, envelope: Envelope) -> str:
        mail_id = f"{time.time_ns()}-{secrets.token_hex(4)}"
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        trace = (
            f"X-Sandbox-Received-At: {now_iso()}\r\n"
            f"X-Sandbox-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Sandbox-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        path = self.directory / f"{mail_id}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(trace + content)
        partial.rename(path)  # a half-written file never shows in the mailbox
        return mail_id

    # Reading ----------------------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        """Mail ids, newest first."""
        if not self.directory.exists():
            return []
        names = (p.stem for p in self.directory.glob("*.eml"))
        return sorted((n for n in names if _ID_PATTERN.match(n)), reverse=True)

    def read(self, mail_id: str) -> EmailMessage:
        if not _ID_PATTERN.match(mail_id):
            raise KeyError(mail_id)
        path = self.directory / f"{mail_id}.eml"
        if not path.exists():
            raise KeyError(mail_id)
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        return message

    def summary(self, mail_id: str, *, with_text: bool = False) -> dict[str, Any]:
        mail = self.read(mail_id)
        data: dict[str, Any] = {
            "id": mail_id,
            "received_at": mail.get("X-Sandbox-Received-At"),
            "envelope_to": mail.get("X-Sandbox-Envelope-To"),
            "headers": {name: str(mail[name]) for name in SHOWN_HEADERS if mail[name] is not None},
        }
        if with_text:
            data["text"] = text_of(mail)
            data["has_html"] = mail.get_body(preferencelist=("html",)) is not None
        return data

    def messages(self) -> list[dict[str, Any]]:
        """Every stored mail with its text, newest first (what the tests read)."""
        return [self.summary(mail_id, with_text=True) for mail_id in self.ids()]

    # HTTP -------------------------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/api/messages", self._api_list),
            web.get(f"/api/messages/{{mail_id:{_ID}}}", self._api_one),
            web.get(f"/messages/{{mail_id:{_ID}}}.eml", self._raw),
            web.get(f"/messages/{{mail_id:{_ID}}}", self._view),
            web.post(f"/messages/{{mail_id:{_ID}}}/event", self._event),
        ]

    def _one(self, request: web.Request) -> str:
        mail_id = request.match_info["mail_id"]
        if mail_id not in self.ids():
            raise web.HTTPNotFound(text="no such mail")
        return mail_id

    async def _api_list(self, request: web.Request) -> web.Response:
        return web.json_response([self.summary(mail_id) for mail_id in self.ids()])

    async def _api_one(self, request: web.Request) -> web.Response:
        return web.json_response(self.summary(self._one(request), with_text=True))

    async def _raw(self, request: web.Request) -> web.Response:
        path = self.directory / f"{self._one(request)}.eml"
        return web.Response(body=path.read_bytes(), content_type="text/plain", charset="utf-8")

    async def _index(self, request: web.Request) -> web.Response:
        rows = []
        for mail_id in self.ids():
            mail = self.summary(mail_id)
            headers = mail["headers"]
            rows.append(
                "<tr>"
                f"<td>{_e(mail['received_at'])}</td>"
                f"<td>{_e(headers.get('To'))}</td>"
                f'<td><a href="/messages/{mail_id}">{_e(headers.get("Subject") or "(no subject)")}</a></td>'
                "</tr>"
            )
        table = (
            "<table><tr><th>received (UTC)</th><th>to</th><th>subject</th></tr>"
            + "\n".join(rows)
            + "</table>"
            if rows
            else "<p>No mail yet.</p>"
        )
        body = (
            f"<h1>Sandbox mailbox</h1><p>{len(rows)} mail(s) received on SMTP {self.host}:{self.smtp_port}, "
            f"kept in <code>{_e(str(self.directory))}</code>. "
            'JSON: <a href="/api/messages">/api/messages</a>.</p>' + table
        )
        return _page("Sandbox mailbox", body)

    async def _view(self, request: web.Request) -> web.Response:
        mail_id = self._one(request)
        mail = self.summary(mail_id, with_text=True)
        headers = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in mail["headers"].items())
        body = (
            f'<p><a href="/">&larr; mailbox</a> · <a href="/messages/{mail_id}.eml">raw .eml</a> · '
            f'<a href="/api/messages/{mail_id}">JSON</a></p>'
            f"<table>{headers}</table><pre>{_e(mail['text'])}</pre>"
        )
        if self.inbound is not None:
            sent = request.query.get("sent")
            body += (f'<p role="status">{_e(sent)}</p>' if sent else "") + mail_controls(mail_id)
        return _page(str(mail["headers"].get("Subject", mail_id)), body)

    async def _event(self, request: web.Request) -> web.Response:
        """A control of the mail's page: the provider's receipt or bounce, or a reply, to the inbound app."""
        mail_id = self._one(request)
        form = await request.post()
        kind = str(form.get("type", ""))
        event = mail_event(self.summary(mail_id)["headers"], kind, str(form.get("text", "")).strip())
        if self.inbound is None or event is None:
            raise web.HTTPBadRequest(
                text="type: delivered, bounce or reply (with text); inbound app connected"
            )
        status = await self.inbound.send(EMAIL_EVENTS, event)
        raise web.HTTPSeeOther(f"/messages/{mail_id}?sent={kind}+sent:+inbound+app+answered+{status}")


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    content = part.get_content()
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}"
    "pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}"
)


def _page(title: str, body: str) -> web.Response:
    text = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")
