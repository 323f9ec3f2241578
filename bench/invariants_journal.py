"""Journal invariants: every recorded fact journaled once, nothing journaled that did not happen.

Part of the invariant checker (bench/invariants.py), written apart from the workflow like the rest of it: it
matches the journal entries the workflow wrote against the facts the recording activities and the driver saw,
using only the journal's documented columns (activities/contracts.py, the Journal* models).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from bench.sim_facts import JournalRecord, LoanFacts


@dataclass(frozen=True)
class Violation:
    kind: str  # one of bench.invariants.KINDS
    loan_id: str
    at: datetime | None
    detail: str


SIM_COLLECTOR = "sim.collector"  # the driver's collector name (bench/sim_driver.py COLLECTOR)
# What each accepted client update must leave as a hold entry: (kind, action); None: no hold entry.
HOLD_ENTRIES = {
    "dispute": ("dispute", "raised"),
    "resolve_dispute": ("dispute", "resolved"),
    "breathing_space": ("breathing_space", "raised"),
    "hardship": ("hardship", "raised"),
    "cease": ("cease_all", "raised"),
    "opt_out": ("opt_out_channel", "raised"),
}
MESSAGE_CHANNELS = ("sms", "email", "push")


def _violation(kind: str, loan_id: str, record: JournalRecord | None, detail: str) -> Violation:
    return Violation(kind, loan_id, record.entry_at if record else None, detail)


def _written(f: LoanFacts) -> list[JournalRecord]:
    """Entries the store kept: first write of each key (a retried batch is idempotent), none refused."""
    seen: set[str] = set()
    kept: list[JournalRecord] = []
    for record in f.journal:
        if record.rejected is None and record.key not in seen:
            seen.add(record.key)
            kept.append(record)
    return kept


def journal_violations(loan_id: str, f: LoanFacts) -> Iterator[Violation]:
    written_keys = {r.key for r in f.journal if r.rejected is None}
    for record in f.journal:
        if record.rejected is not None and record.key not in written_keys:
            yield _violation("journal_rejected", loan_id, record, f"{record.kind}: {record.rejected}")
    entries = _written(f)
    yield from _messages(loan_id, f, entries)
    yield from _payments(loan_id, f, entries)
    yield from _holds_and_promises(loan_id, f, entries)
    yield from _cancels(loan_id, f, entries)


def _messages(loan_id: str, f: LoanFacts, entries: list[JournalRecord]) -> Iterator[Violation]:
    attempts = [r for r in entries if r.kind == "contact_attempt"]
    refs = Counter(
        str(r.data.get("content_ref") or r.data.get("provider_id"))
        for r in attempts
        if r.data.get("status") != "failed"
    )
    delivered = {m.message_id: m for m in f.messages if m.delivered and m.message_id}
    for message_id, message in delivered.items():
        if refs[message_id] == 0:
            yield _violation(
                "journal_missing",
                loan_id,
                None,
                f"no contact_attempt for {message.channel} {message_id} ({message.step_key})",
            )
    for record in attempts:
        ref = record.data.get("content_ref") or record.data.get("provider_id")
        channel = record.data.get("channel")
        if channel in MESSAGE_CHANNELS and record.data.get("status") != "failed" and ref not in delivered:
            yield _violation(
                "journal_extra", loan_id, record, f"contact_attempt {channel} {ref} for no delivered message"
            )
    for ref, count in refs.items():
        if ref in delivered and count > 1:
            yield _violation("journal_extra", loan_id, None, f"{count} contact_attempt entries for {ref}")
    outcomes = sum(1 for a in f.actions if a.accepted and a.name == "call_outcome")
    by_collector = sum(1 for r in attempts if r.data.get("actor") == SIM_COLLECTOR)
    if by_collector < outcomes:
        yield _violation(
            "journal_missing", loan_id, None, f"{outcomes} call outcomes, {by_collector} attempts journaled"
        )
    elif by_collector > outcomes:
        yield _violation(
            "journal_extra", loan_id, None, f"{by_collector} collector contact_attempts, {outcomes} outcomes"
        )


def _payments(loan_id: str, f: LoanFacts, entries: list[JournalRecord]) -> Iterator[Violation]:
    journaled = Counter(str(r.data.get("payment_id")) for r in entries if r.kind == "payment")
    payments = [r for r in entries if r.kind == "payment"]
    applied = Counter(str(r.data.get("payment_id")) for r in payments if r.data.get("applied") is True)
    signalled = {str(a.params["payment_id"]) for a in f.actions if a.accepted and a.name == "payment"}
    for payment_id in sorted(signalled):
        if journaled[payment_id] == 0:
            yield _violation("journal_missing", loan_id, None, f"payment {payment_id} not journaled")
    for payment_id, count in journaled.items():
        if payment_id not in signalled:
            yield _violation("journal_extra", loan_id, None, f"payment {payment_id} never signalled")
        elif applied[payment_id] > 1:
            yield _violation("journal_extra", loan_id, None, f"payment {payment_id} applied {count} times")


def _holds_and_promises(loan_id: str, f: LoanFacts, entries: list[JournalRecord]) -> Iterator[Violation]:
    accepted = [a for a in f.actions if a.accepted]
    wanted = Counter(HOLD_ENTRIES[a.name] for a in accepted if a.name in HOLD_ENTRIES)
    wanted.update(
        (str(a.params["reason"]), "raised") for a in accepted if a.name == "stop"
    )  # bankruptcy, deceased
    wanted.update(("dispute", "raised") for a in accepted if a.params.get("outcome") == "dispute_raised")
    found = Counter(
        (str(r.data.get("kind")), str(r.data.get("action")))
        for r in entries
        if r.kind == "hold" and r.data.get("actor") != "system"
    )
    for key in sorted(set(wanted) | set(found)):
        if found[key] != wanted[key]:
            kind = "journal_missing" if found[key] < wanted[key] else "journal_extra"
            what = f"hold {key[0]} {key[1]}: {wanted[key]} accepted, {found[key]} journaled"
            yield _violation(kind, loan_id, None, what)
    promises = sum(1 for a in accepted if a.name == "promise")
    made = sum(1 for r in entries if r.kind == "promise" and r.data.get("fate") == "made")
    if made != promises:
        kind = "journal_missing" if made < promises else "journal_extra"
        yield _violation(kind, loan_id, None, f"{promises} promises accepted, {made} journaled as made")


def _cancels(loan_id: str, f: LoanFacts, entries: list[JournalRecord]) -> Iterator[Violation]:
    """A cancellation of open tasks is journaled with its reason (a collector_action naming a cancel)."""
    effective = [c for c in f.cancels if c.cancelled]
    if not effective:
        return
    journaled = sum(
        1
        for r in entries
        if r.kind == "collector_action" and "cancel" in f"{r.data.get('action')} {r.data.get('outcome')}"
    )
    if journaled == 0:
        yield _violation(
            "journal_missing", loan_id, None, f"{len(effective)} task cancellations, none journaled"
        )
