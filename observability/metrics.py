"""The business metrics, in their own prometheus_client registry (served by observability/serve.py).

Counters count facts once: the journal's after its transaction commits, and only rows it inserted (a retried
batch finds its rows stored and counts nothing again); the activities' only when the receipt is not a
duplicate. A worker killed between the commit and the count loses that count: the metrics are at most once,
the journal (PostgreSQL) is the record. Every label is a closed set (observability/labels.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)


def _counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, documentation, labelnames=labels, registry=REGISTRY)


journal_entries = _counter(
    "overdue_journal_entries",
    "Journal entries by kind and what the writer did with them (written, duplicate, dead_lettered).",
    ("kind", "outcome"),
)
journal_dead_letters = _counter(
    "overdue_journal_dead_lettered",
    "Journal entries kept apart as dead letters for the first time (the admin UI's "
    "overdue_journal_dead_letters gauge is the table's total).",
    ("kind",),
)
contacts = _counter(
    "overdue_contacts", "Contact attempts journaled, by channel and result.", ("channel", "result")
)
deferrals = _counter(
    "overdue_deferrals", "Contact steps deferred or dropped by the contact rules.", ("rule", "channel")
)
holds = _counter("overdue_holds", "Holds raised, resolved or expired.", ("hold", "action"))
promises = _counter("overdue_promises", "Promises to pay by fate (made, kept, broken, cancelled).", ("fate",))
payments = _counter(
    "overdue_payments", "Payments journaled, applied to the case or not.", ("currency", "applied")
)
payments_applied_minor = _counter(
    "overdue_payments_applied_minor_units",
    "Sum of applied payments in minor units of their currency (compare within one currency only).",
    ("currency",),
)
stage_entries = _counter(
    "overdue_stage_entries", "Cases entering a stage, by jurisdiction.", ("stage", "jurisdiction")
)
signals_refused = _counter(
    "overdue_signals_refused",
    "Signals refused because their signed assertion did not verify (journaled as signal_refused).",
    ("signal",),
)
placements = _counter("overdue_placements", "Accounts placed with a collection agency.", ("currency",))
recalls = _counter("overdue_recalls", "Placements recalled from an agency, by reason.", ("reason",))
letters = _counter(
    "overdue_letters", "Legal documents generated (lawyer's letters, validation notices).", ("document",)
)
registered_mail = _counter("overdue_registered_mail", "Letters dispatched by registered mail.")
litigation_referrals = _counter(
    "overdue_litigation_referrals", "Loans referred to litigation.", ("currency",)
)
stuck_loans = Gauge(
    "overdue_stuck_loans",
    "Open loans whose workflow should have woken more than the grace period ago and has written nothing "
    "since (observability/stuck.py).",
    labelnames=("stage",),
    registry=REGISTRY,
)
stuck_loans_checked = Gauge(
    "overdue_stuck_loans_checked_timestamp_seconds",
    "When the stuck-loans query last succeeded (Unix time).",
    registry=REGISTRY,
)
