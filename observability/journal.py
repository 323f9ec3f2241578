"""Business counters from the journal: every fact the workflow records passes through `record_journal`, so
counting there needs no change to the workflow and sees replays, retries and continue-as-new only once.

`count_committed` is called by the journal activity after its transaction commits, with the entries it
stored for the first time (written, or dead-lettered for the first time) and the duplicates (whose business
counters are left alone): a retried batch counts its facts once, a batch rolled back counts nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from activities.journal_contracts import JournalEntry
from observability import metrics
from observability.labels import closed

WRITTEN = "written"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

log = structlog.get_logger("overdue.observability")


def count_committed(fresh: Iterable[tuple[JournalEntry, str]]) -> None:
    """Count each (entry, outcome) the journal committed; never raises (a metric bug must
    not fail the activity after its rows are committed)."""
    for entry, outcome in fresh:
        try:
            _count(entry, outcome)
        except Exception as error:  # a count lost beats an activity retried (and its facts recounted)
            log.error("business_metric_failed", kind=str(entry.kind), error=type(error).__name__)


def _count(entry: JournalEntry, outcome: str) -> None:
    kind = closed("kind", entry.kind)
    metrics.journal_entries.labels(kind, closed("outcome", outcome)).inc()
    if outcome == DEAD_LETTERED:
        metrics.journal_dead_letters.labels(kind).inc()
        return
    if outcome != WRITTEN:
        return
    data: dict[str, Any] = dict(entry.data or {})
    if kind == "contact_attempt":
        metrics.contacts.labels(
            closed("channel", data.get("channel")), closed("result", data.get("status"))
        ).inc()
    elif kind == "deferral":
        metrics.deferrals.labels(
            closed("rule", data.get("rule")), closed("channel", data.get("channel"))
        ).inc()
    elif kind == "hold":
        metrics.holds.labels(closed("hold", data.get("kind")), closed("action", data.get("action"))).inc()
    elif kind == "promise":
        metrics.promises.labels(closed("fate", data.get("fate"))).inc()
    elif kind == "payment":
        _payment(data)
    elif kind == "stage_transition":
        metrics.stage_entries.labels(
            closed("stage", data.get("to_stage")), closed("jurisdiction", entry.jurisdiction)
        ).inc()
    elif kind == "collector_action" and data.get("action") == "signal_refused":
        # workflows/handlers.py journals a refused signal with the signal's name as the outcome.
        metrics.signals_refused.labels(closed("signal", data.get("outcome"))).inc()


def _payment(data: dict[str, Any]) -> None:
    currency = closed("currency", data.get("currency"))
    applied = data.get("applied") is True
    metrics.payments.labels(currency, "true" if applied else "false").inc()
    amount = data.get("amount_minor")
    if applied and isinstance(amount, int) and amount > 0:
        metrics.payments_applied_minor.labels(currency).inc(amount)
