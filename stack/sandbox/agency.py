"""A local collection agency speaking the API of activities/agency_http.py, for `make run` and the tests.

One sandbox plays every agency whose endpoint is "sandbox": agency ID's API lives under /agencies/ID
(a bare /placements is agency "sandbox").

    POST /agencies/{agency}/placements                      (Idempotency-Key and the API key header required)
         {placement_id, loan_id, amount_overdue_minor, currency, dpd, segment, period_days, expires_at}
         201 {"reference": "EAST-000001", "status": "accepted"}; same key again: the first answer
    POST /agencies/{agency}/placements/{placement_id}/recall   {"reason": "paid"}
         200 {"status": "recalled"}; 404 {"error": "placement_not_found"}
    POST /placements/{placement_id}/payments    {"amount_minor": 10000, "payment_id": "optional"} (JSON or
         a form): the agency collected money; the sandbox reports it to the product (`on_payment`), which
         signals the loan's workflow. Also a button on the page.
    GET  /                                      placements and recalls (HTML), with a payment button each
    GET  /placements                            the same as JSON
    POST /sandbox/fail-next?count=2&status=503  the next API requests fail (also X-Sandbox-Fail / ?fail=)

Everything accepted is appended to a JSON-lines log (.state/agency.jsonl under `make run`), replayed at start:
a retry after a restart is still recognised by its Idempotency-Key. Bodies with fields outside the API
(a borrower's name or phone, say) are refused with 422 unknown_field: the product must not send them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from domain.agencies import SANDBOX_ENDPOINT, AgencyConfigError, load_agencies
from stack.sandbox.common import HOST, HttpSandbox, JsonLines, SandboxError, now_iso
from stack.sandbox.gateway import FailureSwitch, error
from stack.sandbox.mailbox import _e, _page
from stack.settings import Settings

DEFAULT_AGENCY = "sandbox"
PLACEMENT_FIELDS = {
    "placement_id": str,
    "loan_id": str,
    "amount_overdue_minor": int,
    "currency": str,
    "dpd": int,
    "segment": str,
    "period_days": int,
    "expires_at": str,
}


class PaymentCallback(Protocol):
    """The product's "agency payment" path: partial(activities.agency_http.report_agency_payment, client)."""

    def __call__(
        self, *, loan_id: str, amount_minor: int, payment_id: str, agency_id: str, currency: str
    ) -> Awaitable[object]: ...


class AgencySandbox(FailureSwitch, HttpSandbox):
    def __init__(
        self,
        log_file: Path,
        *,
        host: str = HOST,
        port: int = 0,
        api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        on_payment: PaymentCallback | None = None,
        setting: str = "OVERDUE_SANDBOX_AGENCY_PORT",
    ) -> None:
        super().__init__(host=host, port=port, setting=setting)
        self.log = JsonLines(log_file)
        self.api_key = api_key
        self.api_key_header = api_key_header
        self.on_payment = on_payment
        self.placements: dict[str, dict[str, Any]] = {}  # by placement id
        self._answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}  # (agency, key) -> answer
        self._failures: list[int] = []
        self.requests = 0  # every API request (placement or recall) that reached it, failed ones included

    def agency_url(self, agency_id: str) -> str:
        """The endpoint an agency configured as "sandbox" is called at."""
        return f"{self.base_url}/agencies/{agency_id}"

    def entries(self) -> list[dict[str, Any]]:
        return self.log.read()

    async def start(self) -> None:
        self.placements, self._answers = {}, {}
        for entry in self.log.read():
            self._apply(entry)
        await super().start()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/placements", self._list),
            web.post("/placements", self._place),
            web.post("/agencies/{agency}/placements", self._place),
            web.post("/placements/{placement}/recall", self._recall),
            web.post("/agencies/{agency}/placements/{placement}/recall", self._recall),
            web.post("/placements/{placement}/payments", self._payment),
            web.post("/agencies/{agency}/placements/{placement}/payments", self._payment),
            web.post("/sandbox/fail-next", self._fail_next),
        ]

    # State ------------------------------------------------------------------------------------------------

    def _apply(self, entry: dict[str, Any]) -> None:
        """Replay one log entry into the in-memory state (at start, and as each request is accepted)."""
        event, agency = entry.get("event"), str(entry.get("agency_id", DEFAULT_AGENCY))
        placement_id = str(entry.get("placement_id", ""))
        if event == "placement":
            self.placements[placement_id] = {
                **{name: entry.get(name) for name in PLACEMENT_FIELDS},
                "agency_id": agency,
                "reference": entry.get("reference"),
                "received_at": entry.get("at"),
                "status": "active",
                "recall_reason": None,
                "recalled_at": None,
                "payments": [],
            }
            answer = {"reference": entry.get("reference"), "status": "accepted"}
            self._answers[(agency, str(entry.get("idempotency_key")))] = (201, answer)
        elif event == "recall" and placement_id in self.placements:
            placement = self.placements[placement_id]
            placement.update(
                status="recalled", recall_reason=entry.get("reason"), recalled_at=entry.get("at")
            )
            self._answers[(agency, str(entry.get("idempotency_key")))] = (200, {"status": "recalled"})
        elif event == "payment" and placement_id in self.placements:
            self.placements[placement_id]["payments"].append(
                {k: entry.get(k) for k in ("payment_id", "amount_minor", "at")}
            )

    def _record(self, entry: dict[str, Any]) -> None:
        entry = {"at": now_iso(), **entry}
        self.log.append(entry)
        self._apply(entry)

    # The agency's API -------------------------------------------------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | tuple[str, str]:
        """Authentication, simulated failures, the Idempotency-Key: (agency, key), or the refusal."""
        self.requests += 1
        if self.api_key is not None and request.headers.get(self.api_key_header) != self.api_key:
            return error(401, "unauthorized", f"missing or wrong {self.api_key_header}")
        simulated = self._simulated_failure(request)
        if simulated is not None:
            return error(
                simulated, "sandbox_failure", "failure simulated by the sandbox", **{"Retry-After": "1"}
            )
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return error(400, "missing_idempotency_key", "the Idempotency-Key header is required")
        return request.match_info.get("agency", DEFAULT_AGENCY), key

    async def _json_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return error(400, "invalid_json", "the body must be a JSON object")
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "the body must be a JSON object")
        return payload

    def _replay(self, agency: str, key: str) -> web.Response | None:
        if (agency, key) not in self._answers:
            return None
        status, answer = self._answers[(agency, key)]
        return web.json_response(answer, status=status, headers={"Idempotent-Replayed": "true"})

    async def _place(self, request: web.Request) -> web.Response:
        gate = self._gate(request)
        if isinstance(gate, web.Response):
            return gate
        agency, key = gate
        payload = await self._json_body(request)
        if isinstance(payload, web.Response):
            return payload
        replayed = self._replay(agency, key)
        if replayed is not None:
            return replayed
        refused = _check_placement(payload)
        if refused is not None:
            return refused
        if payload["placement_id"] in self.placements:
            return error(422, "duplicate_placement", "this placement_id was placed under another key")
        # No await between the replay check and here: two concurrent requests with one key log it once.
        count = sum(1 for p in self.placements.values() if p["agency_id"] == agency) + 1
        reference = f"{agency.split('-')[0].upper()[:8]}-{count:06d}"
        self._record(
            {
                "event": "placement",
                "agency_id": agency,
                "idempotency_key": key,
                "reference": reference,
                **{name: payload[name] for name in PLACEMENT_FIELDS},
            }
        )
        return web.json_response({"reference": reference, "status": "accepted"}, status=201)

    async def _recall(self, request: web.Request) -> web.Response:
        gate = self._gate(request)
        if isinstance(gate, web.Response):
            return gate
        agency, key = gate
        payload = await self._json_body(request)
        if isinstance(payload, web.Response):
            return payload
        replayed = self._replay(agency, key)
        if replayed is not None:
            return replayed
        reason = payload.get("reason")
        if not isinstance(reason, str) or not 0 < len(reason) <= 64 or set(payload) - {"reason"}:
            return error(422, "invalid_request", 'the body must be {"reason": "..."}')
        placement_id = request.match_info["placement"]
        placement = self.placements.get(placement_id)
        if placement is None or placement["agency_id"] != agency:
            return error(404, "placement_not_found", "this agency holds no such placement")
        if placement["status"] == "recalled":
            return web.json_response({"status": "already_recalled"})
        self._record(
            {
                "event": "recall",
                "agency_id": agency,
                "placement_id": placement_id,
                "idempotency_key": key,
                "reason": reason,
            }
        )
        return web.json_response({"status": "recalled"})

    # The agency reporting a payment back --------------------------------------------------------------------

    async def _payment(self, request: web.Request) -> web.Response:
        form = request.content_type != "application/json"
        if not self._same_origin(request.headers.get("Origin")):
            return error(403, "forbidden", "payments are reported from this sandbox's own page")
        if form:
            fields: dict[str, Any] = dict(await request.post())
        else:
            body = await self._json_body(request)
            if isinstance(body, web.Response):
                return body
            fields = body
        placement_id = request.match_info["placement"]
        placement = self.placements.get(placement_id)
        agency = request.match_info.get("agency")
        if placement is None or (agency is not None and placement["agency_id"] != agency):
            return error(404, "placement_not_found", "no such placement")
        if placement["status"] != "active":
            return error(409, "placement_recalled", "the placement was recalled; the agency holds it no more")
        amount = _positive_int(fields.get("amount_minor"))
        if amount is None:
            return error(422, "invalid_request", "amount_minor: a positive whole number of minor units")
        payment_id = str(fields.get("payment_id") or "").strip() or f"PAY-{secrets.token_hex(4).upper()}"
        if len(payment_id) > 64:
            return error(422, "invalid_request", "payment_id: at most 64 characters")
        if self.on_payment is None:
            return error(503, "no_product", "this sandbox has no product to report payments to")
        try:
            await self.on_payment(
                loan_id=placement["loan_id"],
                amount_minor=amount,
                payment_id=payment_id,
                agency_id=placement["agency_id"],
                currency=placement["currency"],
            )
        except Exception as failure:  # the product refused it: say so, record nothing
            return error(502, "product_refused", f"{type(failure).__name__}: {str(failure)[:300]}")
        self._record(
            {
                "event": "payment",
                "agency_id": placement["agency_id"],
                "placement_id": placement_id,
                "loan_id": placement["loan_id"],
                "payment_id": payment_id,
                "amount_minor": amount,
                "currency": placement["currency"],
            }
        )
        if form:
            raise web.HTTPSeeOther("/")
        return web.json_response({"payment_id": payment_id, "reported": True})

    def _same_origin(self, origin: str | None) -> bool:
        """No Origin (curl, scripts) or this sandbox's own page: another web page must not report payments."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.hostname in ("127.0.0.1", "localhost", self.host) and parts.port == self.port

    # Pages ------------------------------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        placements = list(self.placements.values())
        return web.json_response(placements, dumps=lambda v: json.dumps(v, ensure_ascii=False, indent=1))

    async def _index(self, request: web.Request) -> web.Response:
        rows = []
        for placement in sorted(self.placements.values(), key=lambda p: str(p["received_at"]), reverse=True):
            paid = sum(int(p["amount_minor"] or 0) for p in placement["payments"])
            if placement["status"] == "active":
                action = (
                    f'<form method="post" action="/placements/{_e(placement["placement_id"])}/payments">'
                    f'<input name="amount_minor" size="9" value="{_e(placement["amount_overdue_minor"])}">'
                    '<button type="submit">report payment</button></form>'
                )
            else:
                action = f"recalled: {_e(placement['recall_reason'])}"
            rows.append(
                "<tr>"
                f"<td>{_e(placement['received_at'])}</td>"
                f"<td>{_e(placement['agency_id'])}</td>"
                f"<td>{_e(placement['reference'])}</td>"
                f"<td>{_e(placement['loan_id'])}</td>"
                f"<td>{_e(placement['currency'])} {_e(placement['amount_overdue_minor'])}</td>"
                f"<td>{_e(placement['dpd'])}</td>"
                f"<td>{_e(placement['segment'])}</td>"
                f"<td>{_e(_day(placement['expires_at']))}</td>"
                f"<td>{_e(paid or '')}</td>"
                f"<td>{action}</td>"
                "</tr>"
            )
        active = sum(1 for p in self.placements.values() if p["status"] == "active")
        table = (
            "<table><tr><th>received (UTC)</th><th>agency</th><th>reference</th><th>loan</th>"
            "<th>arrears (minor units)</th><th>DPD</th><th>segment</th><th>expires</th><th>paid</th>"
            "<th></th></tr>" + "\n".join(rows) + "</table>"
            if rows
            else "<p>No placements yet: loans reach the agency stage at DPD 45 by default.</p>"
        )
        body = (
            f"<h1>Sandbox agency</h1><p>{active} active of {len(rows)} placement(s), logged in "
            f'<code>{_e(str(self.log.path))}</code>. JSON: <a href="/placements">/placements</a>. '
            "“report payment” tells the product the agency collected that amount (a <code>payment</code> "
            "signal with source <code>agency</code>).</p>" + table
        )
        return _page("Sandbox agency", body)


def _check_placement(payload: dict[str, Any]) -> web.Response | None:
    unknown = sorted(set(payload) - set(PLACEMENT_FIELDS))
    if unknown:
        return error(422, "unknown_field", f"fields outside the placement API: {', '.join(unknown)}")
    for name, kind in PLACEMENT_FIELDS.items():
        value = payload.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            return error(422, "invalid_request", f"{name}: a {kind.__name__} is required")
    if payload["amount_overdue_minor"] < 0 or payload["dpd"] < 0 or payload["period_days"] < 1:
        return error(422, "invalid_request", "amounts and dpd must not be negative, period_days at least 1")
    try:
        expires = datetime.fromisoformat(payload["expires_at"])
    except ValueError:
        return error(422, "invalid_request", "expires_at: an ISO 8601 date and time")
    if expires.tzinfo is None:
        return error(422, "invalid_request", "expires_at: must carry a UTC offset")
    return None


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 0 < value <= 10**15 else None


def _day(value: object) -> str:
    return str(value)[:10] if value else ""


# ---------------------------------------------------------------------------------------------- make run


async def start_for_stack(
    settings: Settings, on_payment: PaymentCallback, api_key: str
) -> AgencySandbox | None:
    """The sandbox agency of `make run`, when an agency in OVERDUE_AGENCIES_FILE has endpoint "sandbox" and
    OVERDUE_AGENCY_SANDBOX_URL does not point elsewhere; None otherwise. A broken agencies file is a
    SandboxError naming the file and field (before anything else starts)."""
    try:
        book = load_agencies(settings.agencies_file)
    except AgencyConfigError as failure:
        raise SandboxError(str(failure)) from None
    if settings.agency_sandbox_url or not any(a.endpoint == SANDBOX_ENDPOINT for a in book.agencies):
        return None
    sandbox = AgencySandbox(
        settings.state_dir / "agency.jsonl",
        port=settings.sandbox_agency_port,
        api_key=api_key,
        api_key_header=settings.agency_api_key_header,
        on_payment=on_payment,
    )
    await sandbox.start()
    return sandbox


def describe(settings: Settings, sandbox: AgencySandbox | None, shown: Callable[[Path], str]) -> list[str]:
    """Banner lines of `make run`: where placements go and how to see them."""
    lines = []
    if sandbox is not None:
        lines.append(
            f" Sandbox agency    {sandbox.base_url}/   placements, recalls, report a payment "
            f"(log {shown(sandbox.log.path)})"
        )
    elif settings.agency_sandbox_url:
        lines.append(f" Sandbox agency    {settings.agency_sandbox_url} (OVERDUE_AGENCY_SANDBOX_URL)")
    lines.append(
        f" Agencies          {shown(settings.agencies_file)}: .venv/bin/python -m starter agencies list"
    )
    return lines
