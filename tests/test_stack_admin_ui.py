"""`make run`'s admin UI: demo users whose printed password works across restarts, a session key that
survives a restart, and a clear error when the port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncpg
import pytest

from admin.logins import Limits, authenticate
from admin.passwords import check_password
from stack.admin_ui import AdminUIError, _check_port_free, demo_passwords, ensure_demo_users, secret_key


async def test_demo_users_log_in_with_the_printed_password_after_a_restart(
    own_db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    first = await ensure_demo_users(own_db_pool, tmp_path, ["standard", "high_risk"])
    again = await ensure_demo_users(own_db_pool, tmp_path, ["standard", "high_risk"])  # next `make run`

    assert [(u.username, u.role) for u in first] == [
        ("demo.collector", "collector"),
        ("demo.supervisor", "supervisor"),
    ]
    assert [u.password for u in again] == [u.password for u in first]
    for user in again:
        assert check_password(user.password, username=user.username) == []  # the policy of every user
        result = await authenticate(
            own_db_pool, user.username, user.password, client_address="127.0.0.1", limits=Limits()
        )
        assert result.user is not None and result.user.role == user.role
    pools = await own_db_pool.fetchval("SELECT pools FROM users WHERE username = 'demo.collector'")
    assert sorted(pools) == ["default", "high_risk", "standard"]  # the workflow pools call tasks by segment
    assert oct((tmp_path / "admin-demo-users.json").stat().st_mode & 0o777) == "0o600"


async def test_a_fresh_state_gets_new_passwords_and_the_old_ones_stop_working(
    own_db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    old = await ensure_demo_users(own_db_pool, tmp_path / "a")
    new = await ensure_demo_users(own_db_pool, tmp_path / "b")
    assert old[0].password != new[0].password
    stale = await authenticate(
        own_db_pool, old[0].username, old[0].password, client_address="127.0.0.1", limits=Limits()
    )
    assert stale.user is None


def test_a_stored_demo_password_that_fails_the_policy_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "admin-demo-users.json").write_text('{"demo.collector": "password1234"}')
    passwords = demo_passwords(tmp_path)
    assert passwords["demo.collector"] != "password1234"
    assert all(check_password(password, username=name) == [] for name, password in passwords.items())


def test_the_session_key_is_kept_per_state_directory(tmp_path: Path) -> None:
    key = secret_key(tmp_path)
    assert len(key) >= 32 and secret_key(tmp_path) == key
    assert secret_key(tmp_path / "other") != key


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AdminUIError, match=f"127.0.0.1:{port}.*OVERDUE_ADMIN_PORT"):
            _check_port_free("127.0.0.1", port)
