"""One way to reach Temporal, the same for the CLI, the demo and servicing integrations."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from stack.settings import Settings

# How long one TCP connection attempt may take: an unroutable address fails in seconds, not minutes.
CONNECT_TIMEOUT = timedelta(seconds=10)


class TemporalUnreachable(RuntimeError):
    """The Temporal server at `address` could not be reached (down, wrong address, TLS or key refused)."""

    def __init__(self, address: str, namespace: str, detail: str) -> None:
        self.address = address
        self.namespace = namespace
        self.detail = detail
        super().__init__(f"cannot reach Temporal at {address} (namespace {namespace}): {detail}")


def _short_reason(error: BaseException) -> str:
    text = str(error)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("dns error", "host name not found"),
        ("failed to lookup address", "host name not found"),
        ("timed out", "connection timed out"),
        ("Timeout", "connection timed out"),
        ("certificate", "TLS certificate problem"),
        ("Unauthenticated", "API key rejected"),
        ("PermissionDenied", "permission denied"),
    ):
        if marker in text:
            return reason
    return (
        text.removeprefix("Failed client connect: ").splitlines()[0][:200] if text else type(error).__name__
    )


async def connect(settings: Settings | None = None) -> Client:
    """A client for `settings.temporal_target` speaking pydantic: every message of the product is a model.

    TLS is used when TEMPORAL_TLS is set, and automatically when an API key is given (Temporal Cloud).
    Raises `TemporalUnreachable` (one readable line naming the address) instead of the SDK's transport error.
    """
    settings = settings or Settings()
    try:
        return await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key or None,
            tls=True if settings.temporal_tls else None,
            data_converter=pydantic_data_converter,
            connect_timeout=CONNECT_TIMEOUT,
        )
    except RuntimeError as error:
        raise TemporalUnreachable(
            settings.temporal_target, settings.temporal_namespace, _short_reason(error)
        ) from error
