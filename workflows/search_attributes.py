"""Typed search attributes operators filter on in the Web UI. Never PII: they are stored unencrypted.

Registered by the embedded stack (`temporal server start-dev --search-attribute ...`), by the tests, and in
deploy/ for a real cluster (`temporal operator search-attribute create`).
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey

COLLECTION_STAGE = SearchAttributeKey.for_keyword("CollectionStage")
OVERDUE_SINCE = SearchAttributeKey.for_datetime("OverdueSince")
AMOUNT_OVERDUE = SearchAttributeKey.for_int("AmountOverdue")  # minor units of the loan's currency
CURRENCY = SearchAttributeKey.for_keyword("Currency")
SEGMENT = SearchAttributeKey.for_keyword("Segment")
COLLECTION_OUTCOME = SearchAttributeKey.for_keyword("CollectionOutcome")

ALL = (COLLECTION_STAGE, OVERDUE_SINCE, AMOUNT_OVERDUE, CURRENCY, SEGMENT, COLLECTION_OUTCOME)

_CLI_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int"}


def dev_server_args() -> list[str]:
    """`--search-attribute Name=Type` pairs for `temporal server start-dev`."""
    args: list[str] = []
    for key in ALL:
        args += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}"]
    return args


async def register(client: Client, namespace: str = "default") -> None:
    """Register the attributes on a server through the operator API (test server, or a cluster at deploy)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL},
        )
    )
