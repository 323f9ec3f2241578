"""read_audit (migrations/0018, admin/read_audit.py): append-only in PostgreSQL itself, purged only through
read_audit_purge, searches recorded without their text, and the supervisors' page that queries it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from admin.access import AccessSettings
from admin.app import Services, create_app
from admin.read_audit import PAGE_SIZE, purge_read_audit
from admin.users import create_user
from starter.api import CollectionsStarter
from tests.admin.conftest import PASSWORD, SETTINGS, MakeClient, MakeUser, csrf_of, login
from tests.admin.test_portfolio import add_loans


async def add_row(
    pool: asyncpg.Pool, *, at: datetime, username: str = "someone", loan_id: str = "L-1"
) -> int:
    row_id: int = await pool.fetchval(
        "INSERT INTO read_audit (at, user_id, username, role, action, loan_id) "
        "VALUES ($1, 1, $2, 'collector', 'dossier_view', $3) RETURNING id",
        at,
        username,
        loan_id,
    )
    return row_id


async def test_postgresql_refuses_to_change_or_remove_a_row(db_pool: asyncpg.Pool) -> None:
    row_id = await add_row(db_pool, at=datetime(1990, 1, 1, tzinfo=UTC))
    for statement in (
        "UPDATE read_audit SET username = 'nobody' WHERE id = $1",
        "DELETE FROM read_audit WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db_pool.execute(statement, row_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db_pool.execute("TRUNCATE read_audit")
    # Setting the purge's bound by hand lets nothing go: only read_audit_purge() may delete.
    async with db_pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('overdue.read_audit_purge_before', '2100-01-01', true)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM read_audit WHERE id = $1", row_id)
    assert await db_pool.fetchval("SELECT username FROM read_audit WHERE id = $1", row_id) == "someone"


async def test_the_purge_removes_only_rows_older_than_its_bound(db_pool: asyncpg.Pool) -> None:
    bound = datetime(1980, 6, 1, tzinfo=UTC)
    old = [await add_row(db_pool, at=bound - timedelta(days=days)) for days in (1, 400)]
    kept = await add_row(db_pool, at=bound + timedelta(seconds=1))
    async with db_pool.acquire() as connection:
        assert await purge_read_audit(connection, bound) == 2
        assert await purge_read_audit(connection, bound) == 0
        # The trigger is back on guard after the purge, in the same session.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM read_audit WHERE id = $1", kept)
    remaining = await db_pool.fetch("SELECT id FROM read_audit WHERE id = ANY($1::bigint[])", [*old, kept])
    assert [row["id"] for row in remaining] == [kept]


async def test_a_name_search_is_recorded_without_its_text(own_db_pool: asyncpg.Pool) -> None:
    await add_loans(own_db_pool, [{"loan_id": "RA-0001", "borrower_name": "Ada Lovelace"}])
    app = create_app(SETTINGS, services=Services(own_db_pool, cast(CollectionsStarter, None)))
    name = f"collector-{uuid.uuid4().hex[:8]}"
    await create_user(own_db_pool, name, PASSWORD, role="collector", locale="en", pools=("standard",))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        await login(http, name)
        token = csrf_of((await http.get("/portfolio", params={"stage": "reminder"})).text)
        assert "RA-0001" in (await http.post("/portfolio", data={"csrf_token": token, "q": "Lovelace"})).text
        app.state.access = AccessSettings(read_audit_key=SecretStr("k" * 32))
        await http.post("/portfolio", data={"csrf_token": token, "q": "lovelace "})
        await http.post("/portfolio", data={"csrf_token": token, "q": "LOVELACE"})

    rows = await own_db_pool.fetch("SELECT * FROM read_audit WHERE action = 'search' ORDER BY id")
    assert len(rows) == 4  # the page opened with a filter, and the three searches
    assert "lovelace" not in " ".join(str(dict(row)) for row in rows).lower()
    details = [row["detail"] for row in rows]
    assert '"stage": "reminder"' in details[0] and '"text"' not in details[0]
    assert '"text": true' in details[1] and "text_hmac" not in details[1]
    hashes = {re.findall(r'"text_hmac": "([0-9a-f]{64})"', detail)[0] for detail in details[2:]}
    assert len(hashes) == 1  # the same search, whatever the case: comparable without being readable
    assert {row["username"] for row in rows} == {name} and {row["role"] for row in rows} == {"collector"}


async def test_supervisors_query_the_reads_by_user_loan_and_dates_a_page_at_a_time(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    who, loan = f"reader-{uuid.uuid4().hex[:6]}", f"RA-{uuid.uuid4().hex[:6]}"
    day = datetime(2031, 3, 10, 12, tzinfo=UTC)
    for n in range(PAGE_SIZE + 5):
        await add_row(db_pool, at=day + timedelta(minutes=n), username=who, loan_id=loan)
    await add_row(db_pool, at=day - timedelta(days=2), username=who, loan_id=loan)
    await add_row(db_pool, at=day, username=who, loan_id="RA-OTHER")

    collector = await make_client()
    await login(collector, (await make_user("collector")).username)
    assert (await collector.get("/audit/reads")).status_code == 403

    client = await make_client()
    await login(client, (await make_user("supervisor")).username)
    first = await client.get("/audit/reads", params={"user": who, "loan": loan, "from": "2031-03-10"})
    assert first.status_code == 200
    assert first.text.count('class="read-audit"') == PAGE_SIZE and "Dossier viewed" in first.text
    assert "2031-03-10 12:54:00" in first.text  # newest first
    next_url = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert next_url
    second = await client.get(next_url.group(1).replace("&amp;", "&"))
    assert second.text.count('class="read-audit"') == 5 and 'rel="next"' not in second.text
    by_dates = await client.get(
        "/audit/reads", params={"user": who, "from": "2031-03-08", "to": "2031-03-08"}
    )
    assert by_dates.text.count('class="read-audit"') == 1
    other = await client.get("/audit/reads", params={"loan": "RA-OTHER", "user": who})
    assert other.text.count('class="read-audit"') == 1

    wrong = await client.get("/audit/reads", params={"from": "yesterday", "user": "Not A User!"})
    assert wrong.status_code == 422
    assert 'id="from-error"' in wrong.text and 'id="user-error"' in wrong.text
    assert 'class="read-audit"' not in wrong.text
