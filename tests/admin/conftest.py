"""The admin app over ASGI (httpx, in the test's event loop) against the embedded PostgreSQL and, for the
workflow tests, the real LoanCollectionWorkflow on the local dev server with fake activities."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client

from admin.app import Services, create_app
from admin.settings import AdminSettings
from admin.users import User, create_user
from domain.strategy import default_strategy
from starter.api import CollectionsStarter
from tests.workflows.conftest import zone_at as zone_at  # re-exported: the admin tests' zones

PASSWORD = "correct horse battery"
# The whole test session shares one database and every ASGI client comes from 127.0.0.1: the per-address
# limit is out of reach here (tests/admin/test_auth.py tests it with settings and addresses of its own).
SETTINGS = AdminSettings(
    secret_key="t" * 40, max_failed_logins=3, lockout_seconds=300, max_failed_logins_per_address=10_000
)

MakeUser = Callable[[str], Awaitable[User]]
MakeClient = Callable[[], Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login", data={"csrf_token": csrf_of(page.text), "username": username, "password": password}
    )


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Post `data` to `action` with the CSRF token of `page`, as a browser submitting its form would."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={"csrf_token": token, **data})


@pytest.fixture
def starter(local_client: Client, task_queue: str) -> CollectionsStarter:
    return CollectionsStarter(local_client, task_queue=task_queue, strategy=default_strategy())


@pytest.fixture
def app(db_pool: asyncpg.Pool, local_client: Client, starter: CollectionsStarter) -> FastAPI:
    return create_app(SETTINGS, services=Services(db_pool, starter))


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client of `app` whose requests come from `address` (login throttling is per client address)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest_asyncio.fixture
async def make_client(app: FastAPI) -> AsyncIterator[MakeClient]:
    clients: list[httpx.AsyncClient] = []

    async def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


# Pools bind collectors to loans (admin/access.py): the loans of these tests are in segment "standard",
# their hand-made tasks in pool "default".
TEST_POOLS = ("default", "standard")


@pytest.fixture
def make_user(db_pool: asyncpg.Pool) -> MakeUser:
    async def make(role: str) -> User:
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        return await create_user(
            db_pool, name, PASSWORD, role=role, display_name=name.title(), locale="en", pools=TEST_POOLS
        )

    return make
