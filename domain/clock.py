"""The collections clock: real time, or real time sped up for the demo.

Production loans run at speed 1: a collections day is a day. The demo (`make run` with
OVERDUE_DEMO_DAY_SECONDS) runs faster so a user can watch a loan go from reminder to legal in minutes.
The clock maps the workflow's real time (`workflow.now()`) to collections time and back; both anchors
travel with continue-as-new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

DAY = timedelta(days=1)


class CollectionsClock(BaseModel):
    model_config = ConfigDict(frozen=True)

    real_anchor: datetime
    collections_anchor: datetime
    speed: float = Field(default=1.0, ge=1.0, le=864000.0, description="collections seconds per real second")

    @classmethod
    def real_time(cls, now: datetime) -> CollectionsClock:
        return cls(real_anchor=now, collections_anchor=now)

    @classmethod
    def demo(cls, now: datetime, day_seconds: float) -> CollectionsClock:
        return cls(real_anchor=now, collections_anchor=now, speed=DAY.total_seconds() / day_seconds)

    def now(self, real_now: datetime) -> datetime:
        if self.speed == 1.0:
            return real_now
        return self.collections_anchor + (real_now - self.real_anchor) * self.speed

    def real_delay(self, collections_delay: timedelta) -> timedelta:
        """How long to wait in real time for `collections_delay` to pass on this clock."""
        if collections_delay <= timedelta(0):
            return timedelta(0)
        return collections_delay / self.speed if self.speed != 1.0 else collections_delay
