"""Posting a message to an HTTP provider (SMS gateway, push webhook) and mapping its answer.

Every request carries the message's idempotency key in an `Idempotency-Key` header (and in the body), so a
retry after a lost response is dropped by the provider instead of delivered twice. Redirects are not
followed: a provider that moved is a configuration problem, not something to resend a POST for.

| answer | outcome |
|---|---|
| 2xx | delivered; the provider id is the JSON body's `id` (or `message_id`) |
| 400 / 422 with a recipient error code (e.g. `invalid_number`) | CONTACT_POINT_INVALID, non-retryable |
| 404 with a recipient error code (e.g. `no_device`), 410 where the channel says so | CONTACT_POINT_INVALID |
| other 400, 413, 415, 422 | MESSAGE_REJECTED, non-retryable |
| 401, 403, other 404, 405, 3xx | misconfigured: retryable (fix the URL or key) |
| 408, 409, 425, 429, 5xx, timeouts, connection errors | unavailable: retryable, honouring Retry-After |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from activities.channels import errors
from activities.messaging import RenderedMessage

log = structlog.get_logger("overdue.channels")

_RETRYABLE = {408, 409, 425, 429}
_MISCONFIGURED = {401, 403, 404, 405}
_REJECTED = {400, 413, 415, 422}


@dataclass(frozen=True)
class RecipientErrors:
    """Which answers of a provider mean "this recipient cannot be reached on this channel, ever"."""

    codes: frozenset[str]
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({400, 404, 422}))
    always: frozenset[int] = frozenset()  # statuses that mean it whatever the body says (410 for push)


class HttpProvider:
    """One aiohttp session per provider, opened on first use (inside the worker's event loop)."""

    def __init__(self, channel: str, url: str, *, timeout: float, recipient_errors: RecipientErrors) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{channel}: provider URL must be http(s)://host/path, got {url!r}")
        self.channel = channel
        self.url = url
        self._host = parts.netloc
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._recipient_errors = recipient_errors
        self._session: aiohttp.ClientSession | None = None

    async def post(self, message: RenderedMessage, body: bytes, headers: Mapping[str, str]) -> str:
        """POST `body` (JSON) and return the provider's message id, or raise the mapped ApplicationError."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        all_headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            **headers,
        }
        try:
            async with self._session.post(
                self.url, data=body, headers=all_headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                text = await response.text(errors="replace")
        except TimeoutError:
            raise errors.unavailable(self.channel, f"no answer from {self._host} in time") from None
        except aiohttp.ClientError as error:
            raise errors.unavailable(
                self.channel, f"{type(error).__name__} talking to {self._host}"
            ) from None
        return self._outcome(message, status, _json(text), retry_after)

    def _outcome(self, message: RenderedMessage, status: int, data: Any, retry_after: str | None) -> str:
        if 200 <= status < 300:
            provider_id = _field(data, "id") or _field(data, "message_id")
            if provider_id is None:
                # Accepted: the message is out. A retry would only be dropped by the provider anyway.
                log.warning("provider_answer_without_id", channel=self.channel, loan_id=message.loan_id)
                return f"{self.channel}:{message.idempotency_key}"
            return provider_id
        code = errors.safe_code(_error_code(data))
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        rules = self._recipient_errors
        if status in rules.always or (status in rules.statuses and code in rules.codes):
            raise errors.contact_point_invalid(self.channel, detail)
        if status in _RETRYABLE or status >= 500:
            raise errors.unavailable(self.channel, detail, _retry_after(retry_after))
        if status in _REJECTED:
            raise errors.message_rejected(self.channel, detail)
        if status in _MISCONFIGURED or 300 <= status < 400:
            raise errors.misconfigured(self.channel, f"{detail} from {self._host}")
        raise errors.unavailable(self.channel, detail)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _field(data: Any, name: str) -> str | None:
    value = data.get(name) if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and str(value) else None


def _error_code(data: Any) -> object:
    """`{"error": "invalid_number"}`, `{"error": {"code": "invalid_number"}}` or `{"code": ...}`."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return error.get("code")
    return error if error is not None else data.get("code")


def _retry_after(value: str | None) -> timedelta | None:
    """Retry-After in seconds (the HTTP-date form is left to Temporal's backoff)."""
    if value is None or not value.strip().isdigit():
        return None
    return min(timedelta(seconds=int(value.strip())), errors.MAX_RETRY_AFTER)
