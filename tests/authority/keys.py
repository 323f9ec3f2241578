"""Fixed test keys (reproducible seeds), so recorded histories verify again when the replay test runs.

`use_test_authority` is what every test gets (tests/conftest.py): the worker of the test process trusts
TEST_RING and a CollectionsStarter built without a signer signs with the three test keys, as `make run`'s
single process does with its dev keys.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio.client import Client

from authority import Actor, Signer, SigningKey, TrustedKeys
from authority.client import SigningInterceptor, named_actor, signing_client

ADMIN_KEY = SigningKey.generate("test-admin-1", "admin", ("collector", "supervisor", "admin"), seed=b"a" * 32)
OPERATOR_KEY = SigningKey.generate("test-operator-1", "operator", ("operator",), "ops.test", seed=b"o" * 32)
SERVICING_KEY = SigningKey.generate(
    "test-servicing-1", "servicing", ("servicing",), "servicing", seed=b"s" * 32
)
KEYS = (ADMIN_KEY, OPERATOR_KEY, SERVICING_KEY)
TEST_RING = TrustedKeys(key.public() for key in KEYS)
TEST_SIGNER = Signer(KEYS)
SIGNING_KEYS_JSON = json.dumps([key.to_json() for key in KEYS])

SUPERVISOR = Actor("wang.boss", "supervisor")
COLLECTOR = Actor("c1", "collector")
SERVICING = Actor("servicing", "servicing")
OPERATOR = Actor("ops.test", "operator")


def signed(client: Client, clock: Callable[[], Awaitable[datetime]] | None = None) -> Client:
    """`client` signing every signal and update as the actor its request names (servicing otherwise)."""
    return signing_client(client, SigningInterceptor(TEST_SIGNER, named_actor(SERVICING), clock))
