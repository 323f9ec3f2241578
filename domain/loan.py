"""The overdue loan as the servicing system hands it over, validated field by field.

Money is always integer minor units (fen, cents, pence) beside an ISO-4217 currency; never floats.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# ISO-4217 codes the product formats and collects in. A code outside this list is far more likely a typo
# ("RMB", "CNH") than a real currency we support, so it is rejected rather than passed through.
CURRENCIES: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "GBP": 2,
    "EUR": 2,
    "HKD": 2,
    "SGD": 2,
    "JPY": 0,
}

LoanId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Locale = Literal["zh-CN", "en"]
Jurisdiction = Literal["cn", "us", "uk"]
RiskGrade = Literal["A", "B", "C", "D", "E"]
MinorUnits = Annotated[int, Field(ge=0, le=10**15)]
PositiveMinorUnits = Annotated[int, Field(gt=0, le=10**15)]

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Deliberately simple: one @, a dot in the domain, no spaces. Deliverability is the channel's problem.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def check_currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"unsupported currency {value!r}; expected one of {', '.join(sorted(CURRENCIES))}")
    return value


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown IANA timezone {value!r} (e.g. 'Asia/Shanghai', 'America/New_York')"
        ) from None
    return value


def require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone offset, e.g. 2026-11-25T10:00:00+08:00")
    return value


class Borrower(Strict):
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(description="E.164, e.g. +8613800138000")
    email: str | None = Field(default=None, max_length=254)
    locale: Locale = "zh-CN"
    timezone: str = "Asia/Shanghai"

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if not E164.match(value):
            raise ValueError("must be E.164: '+' then country code and number, 7 to 15 digits")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)


class Instalment(Strict):
    due_date: date
    amount_minor: PositiveMinorUnits


class Loan(Strict):
    loan_id: LoanId
    borrower: Borrower
    currency: str
    amount_overdue_minor: PositiveMinorUnits
    principal_outstanding_minor: MinorUnits
    overdue_since: date = Field(description="the first missed due date; DPD counts from here")
    product: str = Field(default="consumer_loan", min_length=1, max_length=64)
    risk_grade: RiskGrade = "C"
    segment: str | None = Field(
        default=None, max_length=64, description="explicit segment; when absent the strategy derives one"
    )
    jurisdiction: Jurisdiction = "cn"
    lender: str = Field(default="Overdue Demo Consumer Finance", min_length=1, max_length=200)
    overdue_instalments: list[Instalment] | None = Field(
        default=None,
        max_length=120,
        description="the missed instalments, if servicing sends them: payments clear the oldest first "
        "and DPD "
        "re-anchors on the oldest still unpaid",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @model_validator(mode="after")
    def _amounts(self) -> Loan:
        if self.principal_outstanding_minor < self.amount_overdue_minor:
            raise ValueError(
                "principal_outstanding_minor must be at least amount_overdue_minor "
                "(the whole debt includes what is overdue)"
            )
        if self.overdue_instalments:
            total = sum(i.amount_minor for i in self.overdue_instalments)
            if total != self.amount_overdue_minor:
                raise ValueError(
                    f"overdue_instalments add up to {total}, "
                    f"not amount_overdue_minor {self.amount_overdue_minor}"
                )
            first = min(i.due_date for i in self.overdue_instalments)
            if first != self.overdue_since:
                raise ValueError(f"overdue_since must be the oldest instalment's due date ({first})")
        return self

    def instalments(self) -> list[Instalment]:
        """The overdue instalments oldest first; one instalment when servicing sent only a total."""
        if self.overdue_instalments:
            return sorted(self.overdue_instalments, key=lambda i: i.due_date)
        return [Instalment(due_date=self.overdue_since, amount_minor=self.amount_overdue_minor)]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.borrower.timezone)


class Payment(Strict):
    """A payment as servicing (or an agency) reports it. Applied at most once per payment_id."""

    payment_id: str = Field(min_length=1, max_length=128)
    amount_minor: PositiveMinorUnits
    currency: str
    received_at: datetime
    source: Literal["servicing", "agency", "borrower", "collector"] = "servicing"

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value)


def format_money(amount_minor: int, currency: str) -> str:
    """Plain, locale-neutral rendering used in summaries and logs ('CNY 1,234.50')."""
    digits = CURRENCIES.get(currency, 2)
    sign = "-" if amount_minor < 0 else ""
    if digits == 0:
        return f"{sign}{currency} {abs(amount_minor):,}"
    major, minor = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{currency} {major:,}.{minor:0{digits}d}"
