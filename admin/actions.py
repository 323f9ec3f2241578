"""The actions a collector (or a supervisor) takes on a loan from its dossier.

Each reaches the loan's workflow through `CollectionsStarter` with the logged-in user as the collector; a
rejection (by the form or by the workflow's validator) re-renders the dossier with the reason next to the
field and nothing saved.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin.dossier import render_dossier
from admin.web import CurrentUser, Supervisor, checked_form, field_of, parse_amount, render, services_of
from starter.api import (
    CollectionClosed,
    InvalidRequest,
    PromiseRejected,
    UnknownLoan,
    check_loan_id,
)

router = APIRouter()


@router.post("/loans/{loan_id}/promise", response_class=HTMLResponse)
async def record_promise(request: Request, loan_id: str, user: CurrentUser) -> Response:
    form = await checked_form(request)
    values = {key: str(form.get(key, "")) for key in ("amount", "due_date", "note")}
    starter = services_of(request).starter
    try:
        check_loan_id(loan_id)
        status = await starter.status(loan_id)
        problems: list[tuple[str, str]] = []
        try:
            amount_minor = parse_amount(values["amount"], status.currency)
        except InvalidRequest as error:
            problems += error.problems
        try:
            due_date = date.fromisoformat(values["due_date"])
        except ValueError:
            problems.append(("due_date", "enter a date as YYYY-MM-DD"))
        if problems:
            raise InvalidRequest(problems)
        await starter.promise(
            loan_id, amount_minor, due_date, collector=user.username, note=values["note"].strip() or None
        )
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    except InvalidRequest as error:
        errors = {field or "form": message for field, message in error.problems}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    except PromiseRejected as error:
        errors = {field_of(error.reason) or "form": error.reason}
        return await render_dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice=promised", status_code=303)


@router.post("/loans/{loan_id}/close")
async def close_loan(request: Request, loan_id: str, user: Supervisor) -> Response:
    form = await checked_form(request)
    try:
        await services_of(request).starter.close(
            loan_id, str(form.get("reason", "")), str(form.get("note", "")).strip() or None
        )
    except InvalidRequest as error:
        errors = {"close_" + (field or "form"): message for field, message in error.problems}
        return await render_dossier(request, user, loan_id, errors=errors, status_code=422)
    except (UnknownLoan, CollectionClosed) as error:
        return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
    return RedirectResponse(f"/loans/{quote(loan_id)}?notice=closed", status_code=303)
