"""Contact profiles as data: the shipped cn, us and uk profiles carry DOMAIN.md §3's numbers; a broken file is
a ContactProfileError naming the file and the field."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from domain.config_file import ConfigError
from domain.contact_profiles import (
    PROFILES_FILE,
    ContactProfile,
    ContactProfileError,
    default_profiles,
    load_profiles,
    parse_profiles,
)

SOURCE = "strategies/broken_profiles.toml"
MINIMAL = """
[xx]
contact_hours_start = "08:00"
contact_hours_end = "21:00"
dispute_stops_collection = false
retention_years = 3
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ContactProfileError) as failure:
        parse_profiles(text, SOURCE)
    error = failure.value
    assert error.path == SOURCE
    assert str(error).splitlines() == [f"{SOURCE}: {p}" for p in error.problems]
    return error.problems


def test_defaults_are_cn_us_uk() -> None:
    assert sorted(default_profiles()) == ["cn", "uk", "us"]


def test_cn_default_matches_domain_md() -> None:
    cn = default_profiles()["cn"]
    assert (cn.contact_hours_start, cn.contact_hours_end) == (time(8, 0), time(22, 0))
    assert cn.max_connected_calls_per_day == 3
    assert cn.max_call_attempts is None
    assert cn.retention_years == 5
    assert not cn.dispute_stops_collection
    assert cn.validation_notice_within_days is None


def test_us_default_matches_regulation_f() -> None:
    us = default_profiles()["us"]
    assert (us.contact_hours_start, us.contact_hours_end) == (time(8, 0), time(21, 0))
    assert {"sms", "email"} <= set(us.hours_apply_to)  # §1006.6(b) covers electronic messages too
    assert (us.max_call_attempts, us.call_attempt_window_days) == (7, 7)
    assert us.quiet_days_after_conversation == 7
    assert us.validation_notice_within_days == 5
    assert us.dispute_stops_collection
    assert us.retention_years == 3
    assert us.max_connected_calls_per_day is None


def test_uk_default_matches_conc_and_breathing_space() -> None:
    uk = default_profiles()["uk"]
    assert (uk.contact_hours_start, uk.contact_hours_end) == (time(8, 0), time(21, 0))
    assert uk.breathing_space_days == 60
    assert uk.retention_years == 6
    assert not uk.dispute_stops_collection


def test_hours_bind_every_channel_but_letters_by_default() -> None:
    for profile in default_profiles().values():
        assert sorted(profile.hours_apply_to) == ["call", "email", "push", "sms", "visit"]


def test_profile_name_is_the_table_key() -> None:
    assert parse_profiles(MINIMAL, SOURCE)["xx"].name == "xx"


def test_load_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profiles(path) == default_profiles()


def test_profile_survives_a_json_round_trip() -> None:
    # The profile travels in the workflow input through Temporal's pydantic converter.
    for profile in default_profiles().values():
        assert ContactProfile.model_validate_json(profile.model_dump_json()) == profile


def test_holidays_accept_toml_dates_and_strings_and_are_sorted() -> None:
    text = MINIMAL + 'holidays = [2026-10-02, "2026-10-01"]\n'
    assert parse_profiles(text, SOURCE)["xx"].holidays == [date(2026, 10, 1), date(2026, 10, 2)]


def test_ledger_days_cover_the_longest_lookback() -> None:
    profiles = default_profiles()
    assert profiles["us"].ledger_days() == 8
    assert profiles["cn"].ledger_days() == 3


def test_end_before_start_names_file_and_field() -> None:
    text = MINIMAL.replace('"21:00"', '"07:00"')
    assert problems(text) == ["xx.contact_hours_end: must be after contact_hours_start (08:00)"]


def test_end_equal_to_start_is_refused() -> None:
    assert problems(MINIMAL.replace('"21:00"', '"08:00"'))[0].startswith(
        "xx.contact_hours_end: must be after"
    )


def test_unknown_setting_is_refused() -> None:
    assert problems(MINIMAL + "max_calls = 3\n") == ["xx.max_calls: Extra inputs are not permitted"]


def test_unknown_channel_is_named_with_its_position() -> None:
    (problem,) = problems(MINIMAL + 'hours_apply_to = ["sms", "fax"]\n')
    assert problem.startswith("xx.hours_apply_to[1]: Input should be 'sms', 'email'")


def test_weekday_out_of_range_is_named_with_its_position() -> None:
    (problem,) = problems(MINIMAL + "non_contact_weekdays = [6, 7]\n")
    assert problem == "xx.non_contact_weekdays[1]: Input should be less than or equal to 6"


def test_every_weekday_off_is_refused() -> None:
    (problem,) = problems(MINIMAL + "non_contact_weekdays = [0, 1, 2, 3, 4, 5, 6]\n")
    assert problem.startswith("xx.non_contact_weekdays: every weekday is a non-contact day")


def test_duplicate_channels_are_refused() -> None:
    assert problems(MINIMAL + 'hours_apply_to = ["sms", "sms"]\n') == ["xx.hours_apply_to: listed twice: sms"]


def test_zero_cap_is_refused() -> None:
    (problem,) = problems(MINIMAL + "max_connected_calls_per_day = 0\n")
    assert problem == "xx.max_connected_calls_per_day: Input should be greater than or equal to 1"


def test_missing_required_setting_is_named() -> None:
    assert problems(MINIMAL.replace("retention_years = 3\n", "")) == ["xx.retention_years: Field required"]


def test_the_retired_third_party_setting_is_accepted_and_dropped() -> None:
    # Profiles in running loans' histories and operators' files may still carry it (nothing ever read it).
    profile = parse_profiles(MINIMAL + 'third_party_contact = "sometimes"\n')["xx"]
    assert "third_party_contact" not in profile.model_dump()


def test_problems_in_several_profiles_are_all_reported() -> None:
    # A top-level key must come before the first table in TOML.
    text = "zz = 1\n" + MINIMAL + MINIMAL.replace("[xx]", "[yy]").replace('"21:00"', '"07:00"')
    assert problems(text.replace("retention_years = 3\n", "", 1)) == [
        "zz: must be a table of profile settings ([zz])",
        "xx.retention_years: Field required",
        "yy.contact_hours_end: must be after contact_hours_start (08:00)",
    ]


def test_name_must_match_the_table() -> None:
    assert problems(MINIMAL + 'name = "other"\n') == [
        "xx.name: must be the table's own name 'xx' (or left out)"
    ]


def test_bad_table_name_is_refused() -> None:
    (problem,) = problems(MINIMAL.replace("[xx]", "[US]"))
    assert problem.startswith("US.name: String should match pattern")


def test_empty_file_is_refused() -> None:
    assert problems("") == ["(top level): no profiles; add a table such as [cn]"]


def test_invalid_toml_is_refused() -> None:
    (problem,) = problems("[cn\n")
    assert problem.startswith("not valid TOML:")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ContactProfileError) as failure:
        load_profiles(path)
    assert str(failure.value) == f"{path}: cannot read: No such file or directory"


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ContactProfileError, ConfigError)
    assert issubclass(ContactProfileError, ValueError)
