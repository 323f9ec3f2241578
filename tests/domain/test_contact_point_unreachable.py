"""A provider's receipt closes a contact point: only the loan's own, once, with no free text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.contact_rules import ContactState
from domain.holds import ContactPointUnreachable, HoldRejected, contact_point_unreachable

PHONE = "+8613800138000"
POINTS = [PHONE, "li@example.cn", "L-1"]


def _request(address: str = PHONE, reason: str = "unknown_subscriber") -> ContactPointUnreachable:
    return ContactPointUnreachable(channel="sms", address=address, reason=reason, message_id="m-1")


def test_the_number_becomes_unreachable() -> None:
    state = contact_point_unreachable(ContactState(), _request(), POINTS)
    assert state.unreachable_addresses == [PHONE]


def test_a_second_receipt_for_the_same_number_changes_nothing() -> None:
    once = contact_point_unreachable(ContactState(), _request(), POINTS)
    assert contact_point_unreachable(once, _request(reason="invalid_number"), POINTS) is once


def test_an_address_that_is_not_the_loans_is_refused() -> None:
    with pytest.raises(HoldRejected, match="address: not one of this loan's contact points"):
        contact_point_unreachable(ContactState(), _request("+8613900000000"), POINTS)


@pytest.mark.parametrize("reason", ["", "user unknown <li@example.cn>", "x" * 65])
def test_the_reason_is_a_provider_code_never_free_text(reason: str) -> None:
    with pytest.raises(ValidationError):
        _request(reason=reason)
