"""Request bodies bounded before anything reads them, and error pages that look like every other page.

`GuardedRequests` runs inside the session middleware and the security-headers middleware of admin/app.py,
so whatever it answers (a 413, a 400, a 500) passes back out through the security headers like a normal page:

- Bodies: at most `admin_body_limit_before_login` bytes (64 KiB) unless the session belongs to a logged-in
  user, then `admin_body_limit` (admin/access.py AccessSettings). A declared Content-Length over the limit
  is answered 413 before the application runs; a body without one (chunked) is counted as it is read and
  cut off with a 413 the moment it passes the limit. Whether the user is logged in is asked only when a
  body goes past the smaller limit, so ordinary forms cost nothing.
- Errors: an exception no route handled becomes the error page, 500, with the security headers, instead of
  the server's bare page. Text PostgreSQL cannot store (a NUL byte, `?q=%00`) is the client's mistake: 400.
  The log line names the exception's type and where it was raised, never its message (it may quote input).

`SECURITY_HEADERS` are the headers of admin/app.py's middleware; `server_error` (the last resort of
Starlette's ServerErrorMiddleware, for a failure outside this middleware) sets them itself.
"""

from __future__ import annotations

import traceback
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.i18n import translator
from admin.web import locale_of, optional_user, render

log = structlog.get_logger("overdue.admin.limits")

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
    ),
}
TOO_LARGE_TEXT = "This request is too large: at most {limit} KiB may be sent{when}."
BEFORE_LOGIN_TEXT = " before logging in"
BAD_TEXT = "This request contains characters that cannot be stored (such as a NUL byte): remove them."
SERVER_ERROR_TEXT = "Something went wrong on our side; nothing more was done. Try again or tell a supervisor."
# What PostgreSQL answers for text it cannot hold: 0x00 in a string, a character outside the encoding.
UNSTORABLE = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


class _TooLarge(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _where(error: BaseException) -> str:
    """file:line of the innermost frame: enough to find the bug, nothing of the values involved."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


class GuardedRequests:
    """Body limits and error pages (the module's docstring says which and why)."""

    def __init__(self, app: ASGIApp, *, before_login: int, logged_in: int) -> None:
        self.app = app
        self.before_login = before_login
        self.logged_in = max(logged_in, before_login)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit: int | None = None  # None: not yet known whether the larger limit applies

        async def limit_now() -> int:
            nonlocal limit
            if limit is None:
                limit = self.logged_in if await optional_user(request) is not None else self.before_login
            return limit

        declared = _declared_length(scope)
        if declared is not None and declared > self.before_login and declared > await limit_now():
            await self._too_large(scope, receive, send, await limit_now())
            return

        received = 0
        too_large = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.before_login and received > await limit_now():
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the application's answer to a body it could not read: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception as error:
            if started:
                raise
            if too_large:
                await self._too_large(scope, receive, send, await limit_now())
            else:
                await self._error_page(scope, receive, send, error)
            return
        if too_large and not started:
            await self._too_large(scope, receive, send, await limit_now())

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        request = Request(scope, receive)
        user = await optional_user(request)
        _ = translator(locale_of(request, user))
        when = "" if user is not None else _(BEFORE_LOGIN_TEXT)
        message = _(TOO_LARGE_TEXT, limit=str(limit // 1024), when=when)
        log.info("request_body_too_large", path=scope.get("path"), limit=limit, logged_in=user is not None)
        response = _page(request, message, 413)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)

    async def _error_page(self, scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
        request = Request(scope, receive)
        unstorable = isinstance(error, UNSTORABLE)
        log.error(
            "request_rejected" if unstorable else "unhandled_error",
            error_type=type(error).__name__,
            where=_where(error),
            method=scope.get("method"),
            path=scope.get("path"),
        )
        try:
            user = await optional_user(request)
        except Exception:
            user = None
        _ = translator(locale_of(request, user))
        text, status_code = (BAD_TEXT, 400) if unstorable else (SERVER_ERROR_TEXT, 500)
        response = _page(request, _(text), status_code)
        await response(scope, receive, send)


def _page(request: Request, message: str, status_code: int) -> Response:
    """The error page; plain HTML when even the template cannot be rendered (no session, say)."""
    try:
        return render(request, "error.html", {"user": None, "message": message}, status_code=status_code)
    except Exception:
        return _plain(message, status_code)


def _plain(message: str, status_code: int) -> Response:
    body = f"<!doctype html><meta charset=utf-8><title>Overdue</title><p role=alert>{message}</p>"
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


async def server_error(request: Request, error: Exception) -> Response:
    """ServerErrorMiddleware's page (outside every other middleware): the security headers set here."""
    log.error("unhandled_error", error_type=type(error).__name__, where=_where(error), path=request.url.path)
    return _plain(translator(locale_of(request, None))(SERVER_ERROR_TEXT), 500)


def install(app: FastAPI) -> None:
    """Append `GuardedRequests` (inside the middleware added so far) and the last-resort 500 page."""
    from admin.access import AccessSettings

    settings = getattr(app.state, "access", None)
    if not isinstance(settings, AccessSettings):
        settings = AccessSettings()
    options: dict[str, Any] = {
        "before_login": settings.admin_body_limit_before_login,
        "logged_in": settings.admin_body_limit,
    }
    app.user_middleware.append(Middleware(GuardedRequests, **options))
    app.add_exception_handler(Exception, server_error)
