"""What every page of the admin UI shares: services, login and role checks, CSRF, rendering, form parsing.

Routers (admin/dossier.py, admin/actions.py, admin/portfolio.py, admin/dashboard.py) build on these; the
app (admin/app.py) installs the handlers that turn LoginRequired into a redirect to /login and Forbidden
into a 403 page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from admin.i18n import locale_from_header, translator
from admin.sessions import ActiveSession, find_session
from admin.settings import AdminSettings
from admin.users import Role, User
from domain.loan import format_money, parse_major_units
from starter.api import CollectionsStarter, InvalidRequest

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# English labels of stored stage and outcome codes; pages show `_(stage_label(code))` (zh-CN in translations).
STAGE_LABELS = {
    "reminder": "Reminder",
    "deep_contact": "Deep contact",
    "agency": "Agency placement",
    "legal": "Legal",
    "closed": "Closed",
}
OUTCOME_LABELS = {
    "paid": "Paid off",
    "settled": "Settled",
    "written_off": "Written off",
    "litigation": "Referred to court",
    "closed_by_servicing": "Closed by servicing",
    "bankruptcy": "Bankruptcy",
    "deceased": "Deceased",
}
TEMPLATES.env.globals["stage_label"] = lambda code: STAGE_LABELS.get(str(code), str(code))
TEMPLATES.env.globals["outcome_label"] = lambda code: OUTCOME_LABELS.get(str(code), str(code))
TEMPLATES.env.filters["money"] = lambda amount, currency: format_money(int(amount), str(currency))
SESSION_COOKIE = "overdue_session"
LOGIN_CSRF_COOKIE = "overdue_login_csrf"
SESSION_STATE = "admin_session"
CSRF_FIELD = "csrf_token"


@dataclass
class Services:
    """What the pages need: the product's database and the way to the loans' workflows."""

    pool: asyncpg.Pool
    starter: CollectionsStarter


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    """A 403 page; `message` is English with {placeholders}, translated for the user when shown."""

    def __init__(self, message: str, **values: str) -> None:
        self.message = message
        self.values = values
        super().__init__(message.format(**values))


# -- request helpers -----------------------------------------------------------------------------------------


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def session_of(request: Request) -> ActiveSession | None:
    """The request's server-side session (any stage), as the session middleware found it."""
    found = getattr(request.state, SESSION_STATE, None)
    return found if isinstance(found, ActiveSession) else None


async def load_session(request: Request) -> ActiveSession | None:
    """Look the cookie's session up once per request (admin/sessions.py: revoked, idle, expired or a
    deactivated user's session is none) and keep it on the request."""
    if hasattr(request.state, SESSION_STATE):
        return session_of(request)
    found: ActiveSession | None = None
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and len(session_id) <= 128:
        idle = timedelta(minutes=settings_of(request).session_idle_minutes)
        found = await find_session(services_of(request).pool, session_id, idle=idle)
    setattr(request.state, SESSION_STATE, found)
    return found


def cookie_secure(request: Request) -> bool:
    return settings_of(request).secure_cookies or request.url.scheme == "https"


def csrf_token(request: Request) -> str:
    """The CSRF token every form posts back: the session's (an HMAC of its id), or before login the random
    value of the login cookie (a double-submit token: a cross-site form cannot read or set it)."""
    session = session_of(request)
    if session is not None:
        return session.csrf
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or getattr(request.state, "new_login_csrf", None)
    if not (isinstance(token, str) and 32 <= len(token) <= 64):
        token = secrets.token_urlsafe(32)
        request.state.new_login_csrf = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries this session's CSRF token; else Forbidden (nothing is done)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    session = await load_session(request)
    expected = session.csrf if session is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
    if not (isinstance(sent, str) and isinstance(expected, str) and secrets.compare_digest(sent, expected)):
        raise Forbidden("This form has expired or did not come from this site. Reload the page and retry.")
    return form


async def optional_user(request: Request) -> User | None:
    """The logged-in user, or None (pages that show either way, such as an error). A session waiting for
    its second factor is not logged in yet."""
    session = await load_session(request)
    return session.user if session is not None and session.stage == "full" else None


async def current_user(request: Request) -> User:
    user = await optional_user(request)
    if user is None:
        raise LoginRequired
    return user


def require(role: Role) -> Callable[[Request, User], Awaitable[User]]:
    async def dependency(request: Request, user: CurrentUser) -> User:
        if not user.has_role(role):
            raise Forbidden("This action needs the {role} role.", role=role)
        return user

    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
Supervisor = Annotated[User, Depends(require("supervisor"))]


def locale_of(request: Request, user: User | None) -> str:
    return user.locale if user is not None else locale_from_header(request.headers.get("accept-language"))


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page in the user's language; every page gets the CSRF token its forms post back."""
    user = context.get("user")
    locale = locale_of(request, user if isinstance(user, User) else None)
    context = {
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "locale": locale,
        "_": translator(locale),
        **context,
    }
    response = TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
    new_token = getattr(request.state, "new_login_csrf", None)
    if isinstance(new_token, str) and session_of(request) is None:
        set_cookie(request, response, LOGIN_CSRF_COOKIE, new_token)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """A cookie of this app: for this site only, unreadable by scripts, not sent on cross-site POSTs, and
    only over https when served so; it lives as long as the browser (the server decides when it ends)."""
    response.set_cookie(name, value, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host): an open redirect would help phishing."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def parse_amount(text: str, currency: str) -> int:
    """'1,234.5' in major units as integer minor units of `currency`: ASCII digits, ',' between thousands and
    at most the currency's decimals (no '1e3', no full-width digits, no 5,000-digit numbers)."""
    try:
        return parse_major_units(text, currency)
    except ValueError as error:
        raise InvalidRequest([("amount_minor", str(error))]) from None


_MINOR_AMOUNT = re.compile(r"(?<![\w.-])\d+(?![\w.])")


def amounts_in_money(reason: str, currency: str) -> str:
    """A workflow reason about an amount ('amount_minor: 9999900 is more than the amount overdue (115128)')
    in the loan's currency: the workflow speaks minor units (as the CLI does); a collector typed 99,999.00."""
    head, sep, _ = reason.partition(":")
    if not (sep and ("amount" in head or head.strip() == "instalments")):
        return reason
    return _MINOR_AMOUNT.sub(lambda number: format_money(int(number.group()), currency), reason)


def field_of(reason: str) -> str:
    """The field a workflow reason names ('amount_minor: ...'), or '' for the whole form."""
    head, sep, _ = reason.partition(":")
    return head.strip() if sep and head.strip().isidentifier() else ""


def settings_of(request: Request) -> AdminSettings:
    found: AdminSettings = request.app.state.settings
    return found
