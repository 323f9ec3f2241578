"""The admin UI's web application: login, the work queue, and the routers of the other pages.

Every page needs a login (else a redirect to /login); every POST carries the session's CSRF token (else 403);
supervisor actions check the role (else 403). Actions reach the loan's workflow through `CollectionsStarter`,
the same API servicing uses, with the logged-in user's name as the collector.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from admin import actions, codec_server, dashboard, dossier, portfolio, queue, supervision
from admin.i18n import LOCALES, translator
from admin.settings import AdminSettings
from admin.users import authenticate, set_locale
from admin.web import (
    SESSION_COOKIE,
    CurrentUser,
    Forbidden,
    LoginRequired,
    Services,
    checked_form,
    locale_of,
    optional_user,
    render,
    safe_next,
    services_of,
)

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
        assert isinstance(error, Forbidden)
        user = await optional_user(request)
        _ = translator(locale_of(request, user))
        values = {name: _(value) for name, value in error.values.items()}
        message = _(error.message, **values)
        return render(request, "error.html", {"user": user, "message": message}, status_code=403)

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

    @app.post("/me/locale")
    async def change_locale(request: Request, user: CurrentUser) -> Response:
        """The user's language for every page from now on (stored, so it follows them to any browser)."""
        form = await checked_form(request)
        locale = str(form.get("locale", ""))
        if locale not in LOCALES:
            raise Forbidden("Unknown language.")
        await set_locale(services_of(request).pool, user.id, locale)
        return RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    for module in (queue, dossier, actions, portfolio, dashboard, supervision):
        app.include_router(module.router)
    app.include_router(codec_server.router)  # the Temporal Web UI's codec endpoint, /codec/*
    return app
