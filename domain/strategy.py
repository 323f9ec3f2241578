"""Collections strategy as data: stages and steps keyed by DPD, per-segment overrides.

A strategy is loaded from TOML and validated before any loan uses it, so a typo in a config file is a clear
error naming the file and the field, never a loan that silently stops escalating. The workflow receives the
validated strategy in its input: each loan keeps the strategy it started with (replay-safe), and a new
strategy applies to loans started after it was deployed — no code release needed.
"""

from __future__ import annotations

from datetime import time
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from domain.config_file import ConfigError, parse_toml, read_config_text, validation_problems
from domain.loan import CURRENCIES, Loan, RiskGrade

Stage = Literal["reminder", "deep_contact", "agency", "legal", "closed"]
STAGE_ORDER: tuple[Stage, ...] = ("reminder", "deep_contact", "agency", "legal", "closed")
Channel = Literal["sms", "email", "push"]
Action = Literal[
    "message",  # SMS / e-mail / app push through a channel adapter
    "collector_task",  # a call, field visit or supervisor review for a collector
    "place_with_agency",
    "lawyer_letter",
    "refer_to_litigation",  # ends the workflow with outcome `litigation`
    "write_off",  # ends the workflow with outcome `written_off`
]
TaskKind = Literal["call", "visit", "review"]
Dpd = Annotated[int, Field(ge=0, le=3650)]


def stage_rank(stage: str) -> int:
    return STAGE_ORDER.index(stage)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Config):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    dpd: Dpd
    stage: Stage
    action: Action
    channel: Channel | None = None
    template: str | None = Field(default=None, max_length=64)
    task: TaskKind | None = None
    summary: str = Field(default="", max_length=120, description="what an operator reads in the Web UI")
    repeat_every_days: int | None = Field(default=None, ge=1, le=90)
    period_days: int | None = Field(default=None, ge=1, le=365, description="agency placement period")
    response_days: int | None = Field(default=None, ge=1, le=90, description="lawyer's letter deadline")
    min_amount_overdue_minor: dict[str, int] | None = Field(
        default=None, description="run only when arrears reach this, per currency (e.g. { CNY = 500000 })"
    )
    property_preservation: bool = Field(
        default=False,
        description="litigation referral: also ask the court for property preservation (财产保全)",
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _fields_for_action(self) -> Step:
        if self.action == "message" and (self.channel is None or self.template is None):
            raise ValueError(f"step {self.id!r}: a message step needs 'channel' and 'template'")
        if self.action == "collector_task" and self.task is None:
            raise ValueError(f"step {self.id!r}: a collector_task step needs 'task' (call, visit or review)")
        if self.action == "place_with_agency" and self.period_days is None:
            raise ValueError(f"step {self.id!r}: a place_with_agency step needs 'period_days'")
        if self.stage == "closed" and self.action != "write_off":
            raise ValueError(f"step {self.id!r}: only a write_off step belongs to stage 'closed'")
        if self.min_amount_overdue_minor:
            for currency in self.min_amount_overdue_minor:
                if currency not in CURRENCIES:
                    raise ValueError(
                        f"step {self.id!r}: unknown currency {currency!r} in min_amount_overdue_minor"
                    )
        return self

    def applies_to(self, amount_overdue_minor: int, currency: str) -> bool:
        if not self.enabled:
            return False
        if self.min_amount_overdue_minor is None:
            return True
        threshold = self.min_amount_overdue_minor.get(currency)
        return threshold is not None and amount_overdue_minor >= threshold


class StepOverride(_Config):
    dpd: Dpd | None = None
    channel: Channel | None = None
    template: str | None = None
    enabled: bool | None = None
    repeat_every_days: int | None = Field(default=None, ge=1, le=90)


class SegmentMatch(_Config):
    risk_grades: list[RiskGrade] | None = None
    min_amount_overdue_minor: dict[str, int] | None = None
    max_amount_overdue_minor: dict[str, int] | None = None

    @field_validator("min_amount_overdue_minor", "max_amount_overdue_minor")
    @classmethod
    def _currencies(cls, amounts: dict[str, int] | None) -> dict[str, int] | None:
        # A typo ("RMB") would make the rule silently never match: refuse it at load.
        unknown = sorted(set(amounts or {}) - set(CURRENCIES))
        if unknown:
            raise ValueError(
                f"unknown currency {', '.join(unknown)}; expected one of {', '.join(sorted(CURRENCIES))}"
            )
        return amounts

    def matches(self, loan: Loan) -> bool:
        if self.risk_grades is not None and loan.risk_grade not in self.risk_grades:
            return False
        if self.min_amount_overdue_minor is not None:
            low = self.min_amount_overdue_minor.get(loan.currency)
            if low is None or loan.amount_overdue_minor < low:
                return False
        if self.max_amount_overdue_minor is not None:
            high = self.max_amount_overdue_minor.get(loan.currency)
            if high is None or loan.amount_overdue_minor > high:
                return False
        return True


class Segment(_Config):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    match: SegmentMatch = SegmentMatch()
    overrides: dict[str, StepOverride] = Field(default_factory=dict, description="keyed by step id")


class PromiseRules(_Config):
    max_days_ahead: int = Field(default=30, ge=1, le=365, description="latest promise date from today")
    grace_days: int = Field(default=2, ge=0, le=30)
    broken_channel: Channel = "sms"
    broken_template: str = "broken_promise"
    escalate_after_broken: int = Field(
        default=2,
        ge=1,
        le=10,
        description="this many broken promises move the loan to the next stage at once",
    )


# -- what a borrower may arrange alone (borrower page, issue 11) -------------------------------------------


class BorrowerBand(_Config):
    """The bounds of a borrower's own promise or plan for arrears up to `up_to_minor` in `currency`.

    Bands are per currency (a `currency` field on each band, not a per-currency map): minor units only mean
    something in one currency, and a loan in a currency without a band is offered no plan at all."""

    currency: str = Field(min_length=3, max_length=3)
    up_to_minor: int | None = Field(default=None, ge=1, description="arrears up to this; absent: no limit")
    max_instalments: int = Field(ge=2, le=12, description="the most instalments a borrower may choose")
    min_instalment_minor: int = Field(ge=1, description="the smallest instalment")
    max_plan_days: int = Field(ge=1, le=365, description="the last instalment at most this many days ahead")
    first_payment_within_days: int = Field(ge=0, le=90)
    promise_within_days: int = Field(
        ge=0, le=365, description="a promise's date at most this many days ahead"
    )
    settlement_floor_bp: int | None = Field(
        default=None,
        ge=1,
        le=9999,
        description="a borrower may propose to settle for at least this share of the arrears (basis points); "
        "absent: no settlement proposal",
    )

    @field_validator("currency")
    @classmethod
    def _known(cls, currency: str) -> str:
        if currency not in CURRENCIES:
            raise ValueError(
                f"unknown currency {currency!r}; expected one of {', '.join(sorted(CURRENCIES))}"
            )
        return currency


class BorrowerPlans(_Config):
    """Bands by arrears: the first band of the loan's currency whose `up_to_minor` covers the arrears."""

    bands: list[BorrowerBand] = Field(min_length=1)

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: list[BorrowerBand]) -> list[BorrowerBand]:
        for currency in sorted({b.currency for b in bands}):
            own = [b for b in bands if b.currency == currency]
            limits = [b.up_to_minor for b in own]
            if None in limits[:-1]:
                raise ValueError(f"{currency}: only the last band may leave up_to_minor out (no limit)")
            bounded = [limit for limit in limits if limit is not None]
            if bounded != sorted(set(bounded)):
                raise ValueError(f"{currency}: up_to_minor must increase from band to band")
        return bands


class Strategy(_Config):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    version: int = Field(ge=1)
    contact_time: time = Field(default=time(9, 0), description="borrower-local time a step becomes due")
    # 0 by default: a strategy carried by a loan started before the spread existed keeps its timers on replay.
    contact_spread_minutes: int = Field(
        default=0,
        ge=0,
        le=12 * 60,
        description="each loan's steps fall due at contact_time plus a per-loan offset in [0, this) "
        "(domain.herd), so loans due the same day do not all wake at contact_time",
    )
    promise: PromiseRules = PromiseRules()
    # None by default: a strategy stored before this section existed offers the borrower no plan (the page
    # shows promise and pay only) and keeps the collectors' rules for everything else.
    borrower_plans: BorrowerPlans | None = None
    steps: list[Step] = Field(min_length=1)
    segments: list[Segment] = Field(default_factory=list, description="first match wins; else 'standard'")

    @model_serializer(mode="wrap")
    def _without_absent_sections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A strategy without `borrower_plans` serializes as it did before the section existed, so its
        content-addressed reference (domain.definitions) stays the same across this release."""
        data: dict[str, Any] = handler(self)
        if self.borrower_plans is None:
            data.pop("borrower_plans", None)
        return data

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[Step]) -> list[Step]:
        ids = [s.id for s in steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate step ids: {', '.join(duplicates)}")
        ordered = sorted(steps, key=lambda s: (s.dpd, stage_rank(s.stage)))
        _check_stage_order(ordered, "")
        return ordered

    @field_validator("segments")
    @classmethod
    def _segments(cls, segments: list[Segment], info: ValidationInfo) -> list[Segment]:
        if "steps" not in info.data:
            return segments  # the steps are invalid and reported already; overrides cannot be checked
        steps: list[Step] = info.data["steps"]
        known = {s.id for s in steps}
        names = [s.name for s in segments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate segment names: {', '.join(duplicates)}")
        for index, segment in enumerate(segments):
            where = f"segments[{index} name={segment.name}]"
            unknown = sorted(set(segment.overrides) - known)
            if unknown:
                raise ValueError(f"{where}.overrides: unknown steps: {', '.join(unknown)}")
            _check_stage_order(_apply_overrides(steps, segment), f"{where}: ")
        return segments

    def segment_for(self, loan: Loan) -> str:
        if loan.segment:
            return loan.segment
        for segment in self.segments:
            if segment.match.matches(loan):
                return segment.name
        return "standard"

    def steps_for(self, segment_name: str) -> list[Step]:
        """The strategy's steps with the segment's overrides applied, in DPD order."""
        segment = next((s for s in self.segments if s.name == segment_name), None)
        return list(self.steps) if segment is None else _apply_overrides(self.steps, segment)


def _apply_overrides(steps: list[Step], segment: Segment) -> list[Step]:
    result = []
    for step in steps:
        override = segment.overrides.get(step.id)
        if override is not None:
            step = step.model_copy(update=override.model_dump(exclude_none=True))
        result.append(step)
    return sorted(result, key=lambda s: (s.dpd, stage_rank(s.stage)))


def _check_stage_order(ordered: list[Step], where: str) -> None:
    for earlier, later in pairwise(ordered):
        if stage_rank(later.stage) < stage_rank(earlier.stage):
            raise ValueError(
                f"{where}step {later.id!r} (DPD {later.dpd}, {later.stage}) comes after "
                f"{earlier.id!r} (DPD {earlier.dpd}, {earlier.stage}): stages must not go backwards"
            )


class StrategyError(ConfigError):
    """A strategy file that cannot be used, with one line per problem: file, field, message."""


def parse_strategy(text: str, source: Path | str = "<strategy>") -> Strategy:
    raw = parse_toml(text, source, StrategyError)
    try:
        return Strategy.model_validate(raw)
    except ValidationError as error:
        raise StrategyError(source, validation_problems(error, raw)) from None


def load_strategy(path: Path | str) -> Strategy:
    path = Path(path)
    return parse_strategy(read_config_text(path, StrategyError), path)


STRATEGY_DIR = Path(__file__).resolve().parent.parent / "strategies"


def default_strategy() -> Strategy:
    return load_strategy(STRATEGY_DIR / "default.toml")
