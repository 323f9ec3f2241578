"""The password policy (admin/passwords.py): each refusal names the field and says why."""

from __future__ import annotations

import asyncpg
import pytest

from admin.passwords import check_password, visible_length
from admin.users import UserError, create_user, generated_password


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("password1234", "very common password"),
        (" " * 12, "at least 12 visible characters"),
        ("\u200b" * 12, "invisible"),
        ("\u200b" * 12, "at least 12 visible characters"),
        ("abcdefghij\u200bkl", "invisible"),  # 12 visible, but one hidden in between
        ("tab\tinside-the-password", "invisible"),
        ("short Pw!9", "at least 12 visible characters"),
        ("    x  y  z    ", "at least 12 visible characters"),
        ("qwertyuiop123", "very common password"),
        ("Password123!", "too easy to guess"),
        ("WangWei-long-enough-2026", "must not contain the user name"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    reasons = check_password(password, username="wang.wei")
    assert reasons, password
    assert all(field == "password" for field, _ in reasons)
    assert any(reason in message for _, message in reasons), reasons


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "Blue-Kettle-Rain-42", "kP3_xq9Lm2-vZ8wQ", "青山绿水映朝阳，风雨同舟共前行"],
)
def test_strong_passwords_pass(password: str) -> None:
    assert check_password(password, username="wang.wei") == []


def test_only_visible_characters_count() -> None:
    assert visible_length("ab cd\u200b\u0301e") == 5
    assert visible_length("\u3000" * 12) == 0  # ideographic spaces


def test_the_field_is_named_as_asked() -> None:
    assert check_password("", field="new_password")[0][0] == "new_password"


def test_generated_passwords_pass_the_policy() -> None:
    assert all(check_password(generated_password("li.na"), username="li.na") == [] for _ in range(20))


async def test_create_user_refuses_a_weak_password_and_creates_nobody(db_pool: asyncpg.Pool) -> None:
    with pytest.raises(UserError, match=r"password: .*very common"):
        await create_user(db_pool, "weak-pw-user", "password1234")
    assert await db_pool.fetchval("SELECT count(*) FROM users WHERE username = 'weak-pw-user'") == 0
