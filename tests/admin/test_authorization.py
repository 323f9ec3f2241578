"""Authorization of every route of the admin UI, enumerated from the app itself: a route added without a
declared role fails `test_every_route_has_a_declared_role`.

For each route: logged out → redirect to the login page; a collector on a supervisor route → 403; a POST
without the session's CSRF token → 403 even for a user who may act. Nothing reaches the workflow in those
cases (the loan below does not exist: a request that got past the checks would answer 404 instead).

Pools bind collectors (admin/access.py): every route under /loans/{loan_id} of a loan outside the collector's
pools answers exactly what it answers for a loan that does not exist (404), and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.worker import Worker

from admin.access import AccessSettings
from admin.app import Services, create_app
from admin.users import create_user
from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, MakeClient, MakeUser, csrf_of, login
from tests.admin.test_dossier import store_document
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.registry import WORKFLOWS

ROLES: dict[tuple[str, str], str] = {
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "public",
    # The second factor and its enrolment: reached half logged in (admin/login.py sends a visitor without
    # such a session to /login itself); their forms are CSRF-checked like every other.
    ("GET", "/login/totp"): "public",
    ("POST", "/login/totp"): "public",
    ("GET", "/account/totp"): "public",
    ("POST", "/account/totp"): "public",
    ("GET", "/account"): "collector",
    ("POST", "/account/sessions/end"): "collector",
    ("POST", "/account/logout-everywhere"): "collector",
    # The Temporal Web UI's codec endpoint answers for itself (JSON 401/403, CORS for the Web UI's origin
    # only, no form to carry a CSRF token): tests/admin/test_codec_server.py.
    ("POST", "/codec/decode"): "own",
    ("POST", "/codec/encode"): "own",
    ("OPTIONS", "/codec/decode"): "own",
    ("OPTIONS", "/codec/encode"): "own",
    ("POST", "/me/locale"): "collector",
    ("GET", "/"): "collector",
    ("POST", "/tasks/{task_id}/claim"): "collector",
    ("POST", "/tasks/{task_id}/release"): "collector",
    ("GET", "/portfolio"): "collector",
    ("POST", "/portfolio"): "collector",
    ("GET", "/audit/reads"): "supervisor",
    ("GET", "/dashboard"): "collector",
    ("GET", "/journal/dead-letters"): "supervisor",
    # Prometheus scrapes without a session: counts only, no labels, nothing about a borrower or a loan.
    ("GET", "/metrics"): "public",
    ("GET", "/loans/{loan_id}"): "collector",
    ("GET", "/loans/{loan_id}/documents/{document_id}.pdf"): "collector",
    ("POST", "/loans/{loan_id}/reveal"): "collector",
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
    ("GET", "/admin/users"): "admin",
    ("POST", "/admin/users"): "admin",
}
PROTECTED = sorted(key for key, role in ROLES.items() if role not in ("public", "own"))
SUPERVISOR = sorted(key for key, role in ROLES.items() if role == "supervisor")
ADMIN = sorted(key for key, role in ROLES.items() if role == "admin")
COLLECTOR = sorted(key for key, role in ROLES.items() if role == "collector")
POSTS = sorted(key for key, role in ROLES.items() if key[0] == "POST" and role != "own")


def _routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            yield from _routes(route.original_router.routes)
        elif hasattr(route, "methods"):
            for method in route.methods - {"HEAD"}:
                yield method, route.path


# A loan id with a portfolio row in the test collectors' pool ("standard") but no workflow: past the pool
# check, a request reaches the route's own checks, and an action finds no workflow to act on.
IN_POOL = "AUTH-IN-POOL"


async def in_pool(pool: asyncpg.Pool, loan_id: str = IN_POOL, segment: str = "standard") -> str:
    await pool.execute(
        "INSERT INTO portfolio (loan_id, borrower_name, jurisdiction, timezone, locale, currency, segment, "
        "strategy, stage, overdue_since, amount_overdue_minor, principal_outstanding_minor, "
        "paid_total_minor, clock_real_anchor, clock_collections_anchor, as_of) "
        "VALUES ($1, 'Auth Test', 'cn', 'UTC', 'en', 'CNY', $2, 'default', 'reminder', current_date - 5, "
        "100, 1000, 0, now(), now(), now()) "
        "ON CONFLICT DO NOTHING",
        loan_id,
        segment,
    )
    return loan_id


def url(path: str, loan_id: str = "AUTH-NO-SUCH-LOAN") -> str:
    return (
        path.replace("{loan_id}", loan_id)
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
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool, method: str, path: str
) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    token = csrf_of((await client.get("/")).text)
    response = await client.request(method, url(path, await in_pool(db_pool)), data={"csrf_token": token})
    assert response.status_code == 403 and "supervisor" in response.text


@pytest.mark.parametrize(("method", "path"), ADMIN)
@pytest.mark.parametrize("role", ["collector", "supervisor"])
async def test_only_an_admin_reaches_admin_routes(
    make_client: MakeClient, make_user: MakeUser, role: str, method: str, path: str
) -> None:
    client = await make_client()
    await login(client, (await make_user(role)).username)
    token = csrf_of((await client.get("/")).text)
    response = await client.request(method, url(path), data={"csrf_token": token})
    assert response.status_code == 403 and "admin" in response.text


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
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool, method: str, path: str
) -> None:
    """Past login, pools, role and CSRF: pages render, actions on a loan without a workflow answer
    404/409/422."""
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    token = csrf_of((await client.get("/")).text)
    response = await client.request(
        method, url(path, await in_pool(db_pool)), data={"csrf_token": token, "locale": "en", "next": "/"}
    )
    assert response.status_code not in (401, 403), response.text[:300]
    assert response.status_code < 500


# -- pools ---------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def standard_loan(
    local_client: Client, task_queue: str, starter: CollectionsStarter, db_pool: asyncpg.Pool
) -> AsyncIterator[tuple[Loan, str]]:
    """A running loan of segment "standard" (its workflow says so; no portfolio row) and a letter of it."""
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    loan = loan.model_copy(update={"loan_id": f"POOL-{uuid.uuid4().hex[:8]}"})
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        assert await starter.start_loan(loan) == "started"
        assert (await starter.status(loan.loan_id)).segment == "standard"
        yield loan, await store_document(db_pool, loan.loan_id)
        await starter.handle(loan.loan_id).terminate("test finished")


async def client_of(
    app: FastAPI, db_pool: asyncpg.Pool, role: str, pools: tuple[str, ...]
) -> httpx.AsyncClient:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    await create_user(db_pool, name, PASSWORD, role=role, locale="en", pools=pools)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    assert (await login(client, name)).status_code == 303
    return client


async def tried(client: httpx.AsyncClient, loan_id: str, document_id: str) -> list[tuple[int, str]]:
    """The dossier, the letter and a promise POST of `loan_id`: each status and page body (the loan id
    blanked, so that the answers for two loans compare)."""
    token = csrf_of((await client.get("/")).text)
    answers = [
        await client.get(f"/loans/{loan_id}"),
        await client.get(f"/loans/{loan_id}/documents/{document_id}.pdf"),
        await client.post(
            f"/loans/{loan_id}/promise",
            data={
                "csrf_token": token,
                "amount": "100",
                "due_date": (date.today() + timedelta(days=3)).isoformat(),
            },
        ),
    ]
    return [(answer.status_code, answer.text.replace(loan_id, "LOAN")) for answer in answers]


async def test_a_collector_of_another_pool_gets_404_on_the_loan_its_letter_and_its_actions(
    db_pool: asyncpg.Pool, starter: CollectionsStarter, standard_loan: tuple[Loan, str]
) -> None:
    loan, document_id = standard_loan
    app = create_app(SETTINGS, services=Services(db_pool, starter))
    outsider = await client_of(app, db_pool, "collector", ("high_risk",))
    refused = await tried(outsider, loan.loan_id, document_id)
    assert [status for status, _ in refused] == [404, 404, 404]
    # Word for word what a loan that does not exist answers: the loan's existence is not revealed.
    unknown = await tried(outsider, "POOL-NO-SUCH-LOAN", document_id)
    assert refused == unknown
    status = await starter.status(loan.loan_id)
    assert status.open_promise is None and status.promises == []  # the action never reached the workflow

    insider = await client_of(app, db_pool, "collector", ("standard",))
    allowed = await tried(insider, loan.loan_id, document_id)
    assert [status for status, _ in allowed] == [200, 200, 303]
    assert (await starter.status(loan.loan_id)).open_promise is not None
    for client in (outsider, insider):
        await client.aclose()


async def test_supervisors_see_every_pool_unless_configured_and_admins_always(
    db_pool: asyncpg.Pool, starter: CollectionsStarter, standard_loan: tuple[Loan, str]
) -> None:
    loan, _ = standard_loan
    app = create_app(SETTINGS, services=Services(db_pool, starter))
    supervisor = await client_of(app, db_pool, "supervisor", ("high_risk",))
    admin = await client_of(app, db_pool, "admin", ("high_risk",))
    assert (await supervisor.get(f"/loans/{loan.loan_id}")).status_code == 200
    app.state.access = AccessSettings(supervisors_see_all_pools=False)
    assert (await supervisor.get(f"/loans/{loan.loan_id}")).status_code == 404
    assert (await admin.get(f"/loans/{loan.loan_id}")).status_code == 200
    for client in (supervisor, admin):
        await client.aclose()
