"""Fixtures for the activity tests: the activities on the shared test database.

Tests on the shared database (`db_pool`) use fresh loan ids and idempotency keys, so they never see each
other's rows; throw-away databases (`empty_db`, `own_db_pool`) are in tests/conftest.py.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from activities.collection_activities import CollectionActivities


@pytest.fixture
def activities(db_pool: asyncpg.Pool) -> CollectionActivities:
    return CollectionActivities(db_pool)


@pytest.fixture
def loan_id() -> str:
    return f"LN-{uuid.uuid4().hex[:12]}"
