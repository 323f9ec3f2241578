"""What the fault suite counts after a fault, and what it calls a loss, a duplicate or a stuck loan.

Counts come from outside the worker: the sandboxes' own logs (one line per delivery they accepted; the SMTP
sandbox keeps one .eml per mail received), the outbox (`messages`), the journal, agency placements, and the
Temporal histories of every workflow.
"""

from __future__ import annotations

import email.parser
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

SMTP_KEY_HEADER = "X-Overdue-Idempotency-Key"  # activities/channels/smtp.py IDEMPOTENCY_HEADER


@dataclass
class Counts:
    deliveries: dict[str, int] = field(default_factory=dict)  # channel -> deliveries logged
    duplicates: dict[str, int] = field(default_factory=dict)  # channel -> keys delivered more than once
    outbox: dict[str, int] = field(default_factory=dict)  # status -> rows
    sent_not_delivered: int = 0  # outbox says sent, the provider never got it: a loss
    delivered_not_sent: int = 0  # the provider got it, the outbox never learned (still queued/failed)
    queued_stale: int = 0  # still queued longer than the slack after being written: stuck in the outbox
    journal_missing: int = 0  # a sent message without its contact_attempt journal row
    journal_extra: int = 0  # more than one contact_attempt for one message
    placements: int = 0  # placement rows in the database
    agency_duplicates: int = 0  # placement idempotency keys the sandbox agency logged more than once
    workflows: dict[str, int] = field(default_factory=dict)  # execution status -> count
    stuck: list[str] = field(default_factory=list)  # workflow ids with no progress past a due time

    def problems(self, provider_down: bool = False) -> list[str]:
        """What is wrong. `provider_down`: the scenario kept a provider failing longer than a contact is
        retried (CONTACT_RETRY gives up, the step falls back), so messages left 'queued' are the outbox's
        documented state for a message not delivered (superseded by a later one, or for a dispatcher)."""
        found = []
        if not sum(self.deliveries.values()):
            found.append("nothing delivered at all: the scenario exercised nothing")
        for channel, dups in self.duplicates.items():
            if dups and channel != "email":
                found.append(f"{dups} duplicate {channel} deliveries")
        if self.sent_not_delivered:
            found.append(f"{self.sent_not_delivered} messages marked sent but never delivered (loss)")
        if self.delivered_not_sent:
            found.append(f"{self.delivered_not_sent} deliveries the outbox never recorded as sent")
        if self.queued_stale and not provider_down:
            found.append(f"{self.queued_stale} messages queued longer than the slack (stuck in the outbox)")
        if self.journal_missing or self.journal_extra:
            found.append(f"journal: {self.journal_missing} missing, {self.journal_extra} extra")
        if self.agency_duplicates:
            found.append(f"{self.agency_duplicates} duplicate agency placements")
        fine = ("RUNNING", "COMPLETED", "CONTINUED_AS_NEW")
        bad = {k: v for k, v in self.workflows.items() if k not in fine}
        if bad:
            found.append(f"workflows ended badly: {bad}")
        if self.stuck:
            found.append(f"{len(self.stuck)} stuck workflows, e.g. {self.stuck[:3]}")
        return found

    def lines(self) -> list[str]:
        email_dups = self.duplicates.get("email", 0)
        return [
            f"  deliveries        {self.deliveries}  (duplicate keys: {self.duplicates})",
            f"  outbox            {self.outbox} ({self.queued_stale} queued past the slack)",
            f"  sent, never delivered {self.sent_not_delivered}; delivered, not marked sent "
            f"{self.delivered_not_sent}",
            f"  journal           {self.journal_missing} missing, {self.journal_extra} extra",
            f"  agency            {self.placements} placements, {self.agency_duplicates} duplicate keys",
            f"  workflows         {self.workflows}",
            f"  stuck             {len(self.stuck)} {self.stuck[:3]}",
            *(
                [f"  note              {email_dups} e-mail(s) delivered twice: SMTP is at-least-once "
                 "(README Channels); same Message-ID, so clients drop the repeat"]
                if email_dups else []
            ),
        ]  # fmt: skip


def _jsonl_keys(path: Path) -> Counter[str]:
    import json

    keys: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                if entry.get("idempotency_key") and entry.get("event", "placement") == "placement":
                    keys[str(entry["idempotency_key"])] += 1
    return keys


def _mail_keys(directory: Path) -> Counter[str]:
    keys: Counter[str] = Counter()
    parser = email.parser.BytesHeaderParser()
    for eml in directory.glob("**/*.eml") if directory.exists() else []:
        key = parser.parsebytes(eml.read_bytes()).get(SMTP_KEY_HEADER)
        if key:
            keys[str(key)] += 1
    return keys


def _delivered(state_dir: Path) -> dict[str, Counter[str]]:
    return {
        "sms": _jsonl_keys(state_dir / "sms.jsonl"),
        "push": _jsonl_keys(state_dir / "push.jsonl"),
        "email": _mail_keys(state_dir / "mailbox"),
    }


async def count(state_dir: Path, pool: Any, client: Client, slack: timedelta) -> Counts:
    counts = Counts()
    delivered = _delivered(state_dir)
    for channel, keys in delivered.items():
        counts.deliveries[channel] = sum(keys.values())
        counts.duplicates[channel] = sum(1 for n in keys.values() if n > 1)
    rows = await pool.fetch(
        "SELECT id::text, idempotency_key, channel, status, created_at < now() - $1::interval AS old "
        "FROM messages",
        slack,
    )
    counts.outbox = dict(Counter(r["status"] for r in rows))
    for r in rows:
        got = delivered[r["channel"]][r["idempotency_key"]]
        if r["status"] == "sent" and not got:
            counts.sent_not_delivered += 1
        if r["status"] != "sent" and got:
            counts.delivered_not_sent += 1
        counts.queued_stale += r["status"] == "queued" and r["old"]
    journal = Counter(
        str(r["content_ref"])
        for r in await pool.fetch(
            "SELECT content_ref FROM journal_contact_attempts WHERE channel IN ('sms', 'email', 'push')"
        )
    )
    for r in rows:
        if r["status"] == "sent":
            seen = journal[r["id"]]
            counts.journal_missing += seen == 0
            counts.journal_extra += seen > 1
    counts.placements = await pool.fetchval("SELECT count(*) FROM agency_placements")
    counts.agency_duplicates = sum(1 for n in _jsonl_keys(state_dir / "agency.jsonl").values() if n > 1)
    statuses: Counter[str] = Counter()
    async for wf in client.list_workflows():
        status = wf.status.name if wf.status is not None else "UNKNOWN"
        statuses[status] += 1
        if wf.status == WorkflowExecutionStatus.RUNNING and await _stuck(client, wf.id, wf.run_id, slack):
            counts.stuck.append(wf.id)
    counts.workflows = dict(statuses)
    return counts


async def _stuck(client: Client, workflow_id: str, run_id: str | None, slack: timedelta) -> bool:
    """No history event for `slack`, while a timer is overdue by more than `slack` or a workflow task or an
    activity is open (a healthy loan fires its timers and finishes its tasks; retries after an outage show
    as an activity open longer, hence the slack)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    now = datetime.now(UTC)
    timers: dict[str, datetime] = {}
    open_tasks: set[int] = set()
    last = now
    for event in history.events:
        last = event.event_time.ToDatetime(tzinfo=UTC)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            timers[attrs.timer_id] = last + attrs.start_to_fire_timeout.ToTimedelta()
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timers.pop(event.timer_fired_event_attributes.timer_id, None)
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            timers.pop(event.timer_canceled_event_attributes.timer_id, None)
        elif kind in _OPENING:
            open_tasks.add(event.event_id)
        else:
            name = event.WhichOneof("attributes")
            if name in _CLOSING:
                open_tasks.discard(getattr(event, name).scheduled_event_id)
    if now - last < slack:
        return False
    overdue = any(due < now - slack for due in timers.values())
    return overdue or bool(open_tasks)


_OPENING = (EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
_CLOSING = (
    "activity_task_completed_event_attributes",
    "activity_task_failed_event_attributes",
    "activity_task_timed_out_event_attributes",
    "activity_task_canceled_event_attributes",
    "workflow_task_completed_event_attributes",
    "workflow_task_failed_event_attributes",
    "workflow_task_timed_out_event_attributes",
)
