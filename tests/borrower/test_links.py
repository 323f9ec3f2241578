"""The link in each message: opaque, stored hashed, one per message (a retry renders the same), expiring,
revoked when the collection ends; an unknown, expired or revoked link shows a page that names nothing."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from borrower.links import find_link, mint_link, revoke_links
from borrower.settings import BorrowerSettings
from tests.borrower.conftest import cn_loan, message_link


async def test_the_link_is_opaque_hashed_and_the_same_on_a_retry(db_pool: asyncpg.Pool) -> None:
    loan = cn_loan()
    key = f"{loan.loan_id}:{loan.overdue_since.isoformat()}:reminder-1"
    first = await message_link(db_pool, loan, key=key)
    again = await message_link(db_pool, loan, key=key)  # the activity retried: same message, same link
    other = await message_link(db_pool, loan)
    assert first == again != other
    token = first.rsplit("/", 1)[1]
    assert loan.loan_id not in first and loan.borrower.phone not in first
    rows = await db_pool.fetch("SELECT * FROM borrower_links WHERE loan_id = $1", loan.loan_id)
    assert len(rows) == 2
    mine = next(r for r in rows if r["message_key"] == key)
    assert mine["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in b"".join(bytes(r["token_hash"]) for r in rows)  # only the hash is kept
    assert mine["cycle"] == loan.overdue_since and mine["channel"] == "sms"
    assert mine["expires_at"] > mine["created_at"] and mine["revoked_at"] is None


async def test_no_secret_no_link(db_pool: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as refused:
        await mint_link(
            db_pool,
            message_key="k",
            loan_id="L-1",
            channel="sms",
            pattern="https://x/l/{token}",
            settings=BorrowerSettings(link_secret=None),
        )
    assert refused.value.type == contracts.INVALID_REQUEST and refused.value.non_retryable


async def test_unknown_expired_and_revoked_links(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    loan = cn_loan()
    unknown = await client.get("/l/" + "A" * 43, headers={"accept-language": "en"})
    assert unknown.status_code == 404 and "This link does not work" in unknown.text
    assert (await client.get("/l/short")).status_code == 404

    expired = await message_link(db_pool, loan)
    await db_pool.execute(
        "UPDATE borrower_links SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hashlib.sha256(expired.rsplit("/", 1)[1].encode()).digest(),
    )
    page = await client.get(expired)
    assert page.status_code == 410 and "该链接已失效" in page.text  # the loan's locale: zh-CN
    assert (await client.post(f"{expired}/code")).status_code == 410  # and it sends no code

    revoked = await message_link(db_pool, loan)
    assert await revoke_links(db_pool, loan.loan_id) == 2
    link = await find_link(db_pool, revoked.rsplit("/", 1)[1])
    assert link is not None and link.revoked_at is not None
    assert (await client.get(revoked)).status_code == 410
    for page in (unknown, (await client.get(revoked))):
        assert loan.loan_id not in page.text and loan.borrower.name not in page.text
