"""Authorization of every route of the admin UI, enumerated from the app itself: a route added without a
declared role fails `test_every_route_has_a_declared_role`.

For each route: logged out → redirect to the login page; a collector on a supervisor route → 403; a POST
without the session's CSRF token → 403 even for a user who may act. Nothing reaches the workflow in those
cases (the loan below does not exist: a request that got past the checks would answer 404 instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from admin.app import create_app
from tests.admin.conftest import SETTINGS, MakeClient, MakeUser, csrf_of, login

ROLES: dict[tuple[str, str], str] = {
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "public",
    ("POST", "/me/locale"): "collector",
    ("GET", "/"): "collector",
    ("POST", "/tasks/{task_id}/claim"): "collector",
    ("POST", "/tasks/{task_id}/release"): "collector",
    ("GET", "/portfolio"): "collector",
    ("GET", "/dashboard"): "collector",
    ("GET", "/journal/dead-letters"): "supervisor",
    # Prometheus scrapes without a session: counts only, no labels, nothing about a borrower or a loan.
    ("GET", "/metrics"): "public",
    ("GET", "/loans/{loan_id}"): "collector",
    ("GET", "/loans/{loan_id}/documents/{document_id}.pdf"): "collector",
    ("POST", "/loans/{loan_id}/promise"): "collector",
    ("POST", "/loans/{loan_id}/outcome"): "collector",
    ("POST", "/loans/{loan_id}/plan"): "collector",
    ("POST", "/loans/{loan_id}/dispute"): "collector",
    ("POST", "/loans/{loan_id}/dispute/resolve"): "collector",
    ("POST", "/loans/{loan_id}/hardship"): "collector",
    ("POST", "/loans/{loan_id}/breathing-space"): "collector",
    ("POST", "/loans/{loan_id}/cease"): "collector",
    ("POST", "/loans/{loan_id}/opt-out"): "collector",
    ("POST", "/loans/{loan_id}/settlement"): "supervisor",
    ("POST", "/loans/{loan_id}/waiver"): "supervisor",
    ("POST", "/loans/{loan_id}/stage-hold"): "supervisor",
    ("POST", "/loans/{loan_id}/stage-hold/release"): "supervisor",
    ("POST", "/loans/{loan_id}/escalate"): "supervisor",
    ("POST", "/loans/{loan_id}/recall"): "supervisor",
    ("POST", "/loans/{loan_id}/close"): "supervisor",
}
PROTECTED = sorted(key for key, role in ROLES.items() if role != "public")
SUPERVISOR = sorted(key for key, role in ROLES.items() if role == "supervisor")
COLLECTOR = sorted(key for key, role in ROLES.items() if role == "collector")
POSTS = sorted(key for key in ROLES if key[0] == "POST")


def _routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            yield from _routes(route.original_router.routes)
        elif hasattr(route, "methods"):
            for method in route.methods - {"HEAD"}:
                yield method, route.path


def url(path: str) -> str:
    return (
        path.replace("{loan_id}", "AUTH-NO-SUCH-LOAN")
        .replace("{task_id}", str(uuid.uuid4()))
        .replace("{document_id}", str(uuid.uuid4()))
    )


def test_every_route_has_a_declared_role() -> None:
    app: FastAPI = create_app(SETTINGS)
    assert set(_routes(app.routes)) == set(ROLES)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_logged_out_requests_go_to_the_login_page(
    make_client: MakeClient, method: str, path: str
) -> None:
    client = await make_client()
    response = await client.request(method, url(path), data={"csrf_token": "whatever"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), SUPERVISOR)
async def test_a_collector_gets_403_on_supervisor_routes(
    make_client: MakeClient, make_user: MakeUser, method: str, path: str
) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    token = csrf_of((await client.get("/")).text)
    response = await client.request(method, url(path), data={"csrf_token": token})
    assert response.status_code == 403 and "supervisor" in response.text


@pytest.mark.parametrize(("method", "path"), POSTS)
async def test_a_post_without_the_csrf_token_is_refused(
    make_client: MakeClient, make_user: MakeUser, method: str, path: str
) -> None:
    client = await make_client()
    await login(client, (await make_user("admin")).username)
    response = await client.request(method, url(path), data={"reason": "other", "amount": "1"})
    assert response.status_code == 403
    forged = await client.request(method, url(path), data={"csrf_token": "forged", "reason": "other"})
    assert forged.status_code == 403


@pytest.mark.parametrize(("method", "path"), COLLECTOR)
async def test_a_collector_reaches_collector_routes_past_the_checks(
    make_client: MakeClient, make_user: MakeUser, method: str, path: str
) -> None:
    """Past login, role and CSRF: pages render, actions on a loan that does not exist answer 404/409/422."""
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    token = csrf_of((await client.get("/")).text)
    response = await client.request(
        method, url(path), data={"csrf_token": token, "locale": "en", "next": "/"}
    )
    assert response.status_code not in (401, 403), response.text[:300]
    assert response.status_code < 500
