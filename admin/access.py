"""Least privilege in the admin UI: which loans a user may see and act on, and the contact data they see.

Pools bind collectors to loans. A loan's pool is its segment (the pool of its collector tasks,
migrations/0011): the latest cycle's `portfolio.segment`, else (a loan whose first snapshot is not written
yet) the segment its workflow reports. A collector sees and acts on the loans of their pools only; a
supervisor on every loan, or on their pools only when OVERDUE_SUPERVISORS_SEE_ALL_POOLS=false; an admin on
every loan.

`LoanPoolGuard` applies this to every route under /loans/{loan_id} (the dossier, its letters and every action
of admin/actions.py) before the route runs: a loan out of the user's pools answers the same 404 page as a
loan that does not exist, so its existence is not revealed. A loan whose pool cannot be found is out of every
pool. The queue, claims and portfolio results filter by `visible_pools` themselves.

Contact data is masked for collectors (`mask_phone`, `mask_email`, `mask_postal`); supervisors and admins see
it in full (they handle complaints and approve arrangements, and their reads are audited like everyone's).
"""

from __future__ import annotations

import asyncio
import re

import structlog
from fastapi import FastAPI, Request, Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.service import RPCError

from admin.i18n import translator
from admin.users import User
from admin.web import optional_user, render, services_of
from starter.api import CollectionClosed, InvalidRequest

log = structlog.get_logger("overdue.admin.access")

# /loans/{loan_id} and everything under it; FastAPI matches path parameters the same way ([^/]+).
LOAN_PATH = re.compile(r"^/loans/(?P<loan_id>[^/]+)(?:/|$)")
STATUS_TIMEOUT_SECONDS = 10.0
NOT_FOUND_TEXT = "No collection for loan {loan_id}."


class AccessSettings(BaseSettings):
    """OVERDUE_SUPERVISORS_SEE_ALL_POOLS, OVERDUE_READ_AUDIT_KEY, OVERDUE_ADMIN_BODY_LIMIT[_BEFORE_LOGIN]."""

    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    supervisors_see_all_pools: bool = Field(
        default=True, description="supervisors see every pool; false: only the pools of their account"
    )
    read_audit_key: SecretStr | None = Field(
        default=None,
        description="keys the hash of a search's free text in read_audit (equal searches compare equal); "
        "unset: only that free text was typed is recorded",
    )
    admin_body_limit_before_login: int = Field(
        default=64 * 1024, ge=1024, description="largest request body (bytes) without a logged-in session"
    )
    admin_body_limit: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body (bytes) of a logged-in user"
    )


def access_settings(request: Request) -> AccessSettings:
    found = getattr(request.app.state, "access", None)
    return found if isinstance(found, AccessSettings) else AccessSettings()


def visible_pools(user: User, settings: AccessSettings) -> list[str] | None:
    """The pools whose loans and tasks `user` may see; None: every pool."""
    if user.role == "admin" or (user.role == "supervisor" and settings.supervisors_see_all_pools):
        return None
    return list(user.pools)


def masks_contacts(user: User) -> bool:
    """Collectors see contact data masked until they reveal one value with a reason."""
    return not user.has_role("supervisor")


async def loan_pool(request: Request, loan_id: str) -> str | None:
    """The loan's pool: its latest portfolio row's segment, else its workflow's; None: neither knows it."""
    services = services_of(request)
    segment: str | None = await services.pool.fetchval(
        "SELECT segment FROM portfolio WHERE loan_id = $1 AND latest", loan_id
    )
    if segment is not None:
        return segment
    try:
        async with asyncio.timeout(STATUS_TIMEOUT_SECONDS):
            status = await services.starter.status(loan_id)
    except (LookupError, InvalidRequest, CollectionClosed, RPCError, TimeoutError):
        return None  # UnknownLoan and NotALoan are LookupErrors
    return status.segment


async def may_see_loan(request: Request, user: User, loan_id: str) -> bool:
    pools = visible_pools(user, access_settings(request))
    if pools is None:
        return True
    return await loan_pool(request, loan_id) in pools


def loan_not_found(request: Request, user: User, loan_id: str) -> Response:
    """The 404 page of a loan that does not exist, word for word."""
    _ = translator(user.locale)
    return render(request, "error.html", {"user": user, "message": _(NOT_FOUND_TEXT, loan_id=loan_id)}, 404)


class LoanPoolGuard:
    """Every request under /loans/{loan_id} of a logged-in user outside the loan's pool: 404, route not run.

    Logged-out requests pass (the route sends them to the login page). Runs inside the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = LOAN_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        user = await optional_user(request)
        loan_id = found.group("loan_id")
        if user is None or await may_see_loan(request, user, loan_id):
            await self.app(scope, receive, send)
            return
        log.info("loan_out_of_pools", loan_id=loan_id, user=user.username, method=scope.get("method"))
        response = loan_not_found(request, user, loan_id)
        await response(scope, receive, send)


# -- masking -------------------------------------------------------------------------------------------------

REVEALABLE = ("phone", "email", "postal_address")


def mask_phone(phone: str) -> str:
    """'+8613812345678' -> '+86 138****5678': the country code, the first three and last four digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 8:
        return "*" * len(digits)
    country = ""
    if phone.strip().startswith("+"):
        size = 1 if digits[:1] in ("1", "7") else 2  # +1, +7; most others are two digits (+44, +86)
        country, digits = "+" + digits[:size] + " ", digits[size:]
    head = digits[:3] if len(digits) >= 10 else digits[:2]
    return f"{country}{head}{'*' * (len(digits) - len(head) - 4)}{digits[-4:]}"


def mask_email(email: str) -> str:
    """'zhang.wei@example.com' -> 'z***@example.com'."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_postal(address: str) -> str:
    """An address reduced to its area: the last comma-separated part without its digits ('London NW* ***'),
    or, without commas (a Chinese address runs province to house), its first third, at most six characters."""
    parts = [part.strip() for part in re.split(r"[,，]", address) if part.strip()]
    if len(parts) > 1:
        return "…, " + re.sub(r"\d", "*", parts[-1])
    text = address.strip()
    return re.sub(r"\d", "*", text[: min(6, len(text) // 3)]) + "…"


def mask(kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if kind in ("postal", "postal_address"):
        return mask_postal(value)
    return value


# -- installation --------------------------------------------------------------------------------------------


def install(app: FastAPI, settings: AccessSettings | None = None) -> None:
    """The read audit page, body limits and error pages (admin/limits.py) and the pool guard, inside the
    session middleware (appended after it: Starlette runs user middleware in list order, outermost first)."""
    from admin import limits, read_audit

    app.state.access = settings or AccessSettings()
    app.include_router(read_audit.router)
    limits.install(app)
    app.user_middleware.append(Middleware(LoanPoolGuard))
