"""Strategies and contact profiles as content-addressed definitions shared by every loan that uses them.

A definition's reference is the sha256 of its canonical JSON (keys sorted, no whitespace): the same strategy
has the same reference in every process and every release that does not change it, and a reference always
means the same content — which is what makes resolving one inside a workflow deterministic on replay. A loan's
workflow input may carry the reference instead of a copy (`CollectionInput.strategy_ref`), and every cached
workflow that uses a definition holds the one interned object of the registry below, not its own copy.

The registry is process-wide (imported passed through by the workflows). What it does not hold it asks its
fetcher for (the worker installs one that reads the `definitions` table, activities/definitions.py); a
reference nobody can resolve is an error, never a guess.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import BaseModel

from domain.contact_profiles import ContactProfile
from domain.strategy import Strategy

Kind = Literal["strategy", "profile"]
KINDS: dict[Kind, type[Strategy] | type[ContactProfile]] = {"strategy": Strategy, "profile": ContactProfile}
REF_PATTERN = r"^sha256:[0-9a-f]{64}$"

M = TypeVar("M", Strategy, ContactProfile, Strategy | ContactProfile)
# (kind, ref) -> the definition's canonical JSON, or None when it is not stored anywhere.
Fetcher = Callable[[Kind, str], str | None]


class UnknownDefinition(LookupError):
    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} {ref} is not stored (was it saved before the loan was started?)")


def canonical_json(definition: BaseModel) -> str:
    return json.dumps(definition.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def text_ref(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def definition_ref(definition: BaseModel) -> str:
    return text_ref(canonical_json(definition))


class Definitions:
    """Interned definitions by reference; thread-safe (workflow activations run on worker threads)."""

    def __init__(self) -> None:
        self._by_ref: dict[str, BaseModel] = {}
        self._refs: dict[int, str] = {}  # id() of an interned object -> its ref: no rehash of the same object
        self._lock = threading.Lock()
        self.fetcher: Fetcher | None = None

    def intern(self, definition: M) -> tuple[str, M]:
        """The reference and the one shared object with this content (the first one seen)."""
        known = self._refs.get(id(definition))
        if known is not None and self._by_ref.get(known) is definition:
            return known, definition
        ref = definition_ref(definition)
        with self._lock:
            shared = self._by_ref.setdefault(ref, definition)
            self._refs[id(shared)] = ref
        assert isinstance(shared, type(definition))
        return ref, shared

    def resolve(self, kind: Kind, ref: str) -> BaseModel:
        """The definition `ref` names, from memory or else from the fetcher; its content is checked against
        the reference, so a tampered or corrupted row is refused rather than collected under."""
        found = self._by_ref.get(ref)
        if isinstance(found, KINDS[kind]):
            return found
        text = self.fetcher(kind, ref) if self.fetcher is not None else None
        if text is None:
            raise UnknownDefinition(kind, ref)
        # The reference is checked against the stored text, not against the model re-serialized: a release
        # that adds a field (with a default keeping the old behaviour) must still resolve every definition
        # stored before it, or every running loan started by reference would fail at its next replay.
        actual = text_ref(text)
        if actual != ref:
            raise ValueError(f"{kind} {ref}: the stored definition hashes to {actual}")
        definition: Strategy | ContactProfile = (
            Strategy.model_validate_json(text)
            if kind == "strategy"
            else ContactProfile.model_validate_json(text)
        )
        with self._lock:
            shared = self._by_ref.setdefault(ref, definition)
            self._refs[id(shared)] = ref
        return shared

    def strategy(self, ref: str) -> Strategy:
        found = self.resolve("strategy", ref)
        assert isinstance(found, Strategy)
        return found

    def profile(self, ref: str) -> ContactProfile:
        found = self.resolve("profile", ref)
        assert isinstance(found, ContactProfile)
        return found


REGISTRY = Definitions()
