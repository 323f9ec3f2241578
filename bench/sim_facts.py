"""What the simulation recorded: plain facts, one list per kind, with no product imports.

The recording activities (bench/sim_activities.py) and the driver (bench/sim_driver.py) append here; the
invariant checker (bench/invariants.py) reads only this and the generated scenarios. Times are the server's
collections time (UTC-aware): an activity's is the scheduled time of the attempt that did the work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Message:
    loan_id: str
    at: datetime
    channel: str  # sms, email, push
    recipient_kind: str  # phone, email, app
    template: str
    idempotency_key: str
    step_key: str
    validation_notice: bool  # the request's variables carry the validation notice
    delivered: bool  # False: the provider failed it (outage or rejection)
    error: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Task:
    loan_id: str
    at: datetime
    due_at: datetime
    kind: str  # call, visit, review, promise_follow_up
    step_key: str
    idempotency_key: str
    task_id: str


@dataclass(frozen=True)
class TaskCancel:
    loan_id: str
    at: datetime
    reason: str
    step_keys: tuple[str, ...] | None  # None: every open task of the loan
    cancelled: tuple[str, ...] = ()  # ids of the tasks that were open and are now cancelled


@dataclass(frozen=True)
class Placement:
    loan_id: str
    at: datetime
    idempotency_key: str
    placement_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Recall:
    loan_id: str
    at: datetime
    placement_id: str
    reason: str


@dataclass(frozen=True)
class Letter:
    loan_id: str
    at: datetime
    idempotency_key: str
    document_id: str
    issued_on: date
    respond_by: date


@dataclass(frozen=True)
class Mail:
    loan_id: str
    at: datetime
    document_id: str


@dataclass(frozen=True)
class Litigation:
    loan_id: str
    at: datetime
    idempotency_key: str
    document_ids: tuple[str, ...]


@dataclass(frozen=True)
class JournalRecord:
    loan_id: str
    at: datetime  # when the batch was written
    kind: str
    key: str
    entry_at: datetime
    data: dict[str, Any]
    rejected: str | None = None  # why the real store would refuse it (then it is not written)


@dataclass(frozen=True)
class ClientAction:
    """A signal or update the driver sent. Rejected updates must change nothing."""

    loan_id: str
    at: datetime  # server time just after it was accepted (or refused)
    name: str  # start, payment, close, promise, plan, settlement, dispute, ..., call_outcome
    accepted: bool
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    sent_at: datetime | None = None  # server time just before it was sent (None: same as `at`)

    @property
    def since(self) -> datetime:
        """The earliest instant the workflow may have applied it (holds computed from it end earliest)."""
        return self.sent_at or self.at


@dataclass(frozen=True)
class Ending:
    loan_id: str
    status: str  # completed, failed, running (at the horizon), not_started
    outcome: str | None
    at: datetime | None  # collections time the workflow returned


@dataclass
class Facts:
    messages: list[Message] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    cancels: list[TaskCancel] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    recalls: list[Recall] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    litigations: list[Litigation] = field(default_factory=list)
    journal: list[JournalRecord] = field(default_factory=list)
    actions: list[ClientAction] = field(default_factory=list)
    endings: dict[str, Ending] = field(default_factory=dict)
    activity_calls: int = 0  # every attempt of every activity, failed ones included

    def by_loan(self) -> dict[str, LoanFacts]:
        loans: dict[str, LoanFacts] = defaultdict(LoanFacts)
        for name in ("messages", "tasks", "cancels", "placements", "recalls", "letters", "mails"):
            for fact in getattr(self, name):
                getattr(loans[fact.loan_id], name).append(fact)
        for lit in self.litigations:
            loans[lit.loan_id].litigations.append(lit)
        for record in self.journal:
            loans[record.loan_id].journal.append(record)
        for action in self.actions:
            loans[action.loan_id].actions.append(action)
        for loan_id, ending in self.endings.items():
            loans[loan_id].ending = ending
        return dict(loans)


@dataclass
class LoanFacts:
    messages: list[Message] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    cancels: list[TaskCancel] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    recalls: list[Recall] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    litigations: list[Litigation] = field(default_factory=list)
    journal: list[JournalRecord] = field(default_factory=list)
    actions: list[ClientAction] = field(default_factory=list)
    ending: Ending | None = None
