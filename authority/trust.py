"""The trust ring the loan workflows verify against, installed once when the worker starts.

Workflows import this module passed through the sandbox, so they see the ring the worker installed (the
sandbox re-imports other modules per run, which would lose it). Signal handlers verify again on replay, so
the ring must not change under a history: a key that signed a signal stays in the ring until no open run can
replay that signal (in practice until the loan's run continues as new or closes, README "Who may act").
"""

from __future__ import annotations

from authority.keys import TrustedKeys

_ring = TrustedKeys()


def install(ring: TrustedKeys) -> None:
    """Set the ring for every workflow of this process (worker start; tests)."""
    global _ring
    _ring = ring


def installed() -> TrustedKeys:
    return _ring
