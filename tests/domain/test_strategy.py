"""Strategy as data: the default loads; a broken file is a StrategyError naming the file and the field;
segments are chosen per loan and shift the steps."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from domain.strategy import (
    STRATEGY_DIR,
    Strategy,
    StrategyError,
    default_strategy,
    load_strategy,
    parse_strategy,
)
from tests.domain.factories import DEFAULT, loan

SOURCE = "strategies/broken.toml"
DEFAULT_TEXT = (STRATEGY_DIR / "default.toml").read_text(encoding="utf-8")

HEADER = """
name = "tiny"
version = 1
"""
SMS = """
[[steps]]
id = "sms"
dpd = 1
stage = "reminder"
action = "message"
channel = "sms"
template = "t"
"""
CALL = """
[[steps]]
id = "call"
dpd = 15
stage = "deep_contact"
action = "collector_task"
task = "call"
"""
AGENCY = """
[[steps]]
id = "agency"
dpd = 45
stage = "agency"
action = "place_with_agency"
period_days = 60
"""


def problems(text: str) -> list[str]:
    with pytest.raises(StrategyError) as failure:
        parse_strategy(text, SOURCE)
    error = failure.value
    assert error.path == SOURCE
    # The exception text is one line per problem, each starting with the file.
    assert str(error).splitlines() == [f"{SOURCE}: {p}" for p in error.problems]
    return error.problems


def replaced(old: str, new: str) -> str:
    assert DEFAULT_TEXT.count(old) == 1, old
    return DEFAULT_TEXT.replace(old, new)


# -- loading -----------------------------------------------------------------------------------------------


def test_default_strategy_loads_with_its_steps_in_dpd_order() -> None:
    strategy = default_strategy()

    assert (strategy.name, strategy.version, strategy.contact_time) == ("default", 1, time(9, 0))
    assert [(s.id, s.dpd) for s in strategy.steps] == [
        ("sms_reminder", 1),
        ("email_statement", 3),
        ("push_second_reminder", 7),
        ("collector_call", 15),
        ("supervisor_review", 30),
        ("field_visit", 30),
        ("agency_placement", 45),
        ("lawyer_letter", 90),
        ("litigation_referral", 105),
        ("write_off", 180),
    ]
    assert [s.name for s in strategy.segments] == ["high_balance", "high_risk", "low_risk_small"]
    assert (strategy.promise.max_days_ahead, strategy.promise.grace_days) == (30, 2)


def test_steps_given_out_of_order_are_sorted_by_dpd() -> None:
    strategy = parse_strategy(HEADER + AGENCY + CALL + SMS)

    assert [s.id for s in strategy.steps] == ["sms", "call", "agency"]


def test_load_strategy_of_a_missing_file_names_the_file() -> None:
    missing = Path("/nonexistent/overdue/strategy.toml")

    with pytest.raises(StrategyError) as failure:
        load_strategy(missing)

    assert failure.value.path == str(missing)
    assert str(failure.value) == f"{missing}: cannot read: No such file or directory"


def test_invalid_toml_names_the_source_and_the_position() -> None:
    [problem] = problems(HEADER + "[[steps]\nid = 1\n")

    assert problem.startswith("not valid TOML: ")
    assert "(at line 4, column 8)" in problem  # HEADER is 3 lines; "[[steps]" is unclosed on line 4


# -- field errors ------------------------------------------------------------------------------------------


def test_message_step_without_channel_names_the_step_by_index_and_id() -> None:
    text = replaced('channel = "sms"\ntemplate = "reminder_polite"\n', 'template = "reminder_polite"\n')

    assert problems(text) == [
        "steps[0 id=sms_reminder]: step 'sms_reminder': a message step needs 'channel' and 'template'"
    ]


def test_collector_task_without_task_is_rejected() -> None:
    [problem] = problems(HEADER + SMS + CALL.replace('task = "call"\n', ""))

    assert problem.startswith("steps[1 id=call]: ")
    assert "a collector_task step needs 'task'" in problem


def test_agency_step_without_period_is_rejected() -> None:
    [problem] = problems(HEADER + SMS + AGENCY.replace("period_days = 60\n", ""))

    assert problem.startswith("steps[1 id=agency]: ")
    assert "needs 'period_days'" in problem


def test_bad_nested_value_names_the_full_field_path() -> None:
    text = replaced("repeat_every_days = 3\n", "repeat_every_days = 0\n")

    assert problems(text) == [
        "steps[3 id=collector_call].repeat_every_days: Input should be greater than or equal to 1"
    ]


def test_unknown_currency_in_step_threshold_is_rejected() -> None:
    text = replaced(
        "min_amount_overdue_minor = { CNY = 2000000, USD",
        "min_amount_overdue_minor = { RMB = 2000000, USD",
    )

    [problem] = problems(text)
    assert problem.startswith("steps[5 id=field_visit]: ")
    assert "unknown currency 'RMB' in min_amount_overdue_minor" in problem


def test_duplicate_step_ids_are_listed() -> None:
    text = replaced('id = "email_statement"', 'id = "sms_reminder"')

    assert problems(text) == ["steps: duplicate step ids: sms_reminder"]


def test_stage_going_backwards_names_both_steps() -> None:
    # The agency placement moved before the supervisor review of DPD 30 (deep contact).
    text = replaced('dpd = 45\nstage = "agency"', 'dpd = 20\nstage = "agency"')

    [problem] = problems(text)
    assert problem.startswith("steps: ")
    assert (
        "step 'supervisor_review' (DPD 30, deep_contact) comes after 'agency_placement' (DPD 20, agency): "
        "stages must not go backwards"
    ) in problem


def test_non_write_off_step_in_closed_stage_is_rejected() -> None:
    [problem] = problems(HEADER + SMS + CALL.replace('stage = "deep_contact"', 'stage = "closed"'))

    assert "only a write_off step belongs to stage 'closed'" in problem


def test_unknown_step_in_segment_override_is_named_with_its_segment() -> None:
    text = replaced(
        "overrides.field_visit = { enabled = false }", "overrides.field_vist = { enabled = false }"
    )

    [problem] = problems(text)
    assert problem.endswith("segments: segments[2 name=low_risk_small].overrides: unknown steps: field_vist")


def test_segment_override_making_stages_go_backwards_names_the_segment_and_steps() -> None:
    # high_risk places with the agency at DPD 35; a collector call moved to DPD 50 would come after it.
    text = replaced("overrides.collector_call = { dpd = 10 }", "overrides.collector_call = { dpd = 50 }")

    [problem] = problems(text)
    assert problem.endswith(
        "segments[1 name=high_risk]: step 'collector_call' (DPD 50, deep_contact) comes after "
        "'agency_placement' (DPD 35, agency): stages must not go backwards"
    )


def test_bad_value_in_segment_override_names_the_segment_path() -> None:
    text = replaced(
        "overrides.supervisor_review = { dpd = 25 }", "overrides.supervisor_review = { dpd = -1 }"
    )

    assert problems(text) == [
        "segments[1].overrides.supervisor_review.dpd: Input should be greater than or equal to 0"
    ]


def test_several_problems_are_each_reported() -> None:
    text = replaced("repeat_every_days = 3\n", "repeat_every_days = 0\n").replace(
        "period_days = 60\n", "period_days = 0\n"
    )

    assert problems(text) == [
        "steps[3 id=collector_call].repeat_every_days: Input should be greater than or equal to 1",
        "steps[6 id=agency_placement].period_days: Input should be greater than or equal to 1",
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("overrides.field_visit = { enabled = false }", "overrides.field_vist = { enabled = false }"),
        ("overrides.collector_call = { dpd = 10 }", "overrides.collector_call = { dpd = 50 }"),
    ],
)
def test_segment_problems_are_located_at_the_segment(old: str, new: str) -> None:
    [problem] = problems(replaced(old, new))

    assert problem.startswith("segments: segments[")


def test_unknown_currency_in_segment_match_is_rejected() -> None:
    text = replaced(
        "match = { min_amount_overdue_minor = { CNY = 5000000,",
        "match = { min_amount_overdue_minor = { RMB = 5000000,",
    )

    [problem] = problems(text)
    assert "RMB" in problem


def test_duplicate_segment_names_are_rejected() -> None:
    text = DEFAULT_TEXT.replace('name = "high_risk"', 'name = "high_balance"')

    [problem] = problems(text)
    assert "high_balance" in problem


# -- segments ---------------------------------------------------------------------------------------------


def test_segment_for_high_balance() -> None:
    the_loan = loan(amount_overdue_minor=5_000_000, principal_outstanding_minor=9_000_000, risk_grade="C")

    assert DEFAULT.segment_for(the_loan) == "high_balance"


def test_segment_for_high_balance_wins_over_high_risk_as_the_first_match() -> None:
    the_loan = loan(amount_overdue_minor=5_000_000, principal_outstanding_minor=9_000_000, risk_grade="E")

    assert DEFAULT.segment_for(the_loan) == "high_balance"


def test_segment_for_just_below_high_balance_is_standard() -> None:
    the_loan = loan(amount_overdue_minor=4_999_999, principal_outstanding_minor=9_000_000, risk_grade="C")

    assert DEFAULT.segment_for(the_loan) == "standard"


def test_segment_for_high_risk() -> None:
    assert DEFAULT.segment_for(loan(risk_grade="D")) == "high_risk"


def test_segment_for_low_risk_small_includes_the_maximum() -> None:
    assert DEFAULT.segment_for(loan(risk_grade="A", amount_overdue_minor=300_000)) == "low_risk_small"


def test_segment_for_low_risk_above_the_small_maximum_is_standard() -> None:
    assert DEFAULT.segment_for(loan(risk_grade="B", amount_overdue_minor=300_001)) == "standard"


def test_segment_for_a_currency_without_thresholds_is_standard() -> None:
    the_loan = loan(currency="HKD", risk_grade="A", amount_overdue_minor=1_000)

    assert DEFAULT.segment_for(the_loan) == "standard"


def test_segment_for_standard() -> None:
    assert DEFAULT.segment_for(loan(risk_grade="C", amount_overdue_minor=500_000)) == "standard"


def test_explicit_loan_segment_wins() -> None:
    the_loan = loan(risk_grade="A", amount_overdue_minor=100_000, segment="high_risk")

    assert DEFAULT.segment_for(the_loan) == "high_risk"


# -- steps per segment -------------------------------------------------------------------------------------


def by_id(strategy: Strategy, segment: str) -> dict[str, tuple[int, bool, int | None]]:
    return {s.id: (s.dpd, s.enabled, s.repeat_every_days) for s in strategy.steps_for(segment)}


def test_low_risk_small_disables_field_visit_and_places_with_agency_at_dpd_60() -> None:
    steps = by_id(DEFAULT, "low_risk_small")

    assert steps["field_visit"] == (30, False, None)
    assert steps["agency_placement"] == (60, True, None)
    assert steps["collector_call"] == (21, True, 4)
    assert steps["push_second_reminder"] == (10, True, None)
    assert steps["supervisor_review"] == (40, True, None)
    assert steps["lawyer_letter"] == (90, True, None)  # not overridden


def test_steps_for_a_segment_are_in_dpd_order() -> None:
    assert [(s.id, s.dpd) for s in DEFAULT.steps_for("high_balance")] == [
        ("sms_reminder", 1),
        ("email_statement", 3),
        ("push_second_reminder", 7),
        ("collector_call", 8),
        ("supervisor_review", 20),
        ("field_visit", 20),
        ("agency_placement", 35),
        ("lawyer_letter", 75),
        ("litigation_referral", 90),
        ("write_off", 180),
    ]


def test_steps_for_standard_or_an_unknown_segment_are_the_strategy_steps() -> None:
    assert DEFAULT.steps_for("standard") == DEFAULT.steps
    assert DEFAULT.steps_for("no_such_segment") == DEFAULT.steps


def test_steps_for_does_not_change_the_strategy() -> None:
    DEFAULT.steps_for("low_risk_small")

    assert by_id(DEFAULT, "standard")["agency_placement"] == (45, True, None)
    assert by_id(DEFAULT, "standard")["field_visit"] == (30, True, None)
