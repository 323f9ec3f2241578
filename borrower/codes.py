"""One-time codes and the short sessions they open, bound to one link.

A code goes to the recipient of the link's own message (the contact point on file), never to an address
the visitor types. Limits: codes per link and per address per hour, wrong tries per code and per link per
hour. Only hashes are stored; the session id lives in a cookie scoped to the page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import asyncpg

from borrower.links import Link
from borrower.settings import BorrowerSettings


def _hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _code_hash(link: Link, code: str) -> bytes:
    # Salted with the link: the same 6 digits on two links never share a hash.
    return hashlib.sha256(link.token_hash + code.encode("ascii")).digest()


@dataclass(frozen=True)
class Issued:
    code: str | None  # None: refused by a limit (`refused` says which)
    refused: Literal["link", "address"] | None = None


async def issue_code(pool: asyncpg.Pool, link: Link, recipient: str, settings: BorrowerSettings) -> Issued:
    """A new 6-digit code for the link, unless the link or the address had its hour's share."""
    hour = timedelta(hours=1)
    async with pool.acquire() as connection, connection.transaction():
        # Codes and sessions are kept only as long as the limits need them: the address hash (a pseudonym of
        # a phone number, guessable by enumeration) is gone within a day, whatever happens to the loan.
        await connection.execute("DELETE FROM borrower_codes WHERE created_at < now() - interval '1 day'")
        await connection.execute("DELETE FROM borrower_sessions WHERE expires_at < now()")
        # One link at a time: two tabs asking at once cannot both pass the count.
        await connection.execute(
            "SELECT 1 FROM borrower_links WHERE token_hash = $1 FOR UPDATE", link.token_hash
        )
        per_link = await connection.fetchval(
            "SELECT count(*) FROM borrower_codes WHERE token_hash = $1 AND created_at > now() - $2::interval",
            link.token_hash,
            hour,
        )
        if per_link >= settings.codes_per_link_per_hour:
            return Issued(None, "link")
        per_address = await connection.fetchval(
            "SELECT count(*) FROM borrower_codes "
            "WHERE recipient_hash = $1 AND created_at > now() - $2::interval",
            _hash(recipient),
            hour,
        )
        if per_address >= settings.codes_per_address_per_hour:
            return Issued(None, "address")
        code = f"{secrets.randbelow(1_000_000):06d}"
        await connection.execute(
            "INSERT INTO borrower_codes (token_hash, recipient_hash, code_hash, expires_at) "
            "VALUES ($1, $2, $3, now() + $4::interval)",
            link.token_hash,
            _hash(recipient),
            _code_hash(link, code),
            timedelta(seconds=settings.code_ttl_seconds),
        )
    return Issued(code)


Checked = Literal["ok", "wrong", "expired", "locked", "none"]


async def check_code(pool: asyncpg.Pool, link: Link, code: str, settings: BorrowerSettings) -> Checked:
    """Compare with the link's latest code: 'ok' once (the code is spent), else why not."""
    code = code.strip()
    async with pool.acquire() as connection, connection.transaction():
        failures = await connection.fetchval(
            "SELECT coalesce(sum(attempts), 0) FROM borrower_codes "
            "WHERE token_hash = $1 AND created_at > now() - interval '1 hour'",
            link.token_hash,
        )
        if failures >= settings.failures_per_link_per_hour:
            return "locked"
        row = await connection.fetchrow(
            "SELECT id, code_hash, expires_at <= now() AS expired, attempts, used_at FROM borrower_codes "
            "WHERE token_hash = $1 ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE",
            link.token_hash,
        )
        if row is None or row["used_at"] is not None:
            return "none"
        if row["expired"]:
            return "expired"
        if row["attempts"] >= settings.code_attempts:
            return "locked"
        if not (
            code.isdigit()
            and len(code) == 6
            and hmac.compare_digest(row["code_hash"], _code_hash(link, code))
        ):
            await connection.execute(
                "UPDATE borrower_codes SET attempts = attempts + 1 WHERE id = $1", row["id"]
            )
            return "wrong"
        await connection.execute("UPDATE borrower_codes SET used_at = now() WHERE id = $1", row["id"])
    return "ok"


async def open_session(pool: asyncpg.Pool, link: Link, settings: BorrowerSettings) -> str:
    session = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO borrower_sessions (session_hash, token_hash, expires_at) "
        "VALUES ($1, $2, now() + $3::interval)",
        _hash(session),
        link.token_hash,
        timedelta(minutes=settings.session_minutes),
    )
    return session


async def session_valid(pool: asyncpg.Pool, link: Link, session: str | None) -> bool:
    """The session is this link's and has not expired (a session of another link opens nothing here)."""
    if not session or len(session) > 100:
        return False
    return bool(
        await pool.fetchval(
            "SELECT 1 FROM borrower_sessions "
            "WHERE session_hash = $1 AND token_hash = $2 AND expires_at > now()",
            _hash(session),
            link.token_hash,
        )
    )
