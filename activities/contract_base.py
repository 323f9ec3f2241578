"""The base of every activity contract (activities/contracts.py, activities/journal_contracts.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


IdempotencyKey = str
