"""Retry policies of the collections workflows' activities, in one place.

Contacts are retried for about an hour: past that the step is deferred or falls back rather than stalling the
loan. Case work (placements, recalls, letters, filings, the journal) matters more than timeliness and is
retried for hours. Permanent failures are raised non-retryable by the activities themselves.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities import contracts

CONTACT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=15,
    non_retryable_error_types=[contracts.CONTACT_POINT_INVALID, contracts.UNKNOWN_TEMPLATE],
)
CASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=30,
    non_retryable_error_types=[contracts.NO_AGENCY_AVAILABLE],
)
