"""The worker's side: install the configured trust ring before the first workflow task runs."""

from __future__ import annotations

import structlog

from authority import trust
from authority.settings import AuthoritySettings

log = structlog.get_logger("overdue.authority")


def install_trust(settings: AuthoritySettings | None = None) -> int:
    """Install OVERDUE_TRUSTED_KEYS(_FILE); returns how many keys. None configured: the ring in place is
    kept (empty unless a test installed one), and every update or signal acting for a person is refused."""
    ring = (settings or AuthoritySettings()).trust()
    if len(ring):
        trust.install(ring)
        log.info("trusted keys installed", kids=ring.kids())
    elif not len(trust.installed()):
        log.warning("no trusted keys: every update and signal acting for a person will be refused")
    return len(ring)
