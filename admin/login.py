"""Logging in and out, the second factor, and the user's own sessions (the /account page).

A login answers failures with one text and one status, whatever the cause (admin/logins.py makes them take
about as long), and on success starts a server-side session (admin/sessions.py) whose id is the only thing in
the cookie. A user with a TOTP second factor, or a supervisor or admin who must enrol one
(OVERDUE_ADMIN_REQUIRE_TOTP), gets a pending session that opens no page until the code is right.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import accounts, totp
from admin.logins import Limits, authenticate, is_paused, record_failure
from admin.sessions import (
    ActiveSession,
    Stage,
    complete_session,
    create_session,
    list_sessions,
    revoke_by_ref,
    revoke_session,
)
from admin.settings import AdminSettings
from admin.web import (
    SESSION_COOKIE,
    CurrentUser,
    Forbidden,
    checked_form,
    load_session,
    render,
    safe_next,
    services_of,
    set_cookie,
    settings_of,
)

log = structlog.get_logger()
router = APIRouter()
LOGIN_FAILED = "Wrong username or password. After many failed attempts, wait a few minutes before retrying."
TOTP_UNAVAILABLE = "Two-factor login is not available: the administrator must set OVERDUE_ADMIN_SECRET_KEY."
CODE_FAILED = "Wrong or expired code: type the code your authenticator app shows now."


def limits_of(settings: AdminSettings) -> Limits:
    return Limits(
        max_failures=settings.max_failed_logins,
        max_failures_per_address=settings.max_failed_logins_per_address,
        window_seconds=settings.failure_window_seconds,
        lockout_seconds=settings.lockout_seconds,
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def lifetime(settings: AdminSettings) -> timedelta:
    return timedelta(hours=settings.session_hours)


def idle(settings: AdminSettings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


async def pending(request: Request, stage: str) -> ActiveSession:
    session = await load_session(request)
    if session is None or session.stage != stage:
        raise Forbidden("This form has expired or did not come from this site. Reload the page and retry.")
    return session


# -- login and logout ----------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    session = await load_session(request)
    if session is not None and session.stage != "full":
        step = "/login/totp" if session.stage == "totp" else "/account/totp"
        return RedirectResponse(f"{step}?next={quote(safe_next(next))}", status_code=303)
    return render(request, "login.html", {"user": None, "next": safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await checked_form(request)
    settings = settings_of(request)
    pool = services_of(request).pool
    username = str(form.get("username", ""))[:128]
    target = safe_next(str(form.get("next", "/")))
    result = await authenticate(
        pool,
        username,
        str(form.get("password", "")),
        client_address=client_address(request),
        limits=limits_of(settings),
    )
    if result.user is None:
        log.info("admin_login_failed", throttled=result.throttled)
        context = {"user": None, "next": target, "error": LOGIN_FAILED, "username": username}
        return render(request, "login.html", context, status_code=401)
    user = result.user
    previous = await load_session(request)
    if previous is not None:  # a new session (and CSRF token) for every login: none carried over
        await revoke_session(pool, previous.id_hash, "replaced by a new login")
    stage: Stage = "full"
    if await totp.enrolled(pool, user.id):
        stage = "totp"
    elif settings.require_totp and user.has_role("supervisor"):
        stage = "enrol"
    session_id = await create_session(
        pool,
        user.id,
        stage=stage,
        lifetime=lifetime(settings),
        client_address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    log.info("admin_login", user_id=user.id, stage=stage)
    step = {"full": target, "totp": "/login/totp", "enrol": "/account/totp"}[stage]
    if stage != "full":
        step += f"?next={quote(target)}"
    response = RedirectResponse(step, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session_id)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    session = await load_session(request)
    if session is not None:
        await revoke_session(services_of(request).pool, session.id_hash, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the second factor ---------------------------------------------------------------------------------------


@router.get("/login/totp", response_class=HTMLResponse)
async def totp_page(request: Request, next: str = "/") -> Response:
    await pending(request, "totp")
    return render(request, "login_totp.html", {"user": None, "next": safe_next(next), "error": None})


@router.post("/login/totp", response_class=HTMLResponse)
async def totp_login(request: Request) -> Response:
    form = await checked_form(request)
    session = await pending(request, "totp")
    settings = settings_of(request)
    pool = services_of(request).pool
    target = safe_next(str(form.get("next", "/")))
    if not settings.secret_key:
        raise Forbidden(TOTP_UNAVAILABLE)
    address = client_address(request)
    ok = not await is_paused(pool, session.user.username, address) and await totp.check_code(
        pool, session.user.id, str(form.get("code", "")), secret_key=totp.key_of(settings)
    )
    if not ok:
        await record_failure(pool, session.user.username, address, limits_of(settings))
        context = {"user": None, "next": target, "error": CODE_FAILED}
        return render(request, "login_totp.html", context, status_code=401)
    await complete_session(pool, session.id_hash, lifetime=lifetime(settings))
    return RedirectResponse(target, status_code=303)


@router.get("/account/totp", response_class=HTMLResponse)
async def enrol_page(request: Request, next: str = "/account") -> Response:
    session = await load_session(request)
    if session is None or session.stage == "totp":
        return RedirectResponse("/login", status_code=303)
    settings = settings_of(request)
    pool = services_of(request).pool
    user = session.user if session.stage == "full" else None
    context = {"user": user, "next": safe_next(next), "error": None, "enrolled": False, "secret": None}
    if await totp.enrolled(pool, session.user.id):
        context["enrolled"] = True
    elif settings.secret_key:
        secret = await totp.start_enrolment(pool, session.user.id, secret_key=totp.key_of(settings))
        context["secret"] = secret
        context["uri"] = totp.provisioning_uri(secret, session.user.username)
    return render(request, "account_totp.html", context)


@router.post("/account/totp", response_class=HTMLResponse)
async def enrol(request: Request) -> Response:
    form = await checked_form(request)
    session = await load_session(request)
    if session is None or session.stage == "totp":
        return RedirectResponse("/login", status_code=303)
    settings = settings_of(request)
    pool = services_of(request).pool
    target = safe_next(str(form.get("next", "/account")))
    if not settings.secret_key:
        raise Forbidden(TOTP_UNAVAILABLE)
    key = totp.key_of(settings)
    if not await totp.check_code(
        pool, session.user.id, str(form.get("code", "")), secret_key=key, enrolling=True
    ):
        secret = await totp.pending_secret(pool, session.user.id, secret_key=key)
        context = {
            "user": session.user if session.stage == "full" else None,
            "next": target,
            "error": CODE_FAILED,
            "enrolled": False,
            "secret": secret,
            "uri": totp.provisioning_uri(secret, session.user.username) if secret else None,
        }
        return render(request, "account_totp.html", context, status_code=400)
    row = {"id": session.user.id, "username": session.user.username}
    await accounts.audit(
        pool, f"self:{session.user.username}", row, "enable_totp", {"totp": False}, {"totp": True}
    )
    if session.stage == "enrol":
        await complete_session(pool, session.id_hash, lifetime=lifetime(settings))
    return RedirectResponse(target, status_code=303)


# -- the user's own sessions ---------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, user: CurrentUser) -> Response:
    session = await load_session(request)
    assert session is not None
    pool = services_of(request).pool
    context = {
        "user": user,
        "sessions": await list_sessions(pool, user.id, idle=idle(settings_of(request))),
        "current": session.id_hash,
        "totp_enrolled": await totp.enrolled(pool, user.id),
    }
    return render(request, "account.html", context)


@router.post("/account/sessions/end")
async def end_session(request: Request, user: CurrentUser) -> Response:
    form = await checked_form(request)
    await revoke_by_ref(services_of(request).pool, user.id, str(form.get("session", "")))
    return RedirectResponse("/account", status_code=303)


@router.post("/account/logout-everywhere")
async def logout_everywhere(request: Request, user: CurrentUser) -> Response:
    """End every session of the user, this one included (a lost laptop, a shared computer)."""
    await checked_form(request)
    await accounts.logout_everywhere(services_of(request).pool, user.username, actor=f"self:{user.username}")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
