"""The link in each message: an opaque token for one loan's collection, stored hashed, expiring, revoked
when the collection ends.

The token is HMAC-SHA256 of the message's idempotency key under OVERDUE_BORROWER_LINK_SECRET: unguessable
without the secret, and the same for every attempt of the same message, so a retried activity renders the
link it stored the first time (only its sha256 is kept here; the URL carries no loan id and no personal
data). The workers need the secret; the page only hashes what it is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from activities import contracts
from activities.errors import permanent
from borrower.settings import BorrowerSettings

TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of 32 bytes, unpadded
_CYCLE = re.compile(r":(\d{4}-\d{2}-\d{2}):")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def derive_token(secret: str, message_key: str) -> str:
    import base64

    mac = hmac.new(secret.encode("utf-8"), b"borrower-link\0" + message_key.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def _cycle_of(message_key: str, loan_id: str) -> date | None:
    """The cycle the workflow's keys carry (`{loan}:{cycle}:{step}`, workflows/step_requests.py)."""
    if not message_key.startswith(f"{loan_id}:"):
        return None
    found = _CYCLE.match(message_key[len(loan_id) :])
    return date.fromisoformat(found.group(1)) if found else None


async def mint_link(
    pool: asyncpg.Pool,
    *,
    message_key: str,
    loan_id: str,
    channel: str,
    pattern: str,
    settings: BorrowerSettings | None = None,
) -> str:
    """The URL for this message (`pattern` with `{token}` filled in), its link stored once."""
    settings = settings or BorrowerSettings()
    secret = settings.link_secret.get_secret_value() if settings.link_secret else ""
    if len(secret) < 32:
        # Without the secret every link would be forgeable or different per retry: refuse, loudly.
        raise permanent(
            contracts.INVALID_REQUEST,
            "pay_url: the pattern has {token} but OVERDUE_BORROWER_LINK_SECRET (32+ characters) is not set",
        )
    token = derive_token(secret, message_key)
    await pool.execute(
        "INSERT INTO borrower_links (token_hash, message_key, loan_id, cycle, channel, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) ON CONFLICT DO NOTHING",
        token_hash(token),
        message_key,
        loan_id,
        _cycle_of(message_key, loan_id),
        channel,
        timedelta(days=settings.link_ttl_days),
    )
    return pattern.replace("{token}", token)


@dataclass(frozen=True)
class Link:
    token_hash: bytes
    message_key: str
    loan_id: str
    cycle: date | None
    channel: str
    expires_at: datetime
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


async def find_link(pool: asyncpg.Pool, token: str) -> Link | None:
    """The link of a token from a URL (None: malformed or unknown; both look the same to the visitor)."""
    if not TOKEN.match(token):
        return None
    row = await pool.fetchrow(
        "SELECT token_hash, message_key, loan_id, cycle, channel, expires_at, revoked_at "
        "FROM borrower_links WHERE token_hash = $1",
        token_hash(token),
    )
    return Link(**dict(row)) if row else None


async def revoke_links(pool: asyncpg.Pool, loan_id: str) -> int:
    """The collection ended: every link of the loan stops opening, and its sessions end."""
    async with pool.acquire() as connection, connection.transaction():
        done = await connection.execute(
            "UPDATE borrower_links SET revoked_at = now() WHERE loan_id = $1 AND revoked_at IS NULL",
            loan_id,
        )
        await connection.execute(
            "DELETE FROM borrower_sessions WHERE token_hash IN "
            "(SELECT token_hash FROM borrower_links WHERE loan_id = $1)",
            loan_id,
        )
    return int(done.split()[-1])


@dataclass(frozen=True)
class Delivery:
    """Where the link's message went: the contact point on file the code goes to (PII: never log it)."""

    channel: str
    recipient: str
    locale: str


async def link_delivery(pool: asyncpg.Pool, link: Link) -> Delivery | None:
    row = await pool.fetchrow(
        "SELECT channel, recipient, locale FROM messages WHERE idempotency_key = $1 AND loan_id = $2",
        link.message_key,
        link.loan_id,
    )
    return Delivery(row["channel"], row["recipient"], row["locale"]) if row else None


async def collection_ended(pool: asyncpg.Pool, link: Link) -> bool:
    """The portfolio says the loan's collection has an outcome: the link is revoked (and stays so)."""
    outcome = await pool.fetchval("SELECT outcome FROM portfolio WHERE loan_id = $1", link.loan_id)
    if outcome is None:
        return False
    await revoke_links(pool, link.loan_id)
    return True
