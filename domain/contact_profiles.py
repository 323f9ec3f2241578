"""Contact rules of a jurisdiction as data: hours, caps, holds, notices (shared/design/DOMAIN.md §3).

The numbers are defaults of a profile, never hard-coded in the rules: a lender operating under stricter
internal policy, or a jurisdiction added later, is a new TOML table, not a code release. Like a strategy, a
profile is validated when it is loaded and travels in the workflow's input, so a running loan keeps the
profile it started with (replay-safe).
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.config_file import ConfigError, parse_toml, read_config_text, validation_problems

ContactChannel = Literal["sms", "email", "push", "call", "visit", "letter"]
CONTACT_CHANNELS: tuple[ContactChannel, ...] = ("sms", "email", "push", "call", "visit", "letter")
# A letter is read when the borrower chooses to read it: contact hours are about intrusion at home.
HOURS_CHANNELS: tuple[ContactChannel, ...] = ("sms", "email", "push", "call", "visit")
Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday .. 6 = Sunday")]
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

PROFILE_NAME = r"^[a-z0-9_\-]+$"


class ContactProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=PROFILE_NAME)
    contact_hours_start: time = Field(description="borrower-local, inclusive")
    contact_hours_end: time = Field(
        description="borrower-local, exclusive: a contact at exactly this time is out"
    )
    hours_apply_to: list[ContactChannel] = Field(
        default_factory=lambda: list(HOURS_CHANNELS),
        description="channels bound by the hours, holidays and non-contact weekdays",
    )
    non_contact_weekdays: list[Weekday] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list, description="borrower-local non-contact days")
    max_connected_calls_per_day: int | None = Field(
        default=None, ge=1, le=100, description="answered calls per borrower-local day, lender and agencies"
    )
    max_call_attempts: int | None = Field(
        default=None, ge=1, le=1000, description="call attempts in any call_attempt_window_days (rolling)"
    )
    call_attempt_window_days: int = Field(default=7, ge=1, le=60)
    quiet_days_after_conversation: int | None = Field(
        default=None, ge=1, le=60, description="no call within this many days after speaking to the borrower"
    )
    min_hours_between_messages: int | None = Field(
        default=None, ge=1, le=24 * 60, description="spacing between sms/email/push; None = off"
    )
    validation_notice_within_days: int | None = Field(
        default=None, ge=1, le=60, description="validation notice with the first contact or within this"
    )
    dispute_stops_collection: bool
    breathing_space_days: int | None = Field(default=None, ge=1, le=365)
    borrower_hardship_hold_days: int | None = Field(
        default=None,
        ge=1,
        le=90,
        description="a hardship request from the borrower's own page pauses collection this many days "
        "while a collector reviews it; None: it becomes a review task only",
    )
    retention_years: int = Field(
        ge=1,
        le=100,
        description="years a closed loan's record is kept after its last activity (python -m stack.purge, "
        "python -m privacy.erase): the one setting of this period",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_third_party_contact(cls, data: object) -> object:
        # `third_party_contact` described a permission nothing used: Overdue contacts the borrower only, which
        # is within every jurisdiction's rule. Profiles in running loans' histories and operators' files may
        # still carry it: it is accepted and dropped, never an error (docs/personal-data.md).
        if isinstance(data, dict) and "third_party_contact" in data:
            return {key: value for key, value in data.items() if key != "third_party_contact"}
        return data

    @field_validator("contact_hours_end")
    @classmethod
    def _end_after_start(cls, end: time, info: ValidationInfo) -> time:
        # A window within one local day: an overnight window ("20:00-02:00") is a typo far more often than a
        # policy, and no jurisdiction we know allows calls at night.
        start = info.data.get("contact_hours_start")
        if start is not None and end <= start:
            raise ValueError(f"must be after contact_hours_start ({start:%H:%M})")
        return end

    @field_validator("hours_apply_to", "non_contact_weekdays")
    @classmethod
    def _no_duplicates(cls, values: list[object]) -> list[object]:
        duplicates = sorted({str(v) for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return values

    @field_validator("non_contact_weekdays")
    @classmethod
    def _some_contact_day(cls, weekdays: list[int]) -> list[int]:
        if len(set(weekdays)) == 7:
            raise ValueError("every weekday is a non-contact day: the borrower could never be contacted")
        return sorted(weekdays)

    @field_validator("holidays")
    @classmethod
    def _sorted_holidays(cls, holidays: list[date]) -> list[date]:
        return sorted(set(holidays))

    def ledger_days(self) -> int:
        """How many days of contact attempts the rules look back at: `prune_attempts(keep_days=...)`."""
        spacing_days = -(-(self.min_hours_between_messages or 0) // 24)
        return 1 + max(
            2,  # the borrower-local day of the daily call cap, whatever the zone's offset
            self.call_attempt_window_days if self.max_call_attempts is not None else 0,
            self.quiet_days_after_conversation or 0,
            spacing_days,
        )


class ContactProfileError(ConfigError):
    """A contact-profile file that cannot be used, with one line per problem: file, field, message."""


def parse_profiles(text: str, source: Path | str = "<contact profiles>") -> dict[str, ContactProfile]:
    """Every top-level table is a profile named by its key (`[us]` is the profile "us")."""
    raw = parse_toml(text, source, ContactProfileError)
    if not raw:
        raise ContactProfileError(source, ["(top level): no profiles; add a table such as [cn]"])
    profiles: dict[str, ContactProfile] = {}
    problems: list[str] = []
    for key, table in raw.items():
        if not isinstance(table, dict):
            problems.append(f"{key}: must be a table of profile settings ([{key}])")
            continue
        if "name" in table and table["name"] != key:
            problems.append(f"{key}.name: must be the table's own name {key!r} (or left out)")
            continue
        try:
            profiles[key] = ContactProfile.model_validate({"name": key, **table})
        except ValidationError as error:
            problems.extend(validation_problems(error, table, prefix=key))
    if problems:
        raise ContactProfileError(source, problems)
    return profiles


def load_profiles(path: Path | str) -> dict[str, ContactProfile]:
    path = Path(path)
    return parse_profiles(read_config_text(path, ContactProfileError), path)


PROFILES_FILE = Path(__file__).resolve().parent.parent / "strategies" / "contact_profiles.toml"


def default_profiles() -> dict[str, ContactProfile]:
    """The shipped cn, us and uk profiles."""
    return load_profiles(PROFILES_FILE)
