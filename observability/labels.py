"""The closed set of values each business-metric label may take.

A label value outside its set is reported as "other": a metric label is an index in Prometheus, so an open
set (a loan id, a name, a collector's note) would both leak personal data to every dashboard viewer and grow
the time-series count without bound. The sets come from the domain's own Literals wherever one exists, so a
new channel or rule added there is counted under its name without a change here.
"""

from __future__ import annotations

from typing import get_args

from activities.contracts import RecallRequest
from activities.journal_contracts import JournalHold, JournalKind
from domain.contact_profiles import CONTACT_CHANNELS
from domain.contact_state import ContactRule
from domain.holds import CallOutcomeKind
from domain.loan import CURRENCIES, Jurisdiction
from domain.strategy import STAGE_ORDER

OTHER = "other"

# What a contact attempt's `status` may say: the outbox's answer to send_message, a failure the workflow
# records, a letter posted, a collector's claim of a call or visit, and the outcome a collector reports.
CONTACT_RESULTS: tuple[str, ...] = (
    "queued",
    "sent",
    "delivered",
    "superseded",
    "failed",
    "claimed",
    *get_args(CallOutcomeKind),
)

LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "kind": get_args(JournalKind),
    "outcome": ("written", "duplicate", "dead_lettered"),
    "channel": CONTACT_CHANNELS,
    "result": CONTACT_RESULTS,
    "rule": get_args(ContactRule),
    "hold": get_args(JournalHold.model_fields["kind"].annotation),
    "action": get_args(JournalHold.model_fields["action"].annotation),
    "fate": ("made", "kept", "broken", "cancelled"),
    "currency": tuple(sorted(CURRENCIES)),
    "applied": ("true", "false"),
    "stage": STAGE_ORDER,
    "jurisdiction": get_args(Jurisdiction),
    # Only signals are journaled when refused: an update's validator refuses before anything is recorded.
    "signal": ("payment", "close"),
    "reason": get_args(RecallRequest.model_fields["reason"].annotation),
    "document": ("lawyer_letter", "validation_notice"),
}


def closed(label: str, value: object) -> str:
    """`value` when it belongs to `label`'s closed set, else "other" (never the value itself)."""
    text = str(value).lower() if isinstance(value, bool) else value
    return text if isinstance(text, str) and text in LABEL_VALUES[label] else OTHER
