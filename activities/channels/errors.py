"""How a provider's answer becomes an activity outcome: permanent (non-retryable) or for Temporal to retry.

Only a refusal that can never succeed is permanent: the recipient does not exist (CONTACT_POINT_INVALID, the
workflow falls back to another channel) or the provider rejects the message itself (MESSAGE_REJECTED).
Outages, rate limits, timeouts and configuration mistakes (a wrong URL, a bad API key) are retryable, so the
message goes out once the provider is back or the operator has fixed the setting.

Messages name the channel, the provider's status and error code, never the recipient or the text, and are
raised `from None`: a provider's own error text often echoes the address, and Temporal keeps failure
messages and their causes in the workflow history.
"""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.errors import permanent

# The provider refused the message itself (content, size, a field it does not accept): non-retryable. The
# workflow matches on the contract's name, so this is the same string.
MESSAGE_REJECTED = contracts.MESSAGE_REJECTED
# The provider could not be reached or asked us to come back later (timeouts, 429, 5xx, SMTP 4xx): retryable.
PROVIDER_UNAVAILABLE = "ChannelProviderUnavailable"
# The provider refused our credentials or the endpoint is wrong: retryable, so fixing the setting is enough.
PROVIDER_MISCONFIGURED = "ChannelProviderMisconfigured"

# A Retry-After longer than this is not honoured: Temporal's retry policy takes over.
MAX_RETRY_AFTER = timedelta(minutes=5)

_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def contact_point_invalid(channel: str, detail: str) -> ApplicationError:
    return permanent(
        contracts.CONTACT_POINT_INVALID, f"{channel}: the provider refused the recipient ({detail})"
    )


def message_rejected(channel: str, detail: str) -> ApplicationError:
    return permanent(MESSAGE_REJECTED, f"{channel}: the provider rejected the message ({detail})")


def unavailable(channel: str, detail: str, retry_after: timedelta | None = None) -> ApplicationError:
    return ApplicationError(
        f"{channel}: provider unavailable, will retry ({detail})",
        type=PROVIDER_UNAVAILABLE,
        next_retry_delay=retry_after,
    )


def misconfigured(channel: str, detail: str) -> ApplicationError:
    return ApplicationError(
        f"{channel}: provider refused the request, check the channel settings; will retry ({detail})",
        type=PROVIDER_MISCONFIGURED,
    )


def safe_code(value: object) -> str | None:
    """A provider's machine-readable error code, if it looks like one (never free text that may hold PII)."""
    if isinstance(value, str) and _ERROR_CODE.match(value):
        return value
    return None
