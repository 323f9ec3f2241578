"""The admin UI's web application: login, the work queue, the loan dossier and its actions.

Every page needs a login (else a redirect to /login); every POST carries the session's CSRF token (else 403);
supervisor actions check the role (else 403). Actions reach the loan's workflow through `CollectionsStarter`,
the same API servicing uses, with the logged-in user's name as the collector.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware

from activities.journal import loan_timeline
from admin.settings import AdminSettings
from admin.users import Role, User, authenticate, get_user
from domain.loan import CURRENCIES, format_money
from starter.api import (
    CollectionClosed,
    CollectionsStarter,
    InvalidRequest,
    PromiseRejected,
    UnknownLoan,
    check_loan_id,
)
from workflows.messages import workflow_id

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["money"] = lambda amount, currency: format_money(int(amount), str(currency))
SESSION_COOKIE = "overdue_session"
CSRF_FIELD = "csrf_token"
QUEUE_LIMIT = 100


@dataclass
class Services:
    """What the pages need: the product's database and the way to the loans' workflows."""

    pool: asyncpg.Pool
    starter: CollectionsStarter


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


# -- request helpers -----------------------------------------------------------------------------------------


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); every form posts it back."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries this session's CSRF token; else Forbidden (nothing is done)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str) and secrets.compare_digest(sent, expected)):
        raise Forbidden("This form has expired or did not come from this site. Reload the page and retry.")
    return form


async def current_user(request: Request) -> User:
    user_id = request.session.get("uid")
    user = await get_user(services_of(request).pool, user_id) if isinstance(user_id, int) else None
    if user is None:
        request.session.pop("uid", None)
        raise LoginRequired
    return user


def require(role: Role) -> Callable[[Request, User], Awaitable[User]]:
    async def dependency(request: Request, user: CurrentUser) -> User:
        if not user.has_role(role):
            raise Forbidden(f"This action needs the {role} role.")
        return user

    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
Supervisor = Annotated[User, Depends(require("supervisor"))]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), "csrf_field": CSRF_FIELD, **context}
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host): an open redirect would help phishing."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def parse_amount(text: str, currency: str) -> int:
    """'1,234.5' in major units as integer minor units of `currency`."""
    digits = CURRENCIES.get(currency, 2)
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        raise InvalidRequest([("amount_minor", "enter an amount like 500.00")]) from None
    if not value.is_finite():
        raise InvalidRequest([("amount_minor", "enter an amount like 500.00")])
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise InvalidRequest([("amount_minor", f"at most {digits} decimal places for {currency}")])
    return int(minor)


def field_of(reason: str) -> str:
    """The field a workflow reason names ('amount_minor: ...'), or '' for the whole form."""
    head, sep, _ = reason.partition(":")
    return head.strip() if sep and head.strip().isidentifier() else ""


# -- the application -----------------------------------------------------------------------------------------


def create_app(
    settings: AdminSettings | None = None,
    *,
    services: Services | None = None,
    open_services: Callable[[], AbstractAsyncContextManager[Services]] | None = None,
) -> FastAPI:
    """The app, with `services` given (tests) or opened by `open_services` for the app's lifetime."""
    settings = settings or AdminSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None or open_services is None:
            yield
            return
        async with open_services() as opened:
            app.state.services = opened
            yield

    app = FastAPI(title="Overdue admin", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.settings = settings
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key or secrets.token_urlsafe(48),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.session_hours * 3600),
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
        )
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, error: Exception) -> Response:
        message = error.message if isinstance(error, Forbidden) else "Forbidden"
        return render(request, "error.html", {"user": None, "message": message}, status_code=403)

    # -- login ---------------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", {"user": None, "next": safe_next(next), "error": None})

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        username = str(form.get("username", ""))
        target = safe_next(str(form.get("next", "/")))
        result = await authenticate(
            services_of(request).pool,
            username,
            str(form.get("password", "")),
            max_failures=settings.max_failed_logins,
            lockout_seconds=settings.lockout_seconds,
        )
        if result.user is None:
            if result.locked_until is not None:
                error, status = "Too many failed logins: this account is locked for a few minutes.", 429
            else:
                error, status = "Wrong username or password.", 401
            context = {"user": None, "next": target, "error": error, "username": username}
            return render(request, "login.html", context, status_code=status)
        request.session.clear()  # a new session (and CSRF token) for the logged-in user
        request.session["uid"] = result.user.id
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- the work queue ------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def work_queue(request: Request, user: CurrentUser) -> Response:
        pool = services_of(request).pool
        mine = await pool.fetch(
            "SELECT * FROM collector_tasks WHERE status = 'in_progress' AND assignee = $1 "
            "ORDER BY priority DESC, due_at LIMIT $2",
            user.username,
            QUEUE_LIMIT,
        )
        open_tasks = await pool.fetch(
            "SELECT * FROM collector_tasks WHERE status = 'open' AND assignee IS NULL "
            "ORDER BY priority DESC, due_at LIMIT $1",
            QUEUE_LIMIT,
        )
        context = {"user": user, "mine": mine, "open_tasks": open_tasks, "error": None}
        return render(request, "queue.html", context)

    @app.post("/tasks/{task_id}/claim")
    async def claim(request: Request, task_id: str, user: CurrentUser) -> Response:
        await checked_form(request)
        pool = services_of(request).pool
        try:
            loan_id = await pool.fetchval(
                "UPDATE collector_tasks SET assignee = $2, status = 'in_progress' "
                "WHERE id = $1::uuid AND status = 'open' AND assignee IS NULL RETURNING loan_id",
                task_id,
                user.username,
            )
        except asyncpg.DataError:  # not a uuid
            loan_id = None
        if loan_id is None:
            context = {
                "user": user,
                "message": "This task was already claimed by someone else, or is no longer open.",
            }
            return render(request, "error.html", context, status_code=409)
        return RedirectResponse(f"/loans/{quote(loan_id)}", status_code=303)

    # -- the loan dossier ----------------------------------------------------------------------------------

    async def dossier(
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
        ui = settings.temporal_ui_url
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

    @app.get("/loans/{loan_id}", response_class=HTMLResponse)
    async def loan_page(
        request: Request, loan_id: str, user: CurrentUser, notice: str | None = None
    ) -> Response:
        notices = {"promised": "Promise recorded.", "closed": "Close requested."}
        return await dossier(request, user, loan_id, notice=notices.get(notice or ""))

    @app.post("/loans/{loan_id}/promise", response_class=HTMLResponse)
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
            return await dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
        except PromiseRejected as error:
            errors = {field_of(error.reason) or "form": error.reason}
            return await dossier(request, user, loan_id, errors=errors, values=values, status_code=422)
        return RedirectResponse(f"/loans/{quote(loan_id)}?notice=promised", status_code=303)

    @app.post("/loans/{loan_id}/close")
    async def close_loan(request: Request, loan_id: str, user: Supervisor) -> Response:
        form = await checked_form(request)
        try:
            await services_of(request).starter.close(
                loan_id, str(form.get("reason", "")), str(form.get("note", "")).strip() or None
            )
        except InvalidRequest as error:
            errors = {"close_" + (field or "form"): message for field, message in error.problems}
            return await dossier(request, user, loan_id, errors=errors, status_code=422)
        except (UnknownLoan, CollectionClosed) as error:
            return render(request, "error.html", {"user": user, "message": str(error)}, status_code=404)
        return RedirectResponse(f"/loans/{quote(loan_id)}?notice=closed", status_code=303)

    return app
