"""Placing and recalling accounts through an agency's HTTP API, and an agency reporting a payment back.

    POST {endpoint}/placements
    Idempotency-Key: {the placement's idempotency key}
    {api_key_header}: {api key}
    {"placement_id": "6f1c...", "loan_id": "L-1", "amount_overdue_minor": 500000, "currency": "CNY",
     "dpd": 45, "segment": "standard", "period_days": 60, "expires_at": "2026-04-20T01:00:00+00:00"}
    2xx {"reference": "EAST-000123"}        -> accepted; the agency's reference ("reference" or "id")

    POST {endpoint}/placements/{placement_id}/recall
    Idempotency-Key: {the recall's idempotency key}
    {"reason": "paid"}
    2xx                                     -> delivered
    404 {"error": "placement_not_found"}    -> delivered: the agency does not hold it (nothing to recall)

The body carries what an agency needs to work the account and nothing else: no borrower name, phone or
e-mail (a file agency marked `receives_contact_details` gets those in its CSV export only).

Answers map as for the HTTP message channels (activities/channels/http.py, whose helpers this reuses):

| answer | placement | recall |
|---|---|---|
| 2xx | accepted | delivered |
| 408, 409, 425, 429, 5xx, timeouts, connection errors | AgencyUnavailable: retried | same |
| 401, 403, 404, 405, 3xx | AgencyMisconfigured: retried (fix URL, key) | same; 404 not_found code: done |
| any other 4xx | AgencyRejected: non-retryable | recorded as refused; the activity succeeds |

Retries honour the agency's Retry-After (up to 5 minutes).

A refused recall does not fail the activity: the lender's books say recalled either way, and failing it
would fail the placement workflow and the loan's. It is logged and shown by `python -m starter agencies
list`, for an operator to settle with the agency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.channels import errors as channel_errors
from activities.channels import http as channel_http
from authority.signer import Signer
from domain.agencies import SANDBOX_ENDPOINT, AgencyBook
from domain.loan import Payment
from stack.settings import Settings
from workflows.messages import PAYMENT_SIGNAL, STATUS_QUERY, CollectionStatus, workflow_id

log = structlog.get_logger("overdue.agencies")

# Error types of the placement activity (the workflow treats any failed placement as "not placed").
AGENCY_REJECTED = "AgencyRejected"  # the agency refused the placement for good (its 4xx): non-retryable
AGENCY_UNAVAILABLE = "AgencyUnavailable"  # timeouts, 429, 5xx: retried by Temporal
AGENCY_MISCONFIGURED = "AgencyMisconfigured"  # 401/403/404: retried, so fixing the URL or key is enough

# The key `make run`'s sandbox agency accepts (stack.sandbox.SANDBOX_API_KEY); local only.
SANDBOX_API_KEY = "sandbox-key"

# A recall answered 404 with one of these codes: the agency does not hold the account, nothing to recall.
NOT_HELD_CODES = frozenset({"placement_not_found", "not_found", "unknown_placement"})


class AgencySettingsError(ValueError):
    """The agencies' settings do not fit together (a missing API key variable); the message names it."""


@dataclass(frozen=True)
class RecallDelivery:
    outcome: Literal["delivered", "refused"]
    code: str | None = None  # the agency's error code when refused


class AgencyHttpClient:
    """One aiohttp session for every agency, opened on first use (inside the worker's event loop).

    `api_keys` by agency id; an agency without one gets `default_api_key` (the sandbox endpoint: the
    sandbox key). `sandbox_url` is what endpoint "sandbox" means: agency ID is `{sandbox_url}/agencies/ID`.
    """

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        default_api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        timeout: float = 15.0,
        sandbox_url: str | None = None,
    ) -> None:
        self._api_keys = dict(api_keys or {})
        self._default_api_key = default_api_key
        self._api_key_header = api_key_header
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        self._session: aiohttp.ClientSession | None = None

    def base_url(self, agency_id: str, endpoint: str) -> str:
        if endpoint != SANDBOX_ENDPOINT:
            return endpoint.rstrip("/")
        if self._sandbox_url is None:
            raise _misconfigured(agency_id, "endpoint 'sandbox' but no sandbox agency URL is configured")
        return f"{self._sandbox_url}/agencies/{quote(agency_id, safe='')}"

    async def place(
        self, agency_id: str, endpoint: str, idempotency_key: str, payload: Mapping[str, Any]
    ) -> str | None:
        """POST the placement; the agency's reference (None if its 2xx named none), or the mapped error."""
        url = f"{self.base_url(agency_id, endpoint)}/placements"
        status, data, retry_after = await self._post(agency_id, endpoint, url, idempotency_key, payload)
        if 200 <= status < 300:
            reference = (
                channel_http._field(data, "reference")
                or channel_http._field(data, "agency_reference")
                or channel_http._field(data, "id")
            )
            if reference is None:
                log.warning("agency_answer_without_reference", agency_id=agency_id)
            return reference
        raise _failure(agency_id, "placement", status, data, retry_after)

    async def recall(
        self, agency_id: str, endpoint: str, idempotency_key: str, placement_id: str, reason: str
    ) -> RecallDelivery:
        url = f"{self.base_url(agency_id, endpoint)}/placements/{quote(placement_id, safe='')}/recall"
        status, data, retry_after = await self._post(
            agency_id, endpoint, url, idempotency_key, {"reason": reason}
        )
        if 200 <= status < 300:
            return RecallDelivery("delivered")
        code = channel_errors.safe_code(channel_http._error_code(data))
        if status == 404 and code in NOT_HELD_CODES:
            return RecallDelivery("delivered", code)
        failure = _failure(agency_id, "recall", status, data, retry_after)
        if failure.type == AGENCY_REJECTED:
            return RecallDelivery("refused", code or f"http_{status}")
        raise failure

    async def _post(
        self, agency_id: str, endpoint: str, url: str, idempotency_key: str, payload: Mapping[str, Any]
    ) -> tuple[int, Any, str | None]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        api_key = self._api_keys.get(agency_id)
        if api_key is None:
            api_key = SANDBOX_API_KEY if endpoint == SANDBOX_ENDPOINT else self._default_api_key
        if api_key:
            headers[self._api_key_header] = api_key
        body = json.dumps(dict(payload), ensure_ascii=False).encode()
        host = urlsplit(url).netloc  # never the path or query: a URL may carry a token
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                text = await response.text(errors="replace")
        except TimeoutError:
            raise _unavailable(agency_id, f"no answer from {host} in time") from None
        except aiohttp.ClientError as error:
            raise _unavailable(agency_id, f"{type(error).__name__} talking to {host}") from None
        return status, channel_http._json(text), retry_after

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def client_from_settings(settings: Settings, book: AgencyBook) -> AgencyHttpClient:
    """The client for the configured agencies; raises AgencySettingsError for an API key variable not set."""
    keys: dict[str, str] = {}
    for agency in book.agencies:
        if agency.api_key_env is None:
            continue
        value = os.environ.get(agency.api_key_env, "").strip()
        if not value:
            raise AgencySettingsError(
                f"agency {agency.id}: api_key_env names {agency.api_key_env}, which is not set "
                "(its key is needed to place with it and to recall from it)"
            )
        keys[agency.id] = value
    sandbox_url = settings.agency_sandbox_url or f"http://127.0.0.1:{settings.sandbox_agency_port}"
    return AgencyHttpClient(
        api_keys=keys,
        default_api_key=settings.agency_api_key,
        api_key_header=settings.agency_api_key_header,
        timeout=settings.agency_timeout_seconds,
        sandbox_url=sandbox_url,
    )


def _failure(agency_id: str, what: str, status: int, data: Any, retry_after: str | None) -> ApplicationError:
    """The ApplicationError for a non-2xx answer. Names the agency, status and code, never the body's text."""
    code = channel_errors.safe_code(channel_http._error_code(data))
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "")
    if status in channel_http._RETRYABLE or status >= 500:
        return _unavailable(agency_id, detail, channel_http._retry_after(retry_after))
    if status in channel_http._MISCONFIGURED or 300 <= status < 400:
        return _misconfigured(agency_id, detail)
    if 400 <= status < 500:
        # The code (or status) rides along as the error's first detail: the placement row records it.
        return ApplicationError(
            f"agency {agency_id} refused it for good ({detail})",
            code or f"http_{status}",
            type=AGENCY_REJECTED,
            non_retryable=True,
        )
    return _unavailable(agency_id, detail)


def _unavailable(agency_id: str, detail: str, retry_after: timedelta | None = None) -> ApplicationError:
    return ApplicationError(
        f"agency {agency_id}: unavailable, will retry ({detail})",
        type=AGENCY_UNAVAILABLE,
        next_retry_delay=retry_after,
    )


def _misconfigured(agency_id: str, detail: str) -> ApplicationError:
    return ApplicationError(
        f"agency {agency_id}: refused the request, check its endpoint and API key; will retry ({detail})",
        type=AGENCY_MISCONFIGURED,
    )


# ------------------------------------------------------------------------------------ agency payments
# An agency collected money: the loan's workflow gets it as a `payment` signal with source "agency", applied
# at most once per payment id like any other payment. The id is prefixed with the agency's id, so two
# agencies' ids (or an agency's and servicing's) can never collide.


async def report_agency_payment(
    client: Client,
    loan_id: str,
    amount_minor: int,
    payment_id: str,
    agency_id: str,
    *,
    currency: str | None = None,
    received_at: datetime | None = None,
    signer: Signer | None = None,
) -> Payment:
    """Signal the loan's workflow that `agency_id` collected `amount_minor`; returns the Payment it sent.

    The payment is signed as servicing (the product's payment intake acts for the lender's servicing; the
    workflow refuses an unsigned payment: README "Who may act"), with `signer` or this process's keys. The
    currency defaults to the loan's (asked of the workflow). Raises pydantic's ValidationError for an invalid
    amount, id or currency (nothing is signalled), `CannotAct` when this process holds no servicing key, and
    Temporal's RPCError for an unknown loan.
    """
    signer = signer or Signer.from_settings()
    actor = signer.default_actor(("servicing",))
    handle = client.get_workflow_handle(workflow_id(loan_id))
    if currency is None:
        currency = (await handle.query(STATUS_QUERY, result_type=CollectionStatus)).currency
    payment = Payment(
        payment_id=f"{agency_id}:{payment_id}",
        amount_minor=amount_minor,
        currency=currency,
        received_at=received_at or datetime.now(UTC),
        source="agency",
    )
    token = signer.mint(actor, workflow_id(loan_id), PAYMENT_SIGNAL, payment)
    await handle.signal(PAYMENT_SIGNAL, args=[payment, token])
    log.info(
        "agency_payment_reported",
        loan_id=loan_id,
        agency_id=agency_id,
        payment_id=payment.payment_id,
        amount_minor=amount_minor,
        currency=currency,
    )
    return payment
