"""Server-side sessions (admin/sessions.py): what the cookie holds, logout, idle and absolute limits, "log out
everywhere", deactivation and role changes at once, CSRF bound to the session, the second factor, purging."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pyotp
import pytest
from fastapi import FastAPI

from admin import accounts
from admin.app import Services, create_app
from admin.sessions import create_session, purge_sessions
from admin.totp import decrypt_secret, encrypt_secret
from starter.api import CollectionsStarter
from tests.admin.conftest import SETTINGS, MakeClient, MakeUser, csrf_of, login, post_form


def copy_of(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    """Another browser holding a copy of `client`'s cookies (a stolen or copied cookie)."""
    thief = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    thief.cookies.update(client.cookies)
    return thief


async def test_a_cookie_copied_before_logout_stops_working_after_it_csrf_included(
    make_client: MakeClient, make_user: MakeUser, app: FastAPI, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    user = await make_user("collector")
    await login(client, user.username)
    home = await client.get("/")
    token = csrf_of(home.text)
    thief = copy_of(client, app)
    assert (await thief.get("/")).status_code == 200  # the copy works while the session lives

    assert (await post_form(client, "/", "/logout", {})).status_code == 303
    assert (await thief.get("/")).status_code == 303
    changed = await thief.post("/me/locale", data={"csrf_token": token, "locale": "zh-CN", "next": "/"})
    assert changed.status_code in (303, 403) and changed.headers.get("location", "").startswith("/login")
    assert await db_pool.fetchval("SELECT locale FROM users WHERE id = $1", user.id) == "en"
    await thief.aclose()


async def test_the_cookie_holds_only_a_random_id_whose_hash_is_stored(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    user = await make_user("collector")
    response = await login(client, user.username)
    session_id = client.cookies["overdue_session"]
    assert len(session_id) >= 40 and user.username not in session_id and "." not in session_id
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "overdue_session" in v
    )
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    row = await db_pool.fetchrow(
        "SELECT * FROM admin_sessions WHERE id_hash = $1", hashlib.sha256(session_id.encode()).digest()
    )
    assert row is not None and row["user_id"] == user.id and row["revoked_at"] is None
    assert row["expires_at"] - row["created_at"] == timedelta(hours=SETTINGS.session_hours)
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM admin_sessions WHERE position($1::bytea in id_hash) > 0",
            session_id.encode(),
        )
        == 0
    )


async def test_idle_and_absolute_limits_end_a_session(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    idle_client, old_client = await make_client(), await make_client()
    user = await make_user("collector")
    await login(idle_client, user.username)
    await login(old_client, user.username)
    idle_hash = hashlib.sha256(idle_client.cookies["overdue_session"].encode()).digest()
    old_hash = hashlib.sha256(old_client.cookies["overdue_session"].encode()).digest()
    await db_pool.execute(
        "UPDATE admin_sessions SET last_seen_at = now() - make_interval(mins => $2) WHERE id_hash = $1",
        idle_hash,
        SETTINGS.session_idle_minutes + 1,
    )
    # Active a minute ago, but created 10 hours ago: the absolute lifetime ends it however active.
    await db_pool.execute(
        "UPDATE admin_sessions SET created_at = now() - interval '10 hours', expires_at = now() "
        "WHERE id_hash = $1",
        old_hash,
    )
    assert (await idle_client.get("/")).status_code == 303
    assert (await old_client.get("/")).status_code == 303


async def test_activity_keeps_a_session_alive_past_the_idle_timeout(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    await db_pool.execute("UPDATE admin_sessions SET last_seen_at = now() - interval '29 minutes'")
    assert (await client.get("/")).status_code == 200  # 29 min idle: still alive, and seen again now
    assert (await client.get("/")).status_code == 200


async def test_log_out_everywhere_ends_every_session_of_the_user(
    make_client: MakeClient, make_user: MakeUser
) -> None:
    laptop, phone, colleague = await make_client(), await make_client(), await make_client()
    user = await make_user("collector")
    await login(laptop, user.username)
    await login(phone, user.username)
    await login(colleague, (await make_user("collector")).username)
    account = await laptop.get("/account")
    assert account.status_code == 200
    assert account.text.count('<tr class="session">') == 2  # both of the user's sessions are listed
    response = await post_form(laptop, "/account", "/account/logout-everywhere", {})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await laptop.get("/")).status_code == 303
    assert (await phone.get("/")).status_code == 303
    assert (await colleague.get("/")).status_code == 200  # another user's session is untouched


async def test_a_user_ends_one_of_their_other_sessions(make_client: MakeClient, make_user: MakeUser) -> None:
    laptop, phone = await make_client(), await make_client()
    user = await make_user("collector")
    await login(laptop, user.username)
    await login(phone, user.username)
    page = (await laptop.get("/account")).text
    ref = page.split('name="session" value="')[1].split('"')[0]
    assert (await post_form(laptop, "/account", "/account/sessions/end", {"session": ref})).status_code == 303
    assert (await phone.get("/")).status_code == 303
    assert (await laptop.get("/")).status_code == 200


async def test_the_admin_command_logs_a_user_out_everywhere_and_audits_it(
    make_client: MakeClient, make_user: MakeUser, migrated_db: str, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    user = await make_user("supervisor")
    await login(client, user.username)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "admin.users", "logout-everywhere", user.username),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": migrated_db},
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "1 session(s)" in out.decode()
    assert (await client.get("/")).status_code == 303
    audit = await db_pool.fetchrow("SELECT * FROM user_audit WHERE user_id = $1", user.id)
    assert audit is not None
    assert audit["action"] == "logout_everywhere" and audit["actor"].startswith("cli:")


async def test_deactivation_ends_sessions_at_once_and_a_role_change_applies_at_once(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    leaver, mover = await make_client(), await make_client()
    leaving, moving = await make_user("collector"), await make_user("collector")
    await login(leaver, leaving.username)
    await login(mover, moving.username)
    # Even a bare UPDATE (no revocation) stops the session: every request joins users.active.
    await db_pool.execute("UPDATE users SET active = false WHERE id = $1", leaving.id)
    assert (await leaver.get("/")).status_code == 303

    assert (await mover.get("/journal/dead-letters")).status_code == 403
    await accounts.set_role(db_pool, moving.username, "supervisor", actor="test")
    assert (await mover.get("/journal/dead-letters")).status_code == 200
    await accounts.set_role(db_pool, moving.username, "collector", actor="test")
    assert (await mover.get("/journal/dead-letters")).status_code == 403


async def test_the_csrf_token_belongs_to_one_session(make_client: MakeClient, make_user: MakeUser) -> None:
    first, second = await make_client(), await make_client()
    user = await make_user("collector")
    await login(first, user.username)
    await login(second, user.username)
    token_of_first = csrf_of((await first.get("/")).text)
    refused = await second.post("/me/locale", data={"csrf_token": token_of_first, "locale": "zh-CN"})
    assert refused.status_code == 403
    # A new login is a new session with a new token; the old one is revoked.
    await login(first, user.username)
    stale = await first.post("/me/locale", data={"csrf_token": token_of_first, "locale": "zh-CN"})
    assert stale.status_code == 403


async def test_the_locale_switch_still_works(make_client: MakeClient, make_user: MakeUser) -> None:
    client = await make_client()
    await login(client, (await make_user("collector")).username)
    assert (await post_form(client, "/", "/me/locale", {"locale": "zh-CN", "next": "/"})).status_code == 303
    assert "工作队列" in (await client.get("/")).text


async def test_purge_sessions_deletes_ended_sessions_older_than_the_cutoff(
    make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    user = await make_user("collector")
    ids = [
        await create_session(db_pool, user.id, stage="full", lifetime=timedelta(hours=1)) for _ in range(3)
    ]
    hashes = [hashlib.sha256(i.encode()).digest() for i in ids]
    await db_pool.execute(
        "UPDATE admin_sessions SET revoked_at = now() - interval '40 days' WHERE id_hash = $1", hashes[0]
    )
    await db_pool.execute(
        "UPDATE admin_sessions SET expires_at = now() - interval '40 days' WHERE id_hash = $1", hashes[1]
    )
    purged = await purge_sessions(db_pool, datetime.now(UTC) - timedelta(days=30))
    assert purged >= 2
    left = await db_pool.fetch("SELECT id_hash FROM admin_sessions WHERE id_hash = ANY($1)", hashes)
    assert [row["id_hash"] for row in left] == [hashes[2]]  # the live one stays


# -- the second factor ---------------------------------------------------------------------------------------


def test_totp_secrets_are_encrypted_per_user() -> None:
    stored = encrypt_secret("JBSWY3DPEHPK3PXP", secret_key="k" * 40, user_id=7)
    assert "JBSWY3DPEHPK3PXP" not in stored
    assert decrypt_secret(stored, secret_key="k" * 40, user_id=7) == "JBSWY3DPEHPK3PXP"
    assert decrypt_secret(stored, secret_key="k" * 40, user_id=8) is None  # copied onto another user
    assert decrypt_secret(stored, secret_key="x" * 40, user_id=7) is None


async def enrol(client: httpx.AsyncClient) -> str:
    page = await client.get("/account/totp")
    assert page.status_code == 200
    secret = page.text.split('id="totp-secret">')[1].split("<")[0]
    token = csrf_of(page.text)
    done = await client.post("/account/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303, done.text
    return secret


async def test_a_user_with_totp_needs_the_code_and_a_code_works_once(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    client = await make_client()
    user = await make_user("collector")
    await login(client, user.username)
    secret = await enrol(client)
    stored = await db_pool.fetchval("SELECT totp_secret FROM users WHERE id = $1", user.id)
    assert secret not in stored
    await post_form(client, "/", "/logout", {})

    response = await login(client, user.username)
    assert response.headers["location"].startswith("/login/totp")
    assert (await client.get("/")).status_code == 303  # the password alone opens nothing
    page = await client.get("/login/totp")
    wrong = await client.post("/login/totp", data={"csrf_token": csrf_of(page.text), "code": "000000"})
    assert wrong.status_code == 401
    # The next time step's code (one step of drift is accepted): the enrolment used up this step's.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    right = await client.post(
        "/login/totp", data={"csrf_token": csrf_of(page.text), "code": code, "next": "/"}
    )
    assert right.status_code == 303 and (await client.get("/")).status_code == 200

    other = await make_client()  # the same code again (seen over a shoulder) is refused
    await login(other, user.username)
    again = await other.post(
        "/login/totp", data={"csrf_token": csrf_of((await other.get("/login/totp")).text), "code": code}
    )
    assert again.status_code == 401


@pytest.mark.parametrize("role", ["supervisor", "admin"])
async def test_required_totp_makes_a_supervisor_enrol_before_any_page(
    role: str, make_user: MakeUser, db_pool: asyncpg.Pool, starter: CollectionsStarter
) -> None:
    app = create_app(SETTINGS.model_copy(update={"require_totp": True}), services=Services(db_pool, starter))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        user = await make_user(role)
        response = await login(client, user.username)
        assert response.headers["location"].startswith("/account/totp")
        assert (await client.get("/")).status_code == 303
        await enrol(client)
        assert (await client.get("/")).status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as collector:
        assert (await login(collector, (await make_user("collector")).username)).headers["location"] == "/"


def test_required_totp_without_a_key_is_refused_at_start(db_pool: asyncpg.Pool) -> None:
    settings = SETTINGS.model_copy(update={"require_totp": True, "secret_key": None})
    with pytest.raises(ValueError, match="OVERDUE_ADMIN_SECRET_KEY"):
        create_app(settings)
