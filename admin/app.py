"""The admin UI's web application: login, the work queue, and the routers of the other pages.

Every page needs a login (else a redirect to /login; sessions are server-side, admin/sessions.py, and the
login pages are admin/login.py); every POST carries the session's CSRF token (else 403);
supervisor actions check the role (else 403). Actions reach the loan's workflow through `CollectionsStarter`,
the same API servicing uses, with the logged-in user's name as the collector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from admin import (
    access,
    actions,
    codec_server,
    dashboard,
    dossier,
    login,
    portfolio,
    queue,
    supervision,
    users_page,
)
from admin.i18n import LOCALES, translator
from admin.settings import AdminSettings
from admin.users import set_locale
from admin.web import (
    CurrentUser,
    Forbidden,
    LoginRequired,
    Services,
    checked_form,
    load_session,
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
    if settings.require_totp and not settings.secret_key:
        raise ValueError(
            "OVERDUE_ADMIN_REQUIRE_TOTP needs OVERDUE_ADMIN_SECRET_KEY (it encrypts TOTP secrets)"
        )

    @app.middleware("http")
    async def server_side_session(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """The cookie's session, looked up once (admin/sessions.py) for the handlers and middleware inside."""
        await load_session(request)
        return await call_next(request)

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

    @app.post("/me/locale")
    async def change_locale(request: Request, user: CurrentUser) -> Response:
        """The user's language for every page from now on (stored, so it follows them to any browser)."""
        form = await checked_form(request)
        locale = str(form.get("locale", ""))
        if locale not in LOCALES:
            raise Forbidden("Unknown language.")
        await set_locale(services_of(request).pool, user.id, locale)
        return RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)

    for module in (login, users_page, queue, dossier, actions, portfolio, dashboard, supervision):
        app.include_router(module.router)
    app.include_router(codec_server.router)  # the Temporal Web UI's codec endpoint, /codec/*
    access.install(app)  # pools bind /loans/*, read audit page, body limits and error pages (admin/access.py)
    return app
