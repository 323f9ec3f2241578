"""Request bodies bounded before login, and error pages with the security headers (admin/limits.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI, Request

from admin.app import Services, create_app
from admin.limits import SECURITY_HEADERS, server_error
from admin.users import create_user
from admin.web import services_of
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, csrf_of, login

KIB = 1024


@pytest_asyncio.fixture
async def app(db_pool: asyncpg.Pool) -> FastAPI:
    """The admin app (no Temporal: none of these requests reaches a workflow) with two routes that fail."""
    app = create_app(SETTINGS, services=Services(db_pool, cast(CollectionsStarter, None)))

    async def broken(request: Request) -> None:
        raise RuntimeError("a bug, with a borrower's name in its message: Ada Lovelace")

    async def unstorable(request: Request) -> None:
        await services_of(request).pool.fetchval("SELECT $1::text", "a\x00b")

    app.add_api_route("/test-broken", broken)
    app.add_api_route("/test-unstorable", unstorable)
    return app


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


async def test_an_oversized_body_is_refused_before_login(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    name = f"collector-{uuid.uuid4().hex[:8]}"
    await create_user(db_pool, name, PASSWORD, role="collector", locale="en")
    token = csrf_of((await client.get("/login")).text)
    form = {"csrf_token": token, "username": name, "password": "wrong", "padding": "x" * (65 * KIB)}
    response = await client.post("/login", data=form)
    assert response.status_code == 413
    assert "at most 64 KiB may be sent before logging in" in response.text
    assert_security_headers(response)

    # Without a Content-Length (chunked), cut off as it passes the limit.
    async def chunks() -> AsyncIterator[bytes]:
        yield f"csrf_token={token}&username={name}&password=wrong&padding=".encode()
        for _ in range(100):
            yield b"x" * KIB

    chunked = await client.post(
        "/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert chunked.status_code == 413 and "before logging in" in chunked.text
    assert_security_headers(chunked)

    # A form of ordinary size reaches the login, which refuses the password (the 413s never got there).
    small = await client.post("/login", data={**form, "padding": "x"})
    assert small.status_code == 401


async def test_a_logged_in_user_may_send_more_up_to_the_larger_limit(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    name = f"collector-{uuid.uuid4().hex[:8]}"
    await create_user(db_pool, name, PASSWORD, role="collector", locale="en")
    await login(client, name)
    token = csrf_of((await client.get("/")).text)
    form = {"csrf_token": token, "locale": "zh-CN", "next": "/"}
    assert (await client.post("/me/locale", data={**form, "padding": "x" * (200 * KIB)})).status_code == 303
    refused = await client.post("/me/locale", data={**form, "locale": "en", "padding": "x" * (1100 * KIB)})
    assert refused.status_code == 413 and "1024 KiB" in refused.text
    assert_security_headers(refused)
    assert await db_pool.fetchval("SELECT locale FROM users WHERE username = $1", name) == "zh-CN"


async def test_a_500_page_carries_the_security_headers_and_no_detail(client: httpx.AsyncClient) -> None:
    normal = await client.get("/login")
    response = await client.get("/test-broken")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "Lovelace" not in response.text and "RuntimeError" not in response.text
    assert_security_headers(response)
    assert {name: response.headers[name] for name in SECURITY_HEADERS} == {
        name: normal.headers[name] for name in SECURITY_HEADERS
    }


async def test_text_postgresql_cannot_store_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/test-unstorable")
    assert response.status_code == 400 and "NUL" in response.text
    assert_security_headers(response)
    nul = await client.get("/portfolio?q=%00")  # logged out: the login page, never a 500
    assert nul.status_code == 303 and nul.headers["X-Frame-Options"] == "DENY"


async def test_the_last_resort_page_sets_the_headers_itself(app: FastAPI) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "app": app})
    response = await server_error(request, RuntimeError("x"))
    assert response.status_code == 500
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
