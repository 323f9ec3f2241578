"""The optional second factor: TOTP codes (RFC 6238, 30 s, 6 digits) from an authenticator app, with pyotp.

The secret is stored AES-GCM encrypted (users.totp_secret) under a key derived from OVERDUE_ADMIN_SECRET_KEY,
with the user's id as associated data (a secret copied onto another user's row does not decrypt). It is shown
once, on the enrolment page, and never logged. A code is accepted once: the time step of the last accepted
code is stored and a code of that step or an earlier one is refused (no replay of a code seen over a
shoulder), with one step of clock drift either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import asyncpg
import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from activities.db import Connection
from admin.settings import AdminSettings

ISSUER = "Overdue"
_VERSION = "v1"


class TotpUnavailable(RuntimeError):
    """No stable key to encrypt secrets with (OVERDUE_ADMIN_SECRET_KEY unset)."""


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"overdue admin totp secrets v1", hashlib.sha256).digest()


def encrypt_secret(secret: str, *, secret_key: str, user_id: int) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key)).encrypt(nonce, secret.encode(), str(user_id).encode())
    return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt_secret(stored: str, *, secret_key: str, user_id: int) -> str | None:
    """The secret, or None when it cannot be read (another key, another user's row, tampered)."""
    version, _, body = stored.partition(":")
    if version != _VERSION:
        return None
    try:
        raw = base64.b64decode(body, validate=True)
        return AESGCM(_key(secret_key)).decrypt(raw[:12], raw[12:], str(user_id).encode()).decode()
    except (InvalidTag, ValueError):
        return None


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, *, last_step: int | None, at: float | None = None) -> int | None:
    """The time step `code` belongs to (now, or one step before or after), if later than `last_step`."""
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    step = int(now // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if (last_step is None or candidate > last_step) and hmac.compare_digest(
            totp.at(candidate * totp.interval), code
        ):
            return candidate
    return None


async def start_enrolment(executor: Connection | asyncpg.Pool, user_id: int, *, secret_key: str) -> str:
    """A new secret for a user without a second factor yet (replacing an unconfirmed one); returns it."""
    secret = new_secret()
    await executor.execute(
        "UPDATE users SET totp_secret = $2, totp_last_step = NULL WHERE id = $1 AND totp_enabled_at IS NULL",
        user_id,
        encrypt_secret(secret, secret_key=secret_key, user_id=user_id),
    )
    return secret


async def pending_secret(executor: Connection | asyncpg.Pool, user_id: int, *, secret_key: str) -> str | None:
    stored = await executor.fetchval(
        "SELECT totp_secret FROM users WHERE id = $1 AND totp_enabled_at IS NULL", user_id
    )
    return decrypt_secret(stored, secret_key=secret_key, user_id=user_id) if stored else None


async def check_code(
    executor: Connection | asyncpg.Pool, user_id: int, code: str, *, secret_key: str, enrolling: bool = False
) -> bool:
    """Whether `code` is a fresh code of the user's secret (enrolled, or pending when `enrolling`); an
    accepted code is used up, and confirms a pending enrolment."""
    row = await executor.fetchrow(
        "SELECT totp_secret, totp_last_step, totp_enabled_at FROM users WHERE id = $1", user_id
    )
    if row is None or row["totp_secret"] is None or (row["totp_enabled_at"] is None) != enrolling:
        return False
    secret = decrypt_secret(row["totp_secret"], secret_key=secret_key, user_id=user_id)
    if secret is None:
        return False
    step = accepted_step(secret, code, last_step=row["totp_last_step"])
    if step is None:
        return False
    # Compare-and-set on the last step: two requests with the same code cannot both pass.
    updated = await executor.fetchval(
        "UPDATE users SET totp_last_step = $2, totp_enabled_at = coalesce(totp_enabled_at, now()) "
        "WHERE id = $1 AND totp_last_step IS NOT DISTINCT FROM $3 RETURNING id",
        user_id,
        step,
        row["totp_last_step"],
    )
    return updated is not None


async def enrolled(executor: Connection | asyncpg.Pool, user_id: int) -> bool:
    return bool(
        await executor.fetchval("SELECT totp_enabled_at IS NOT NULL FROM users WHERE id = $1", user_id)
    )


def key_of(settings: AdminSettings) -> str:
    """The key TOTP secrets are encrypted under; TotpUnavailable without OVERDUE_ADMIN_SECRET_KEY (a random
    per-process key would make every enrolled secret unreadable after a restart)."""
    if not settings.secret_key:
        raise TotpUnavailable("two-factor login needs OVERDUE_ADMIN_SECRET_KEY")
    return settings.secret_key
