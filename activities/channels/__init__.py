"""Real delivery of borrower messages: e-mail over SMTP, SMS through an HTTP gateway, app push via a webhook.

Each adapter follows `activities.messaging.ChannelAdapter` (`async deliver(message) -> provider id`) and maps
the provider's answer to the activity's outcome (activities/channels/errors.py): a recipient that can never
be reached is a non-retryable CONTACT_POINT_INVALID; outages and timeouts are retried by Temporal. The
outbox row is written before delivery and marked 'sent' / 'failed' after (activities/messaging.py), so a
retry of an activity whose delivery was recorded never sends again.

    router = build_router(settings)        # only the channels whose provider is configured
    CollectionActivities(pool, channel=router)
    ...
    await router.aclose()
"""

from __future__ import annotations

from typing import cast

from activities.channels.push import WebhookPushAdapter
from activities.channels.router import CHANNELS, Channel, ChannelRouter
from activities.channels.sms import HttpSmsAdapter
from activities.channels.smtp import SmtpEmailAdapter, TlsMode
from activities.messaging import ChannelAdapter
from stack.settings import Settings

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelRouter",
    "ChannelSettingsError",
    "HttpSmsAdapter",
    "SmtpEmailAdapter",
    "WebhookPushAdapter",
    "build_router",
]


class ChannelSettingsError(ValueError):
    """A channel's settings do not fit together; the message names the variables."""


def build_router(settings: Settings) -> ChannelRouter:
    """The adapters the settings configure; raises ChannelSettingsError for an incomplete configuration."""
    adapters: dict[Channel, ChannelAdapter] = {}
    timeout = settings.channel_timeout_seconds
    try:
        if settings.smtp_host:
            adapters["email"] = SmtpEmailAdapter(
                settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                tls=cast(TlsMode, settings.smtp_tls),
                timeout=timeout,
            )
        if settings.sms_gateway_url:
            adapters["sms"] = HttpSmsAdapter(
                settings.sms_gateway_url,
                api_key=settings.sms_api_key,
                api_key_header=settings.sms_api_key_header,
                sender=settings.sms_sender,
                timeout=timeout,
            )
        if settings.push_webhook_url:
            if not settings.push_webhook_secret:
                raise ValueError(
                    "push: OVERDUE_PUSH_WEBHOOK_URL needs OVERDUE_PUSH_WEBHOOK_SECRET to sign with"
                )
            adapters["push"] = WebhookPushAdapter(
                settings.push_webhook_url, secret=settings.push_webhook_secret, timeout=timeout
            )
    except ValueError as error:
        raise ChannelSettingsError(f"channel settings: {error}") from None
    return ChannelRouter(adapters)
