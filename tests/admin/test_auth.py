"""Login, sessions, CSRF and roles of the admin UI, over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import httpx

from admin.app import Services, create_app
from admin.settings import AdminSettings
from admin.users import authenticate
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, MakeClient, MakeUser, csrf_of, login, post_form


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


async def test_repeated_failures_lock_the_account(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    user = await make_user("collector")
    assert (await login(client, "nobody-" + uuid.uuid4().hex[:6])).status_code == 401
    first, second, third = [(await login(client, user.username, "wrong password!")) for _ in range(3)]
    assert first.status_code == second.status_code == 401 and "Wrong username or password" in first.text
    assert third.status_code == 429 and "locked" in third.text

    right = await login(client, user.username)  # even the right password is refused while locked
    assert right.status_code == 429
    assert (await client.get("/")).status_code == 303

    await db_pool.execute(
        "UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1", user.id
    )
    assert (await login(client, user.username)).status_code == 303


async def test_concurrent_guesses_cannot_exceed_the_limit(make_user: MakeUser, db_pool: asyncpg.Pool) -> None:
    user = await make_user("collector")
    results = await asyncio.gather(
        *(
            authenticate(db_pool, user.username, f"guess {i}", max_failures=3, lockout_seconds=60)
            for i in range(6)
        )
    )
    assert all(result.user is None for result in results)
    assert sum(result.locked_until is not None for result in results) >= 4  # the 3rd locks; later ones see it


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
        assert response.status_code == 403, action
    assert (await client.get("/")).status_code == 200  # the refused logout did not log out


async def test_a_collector_cannot_reach_a_supervisor_action(
    make_client: MakeClient, make_user: MakeUser
) -> None:
    collector_client, supervisor_client = await make_client(), await make_client()
    await login(collector_client, (await make_user("collector")).username)
    await login(supervisor_client, (await make_user("supervisor")).username)

    refused = await post_form(collector_client, "/", "/loans/NO-SUCH-LOAN/close", {"reason": "other"})
    assert refused.status_code == 403 and "supervisor" in refused.text
    # The supervisor passes the role check and reaches the workflow, which does not know this loan.
    allowed = await post_form(supervisor_client, "/", "/loans/NO-SUCH-LOAN/close", {"reason": "other"})
    assert allowed.status_code == 404


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
    result = await authenticate(db_pool, name, PASSWORD, max_failures=5, lockout_seconds=60)
    assert result.user is not None
