"""The loan dossier: everything about one loan in collection on one page, with the forms of its actions.

`render_dossier` is also what an action renders when the workflow (or the form) rejects it: the same page,
with the reason next to the field and the values the collector typed, nothing saved.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from activities.journal import loan_timeline
from admin.users import User
from admin.web import CurrentUser, render, services_of, settings_of
from starter.api import InvalidRequest, UnknownLoan, check_loan_id
from workflows.messages import workflow_id

router = APIRouter()


async def render_dossier(
    request: Request,
    user: User,
    loan_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    starter = services_of(request).starter
    try:
        check_loan_id(loan_id)
        status = await starter.status(loan_id)
    except (InvalidRequest, UnknownLoan):
        context = {"user": user, "message": f"No collection for loan {loan_id}."}
        return render(request, "error.html", context, status_code=404)
    timeline = await loan_timeline(services_of(request).pool, loan_id)
    ui = settings_of(request).temporal_ui_url
    context = {
        "user": user,
        "loan_id": loan_id,
        "status": status,
        "timeline": timeline,
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


@router.get("/loans/{loan_id}", response_class=HTMLResponse)
async def loan_page(request: Request, loan_id: str, user: CurrentUser, notice: str | None = None) -> Response:
    notices = {"promised": "Promise recorded.", "closed": "Close requested."}
    return await render_dossier(request, user, loan_id, notice=notices.get(notice or ""))
