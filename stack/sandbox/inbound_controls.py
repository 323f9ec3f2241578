"""The sandboxes' "send a reply / a receipt / a bounce" controls: what a real provider's webhook would send,
signed like one (inbound/auth.py), posted to the product's inbound app.

`make run` connects each channel sandbox to the inbound app (`connect_inbound(url, secret)`); a sandbox
never connected shows its pages without the controls, as before.

    SMS gateway  GET /            the SMS log with buttons: delivered, failed (unknown subscriber), reply
                 POST /sandbox/receipt  id, status, code      POST /sandbox/reply  id, text
    push         GET /            the push log with buttons: delivered, failed (no device)
                 POST /sandbox/receipt  id, status, code
    mailbox      on each mail's page: delivered, hard bounce (5.1.1), reply (text); and any mail sent to
                 the lender's own address over SMTP is forwarded as a reply
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
from aiohttp import web

from inbound.auth import signed_headers

SMS_REPLIES = "/inbound/sms/replies"
SMS_RECEIPTS = "/inbound/sms/receipts"
EMAIL_EVENTS = "/inbound/email/events"
PUSH_RECEIPTS = "/inbound/push/receipts"


@dataclass(frozen=True)
class InboundLink:
    url: str
    secret: str

    async def send(self, path: str, payload: dict[str, Any]) -> int:
        """POST one signed event (a fresh event id unless given); the inbound app's HTTP status."""
        payload = {"event_id": f"sandbox-{secrets.token_hex(8)}", **payload}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **signed_headers(self.secret, body)}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(self.url + path, data=body, headers=headers) as response:
                return response.status


def e(value: object) -> str:
    return html.escape("" if value is None else str(value))


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;"
    "vertical-align:top}form{display:inline}button{margin:.1em}"
)


def page(title: str, body: str) -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body><h1>{e(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def receipt_buttons(message_id: str, failure_code: str) -> str:
    """Two forms posting to /sandbox/receipt: delivered, failed for good."""
    forms = []
    for status, code, label in (
        ("delivered", "", "Receipt: delivered"),
        ("failed", failure_code, "Receipt: failed"),
    ):
        forms.append(
            '<form method="post" action="/sandbox/receipt">'
            f'<input type="hidden" name="id" value="{e(message_id)}">'
            f'<input type="hidden" name="status" value="{status}">'
            f'<input type="hidden" name="code" value="{e(code)}">'
            f'<button type="submit">{e(label)}{f" ({e(code)})" if code else ""}</button></form>'
        )
    return " ".join(forms)


def reply_form(message_id: str, action: str = "/sandbox/reply", default: str = "STOP") -> str:
    return (
        f'<form method="post" action="{e(action)}"><input type="hidden" name="id" value="{e(message_id)}">'
        f'<label>Reply <input name="text" value="{e(default)}" size="12"></label> '
        '<button type="submit">Send reply</button></form>'
    )


def sent_back(status: int | None, what: str) -> NoReturn:
    """After a control: back to the page, saying what the inbound app answered."""
    note = "not connected to the inbound app" if status is None else f"inbound app answered {status}"
    raise web.HTTPSeeOther(f"/?sent={what}&answer={note.replace(' ', '+')}")


def notice(request: web.Request) -> str:
    sent, answer = request.query.get("sent"), request.query.get("answer")
    return f'<p role="status"><strong>{e(sent)}</strong>: {e(answer)}</p>' if sent else ""


class GatewayControls:
    """For the SMS and push gateways: a log page with the controls and the two control routes."""

    inbound: InboundLink | None = None
    receipt_path: str = SMS_RECEIPTS
    failure_code: str = "unknown_subscriber"
    replies: bool = False
    entries: Callable[[], list[dict[str, Any]]]  # the gateway's log (IdempotentGateway.entries)

    def connect_inbound(self, url: str, secret: str) -> None:
        self.inbound = InboundLink(url, secret)

    def control_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._log_page),
            web.post("/sandbox/receipt", self._receipt),
            web.post("/sandbox/reply", self._reply),
        ]

    async def _log_page(self, request: web.Request) -> web.Response:
        rows = []
        for entry in reversed(self.entries()[-200:]):
            controls = ""
            if self.inbound is not None:
                controls = receipt_buttons(str(entry.get("id")), self.failure_code)
                if self.replies:
                    controls += " " + reply_form(str(entry.get("id")))
            text = entry.get("text") or entry.get("body")
            rows.append(
                f"<tr><td>{e(entry.get('received_at'))}</td><td>{e(entry.get('to'))}</td>"
                f"<td>{e(text)}</td><td>{controls}</td></tr>"
            )
        connected = (
            f"Replies and receipts go to {e(self.inbound.url)}."
            if self.inbound
            else "Not connected to an inbound app: no reply or receipt controls."
        )
        table = (
            "<table><tr><th>received (UTC)</th><th>to</th><th>text</th><th>send back</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<p>Nothing received yet.</p>"
        )
        return page(
            f"Sandbox {getattr(self, 'channel', '')} log", notice(request) + f"<p>{connected}</p>" + table
        )

    def _entry(self, message_id: str) -> dict[str, Any] | None:
        return next((x for x in self.entries() if str(x.get("id")) == message_id), None)

    async def _receipt(self, request: web.Request) -> web.Response:
        form = await request.post()
        entry = self._entry(str(form.get("id", "")))
        status = str(form.get("status", ""))
        if entry is None or status not in ("delivered", "failed", "unknown"):
            raise web.HTTPBadRequest(text="id: no such message here; status: delivered, failed or unknown")
        payload: dict[str, Any] = {"message_id": entry["id"], "status": status}
        if form.get("code"):
            payload["code"] = str(form["code"])
        answer = await self.inbound.send(self.receipt_path, payload) if self.inbound else None
        sent_back(answer, f"receipt {status}")

    async def _reply(self, request: web.Request) -> web.Response:
        form = await request.post()
        entry = self._entry(str(form.get("id", "")))
        text = str(form.get("text", "")).strip()
        if not self.replies or entry is None or not text:
            raise web.HTTPBadRequest(text="id: no such message here; text: required")
        payload = {"from": entry["to"], "text": text[:1600]}
        answer = await self.inbound.send(SMS_REPLIES, payload) if self.inbound else None
        sent_back(answer, "reply")


# -- the mailbox ------------------------------------------------------------------------------------------


def mail_controls(mail_id: str) -> str:
    """Forms on a mail's page: what the mail provider could report about it, or the borrower's reply."""
    action = f"/messages/{e(mail_id)}/event"
    buttons = "".join(
        f'<form method="post" action="{action}"><input type="hidden" name="type" value="{kind}">'
        f'<button type="submit">{label}</button></form> '
        for kind, label in (("delivered", "Receipt: delivered"), ("bounce", "Hard bounce (5.1.1)"))
    )
    reply = (
        f'<form method="post" action="{action}"><input type="hidden" name="type" value="reply">'
        '<label>Reply <input name="text" value="unsubscribe" size="20"></label> '
        '<button type="submit">Send reply</button></form>'
    )
    return f"<p>{buttons}{reply}</p>"


def mail_event(headers: dict[str, str], kind: str, text: str) -> dict[str, Any] | None:
    """The mail provider's event about the mail with these headers (None: not one of the product's)."""
    message_id, to = headers.get("Message-ID"), headers.get("To")
    if kind in ("delivered", "bounce"):
        if not message_id:
            return None
        event: dict[str, Any] = {"type": kind, "message_id": message_id}
        return event | ({"bounce_type": "hard", "code": "5.1.1"} if kind == "bounce" else {})
    if kind == "reply" and to and text:
        subject = headers.get("Subject") or ""
        return {"type": "reply", "from": _address(to), "subject": f"Re: {subject}", "text": text[:10_000]}
    return None


def forwarded_reply(sender: str, subject: str, text: str) -> dict[str, Any]:
    """A mail sent to the lender's own address over SMTP: the borrower replying."""
    return {"type": "reply", "from": _address(sender), "subject": subject, "text": text[:10_000]}


def _address(header: str) -> str:
    """The address in 'Name <a@b>' or 'a@b'."""
    from email.utils import parseaddr

    return parseaddr(header)[1]
