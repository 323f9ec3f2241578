"""Permanent failures of activities: non-retryable ApplicationErrors with a type the workflow can act on.

Transient problems (connection lost, server restarting, timeouts) are left to propagate so Temporal retries
them; only data that can never succeed becomes non-retryable. Messages name the field, never PII.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from temporalio.exceptions import ApplicationError

from activities import contracts
from domain.loan import check_currency


def permanent(error_type: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


def invalid(message: str) -> ApplicationError:
    return permanent(contracts.INVALID_REQUEST, message)


@contextmanager
def rejected_data_is_permanent(what: str) -> Iterator[None]:
    """Turn a constraint or data error from PostgreSQL into a non-retryable InvalidRequest.

    Retrying the same bad row can never succeed; other database errors stay retryable.
    """
    try:
        yield
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as error:
        detail = getattr(error, "constraint_name", None) or type(error).__name__
        raise invalid(f"{what}: rejected by the database ({detail})") from error


def require_currency(currency: str) -> None:
    try:
        check_currency(currency)
    except ValueError as error:
        raise invalid(f"currency: {error}") from None


def require_non_negative(**amounts: int) -> None:
    for field, value in amounts.items():
        if value < 0:
            raise invalid(f"{field}: must not be negative (got {value})")


def require_same_loan(stored_loan_id: str, loan_id: str, idempotency_key: str, what: str) -> None:
    """A duplicate key must belong to the same loan; anything else is a caller bug, never a silent success."""
    if stored_loan_id != loan_id:
        raise permanent(
            contracts.IDEMPOTENCY_KEY_CONFLICT,
            f"idempotency_key {idempotency_key!r} already used by another loan's {what}",
        )
