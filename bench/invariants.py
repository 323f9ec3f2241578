"""The invariants every simulated loan lifetime must keep, checked from what was recorded.

Written apart from the code it checks, on purpose: it imports nothing of the product's rules (no contact
rules, contact plan, schedule, case or workflow module). It reads the recorded facts (bench/sim_facts.py),
the generated scenarios, and its own plain table of each jurisdiction's rules below. Holds are taken from the
client's accepted updates, times from the activities' attempts, and the rules from the table, so a bug in the
product's rules cannot hide itself by agreeing with its own checker.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bench.invariants_journal import Violation, journal_violations
from bench.sim_facts import Facts, LoanFacts, Task
from bench.sim_scenario import LoanScenario


@dataclass(frozen=True)
class JurisdictionRules:
    hours: tuple[time, time]  # borrower-local [start, end)
    connected_calls_per_day: int | None = None
    call_attempts: tuple[int, int] | None = None  # (at most this many, in this many days, rolling)
    quiet_days_after_conversation: int | None = None
    validation_notice_days: int | None = None
    dispute_stops_collection: bool = False
    breathing_space_days: int | None = None
    holidays: tuple[date, ...] = ()


# DUPLICATED ON PURPOSE from strategies/contact_profiles.toml (the shipped cn/us/uk profiles): the checker
# must not read the configuration the product reads, or a wrong value there would be "checked" against itself.
# Change both together, after compliance has reviewed the change. The profiles configure no holidays.
RULES: dict[str, JurisdictionRules] = {
    "cn": JurisdictionRules(hours=(time(8), time(22)), connected_calls_per_day=3),
    "us": JurisdictionRules(
        hours=(time(8), time(21)),
        call_attempts=(7, 7),
        quiet_days_after_conversation=7,
        validation_notice_days=5,
        dispute_stops_collection=True,
    ),
    "uk": JurisdictionRules(hours=(time(8), time(21)), breathing_space_days=60),
}
HOURS_CHANNELS = ("sms", "email", "push", "call", "visit")  # letters are read when the borrower chooses
CALL_TASKS = ("call", "promise_follow_up")
CONTACT_TASKS = {"call": "call", "promise_follow_up": "call", "visit": "visit"}
NOTICE_CHANNELS = ("email",)  # channels that can carry the US validation notice (besides letters)
CONVERSATION = ("right_party", "refused", "promise_given", "dispute_raised", "callback_requested")
TASK_SPACING = timedelta(
    hours=1
)  # two open call (or visit) tasks of one loan due closer than this: one too many
HOLD_GRACE = timedelta(hours=1)  # how long the workflow may take to cancel open tasks after a hold or close
FOREVER = datetime.max.replace(tzinfo=ZoneInfo("UTC"))

KINDS = (
    "contact_outside_hours",
    "contact_over_cap",
    "contact_during_hold",
    "contact_after_opt_out",
    "contact_after_cease",
    "contact_after_close",
    "escalation_during_hold",
    "litigation_without_letter",
    "postal_without_address",
    "validation_notice_wrong_channel",
    "validation_notice_missing",
    "open_task_on_closed",
    "open_task_on_hold",
    "duplicate_message",
    "duplicate_placement",
    "duplicate_task",
    "journal_missing",
    "journal_extra",
    "journal_rejected",
    "workflow_not_finished",
)


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = Counter(v.kind for v in self.violations)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def examples(self, per_kind: int = 3) -> dict[str, list[str]]:
        shown: dict[str, list[str]] = defaultdict(list)
        for v in self.violations:
            if len(shown[v.kind]) < per_kind:
                when = f" at {v.at.isoformat(timespec='minutes')}" if v.at else ""
                shown[v.kind].append(f"{v.loan_id}{when}: {v.detail}")
        return dict(shown)


@dataclass(frozen=True)
class Contact:
    at: datetime
    channel: str  # sms, email, push, call, visit
    what: str  # for the report: message key or task id


@dataclass
class Holds:
    """Intervals from the client's accepted updates (and a dispute raised on a call)."""

    stopping: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # everything stops
    cease_at: datetime | None = None
    opt_outs: dict[str, datetime] = field(default_factory=dict)
    closed_at: datetime | None = None


def check(scenarios: list[LoanScenario], facts: Facts) -> Report:
    report = Report()
    loans = facts.by_loan()
    for scenario in scenarios:
        loan = loans.get(scenario.loan_id, LoanFacts())
        report.violations.extend(check_loan(scenario, loan))
    return report


def check_loan(s: LoanScenario, f: LoanFacts) -> Iterator[Violation]:
    rules = RULES[s.jurisdiction]
    zone = ZoneInfo(s.timezone)
    held = holds_of(s, f, rules)
    contacts = contacts_of(f)
    yield from _contacts(s.loan_id, contacts, held, rules, zone)
    yield from _caps(s.loan_id, f, rules, zone)
    yield from _escalation(s.loan_id, f, held, zone)
    yield from _tasks(s.loan_id, f, held)
    yield from _duplicates(s.loan_id, f)
    for message in f.messages:
        if message.delivered and message.validation_notice and message.channel not in NOTICE_CHANNELS:
            yield Violation(
                "validation_notice_wrong_channel",
                s.loan_id,
                message.at,
                f"validation notice recorded on a {message.channel} message ({message.step_key})",
            )
    yield from _validation_notice(s.loan_id, contacts, held, rules, f)
    yield from journal_violations(s.loan_id, f)
    if f.ending is None or f.ending.status != "completed":
        status = f.ending.status if f.ending else "unknown"
        yield Violation("workflow_not_finished", s.loan_id, None, f"workflow {status} at the horizon")


def _validation_notice(
    loan_id: str, contacts: list[Contact], held: Holds, rules: JurisdictionRules, f: LoanFacts
) -> Iterator[Violation]:
    """US: the validation notice goes with the first contact or within the days after it, on a channel that
    carries it (or with a letter), whenever the loan is still open by then."""
    if rules.validation_notice_days is None or not contacts:
        return
    first = contacts[0].at
    deadline = first + timedelta(days=rules.validation_notice_days)
    if (held.closed_at or FOREVER) <= deadline:
        return
    carried = [
        m.at for m in f.messages if m.delivered and m.validation_notice and m.channel in NOTICE_CHANNELS
    ]
    carried += [x.at for x in f.mails]
    if not any(at <= deadline for at in carried):
        yield Violation(
            "validation_notice_missing", loan_id, first, f"no validation notice by {deadline:%Y-%m-%d %H:%M}Z"
        )


def holds_of(s: LoanScenario, f: LoanFacts, rules: JurisdictionRules) -> Holds:
    held = Holds()
    dispute_from: datetime | None = None
    for action in sorted((a for a in f.actions if a.accepted), key=lambda a: a.at):
        name, at = action.name, action.at
        raised_on_call = name == "call_outcome" and action.params.get("outcome") == "dispute_raised"
        if (name == "dispute" or raised_on_call) and dispute_from is None:
            dispute_from = at
        elif name == "resolve_dispute" and dispute_from is not None:
            if rules.dispute_stops_collection:  # until it was surely lifted: from when it was sent
                held.stopping.append((dispute_from, action.since, "dispute"))
            dispute_from = None
        elif name == "breathing_space" and rules.breathing_space_days:
            # From when it was surely applied until it surely ended: never stricter than the workflow.
            until = action.since + timedelta(days=rules.breathing_space_days)
            held.stopping.append((at, until, "breathing space"))
        elif name == "hardship":
            until = action.since + timedelta(days=int(action.params["days"]))
            held.stopping.append((at, until, "hardship"))
        elif name == "cease" and held.cease_at is None:
            held.cease_at = at
        elif name == "opt_out":
            held.opt_outs.setdefault(str(action.params["channel"]), at)
        elif name in ("close", "stop") and held.closed_at is None:
            held.closed_at = at
    if dispute_from is not None and rules.dispute_stops_collection:
        held.stopping.append((dispute_from, FOREVER, "dispute"))
    if f.ending is not None and f.ending.at is not None:
        held.closed_at = min(held.closed_at or FOREVER, f.ending.at)
    return held


def contacts_of(f: LoanFacts) -> list[Contact]:
    """Messages that went out, and call and visit tasks at the time they were due, unless cancelled first."""
    found = [Contact(m.at, m.channel, m.step_key) for m in f.messages if m.delivered]
    found += [
        Contact(due, CONTACT_TASKS[t.kind], f"{t.kind} task {t.task_id} ({t.step_key})")
        for t in f.tasks
        if t.kind in CONTACT_TASKS and _open_at(t, due := max(t.due_at, t.at), f, worked_counts=False)
    ]
    return sorted(found, key=lambda c: c.at)


def _in_hours(at: datetime, rules: JurisdictionRules, zone: ZoneInfo) -> bool:
    local = at.astimezone(zone)
    start, end = rules.hours
    return start <= local.time() < end and local.date() not in rules.holidays


def _hold_at(held: Holds, at: datetime) -> str | None:
    return next((why for start, end, why in held.stopping if start < at < end), None)


def _contacts(
    loan_id: str, contacts: list[Contact], held: Holds, rules: JurisdictionRules, zone: ZoneInfo
) -> Iterator[Violation]:
    for c in contacts:
        where = f"{c.channel} {c.what}"
        if c.channel in HOURS_CHANNELS and not _in_hours(c.at, rules, zone):
            local = c.at.astimezone(zone)
            yield Violation("contact_outside_hours", loan_id, c.at, f"{where} at {local:%H:%M} local")
        if (why := _hold_at(held, c.at)) is not None:
            yield Violation("contact_during_hold", loan_id, c.at, f"{where} during {why}")
        if c.channel in held.opt_outs and c.at > held.opt_outs[c.channel]:
            yield Violation("contact_after_opt_out", loan_id, c.at, f"{where} after opting out")
        if held.cease_at is not None and c.at > held.cease_at:
            yield Violation("contact_after_cease", loan_id, c.at, f"{where} after cease contact")
        if held.closed_at is not None and c.at > held.closed_at:
            yield Violation("contact_after_close", loan_id, c.at, f"{where} after the loan closed")


def _caps(loan_id: str, f: LoanFacts, rules: JurisdictionRules, zone: ZoneInfo) -> Iterator[Violation]:
    outcomes = sorted((a for a in f.actions if a.accepted and a.name == "call_outcome"), key=lambda a: a.at)
    if rules.connected_calls_per_day is not None:
        connected = [a for a in outcomes if a.params["outcome"] != "no_answer"]
        per_day = Counter(a.at.astimezone(zone).date() for a in connected)
        for day, count in sorted(per_day.items()):
            if count > rules.connected_calls_per_day:
                yield Violation("contact_over_cap", loan_id, None, f"{count} connected calls on {day}")
    calls = sorted(
        due
        for t in f.tasks
        if t.kind in CALL_TASKS and _open_at(t, due := max(t.due_at, t.at), f, worked_counts=False)
    )
    if rules.call_attempts is not None:
        most, days = rules.call_attempts
        for i, at in enumerate(calls):
            window = [c for c in calls[i:] if c < at + timedelta(days=days)]
            if len(window) > most:
                yield Violation("contact_over_cap", loan_id, at, f"{len(window)} calls in {days} days")
                break
    if rules.quiet_days_after_conversation is not None:
        quiet = timedelta(days=rules.quiet_days_after_conversation)
        talks = [(a.at, a.since + quiet) for a in outcomes if a.params["outcome"] in CONVERSATION]
        for at in calls:
            if any(start < at < end for start, end in talks):
                yield Violation("contact_over_cap", loan_id, at, "call within the quiet period after a talk")


def _escalation(loan_id: str, f: LoanFacts, held: Holds, zone: ZoneInfo) -> Iterator[Violation]:
    steps = [(p.at, "agency placement") for p in f.placements]
    steps += [(x.at, "lawyer's letter") for x in f.letters] + [(x.at, "registered mail") for x in f.mails]
    steps += [(x.at, "litigation referral") for x in f.litigations]
    for at, what in steps:
        if (why := _hold_at(held, at)) is not None:
            yield Violation("escalation_during_hold", loan_id, at, f"{what} during {why}")
    postal = any(a.name == "start" and a.params.get("postal") for a in f.actions)
    if not postal:
        for at, what in [(x.at, "registered mail") for x in f.mails] + [
            (t.due_at, "field visit") for t in f.tasks if t.kind == "visit"
        ]:
            yield Violation("postal_without_address", loan_id, at, f"{what} with no postal address on file")
    mailed = {m.document_id: m.at for m in f.mails}
    for lit in f.litigations:
        ready = [
            x
            for x in f.letters
            if x.document_id in mailed
            and mailed[x.document_id] < lit.at
            and lit.at >= datetime.combine(x.respond_by + timedelta(days=1), time(0), tzinfo=zone)
        ]
        if not ready:
            letters = ", ".join(f"{x.document_id} respond by {x.respond_by}" for x in f.letters) or "none"
            yield Violation(
                "litigation_without_letter",
                loan_id,
                lit.at,
                f"referred with no letter mailed and its window passed (letters: {letters})",
            )


def _open_at(task: Task, at: datetime, f: LoanFacts, worked_counts: bool = True) -> bool:
    """Created by `at` and neither worked by a collector nor cancelled by then."""
    if task.at > at:
        return False
    worked = worked_counts and any(
        a.accepted and a.name == "call_outcome" and a.params.get("task_id") == task.task_id and a.at <= at
        for a in f.actions
    )
    cancelled = any(
        c.at >= task.at and c.at <= at and (c.step_keys is None or task.step_key in c.step_keys)
        for c in f.cancels
    )
    return not worked and not cancelled


def _tasks(loan_id: str, f: LoanFacts, held: Holds) -> Iterator[Violation]:
    if held.closed_at is not None and held.closed_at != FOREVER:
        for task in f.tasks:
            if task.at <= held.closed_at and _open_at(task, held.closed_at + HOLD_GRACE, f):
                yield Violation(
                    "open_task_on_closed", loan_id, held.closed_at, f"{task.kind} task {task.task_id} open"
                )
    starts = [(start, why) for start, _, why in held.stopping]
    if held.cease_at is not None:
        starts.append((held.cease_at, "cease contact"))
    for start, why in starts:
        if held.closed_at is not None and held.closed_at <= start + HOLD_GRACE:
            continue  # the close check covers it
        for task in f.tasks:
            if task.at <= start and _open_at(task, start + HOLD_GRACE, f):
                yield Violation(
                    "open_task_on_hold", loan_id, start, f"{task.kind} task {task.task_id} open after {why}"
                )


def _duplicates(loan_id: str, f: LoanFacts) -> Iterator[Violation]:
    delivered = Counter(m.idempotency_key for m in f.messages if m.delivered)
    for key, count in delivered.items():
        if count > 1:
            yield Violation("duplicate_message", loan_id, None, f"{key} delivered {count} times")
    calls = sorted(
        (
            (due, t)
            for t in f.tasks
            if t.kind in CONTACT_TASKS and _open_at(t, due := max(t.due_at, t.at), f, worked_counts=False)
        ),
        key=lambda pair: pair[0],
    )
    for (due, first), (later, second) in itertools.pairwise(calls):
        same = CONTACT_TASKS[first.kind] == CONTACT_TASKS[second.kind]
        if same and later - due < TASK_SPACING and _open_at(first, later, f):
            # A queue showing the borrower twice is two calls (a burst of missed repeats after a hold).
            yield Violation(
                "duplicate_task", loan_id, later, f"{second.step_key} while {first.step_key} is open"
            )
    placed = Counter(p.idempotency_key for p in f.placements)
    for key, count in placed.items():
        if count > 1:
            yield Violation("duplicate_placement", loan_id, None, f"{key} placed {count} times")
    recalled = {r.placement_id: r.at for r in f.recalls}
    ordered = sorted(f.placements, key=lambda p: p.at)
    for before, after in itertools.pairwise(ordered):
        ended = min(recalled.get(before.placement_id, FOREVER), before.expires_at)
        if after.at < ended and after.idempotency_key != before.idempotency_key:
            yield Violation(
                "duplicate_placement", loan_id, after.at, f"{after.placement_id} during {before.placement_id}"
            )
