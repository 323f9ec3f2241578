"""Login, sessions, CSRF and roles of the admin UI, over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import time
import uuid

import asyncpg
import httpx
from fastapi import FastAPI

from admin.app import Services, create_app
from admin.login import LOGIN_FAILED
from admin.logins import Limits, authenticate
from admin.settings import AdminSettings
from starter.api import CollectionsStarter
from tests.admin.conftest import (
    PASSWORD,
    SETTINGS,
    MakeClient,
    MakeUser,
    client_from,
    csrf_of,
    login,
    post_form,
)


async def test_logged_out_requests_are_redirected_to_login(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("/", "/loans/DEMO-0001"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"
    for path in ("/loans/DEMO-0001/promise", "/loans/DEMO-0001/close", "/tasks/x/claim"):
        response = await client.post(path, data={"amount": "1"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await client.get("/login")).status_code == 200


async def test_login_then_logout(make_client: MakeClient, make_user: MakeUser) -> None:
    client = await make_client()
    user = await make_user("collector")
    response = await login(client, user.username)
    assert response.status_code == 303 and response.headers["location"] == "/"
    home = await client.get("/")
    assert home.status_code == 200 and user.display_name in home.text and "Work queue" in home.text

    response = await post_form(client, "/", "/logout", {})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await client.get("/")).status_code == 303


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(
    make_client: MakeClient, make_user: MakeUser
) -> None:
    user = await make_user("collector")
    for target, expected in (("/loans/L-1", "/loans/L-1"), ("//evil.example/x", "/"), ("https://e.x", "/")):
        client = await make_client()
        page = await client.get("/login", params={"next": target})
        response = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "username": user.username,
                "password": PASSWORD,
                "next": target,
            },
        )
        assert response.headers["location"] == expected


async def test_repeated_failures_pause_the_account_from_that_address_only(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool, app: FastAPI
) -> None:
    client = await make_client()  # 127.0.0.1
    user = await make_user("collector")
    first, second, third = [(await login(client, user.username, "wrong password!")) for _ in range(3)]
    right = await login(client, user.username)  # even the right password is refused while paused
    for response in (first, second, third, right):
        assert response.status_code == 401 and LOGIN_FAILED in response.text
    assert (await client.get("/")).status_code == 303

    # The same account from another address is not paused: a guesser cannot lock a colleague out.
    elsewhere = client_from(app, "10.1.2.3")
    assert (await login(elsewhere, user.username)).status_code == 303
    assert (await elsewhere.get("/")).status_code == 200
    await elsewhere.aclose()

    await db_pool.execute("UPDATE login_throttle SET locked_until = now() - interval '1 second'")
    assert (await login(client, user.username)).status_code == 303


async def test_a_guesser_cannot_lock_a_supervisor_out(
    make_user: MakeUser, db_pool: asyncpg.Pool, app: FastAPI
) -> None:
    supervisor = await make_user("supervisor")
    attacker = client_from(app, "203.0.113.66")
    for _ in range(12):  # four times the pair limit, every 5 minutes forever
        assert (await login(attacker, supervisor.username, "guess guess guess")).status_code == 401
    assert (await login(attacker, supervisor.username)).status_code == 401  # the attacker stays paused
    office = client_from(app, "198.51.100.7")
    assert (await login(office, supervisor.username)).status_code == 303
    assert (await office.get("/")).status_code == 200
    await attacker.aclose()
    await office.aclose()


async def test_an_address_guessing_over_many_accounts_is_paused(
    db_pool: asyncpg.Pool, make_user: MakeUser, starter: CollectionsStarter
) -> None:
    settings = SETTINGS.model_copy(update={"max_failed_logins_per_address": 5})
    app = create_app(settings, services=Services(db_pool, starter))
    guesser, other = client_from(app, "192.0.2.10"), client_from(app, "192.0.2.11")
    users = [await make_user("collector") for _ in range(6)]
    for user in users[:5]:  # one guess per account: no pair reaches its limit
        assert (await login(guesser, user.username, "not the password")).status_code == 401
    assert (await login(guesser, users[5].username)).status_code == 401  # the address is paused
    assert (await login(other, users[5].username)).status_code == 303
    await guesser.aclose()
    await other.aclose()


async def test_every_failure_answers_alike(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    """Unknown user, wrong password, paused pair, deactivated account: one status, one text."""
    client = await make_client()
    paused, deactivated = await make_user("supervisor"), await make_user("supervisor")
    await db_pool.execute("UPDATE users SET active = false WHERE id = $1", deactivated.id)
    for _ in range(3):
        await login(client, paused.username, "wrong password!")
    answers = [
        await login(client, "nobody-" + uuid.uuid4().hex[:6]),
        await login(client, (await make_user("collector")).username, "wrong password!"),
        await login(client, paused.username),
        await login(client, deactivated.username),
    ]
    bodies = {re.sub(r'value="[^"]*"', "", answer.text) for answer in answers}
    assert {answer.status_code for answer in answers} == {401}
    assert all(LOGIN_FAILED in answer.text for answer in answers)
    assert len(bodies) == 1  # the same page but for the username typed (and the CSRF token)
    assert "locked" not in " ".join(answer.text for answer in answers).lower()


async def test_unknown_paused_and_deactivated_logins_take_about_as_long_as_a_wrong_password(
    make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    """Every attempt runs one argon2 verification: the old code answered a locked account in 6 ms and an
    unknown one in 130 ms. Medians of a few tries each, compared within a generous factor."""
    limits = Limits(max_failures=3, max_failures_per_address=10_000)
    known, deactivated = await make_user("supervisor"), await make_user("supervisor")
    await db_pool.execute("UPDATE users SET active = false WHERE id = $1", deactivated.id)

    async def median(username: str, password: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            result = await authenticate(db_pool, username, password, client_address="10.9.9.9", limits=limits)
            times.append(time.perf_counter() - started)
            assert result.user is None
        return statistics.median(times)

    wrong = await median(known.username, "wrong password!")  # the first 3 fail, then paused: both kinds
    paused = await median(known.username, PASSWORD)
    unknown = await median("nobody-" + uuid.uuid4().hex[:6], PASSWORD)
    inactive = await median(deactivated.username, PASSWORD)
    fastest, slowest = min(wrong, paused, unknown, inactive), max(wrong, paused, unknown, inactive)
    assert slowest < 3 * fastest, (wrong, paused, unknown, inactive)
    assert fastest > 0.005  # an argon2 verification ran in each (not a shortcut)


async def test_concurrent_guesses_cannot_exceed_the_limit(make_user: MakeUser, db_pool: asyncpg.Pool) -> None:
    user = await make_user("collector")
    limits = Limits(max_failures=3, max_failures_per_address=10_000)
    results = await asyncio.gather(
        *(
            authenticate(db_pool, user.username, f"guess {i}", client_address="10.8.8.8", limits=limits)
            for i in range(6)
        )
    )
    assert all(result.user is None for result in results)
    assert sum(result.throttled for result in results) == 3  # the 3rd failure pauses; later ones see it


async def test_a_form_without_its_csrf_token_is_refused(make_client: MakeClient, make_user: MakeUser) -> None:
    client = await make_client()
    user = await make_user("collector")
    no_token = await client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert no_token.status_code == 403
    await client.get("/login")
    wrong = await client.post(
        "/login", data={"csrf_token": "forged", "username": user.username, "password": PASSWORD}
    )
    assert wrong.status_code == 403

    await login(client, user.username)
    for action in ("/logout", "/tasks/00000000-0000-0000-0000-000000000000/claim", "/loans/L-1/promise"):
        response = await client.post(action, data={"amount": "1", "due_date": "2030-01-01"})
        # A loan outside the collector's pools is a 404 before anything else (admin/access.py).
        assert response.status_code in ((403, 404) if action.startswith("/loans/") else (403,)), action
    assert (await client.get("/")).status_code == 200  # the refused logout did not log out


async def test_a_collector_cannot_reach_a_supervisor_action(
    make_client: MakeClient, make_user: MakeUser
) -> None:
    collector_client, supervisor_client = await make_client(), await make_client()
    await login(collector_client, (await make_user("collector")).username)
    await login(supervisor_client, (await make_user("supervisor")).username)

    refused = await collector_client.get("/journal/dead-letters")
    assert refused.status_code == 403 and "supervisor" in refused.text
    assert (await supervisor_client.get("/journal/dead-letters")).status_code == 200


async def test_session_cookie_flags(
    db_pool: asyncpg.Pool, make_user: MakeUser, starter: CollectionsStarter
) -> None:
    settings = AdminSettings(secret_key="s" * 40, secure_cookies=True)
    app = create_app(settings, services=Services(db_pool, starter))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as client:
        response = await login(client, (await make_user("collector")).username)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_command_creates_a_user_with_the_password_from_stdin(
    migrated_db: str, db_pool: asyncpg.Pool
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": migrated_db}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "admin.users", "create", name, "--role", "supervisor", "--password-stdin"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate(f"{PASSWORD}\n".encode())
    assert process.returncode == 0, err.decode()
    assert f"created supervisor {name}" in out.decode()
    row = await db_pool.fetchrow("SELECT role, password_hash FROM users WHERE username = $1", name)
    assert row is not None and row["role"] == "supervisor" and row["password_hash"].startswith("$argon2id$")
    result = await authenticate(db_pool, name, PASSWORD, client_address="10.7.7.7", limits=Limits())
    assert result.user is not None
