"""The webhook signature: HMAC-SHA256 over "<t>.<raw body>", within a tolerance of now."""

from __future__ import annotations

import pytest

from payments.signature import BadSignature, sign, verify

BODY = b'{"id":"evt_1"}'


def test_a_signature_of_now_verifies() -> None:
    assert verify("s3cret", BODY, sign("s3cret", BODY, 1_000), now=1_010) == 1_000


def test_a_rolled_secret_may_sign_twice() -> None:
    header = sign("new", BODY, 1_000) + "," + sign("old", BODY, 1_000).split(",")[1]
    assert verify("old", BODY, header, now=1_000) == 1_000


@pytest.mark.parametrize(
    ("header", "now", "reason"),
    [
        (None, 1_000, "missing"),
        ("v1=abc", 1_000, "no timestamp"),
        ("t=soon,v1=abc", 1_000, "no timestamp"),
        (sign("other", BODY, 1_000), 1_000, "does not match"),
        (sign("s3cret", BODY + b" ", 1_000), 1_000, "does not match"),
        (sign("s3cret", BODY, 1_000), 1_000 + 301, "outside 300s"),
        (sign("s3cret", BODY, 1_000), 1_000 - 301, "outside 300s"),
    ],
)
def test_anything_else_is_refused(header: str | None, now: int, reason: str) -> None:
    with pytest.raises(BadSignature, match=reason):
        verify("s3cret", BODY, header, now=now)
