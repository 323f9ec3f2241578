"""The loan dossier: everything about one loan in collection on one page, with the forms of its actions.

The page shows the borrower (name, language, time zone and the time there now), each contact point (phone,
e-mail, app) with its state (opted out, unreachable, preferred hours), the holds in force, the loan and its
balance, the payments and promises with their fate, the journal as one timeline, agency placements, the
letters (each a PDF download), and the workflow's live state. Nothing of the borrower goes to the logs (the
download's log line names the loan and the document, never a person).

Least privilege (admin/access.py): only users whose pools hold the loan reach these routes (else 404). A
collector sees the phone, e-mail and postal address masked ('+86 138****5678', 'z***@example.com'); POST
/loans/{loan_id}/reveal with a reason shows one of them in full on the page it answers, once. Every view,
letter download and reveal (with its reason) is a row of read_audit (admin/read_audit.py).

`render_dossier` is also what an action renders when the workflow (or the form) rejects it: the same page,
with the reason next to the field and the values the collector typed, nothing saved. The action forms live in
templates/loan_actions.html (admin/actions.py), included by templates/loan.html with this page's context.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from activities.journal import TimelineRow, loan_timeline
from activities.legal import fetch_document, list_documents
from admin.access import REVEALABLE, mask, masks_contacts
from admin.i18n import translator
from admin.read_audit import record_read
from admin.users import User
from admin.web import CurrentUser, checked_form, render, services_of, settings_of
from domain.contact_rules import ContactState
from domain.loan import Loan
from starter.api import InvalidRequest, UnknownLoan, check_loan_id
from workflows.messages import CollectionStatus, workflow_id

router = APIRouter()
log = structlog.get_logger("overdue.admin")

# ?notice=<key> after an action's redirect: the English text shown (translated) at the top of the page.
# Actions add their own keys with `NOTICES.update(...)` (and the zh-CN wording in their translations file).
NOTICES: dict[str, str] = {"promised": "Promise recorded.", "closed": "Close requested."}
REVEALED_TEXT = "Shown in full on this page only; your reason was recorded in the read audit."
ERROR_REASON = "Say why you need to see it (at most 200 characters)."
ERROR_REVEAL_FIELD = "Choose the phone, the e-mail or the postal address."
MAX_REVEAL_REASON = 200


# -- what the page shows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactPoint:
    """One way to reach the borrower, with what the workflow's contact state says about it."""

    kind: str  # phone, email, app
    address: str | None  # None: none on file
    channels: tuple[str, ...]  # the contact channels that use it
    opted_out_channels: tuple[str, ...]  # of `channels`, those the borrower opted out of
    address_opted_out: bool  # the borrower opted this address out (every channel)
    unreachable: bool  # wrong number, bounced address
    shown: str | None = None  # what the page shows: the address, or masked for a collector
    masked: bool = False

    @property
    def usable(self) -> bool:
        return (
            self.address is not None
            and not self.address_opted_out
            and not self.unreachable
            and len(self.opted_out_channels) < len(self.channels)
        )


@dataclass(frozen=True)
class Hold:
    """A hold in force: kind (dispute, hardship, breathing_space, cease_all, bankruptcy, deceased, ...)."""

    kind: str
    until: datetime | None = None  # None: until lifted


@dataclass(frozen=True)
class PromiseFate:
    fate: str  # made, kept, broken, cancelled
    at: datetime
    actor: str


@dataclass
class PromiseView:
    """A promise to pay as the workflow keeps it, with its fate as the journal recorded it."""

    promise_id: str
    amount_minor: int
    currency: str
    due_date: date
    status: str
    collector: str | None = None
    note: str | None = None
    made_at: datetime | None = None
    paid_toward_minor: int | None = None
    fates: list[PromiseFate] = field(default_factory=list)


def contact_points(loan: Loan | None, contact: ContactState | None) -> list[ContactPoint]:
    """Phone (SMS and calls), e-mail and the app (pushes, keyed by loan id), each with its state."""
    if loan is None:
        return []
    state = contact or ContactState()
    borrower = loan.borrower
    points: list[ContactPoint] = []
    for kind, address, channels in (
        ("phone", borrower.phone, ("sms", "call")),
        ("email", borrower.email, ("email",)),
        ("app", loan.loan_id, ("push",)),
    ):
        points.append(
            ContactPoint(
                kind=kind,
                address=address,
                channels=channels,
                opted_out_channels=tuple(c for c in channels if c in state.opted_out_channels),
                address_opted_out=address is not None and address in state.opted_out_addresses,
                unreachable=address is not None and address in state.unreachable_addresses,
                shown=address,
            )
        )
    return points


def masked_points(points: list[ContactPoint], user: User, revealed: str | None) -> list[ContactPoint]:
    """The phone and e-mail masked for a collector, except the one just revealed (the app's key is the loan
    id, not contact data)."""
    if not masks_contacts(user):
        return points
    return [
        replace(point, shown=mask(point.kind, point.address), masked=True)
        if point.kind in REVEALABLE and point.kind != revealed and point.address is not None
        else point
        for point in points
    ]


def holds_in_force(status: CollectionStatus) -> list[Hold]:
    """The holds and restrictions in force now (time-bounded ones until their end)."""
    state = status.contact
    if state is None:
        return []
    now = status.collections_now
    holds: list[Hold] = []
    if state.dispute_open:
        holds.append(Hold("dispute"))
    if state.hardship_until is not None and state.hardship_until > now:
        holds.append(Hold("hardship", state.hardship_until))
    if state.breathing_space_until is not None and state.breathing_space_until > now:
        holds.append(Hold("breathing_space", state.breathing_space_until))
    if state.cease_all:
        holds.append(Hold("cease_all"))
    if state.collection_stopped:
        holds.append(Hold(state.collection_stopped))
    return holds


def promises_with_fate(status: CollectionStatus, timeline: Iterable[TimelineRow]) -> list[PromiseView]:
    """The workflow's promises (newest first), each with its journal fates; journal-only promises too."""
    fates: dict[str, list[PromiseFate]] = {}
    journal_only: dict[str, PromiseView] = {}
    for row in timeline:
        if row.kind != "promise":
            continue
        data = row.data
        fates.setdefault(data["promise_id"], []).append(PromiseFate(data["fate"], row.at, data["actor"]))
        journal_only[data["promise_id"]] = PromiseView(
            promise_id=data["promise_id"],
            amount_minor=data["amount_minor"],
            currency=data["currency"].strip(),
            due_date=data["due_date"],
            status=data["fate"] if data["fate"] != "made" else "open",
        )
    views: list[PromiseView] = []
    for promise in status.promises:
        journal_only.pop(promise.promise_id, None)
        views.append(
            PromiseView(
                promise_id=promise.promise_id,
                amount_minor=promise.amount_minor,
                currency=promise.currency,
                due_date=promise.due_date,
                status=promise.status,
                collector=promise.collector,
                note=promise.note,
                made_at=promise.made_at,
                paid_toward_minor=promise.paid_toward_minor,
            )
        )
    views.extend(journal_only.values())
    for view in views:
        view.fates = fates.get(view.promise_id, [])
    return sorted(views, key=lambda v: (v.due_date, v.promise_id), reverse=True)


async def placements_of(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    """The loan's agency placements, newest first, with the agency's name."""
    return await pool.fetch(
        "SELECT p.*, coalesce(a.name, p.agency_id) AS agency_name FROM agency_placements p "
        "LEFT JOIN agencies a ON a.id = p.agency_id WHERE p.loan_id = $1 ORDER BY p.placed_at DESC, p.id",
        loan_id,
    )


async def cycles_of(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    """The loan's collection cycles in the portfolio (a cured loan overdue again has several), newest first;
    the page is about the latest, the one the workflow runs now."""
    return await pool.fetch(
        "SELECT cycle, stage, outcome, latest FROM portfolio WHERE loan_id = $1 ORDER BY cycle DESC", loan_id
    )


def time_formatter(zone: ZoneInfo) -> Callable[[datetime | date | None], str]:
    """Instants as borrower-local 'YYYY-MM-DD HH:MM'; dates as they are; None as ''."""

    def when(value: datetime | date | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return value.isoformat()

    return when


def _hours(window: tuple[time, time] | None) -> str | None:
    return f"{window[0].strftime('%H:%M')}–{window[1].strftime('%H:%M')}" if window else None


# -- the page ------------------------------------------------------------------------------------------------


async def render_dossier(
    request: Request,
    user: User,
    loan_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status: CollectionStatus | None = None,
    status_code: int = 200,
    revealed: str | None = None,
) -> Response:
    """The dossier page; `errors` (field -> reason, 'form' for the whole page), `values` (what was typed) and
    `notice` (English, translated when shown) are for the actions' forms. `status`: the loan's, when the
    caller has just read it (an action the workflow refused: nothing changed). `revealed`: the one contact
    field (REVEALABLE) a collector asked to see in full, with a reason already audited."""
    services = services_of(request)
    starter = services.starter
    try:
        if status is None:
            status = await starter.status(loan_id)  # InvalidRequest for an impossible loan id
    except (InvalidRequest, UnknownLoan):
        _ = translator(user.locale)
        message = _("No collection for loan {loan_id}.", loan_id=loan_id)
        return render(request, "error.html", {"user": user, "message": message}, status_code=404)
    pool = services.pool
    timeline = await loan_timeline(pool, loan_id)
    loan = status.loan
    zone = loan.zone if loan is not None else ZoneInfo("UTC")
    ui = settings_of(request).temporal_ui_url
    context: dict[str, Any] = {
        "user": user,
        "loan_id": loan_id,
        "status": status,
        "loan": loan,
        "borrower": loan.borrower if loan is not None else None,
        "zone": zone.key,
        "local_now": datetime.now(UTC).astimezone(zone),
        "collections_local_now": status.collections_now.astimezone(zone),
        "contact_points": masked_points(contact_points(loan, status.contact), user, revealed),
        "postal_address": _postal(loan, user, revealed),
        "masked": masks_contacts(user),
        "revealable": [kind for kind in REVEALABLE if _contact_value(loan, kind) and kind != revealed],
        "preferred_hours": _hours(status.contact.preferred_hours if status.contact else None),
        "holds": holds_in_force(status),
        # Which holds the actions' forms offer (Breathing Space: uk only).
        "profile": starter.profiles.get(status.contact_profile) if status.contact_profile else None,
        "payments": [row for row in timeline if row.kind == "payment"],
        "promises": promises_with_fate(status, timeline),
        "timeline": timeline,
        "placements": await placements_of(pool, loan_id),
        "cycles": await cycles_of(pool, loan_id),
        "documents": await list_documents(pool, loan_id),
        "when": time_formatter(zone),
        "errors": errors or {},
        "values": values or {},
        "notice": notice,
        "can_close": user.has_role("supervisor"),
        "workflow_url": (
            f"{ui.rstrip('/')}/namespaces/{starter.client.namespace}/workflows/{quote(workflow_id(loan_id))}"
            if ui
            else None
        ),
    }
    return render(request, "loan.html", context, status_code=status_code)


def _contact_value(loan: Loan | None, kind: str) -> str | None:
    if loan is None or kind not in REVEALABLE:
        return None
    value: str | None = getattr(loan.borrower, kind, None)
    return value


def _postal(loan: Loan | None, user: User, revealed: str | None) -> str | None:
    address = _contact_value(loan, "postal_address")
    if address is None or not masks_contacts(user) or revealed == "postal_address":
        return address
    return mask("postal_address", address)


@router.get("/loans/{loan_id}", response_class=HTMLResponse)
async def loan_page(request: Request, loan_id: str, user: CurrentUser, notice: str | None = None) -> Response:
    response = await render_dossier(request, user, loan_id, notice=NOTICES.get(notice or ""))
    if response.status_code == 200:
        await record_read(request, user, "dossier_view", loan_id=loan_id)
    return response


@router.post("/loans/{loan_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, loan_id: str, user: CurrentUser) -> Response:
    """One masked contact value in full, on the page this answers (never stored in a URL or a session), once
    the reason is given; the reveal and its reason are audited. A missing reason changes nothing (422)."""
    form = await checked_form(request)
    kind = str(form.get("reveal_field", "")).strip()
    reason = " ".join(str(form.get("reveal_reason", "")).split())
    errors: dict[str, str] = {}
    if kind not in REVEALABLE:
        errors["reveal_field"] = ERROR_REVEAL_FIELD
    if not reason or len(reason) > MAX_REVEAL_REASON or not reason.isprintable():
        errors["reveal_reason"] = ERROR_REASON
    if errors:
        values = {"reveal_field": kind, "reveal_reason": reason[:MAX_REVEAL_REASON]}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    response = await render_dossier(request, user, loan_id, notice=REVEALED_TEXT, revealed=kind)
    if response.status_code == 200:
        await record_read(request, user, "reveal", loan_id=loan_id, field_name=kind, reason=reason)
    return response


@router.get("/loans/{loan_id}/documents/{document_id}.pdf")
async def document_pdf(request: Request, loan_id: str, document_id: str, user: CurrentUser) -> Response:
    """A letter of this loan as the stored PDF, only if its bytes still hash to the SHA-256 recorded when it
    was generated (the copy the borrower was sent); 404 for any document that is not this loan's."""
    _ = translator(user.locale)
    try:
        check_loan_id(loan_id)
        document = await fetch_document(services_of(request).pool, document_id)
    except InvalidRequest:
        document = None
    if document is None or document.loan_id != loan_id:
        context = {"user": user, "message": _("No such document for this loan.")}
        return render(request, "error.html", context, status_code=404)
    if hashlib.sha256(document.content).hexdigest() != document.sha256.strip():
        log.error("document_hash_mismatch", loan_id=loan_id, document_id=document.document_id)
        context = {"user": user, "message": _("The stored copy of this document fails its checksum.")}
        return render(request, "error.html", context, status_code=500)
    log.info("document_downloaded", loan_id=loan_id, document_id=document.document_id, user=user.username)
    await record_read(request, user, "document_download", loan_id=loan_id, document_id=document.document_id)
    filename = f"{loan_id}-{document.kind}-{document.document_id[:8]}.pdf"
    return Response(
        document.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
