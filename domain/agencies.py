"""Collection agencies as data: who takes which accounts, how many, at what commission, how to reach them.

`strategies/agencies.toml` (OVERDUE_AGENCIES_FILE) lists the agencies; the worker validates it at start and
syncs it into the `agencies` table (activities/agency.py `sync_agencies`), so adding an agency, changing a
capacity or pausing one is a config change, not a code release. An agency removed from the file becomes
inactive, never deleted: its placements still reference it, and the lender stays liable for them.

    [[agencies]]
    id = "east-recovery"                  # stable: placements reference it
    name = "East Recovery Partners"
    endpoint = "https://api.east-recovery.example/v1"   # or "file" (CSV export), or "sandbox" (make run)
    capacity = 500                        # accounts held at once (un-recalled placements)
    segments = []                         # empty: any segment
    commission_bps = 1800                 # 18.00 % of what it recovers
    min_amount_overdue_minor = { CNY = 100000 }   # optional, per currency (a currency not listed: not taken)
    max_amount_overdue_minor = { CNY = 5000000 }  # optional, likewise
    receives_contact_details = false      # file export: borrower name and phone only when true
    api_key_env = "OVERDUE_AGENCY_EAST_RECOVERY_KEY"  # optional: the variable holding its API key
    active = true

A broken file is one error listing every problem as `file: agencies[i id=...].field: message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.config_file import ConfigError, parse_toml, read_config_text, validation_problems
from domain.loan import CURRENCIES

FILE_ENDPOINT = "file"  # no API: the agency receives a CSV (`python -m starter agencies export`)
SANDBOX_ENDPOINT = "sandbox"  # the local sandbox agency of `make run` (stack/sandbox/agency.py)

AgencyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
SegmentName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
AmountLimits = dict[str, Annotated[int, Field(ge=0, le=10**15)]]


class AgencyConfigError(ConfigError):
    """An agencies file that cannot be used, with one line per problem: file, field, message."""


class AgencyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: AgencyId
    name: str = Field(min_length=1, max_length=200)
    endpoint: str = Field(
        min_length=1, max_length=500, description="the agency's API base URL, 'file' or 'sandbox'"
    )
    capacity: int = Field(ge=0, le=10_000_000, description="accounts it holds at once")
    segments: list[SegmentName] = Field(default_factory=list, description="empty: any segment")
    commission_bps: int = Field(ge=0, le=10_000, description="basis points of what it recovers")
    active: bool = True
    min_amount_overdue_minor: AmountLimits | None = None
    max_amount_overdue_minor: AmountLimits | None = None
    receives_contact_details: bool = Field(
        default=False, description="the CSV export includes the borrower's name and phone"
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        max_length=128,
        description="environment variable holding this agency's API key (else OVERDUE_AGENCY_API_KEY)",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value in (FILE_ENDPOINT, SANDBOX_ENDPOINT):
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be 'file', 'sandbox' or the agency's API base URL http(s)://host[/path], got {value!r}"
            )
        if parts.username or parts.password:
            raise ValueError(
                "must not carry credentials: put the API key in the variable named by api_key_env"
            )
        if parts.query or parts.fragment:
            raise ValueError("must be a base URL without ?query or #fragment ('/placements' is appended)")
        return value.rstrip("/")

    @field_validator("segments")
    @classmethod
    def _segments(cls, segments: list[str]) -> list[str]:
        duplicates = sorted({s for s in segments if segments.count(s) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return segments

    @field_validator("min_amount_overdue_minor", "max_amount_overdue_minor")
    @classmethod
    def _currencies(cls, amounts: AmountLimits | None) -> AmountLimits | None:
        # A typo ("RMB") would make the agency silently take nothing in that currency: refuse it at load.
        unknown = sorted(set(amounts or {}) - set(CURRENCIES))
        if unknown:
            raise ValueError(
                f"unknown currency {', '.join(unknown)}; expected one of {', '.join(sorted(CURRENCIES))}"
            )
        return amounts

    @model_validator(mode="after")
    def _consistent(self) -> AgencyConfig:
        low, high = self.min_amount_overdue_minor or {}, self.max_amount_overdue_minor or {}
        for currency in sorted(set(low) & set(high)):
            if low[currency] > high[currency]:
                raise ValueError(
                    f"min_amount_overdue_minor.{currency} ({low[currency]}) is above "
                    f"max_amount_overdue_minor.{currency} ({high[currency]})"
                )
        if self.api_key_env is not None and self.endpoint == FILE_ENDPOINT:
            raise ValueError("api_key_env: a file agency has no API; remove it or give an endpoint URL")
        return self

    @property
    def is_file(self) -> bool:
        return self.endpoint == FILE_ENDPOINT

    def takes(self, segment: str, amount_overdue_minor: int, currency: str) -> bool:
        """The pure form of the assignment filter (activities/agency.py does the same in SQL)."""
        if not self.active or (self.segments and segment not in self.segments):
            return False
        if self.min_amount_overdue_minor is not None:
            low = self.min_amount_overdue_minor.get(currency)
            if low is None or amount_overdue_minor < low:
                return False
        if self.max_amount_overdue_minor is not None:
            high = self.max_amount_overdue_minor.get(currency)
            if high is None or amount_overdue_minor > high:
                return False
        return True


class AgencyBook(BaseModel):
    """Every agency of the file, in file order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[AgencyConfig] = Field(default_factory=list)

    @field_validator("agencies")
    @classmethod
    def _unique_ids(cls, agencies: list[AgencyConfig]) -> list[AgencyConfig]:
        ids = [a.id for a in agencies]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate agency ids: {', '.join(duplicates)}")
        return agencies

    def get(self, agency_id: str) -> AgencyConfig | None:
        return next((a for a in self.agencies if a.id == agency_id), None)


def parse_agencies(text: str, source: Path | str = "<agencies>") -> AgencyBook:
    raw: dict[str, Any] = parse_toml(text, source, AgencyConfigError)
    try:
        return AgencyBook.model_validate(raw)
    except ValidationError as error:
        raise AgencyConfigError(source, validation_problems(error, raw)) from None


def load_agencies(path: Path | str) -> AgencyBook:
    path = Path(path)
    return parse_agencies(read_config_text(path, AgencyConfigError), path)
