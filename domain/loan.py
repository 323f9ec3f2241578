"""The overdue loan as the servicing system hands it over, validated field by field.

Money is always integer minor units (fen, cents, pence) beside an ISO-4217 currency; never floats.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from domain.text import E164, EMAIL, CleanName, CleanText, Identifier

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
MAX_MINOR_UNITS = 10**15
# How far back overdue_since may lie when a loan starts (settings: OVERDUE_MAX_OVERDUE_YEARS).
DEFAULT_MAX_OVERDUE_YEARS = 10
MINOR_UNITS_HINT = "must be a whole number of minor units (e.g. 123450 for 1,234.50)"
# ASCII digits only: int() and Decimal() also take full-width or Arabic-Indic digits, "1_000" and "1e3", none
# of which a servicing file or an operator means as an amount. The sign is allowed so that "-5" is reported as
# out of range rather than as not a number.
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]*)?|-?\.[0-9]+")
_MAX_DIGITS = len(str(MAX_MINOR_UNITS))


def parse_minor_units(value: object) -> object:
    """An amount as typed or read from a file: an int, or a string of ASCII digits, as an int.

    Floats (1000.0, 1e3), booleans, "1_000", "１２３" and numbers of more than 16 digits are refused with a
    ValueError whose message names the fix; the range (0 or 1 up to 10**15) is the field's own check. Other
    types pass through so the field reports them as it always did.
    """
    if isinstance(value, bool) or isinstance(value, float | Decimal):
        raise ValueError(f"{MINOR_UNITS_HINT}, got {value!r}")
    if isinstance(value, int):
        if abs(value) > MAX_MINOR_UNITS * 10:  # far out of range: never format thousands of digits
            raise ValueError(f"must be at most {MAX_MINOR_UNITS} (got a number of {_digits(value)} digits)")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN_INTEGER.fullmatch(text):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise ValueError(f"{MINOR_UNITS_HINT}, got {shown!r}")
        if len(text.lstrip("-").lstrip("0")) > _MAX_DIGITS:
            raise ValueError(f"must be at most {MAX_MINOR_UNITS} (got a number of {len(text)} digits)")
        return int(text)
    return value


def _digits(value: int) -> int:
    return len(str(abs(value))) if abs(value).bit_length() < 10_000 else abs(value).bit_length() * 3 // 10


def parse_major_units(text: str, currency: str) -> int:
    """A form amount in major units ('1,234.50', '500') as integer minor units of `currency`.

    ASCII digits, an optional '.' with at most the currency's decimals, and ',' as a thousands separator;
    anything else (exponents, full-width digits, more than 16 digits) raises ValueError with the reason.
    """
    decimals = CURRENCIES.get(currency, 2)
    cleaned = text.strip().replace(",", "")
    if not _PLAIN_DECIMAL.fullmatch(cleaned):
        raise ValueError("enter an amount like 500.00 (digits, an optional '.' and cents)")
    whole, _, fraction = cleaned.partition(".")
    if len(fraction) > decimals:
        places = f"at most {decimals} decimal places" if decimals else "no decimal places"
        raise ValueError(f"{places} for {currency}")
    if len(whole.lstrip("-").lstrip("0")) + decimals > _MAX_DIGITS:
        raise ValueError(f"too large: at most {format_money(MAX_MINOR_UNITS, currency)}")
    sign = -1 if whole.startswith("-") else 1
    minor = int(whole.lstrip("-") or "0") * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    return sign * minor


def check_overdue_since(value: date, today: date, max_years: int) -> date:
    """`overdue_since` as servicing may send it: not after `today` (borrower-local) and at most `max_years`
    back. A date in 1900 is a data error, and would be written off within seconds of starting."""
    if value > today:
        raise ValueError(f"{value} is in the future (today is {today} in the borrower's timezone)")
    earliest = _years_before(today, max_years)
    if value < earliest:
        raise ValueError(
            f"{value} is more than {max_years} years ago (earliest accepted {earliest}); "
            "check the date, or raise OVERDUE_MAX_OVERDUE_YEARS"
        )
    return value


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February, in a year without one
        return day.replace(year=day.year - years, day=28)


MinorUnits = Annotated[int, BeforeValidator(parse_minor_units), Field(ge=0, le=MAX_MINOR_UNITS)]
PositiveMinorUnits = Annotated[int, BeforeValidator(parse_minor_units), Field(gt=0, le=MAX_MINOR_UNITS)]


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
    name: CleanName = Field(min_length=1, max_length=200)
    phone: str = Field(description="E.164, e.g. +8613800138000")
    email: str | None = Field(default=None, max_length=254)
    locale: Locale = "zh-CN"
    timezone: str = "Asia/Shanghai"
    postal_address: CleanText | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="where letters and field visits go, as printed on an envelope: one line or several "
        "(newline-separated); absent: steps that need it become a task to trace the address",
    )

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

    payment_id: Identifier = Field(min_length=1, max_length=128)
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
