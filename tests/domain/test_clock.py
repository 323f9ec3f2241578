"""The collections clock: identity in production, sped up for the demo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.clock import CollectionsClock

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_real_time_clock_is_identity() -> None:
    clock = CollectionsClock.real_time(START)
    later = START + timedelta(days=3, seconds=7)

    assert clock.now(later) == later
    assert clock.now(START) == START


def test_real_time_clock_waits_the_collections_delay() -> None:
    clock = CollectionsClock.real_time(START)

    assert clock.real_delay(timedelta(hours=5)) == timedelta(hours=5)


def test_demo_clock_starts_at_its_anchor() -> None:
    clock = CollectionsClock.demo(START, day_seconds=10)

    assert clock.now(START) == START


def test_demo_clock_turns_ten_real_seconds_into_one_collections_day() -> None:
    clock = CollectionsClock.demo(START, day_seconds=10)

    assert clock.speed == 8640.0
    assert clock.now(START + timedelta(seconds=10)) == START + timedelta(days=1)
    assert clock.now(START + timedelta(seconds=450)) == START + timedelta(days=45)


def test_demo_clock_real_delay_of_one_day_is_ten_seconds() -> None:
    clock = CollectionsClock.demo(START, day_seconds=10)

    assert clock.real_delay(timedelta(days=1)) == timedelta(seconds=10)
    assert clock.real_delay(timedelta(hours=12)) == timedelta(seconds=5)


def test_real_delay_of_a_past_instant_is_zero() -> None:
    clock = CollectionsClock.demo(START, day_seconds=10)

    assert clock.real_delay(timedelta(seconds=-30)) == timedelta(0)
    assert clock.real_delay(timedelta(0)) == timedelta(0)


def test_demo_clock_slower_than_real_time_is_rejected() -> None:
    with pytest.raises(ValidationError):
        CollectionsClock.demo(START, day_seconds=2 * 86_400)
