"""The invariant checker on hand-made facts: each kind caught by a small violating example, and not raised by
the compliant one beside it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bench.invariants import KINDS, check
from bench.sim_facts import (
    ClientAction,
    Ending,
    Facts,
    JournalRecord,
    Letter,
    Litigation,
    Mail,
    Message,
    Placement,
    Task,
    TaskCancel,
)
from bench.sim_scenario import LoanScenario

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 22:00 in Shanghai, 09:00 in New York
LOAN = "L-1"


def scenario(jurisdiction: str = "cn", timezone: str = "Asia/Shanghai") -> LoanScenario:
    return LoanScenario(
        loan_id=LOAN,
        jurisdiction=jurisdiction,
        timezone=timezone,
        currency={"cn": "CNY", "us": "USD", "uk": "GBP"}[jurisdiction],
        locale="en",
        phone="+8613800000000",
        email=None,
        postal="1 Example Street",
        risk_grade="C",
        amount_minor=100_000,
        principal_minor=100_000,
        join_dpd=0,
        joins_at=T0 - timedelta(days=1),
        overdue_since=date(2026, 3, 1),
    )


_ids = iter(range(10**6))


def message(at: datetime, channel: str = "sms", **changes: object) -> Message:
    n = next(_ids)
    fields: dict[str, object] = {
        "loan_id": LOAN,
        "at": at,
        "channel": channel,
        "recipient_kind": "phone",
        "template": "reminder",
        "idempotency_key": f"{LOAN}:k{n}",
        "step_key": f"k{n}",
        "validation_notice": False,
        "delivered": True,
        "message_id": f"m-{n}",
    }
    return Message(**{**fields, **changes})  # type: ignore[arg-type]


def attempt_entry(m: Message) -> JournalRecord:
    data = {"channel": m.channel, "content_ref": m.message_id, "status": "queued", "actor": "system"}
    return JournalRecord(LOAN, m.at, "contact_attempt", f"{LOAN}:attempt:{m.message_id}", m.at, data)


def action(name: str, at: datetime, **params: object) -> ClientAction:
    return ClientAction(LOAN, at, name, True, dict(params))


def hold_entry(kind: str, at: datetime, action_: str = "raised") -> JournalRecord:
    data = {"kind": kind, "action": action_, "actor": "sim.collector"}
    return JournalRecord(LOAN, at, "hold", f"{LOAN}:hold:{kind}:{at}", at, data)


def base_facts(*, postal: bool = True, ended: datetime | None = None) -> Facts:
    facts = Facts()
    facts.actions.append(action("start", T0 - timedelta(days=1), postal=postal))
    facts.endings[LOAN] = Ending(LOAN, "completed", "written_off", ended or T0 + timedelta(days=200))
    return facts


def sent(facts: Facts, m: Message) -> Facts:
    facts.messages.append(m)
    facts.journal.append(attempt_entry(m))
    return facts


def cancelled_at_end(facts: Facts) -> Facts:
    """Every open task cancelled (and journaled) when the loan ends, as the workflow must."""
    end = facts.endings[LOAN].at
    assert end is not None
    facts.cancels.append(TaskCancel(LOAN, end, "closed", None, tuple(t.task_id for t in facts.tasks)))
    data = {"action": "tasks_cancelled", "outcome": "closed"}
    facts.journal.append(JournalRecord(LOAN, end, "collector_action", "cancel-end", end, data))
    return facts


def counts(facts: Facts, s: LoanScenario | None = None) -> dict[str, int]:
    return {k: v for k, v in check([s or scenario()], facts).counts().items() if v}


def test_a_compliant_lifetime_has_no_violation() -> None:
    facts = sent(base_facts(), message(T0 - timedelta(hours=1)))  # 21:00 in Shanghai
    assert counts(facts) == {}


def test_contact_outside_borrower_local_hours() -> None:
    assert counts(sent(base_facts(), message(T0))) == {"contact_outside_hours": 1}  # 22:00 Shanghai
    # The same instant is 09:00 in New York: inside the US hours (DST-aware zone).
    us = scenario("us", "America/New_York")
    facts = sent(base_facts(), message(T0, channel="email", validation_notice=True))
    assert counts(facts, us) == {}


def test_contact_during_a_hold_after_an_opt_out_after_cease_and_after_close() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.actions.append(action("hardship", at - timedelta(days=1), days=3))
    facts.journal.append(hold_entry("hardship", at - timedelta(days=1)))
    assert counts(sent(facts, message(at))) == {"contact_during_hold": 1}
    facts = base_facts()
    facts.actions += [action("opt_out", at - timedelta(days=1), channel="sms")]
    facts.journal.append(hold_entry("opt_out_channel", at - timedelta(days=1)))
    assert counts(sent(facts, message(at))) == {"contact_after_opt_out": 1}
    assert counts(sent(facts, message(at, channel="email"))) == {"contact_after_opt_out": 1}  # sms only
    facts = base_facts()
    facts.actions.append(action("cease", at - timedelta(days=1)))
    facts.journal.append(hold_entry("cease_all", at - timedelta(days=1)))
    assert counts(sent(facts, message(at))) == {"contact_after_cease": 1}
    facts = base_facts(ended=at - timedelta(hours=1))
    assert counts(sent(facts, message(at))) == {"contact_after_close": 1}


def test_a_hold_that_ended_binds_nothing_and_a_cancelled_task_is_no_call() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.actions.append(action("hardship", at - timedelta(days=4), days=3))
    facts.journal.append(hold_entry("hardship", at - timedelta(days=4)))
    assert counts(sent(facts, message(at))) == {}
    facts.tasks.append(Task(LOAN, at - timedelta(days=5), at - timedelta(days=3), "call", "c", "k", "t-1"))
    facts.cancels.append(TaskCancel(LOAN, at - timedelta(days=4), "hold", None, ("t-1",)))
    facts.journal.append(
        JournalRecord(LOAN, at, "collector_action", "x", at, {"action": "tasks_cancelled", "outcome": "hold"})
    )
    assert counts(facts) == {}


def test_us_call_cap_and_quiet_period() -> None:
    us = scenario("us", "America/New_York")
    first = T0 + timedelta(hours=1)  # 10:00 New York
    facts = sent(base_facts(), message(first, channel="email", validation_notice=True))
    facts.tasks += [
        Task(LOAN, first, first + timedelta(days=i), "call", f"c{i}", f"k{i}", f"t{i}") for i in range(7)
    ]
    assert counts(cancelled_at_end(facts), us) == {}
    facts.tasks.append(Task(LOAN, first, first + timedelta(days=6, hours=2), "call", "c7", "k7", "t7"))
    assert counts(cancelled_at_end(facts), us) == {"contact_over_cap": 1}
    facts = sent(base_facts(), message(first, channel="email", validation_notice=True))
    facts.actions.append(action("call_outcome", first, outcome="right_party", task_id="t0"))
    data = {"channel": "call", "actor": "sim.collector"}
    facts.journal.append(JournalRecord(LOAN, first, "contact_attempt", "a", first, data))
    facts.tasks.append(Task(LOAN, first, first + timedelta(days=3), "call", "c1", "k1", "t1"))
    assert counts(cancelled_at_end(facts), us) == {"contact_over_cap": 1}


def test_escalation_during_a_us_dispute_but_not_a_cn_one() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.actions.append(action("dispute", at - timedelta(days=2)))
    facts.journal.append(hold_entry("dispute", at - timedelta(days=2)))
    facts.placements.append(Placement(LOAN, at, "k", "pl-1", at + timedelta(days=60)))
    assert counts(facts, scenario("us", "America/New_York")) == {"escalation_during_hold": 1}
    assert counts(facts) == {}


def test_litigation_needs_a_mailed_letter_and_its_whole_window() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.litigations.append(Litigation(LOAN, at, "k-lit", ()))
    assert counts(facts) == {"litigation_without_letter": 1}
    mailed = at - timedelta(days=10)
    facts.letters.append(Letter(LOAN, mailed, "k-l", "doc-1", date(2026, 2, 20), date(2026, 3, 7)))
    facts.mails.append(Mail(LOAN, at - timedelta(days=10), "doc-1"))
    assert counts(facts) == {"litigation_without_letter": 1}  # the window runs to the end of 7 March
    midnight = datetime(2026, 3, 7, 16, 0, tzinfo=UTC)  # 8 March 00:00 in Shanghai
    facts.litigations[0] = Litigation(LOAN, midnight, "k-lit", ())
    assert counts(facts) == {}
    facts.actions[0] = action("start", T0 - timedelta(days=1), postal=False)
    assert counts(facts) == {"postal_without_address": 1}


def test_open_tasks_on_a_closed_or_held_loan() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts(ended=at)
    facts.tasks.append(Task(LOAN, at - timedelta(days=2), at - timedelta(days=2), "review", "r", "k", "t-1"))
    assert counts(facts) == {"open_task_on_closed": 1}
    facts = base_facts()
    facts.tasks.append(Task(LOAN, at - timedelta(days=2), at - timedelta(days=2), "review", "r", "k", "t-1"))
    facts.actions.append(action("hardship", at, days=10))
    facts.journal.append(hold_entry("hardship", at))
    assert counts(cancelled_at_end(facts)) == {"open_task_on_hold": 1}


def test_duplicates_of_messages_and_placements() -> None:
    at = T0 - timedelta(hours=5)
    facts = sent(base_facts(), message(at, idempotency_key="same"))
    assert counts(sent(facts, message(at, idempotency_key="same"))) == {"duplicate_message": 1}
    facts = base_facts()
    facts.placements.append(Placement(LOAN, at, "k1", "pl-1", at + timedelta(days=60)))
    facts.placements.append(Placement(LOAN, at + timedelta(days=1), "k2", "pl-2", at + timedelta(days=61)))
    assert counts(facts) == {"duplicate_placement": 1}


def test_two_call_tasks_at_once() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.tasks.append(Task(LOAN, at, at, "call", "collector_call@16", "k1", "t1"))
    facts.tasks.append(Task(LOAN, at, at + timedelta(days=3), "call", "collector_call@19", "k2", "t2"))
    assert counts(cancelled_at_end(facts)) == {}
    facts.tasks.append(Task(LOAN, at, at + timedelta(minutes=1), "call", "collector_call@22", "k3", "t3"))
    assert counts(cancelled_at_end(facts)) == {"duplicate_task": 1}


def test_us_validation_notice_only_on_a_channel_that_carries_it() -> None:
    us = scenario("us", "America/New_York")
    at = T0 + timedelta(hours=1)
    facts = sent(base_facts(), message(at, validation_notice=True))
    assert counts(facts, us) == {"validation_notice_wrong_channel": 1, "validation_notice_missing": 1}
    facts = sent(base_facts(), message(at, channel="email", validation_notice=True))
    assert counts(facts, us) == {}


def test_journal_missing_extra_and_rejected() -> None:
    at = T0 - timedelta(hours=5)
    facts = base_facts()
    facts.messages.append(message(at))
    assert counts(facts) == {"journal_missing": 1}
    facts = base_facts()
    facts.actions.append(action("payment", at, payment_id="p1", amount_minor=100))
    assert counts(facts) == {"journal_missing": 1}
    facts.journal.append(JournalRecord(LOAN, at, "payment", "p1", at, {"payment_id": "p1", "applied": True}))
    assert counts(facts) == {}
    facts.journal.append(JournalRecord(LOAN, at, "payment", "p9", at, {"payment_id": "p9", "applied": True}))
    assert counts(facts) == {"journal_extra": 1}
    facts = base_facts()
    facts.journal.append(JournalRecord(LOAN, at, "deferral", "d", at, {}, rejected="CHECK"))
    assert counts(facts) == {"journal_rejected": 1}


@pytest.mark.parametrize("status", ["running", "stuck", "failed"])
def test_a_workflow_that_did_not_finish(status: str) -> None:
    facts = base_facts()
    facts.endings[LOAN] = Ending(LOAN, status, None, None)
    assert counts(facts) == {"workflow_not_finished": 1}


def test_every_kind_is_tested_here() -> None:
    source = open(__file__, encoding="utf-8").read()
    assert [kind for kind in KINDS if f'"{kind}"' not in source] == []
