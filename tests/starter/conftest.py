"""Fixtures of the starter tests that run the CLI as a subprocess against a worker of the test process."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.client import Client

from privacy.converter import data_converter
from privacy.keyring import KeyRing

# The CLI encrypts payloads (privacy/, through connect()): it, the worker and the starter of a test share this
# key ring and the database holding the loans' data keys.
RING = KeyRing.generate()


@pytest.fixture
def cli_encryption(monkeypatch: pytest.MonkeyPatch, migrated_db: str) -> None:
    """The key ring and database the CLI subprocesses of a test use (they inherit the environment)."""
    monkeypatch.setenv("OVERDUE_CODEC_KEYS", RING.to_json())
    monkeypatch.setenv("DATABASE_URL", migrated_db)


@pytest.fixture
def product_client(local_client: Client, db_pool: asyncpg.Pool) -> Client:
    """`local_client` speaking the product's encrypted converter, as the CLI does."""
    config = local_client.config()
    config["data_converter"] = data_converter(RING, db_pool)
    return Client(**config)
