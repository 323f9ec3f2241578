"""Chooses the provider per channel; channels without one keep their messages queued in the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from activities.messaging import ChannelAdapter, RenderedMessage

Channel = Literal["sms", "email", "push"]
CHANNELS: tuple[Channel, ...] = ("sms", "email", "push")


class ChannelRouter:
    """A ChannelAdapter over one adapter per channel.

    `CollectionActivities` asks `adapter_for(channel)` first: None means "no provider: leave it queued for a
    dispatcher", so a router with only e-mail configured still records SMS and push in the outbox.
    """

    def __init__(self, adapters: Mapping[Channel, ChannelAdapter] | None = None) -> None:
        unknown = set(adapters or {}) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) {sorted(unknown)}; channels are {', '.join(CHANNELS)}")
        self._adapters: dict[str, ChannelAdapter] = {str(k): v for k, v in (adapters or {}).items()}

    @property
    def channels(self) -> list[str]:
        """The channels that deliver (the others stay queued), in a fixed order."""
        return [channel for channel in CHANNELS if channel in self._adapters]

    def adapter_for(self, channel: str) -> ChannelAdapter | None:
        return self._adapters.get(channel)

    async def deliver(self, message: RenderedMessage) -> str:
        adapter = self.adapter_for(message.channel)
        if adapter is None:
            raise LookupError(f"no provider for channel {message.channel!r}: ask adapter_for() first")
        return await adapter.deliver(message)

    async def aclose(self) -> None:
        """Close every adapter that holds connections (HTTP sessions)."""
        for adapter in self._adapters.values():
            close = getattr(adapter, "aclose", None)
            if close is not None:
                await close()
