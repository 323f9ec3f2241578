"""Generated loan lifetimes for the whole-portfolio simulation: plain data, seeded, reproducible.

A scenario is what the world does to one loan (servicing, the borrower, collectors, providers), decided before
the run from a seed: when the loan joins and at which DPD, its borrower (jurisdiction, time zone, contact
points), the events the client sends (payments, promises, holds, ...), and the faults its providers inject.
It imports nothing from the product, so the invariant checker can read it without seeing the code it checks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# (jurisdiction, currency, locale, phone prefix, time zones): DST zones on purpose, plus some without.
JURISDICTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "cn": ("CNY", "zh-CN", "+86138", ("Asia/Shanghai", "Asia/Urumqi")),
    "us": (
        "USD",
        "en",
        "+1212555",
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix"),
    ),
    "uk": ("GBP", "en", "+447700", ("Europe/London",)),
}
# Arrears in minor units: wide enough to reach the strategy's field-visit, litigation and high-balance lines.
AMOUNTS = {"cn": (50_000, 8_000_000), "us": (10_000, 1_200_000), "uk": (10_000, 1_000_000)}
# Entry DPDs around the strategy's step days (letter 75-90, litigation 90-105, write-off 180), and any.
JOIN_DPDS = (0, 1, 2, 5, 10, 20, 40, 60, 89, 95, 100, 110, 130, 160, 179, 200)
CLOSE_REASONS = ("restructured", "sold", "cancelled", "settled", "other")
OPT_OUT_CHANNELS = ("sms", "email", "push", "call")


@dataclass(frozen=True)
class Event:
    """One thing the client does to a loan at `at` (collections time, UTC-aware)."""

    at: datetime
    loan_id: str
    kind: str  # start, payment, close, promise, plan, settlement, dispute, resolve_dispute, ...
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Outage:
    """The message provider is down for this loan between `start` and `end` (retryable failures)."""

    start: datetime
    end: datetime


@dataclass
class LoanScenario:
    loan_id: str
    jurisdiction: str
    timezone: str
    currency: str
    locale: str
    phone: str
    email: str | None
    postal: str | None  # only given to the workflow if the Borrower model has a postal address
    risk_grade: str
    amount_minor: int
    principal_minor: int
    join_dpd: int
    joins_at: datetime
    overdue_since: date
    events: list[Event] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    rejecting: dict[str, str] = field(default_factory=dict)  # channel -> error type raised non-retryable
    # Seeds the simulated collector's call outcomes, so dynamic events are reproducible too.
    collector_seed: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _local_instant(start: datetime, zone: ZoneInfo, days: int, at: time) -> datetime:
    """`days` borrower-local days after `start`'s local date, at local wall time `at` (DST-aware)."""
    local_day = start.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(local_day, at, tzinfo=zone)


def _random_time(rng: random.Random, first_hour: int = 0, last_hour: int = 23) -> time:
    return time(rng.randint(first_hour, last_hour), rng.randrange(0, 60, 5))


class _Story:
    """Builds one loan's events, keeping a rough idea of the arrears so amounts are plausible."""

    def __init__(self, rng: random.Random, scenario: LoanScenario) -> None:
        self.rng = rng
        self.s = scenario
        self.arrears = scenario.amount_minor
        self.ids = 0

    def at(self, day: int, first_hour: int = 0, last_hour: int = 23) -> datetime:
        s = self.s
        when = _local_instant(s.joins_at, s.zone, day, _random_time(self.rng, first_hour, last_hour))
        return max(when, s.joins_at + timedelta(minutes=5))

    def add(self, when: datetime, kind: str, **params: object) -> None:
        if kind not in ("payment", "close") and self.rng.random() < 0.08:
            # A note no journal can store (NUL, bidi override): refused where it enters, or never written.
            params["note"] = self.rng.choice(("call after 6pm\x00", "\u202eyap lliw", "ok"))
        self.s.events.append(Event(at=when, loan_id=self.s.loan_id, kind=kind, params=params))

    def pay(self, when: datetime, amount: int) -> None:
        amount = max(1, min(amount, self.arrears)) if self.arrears > 0 else max(1, amount)
        self.ids += 1
        self.add(when, "payment", payment_id=f"{self.s.loan_id}-p{self.ids}", amount_minor=amount)
        self.arrears = max(0, self.arrears - amount)

    def local_date(self, when: datetime, plus_days: int = 0) -> date:
        return when.astimezone(self.s.zone).date() + timedelta(days=plus_days)


def _story(rng: random.Random, s: LoanScenario) -> None:
    st = _Story(rng, s)
    p = rng.random
    # Partial payments: a few small ones along the way.
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        st.pay(st.at(rng.randint(1, 160)), max(100, s.amount_minor * rng.randint(5, 30) // 100))
    if p() < 0.30:  # a promise to pay, kept or broken
        day = rng.randint(1, 120)
        when = st.at(day, 9, 20)
        amount = max(100, st.arrears * rng.randint(30, 100) // 100)
        due = st.local_date(when, rng.randint(1, 10))
        st.add(when, "promise", amount_minor=amount, due_date=due.isoformat())
        if p() < 0.5:
            st.pay(when + timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 20)), amount)
        elif p() < 0.4:  # broken, then a second promise later, also broken: escalates faster
            later = st.at(day + 15, 9, 20)
            st.add(later, "promise", amount_minor=amount, due_date=st.local_date(later, 3).isoformat())
    if p() < 0.10:  # a repayment plan, kept or broken after the first instalment
        when = st.at(rng.randint(5, 100), 9, 20)
        count = rng.randint(2, 4)
        part = max(100, st.arrears // (count + 1))
        dues = [st.local_date(when, 7 * (i + 1)) for i in range(count)]
        st.add(
            when,
            "plan",
            instalments=[{"amount_minor": part, "due_date": d.isoformat()} for d in dues],
        )
        kept = p() < 0.5
        for i, due in enumerate(dues):
            if i == 0 or kept:
                st.pay(datetime.combine(due, time(12), tzinfo=s.zone), part)
    if p() < 0.06:  # a settlement for less than the arrears
        when = st.at(rng.randint(10, 150), 9, 20)
        amount = max(100, st.arrears * rng.randint(50, 80) // 100)
        due = st.local_date(when, rng.randint(5, 30))
        st.add(when, "settlement", amount_minor=amount, due_date=due.isoformat())
        if p() < 0.6:
            st.pay(when + timedelta(days=rng.randint(1, 4)), amount)
    if p() < (0.15 if s.jurisdiction == "us" else 0.05):  # a dispute, resolved later
        when = st.at(rng.randint(1, 140))
        st.add(when, "dispute")
        st.add(when + timedelta(days=rng.randint(5, 40), hours=rng.randint(0, 12)), "resolve_dispute")
    if s.jurisdiction == "uk" and p() < 0.15:
        st.add(st.at(rng.randint(1, 140)), "breathing_space")
    if p() < 0.08:
        st.add(st.at(rng.randint(1, 140)), "hardship", days=rng.randint(7, 60))
    if p() < 0.10:
        st.add(st.at(rng.randint(1, 120)), "opt_out", channel=rng.choice(OPT_OUT_CHANNELS))
    if p() < 0.04:
        st.add(st.at(rng.randint(1, 150)), "cease")
    if p() < 0.35:  # paid in full at some point
        st.pay(st.at(rng.randint(1, 170)), st.arrears or s.amount_minor)
    if p() < 0.04:
        st.add(st.at(rng.randint(1, 170)), "close", reason=rng.choice(CLOSE_REASONS))
    if p() < 0.01:
        st.add(st.at(rng.randint(1, 170)), "stop", reason=rng.choice(("bankruptcy", "deceased")))
    s.events.sort(key=lambda e: e.at)


def generate(count: int, seed: int, start: datetime) -> list[LoanScenario]:
    """`count` loan lifetimes from `seed`, joining within 30 days of `start` (UTC-aware)."""
    rng = random.Random(seed)
    scenarios: list[LoanScenario] = []
    for index in range(count):
        jurisdiction = rng.choices(("cn", "us", "uk"), weights=(5, 3, 2))[0]
        currency, locale, prefix, zones = JURISDICTIONS[jurisdiction]
        zone_name = rng.choice(zones)
        zone = ZoneInfo(zone_name)
        joins_at = start + timedelta(minutes=rng.randrange(0, 30 * 24 * 60, 7))
        join_dpd = rng.choice((*JOIN_DPDS, rng.randint(0, 200)))
        low, high = AMOUNTS[jurisdiction]
        amount = rng.randint(low // 100, high // 100) * 100
        loan_id = f"S{seed}-{index:06d}"
        scenario = LoanScenario(
            loan_id=loan_id,
            jurisdiction=jurisdiction,
            timezone=zone_name,
            currency=currency,
            locale=locale,
            phone=f"{prefix}{index % 10_000:04d}" + ("00" if jurisdiction == "uk" else ""),
            email=f"b{index}@example.test" if rng.random() < 0.7 else None,
            postal=f"{index} Example Street" if rng.random() < 0.8 else None,
            risk_grade=rng.choice("ABCDE"),
            amount_minor=amount,
            principal_minor=amount * rng.randint(1, 6),
            join_dpd=join_dpd,
            joins_at=joins_at,
            overdue_since=joins_at.astimezone(zone).date() - timedelta(days=join_dpd),
            collector_seed=rng.randrange(2**31),
        )
        scenario.events.append(Event(at=joins_at, loan_id=loan_id, kind="start"))
        _story(rng, scenario)
        if rng.random() < 0.20:  # provider outages of half an hour to six hours
            for _ in range(rng.randint(1, 2)):
                begin = joins_at + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
                scenario.outages.append(Outage(begin, begin + timedelta(minutes=rng.randint(30, 360))))
        if rng.random() < 0.10:  # an outage over the morning a reminder goes out (steps run at 09:00 local)
            day = rng.choice((0, 1, 3, 7, 10)) - min(join_dpd, 10)
            begin = _local_instant(joins_at, zone, max(day, 0), time(8, 50))
            scenario.outages.append(Outage(begin, begin + timedelta(minutes=rng.randint(60, 240))))
        if rng.random() < 0.08:  # a channel the provider rejects for good
            scenario.rejecting[rng.choice(("sms", "email", "push"))] = rng.choice(
                ("MessageRejected", "ContactPointInvalid")
            )
        scenarios.append(scenario)
    return scenarios
