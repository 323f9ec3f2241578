"""Asking the contact rules before a step: which channel, now or when, and what pauses escalation.

Pure glue between the strategy's steps and `domain.contact_rules`, so the workflow only acts on the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from domain.case import CollectionCase
from domain.contact_rules import ContactChannel, ContactDecision, check_contact
from domain.strategy import Step

MESSAGE_CHANNELS: tuple[ContactChannel, ...] = ("sms", "email", "push")
# The US validation notice (Reg F Model Form B-1) is part of the e-mail template only (templates/*/_email.j2):
# an SMS or a push never carries it, so only these channels may record it as sent.
NOTICE_CHANNELS: frozenset[str] = frozenset({"email"})
# Steps that go to the borrower's postal address: without one on file they become a trace-address task.
POSTAL_CHANNELS: frozenset[str] = frozenset({"visit", "letter"})
# A provider that stayed down through every retry: the message is tried again this much later (same key,
# so delivered at most once). An outage says nothing about the borrower, so no contact point is closed.
PROVIDER_OUTAGE_RETRY = timedelta(hours=1)


def carries_validation_notice(channel: str) -> bool:
    return channel in NOTICE_CHANNELS


def validation_notice_owed(case: CollectionCase) -> bool:
    """US (a profile with a validation-notice period): the notice has not gone yet. It goes first, before any
    other contact: by e-mail when the borrower has one the rules allow, otherwise by letter."""
    profile = case.profile
    return (
        profile is not None
        and profile.validation_notice_within_days is not None
        and case.contact.validation_notice_sent_at is None
    )


def notice_blocks_contact(case: CollectionCase) -> bool:
    """A notice that cannot be delivered in writing (no e-mail, no postal address) blocks every other contact:
    contacting a borrower who can never get the notice would be collecting without it."""
    return case.notice_undeliverable and validation_notice_owed(case)


def outage_retry_at(now: datetime) -> datetime:
    """When to try a message again after an outage: from the current time (after the retries), never from
    when the step started, so the deferral never ends before it was recorded."""
    return now + PROVIDER_OUTAGE_RETRY


def contact_channel(step: Step) -> ContactChannel | None:
    """The borrower-facing channel a step uses; None for steps that contact nobody (reviews, placements)."""
    if step.action == "message":
        return step.channel
    if step.action == "collector_task" and step.task in ("call", "visit"):
        return step.task
    if step.action == "lawyer_letter":
        return "letter"
    return None


def address_for(case: CollectionCase, channel: ContactChannel) -> str | None:
    borrower = case.loan.borrower
    if channel in ("sms", "call"):
        return borrower.phone
    if channel == "email":
        return borrower.email
    if channel == "push":
        return case.loan.loan_id  # the borrower's app account, keyed by loan id
    # Visits and registered letters go to the postal address on file; none on file: nobody can be visited
    # or written to, and the workflow opens a task to trace the address instead.
    return getattr(borrower, "postal_address", None)


def ask_rules(case: CollectionCase, channel: ContactChannel, address: str, now: datetime) -> ContactDecision:
    """The contact rules for this case's profile, zone, ledger and holds."""
    assert case.profile is not None
    return check_contact(
        profile=case.profile,
        zone=case.loan.zone,
        channel=channel,
        address=address,
        attempts=case.attempts,
        state=case.contact,
        now=now,
    )


class ChannelChoice(BaseModel):
    channel: ContactChannel | None  # None: no channel may be used now or later
    address: str | None
    decision: ContactDecision
    closed: list[str]  # channels passed over, with why: for the journal and the step record


def choose_channel(
    case: CollectionCase, wanted: ContactChannel, now: datetime, exclude: frozenset[str] = frozenset()
) -> ChannelChoice:
    """The step's own channel if the rules allow it now; if it is deferred, wait for it; if it is closed for
    good (opt-out, unreachable, or `exclude`: a provider refused this step's message), the next message
    channel the borrower can be reached on."""
    assert case.profile is not None
    if notice_blocks_contact(case) and wanted != "letter":
        reason = "the validation notice cannot be delivered (no e-mail, no postal address): trace an address"
        blocked = ContactDecision(allowed=False, at=None, rule="validation_notice_overdue", reason=reason)
        return ChannelChoice(channel=None, address=None, decision=blocked, closed=[reason])
    order = (
        [wanted, *(c for c in MESSAGE_CHANNELS if c != wanted)] if wanted in MESSAGE_CHANNELS else [wanted]
    )
    closed: list[str] = [f"{c}: message refused by the provider" for c in order if c in exclude]
    order = [c for c in order if c not in exclude]
    last: ContactDecision | None = None
    for channel in order:
        address = address_for(case, channel)
        if address is None:
            closed.append(f"{channel}: no contact point on file")
            continue
        decision = ask_rules(case, channel, address, now)
        last = decision
        if decision.allowed or decision.at is not None:
            return ChannelChoice(channel=channel, address=address, decision=decision, closed=closed)
        closed.append(f"{channel}: {decision.reason}")
    decision = last or ContactDecision(allowed=False, at=None, rule="unreachable", reason="; ".join(closed))
    return ChannelChoice(channel=None, address=None, decision=decision, closed=closed)


def escalation_hold(case: CollectionCase, now: datetime) -> tuple[str, datetime | None] | None:
    """What freezes the whole process (not just contact), and until when (None: until someone lifts it)."""
    state = case.contact
    profile = case.profile
    if profile is None:
        return None
    if state.dispute_open and profile.dispute_stops_collection:
        return "dispute open: collection stopped until verification is sent", None
    if state.breathing_space_until is not None and state.breathing_space_until > now:
        return f"Breathing Space until {state.breathing_space_until:%Y-%m-%d}", state.breathing_space_until
    if state.hardship_until is not None and state.hardship_until > now:
        return f"hardship hold until {state.hardship_until:%Y-%m-%d}", state.hardship_until
    return None


def claim_decision(case: CollectionCase, channel: ContactChannel, now: datetime) -> ContactDecision:
    """May a collector call (or visit) the borrower now? Asked when a task is claimed: a task created at
    21:59 is not callable at 23:00 local, and every claim counts toward the caps."""
    assert case.profile is not None
    if notice_blocks_contact(case):
        reason = "the validation notice cannot be delivered (no e-mail, no postal address)"
        return ContactDecision(allowed=False, at=None, rule="validation_notice_overdue", reason=reason)
    address = address_for(case, channel)
    if address is None:
        reason = f"no address on file for {channel}"
        return ContactDecision(allowed=False, at=None, rule="unreachable", reason=reason)
    return ask_rules(case, channel, address, now)
