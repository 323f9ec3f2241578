"""Masked contact data (admin/access.py): enough to recognise a number or an address, not to use it."""

from __future__ import annotations

import pytest

from admin.access import (
    AccessSettings,
    mask,
    mask_email,
    mask_phone,
    mask_postal,
    masks_contacts,
    visible_pools,
)
from admin.users import User


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+8613812345678", "+86 138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("+14155550123", "+1 415***0123"),
        ("+447700900123", "+44 770***0123"),
        ("13812345678", "138****5678"),
        ("12345", "*****"),
    ],
)
def test_a_phone_keeps_its_country_code_and_its_ends(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("zhang.wei@example.com", "z***@example.com"),
        ("a@b.cn", "a***@b.cn"),
        ("not an address", "***"),
    ],
)
def test_an_email_keeps_its_first_letter_and_its_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_a_postal_address_is_reduced_to_its_area() -> None:
    assert mask_postal("221B Baker Street, London NW1 6XE") == "…, London NW* *XE"
    assert mask_postal("上海市浦东新区世纪大道100号") == "上海市浦东…"
    assert "100" not in mask_postal("上海市浦东新区世纪大道100号")
    assert mask_postal("12 A") == "*…"  # digits never shown


def test_mask_by_kind() -> None:
    assert mask("phone", "+8613812345678") == "+86 138****5678"
    assert mask("email", None) is None
    assert mask("app", "L-1") == "L-1"  # the app's key is the loan id, not contact data


def user(role: str, pools: tuple[str, ...] = ("a",)) -> User:
    return User(1, "u", role, "U", "en", True, pools)  # type: ignore[arg-type]


def test_who_sees_masked_data_and_which_pools() -> None:
    assert masks_contacts(user("collector")) and not masks_contacts(user("supervisor"))
    assert not masks_contacts(user("admin"))
    every, own = AccessSettings(), AccessSettings(supervisors_see_all_pools=False)
    assert visible_pools(user("collector", ("a", "b")), every) == ["a", "b"]
    assert visible_pools(user("supervisor"), every) is None
    assert visible_pools(user("supervisor"), own) == ["a"]
    assert visible_pools(user("admin"), own) is None
