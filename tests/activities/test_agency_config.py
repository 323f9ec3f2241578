"""The agencies file (domain/agencies.py): validation with file/field errors, and its sync at worker start."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from activities.agency import start_agencies
from activities.agency_http import AgencySettingsError
from domain.agencies import AgencyConfig, AgencyConfigError, load_agencies, parse_agencies
from stack.settings import ROOT, Settings

VALID = """
[[agencies]]
id = "east"
name = "East"
endpoint = "https://api.east.example/v1/"
capacity = 5
commission_bps = 1800
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(AgencyConfigError) as error:
        parse_agencies(text, "agencies.toml")
    assert all(line.startswith("agencies.toml: ") for line in str(error.value).splitlines())
    return error.value.problems


def test_the_demo_file_is_valid() -> None:
    book = load_agencies(ROOT / "strategies" / "agencies.toml")

    assert [a.id for a in book.agencies] == ["east-recovery", "north-credit", "west-field"]
    west = book.get("west-field")
    assert west is not None and west.is_file and west.receives_contact_details
    assert {a.endpoint for a in book.agencies} == {"sandbox", "file"}


def test_a_valid_agency_gets_its_defaults() -> None:
    [east] = parse_agencies(VALID).agencies

    assert east.endpoint == "https://api.east.example/v1"  # trailing slash dropped: paths are appended
    assert (east.segments, east.active, east.receives_contact_details, east.api_key_env) == (
        [],
        True,
        False,
        None,
    )


def test_every_problem_is_named_by_agency_and_field() -> None:
    problems = _problems(
        """
[[agencies]]
id = "east"
name = "East"
endpoint = "ftp://east.example"
capacity = -1
commission_bps = 12000
segments = ["standard", "standard"]
min_amount_overdue_minor = { RMB = 100 }
colour = "blue"

[[agencies]]
id = "East Two"
name = ""
endpoint = "file"
capacity = 1
commission_bps = 0
"""
    )

    text = "\n".join(problems)
    assert "agencies[0 id=east].endpoint: must be 'file', 'sandbox' or the agency's API base URL" in text
    assert "agencies[0 id=east].capacity: Input should be greater than or equal to 0" in text
    assert "agencies[0 id=east].commission_bps: Input should be less than or equal to 10000" in text
    assert "agencies[0 id=east].segments: listed twice: standard" in text
    assert "agencies[0 id=east].min_amount_overdue_minor: unknown currency RMB" in text
    assert "agencies[0 id=east].colour: Extra inputs are not permitted" in text
    assert "agencies[1 id=East Two].id: String should match pattern" in text
    assert "agencies[1 id=East Two].name: String should have at least 1 character" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('endpoint = "https://user:pw@east.example"', "must not carry credentials"),
        ('endpoint = "https://east.example/v1?token=x"', "without ?query"),
        (
            "min_amount_overdue_minor = { CNY = 10 }\nmax_amount_overdue_minor = { CNY = 5 }",
            "min_amount_overdue_minor.CNY (10) is above max_amount_overdue_minor.CNY (5)",
        ),
        ('endpoint = "file"\napi_key_env = "EAST_KEY"', "a file agency has no API"),
        ('api_key_env = "east-key"', "api_key_env: String should match pattern"),
    ],
)
def test_inconsistent_fields_are_refused(extra: str, message: str) -> None:
    text = VALID.replace('endpoint = "https://api.east.example/v1/"\n', "") + extra + "\n"
    if "endpoint" not in extra:
        text += 'endpoint = "https://api.east.example"\n'

    assert any(message in problem for problem in _problems(text))


def test_duplicate_ids_and_broken_toml() -> None:
    assert _problems(VALID + VALID) == ["agencies: duplicate agency ids: east"]
    assert _problems("[[agencies]\n")[0].startswith("not valid TOML")
    with pytest.raises(AgencyConfigError, match="cannot read"):
        load_agencies(Path("/nonexistent/agencies.toml"))


def test_takes_mirrors_the_sql_rule() -> None:
    agency = AgencyConfig(
        id="a",
        name="A",
        endpoint="file",
        capacity=1,
        commission_bps=0,
        segments=["high_risk"],
        max_amount_overdue_minor={"CNY": 100},
    )

    assert agency.takes("high_risk", 100, "CNY")
    assert not agency.takes("standard", 100, "CNY")
    assert not agency.takes("high_risk", 101, "CNY")
    assert not agency.takes("high_risk", 1, "USD")  # a currency not in the limit is not taken


async def test_worker_start_syncs_the_file(own_db_pool: asyncpg.Pool, tmp_path: Path) -> None:
    file = tmp_path / "agencies.toml"
    file.write_text(VALID.replace("endpoint = ", 'api_key_env = "OVERDUE_TEST_EAST_KEY"\nendpoint = '))
    settings = Settings.model_validate({"agencies_file": file})

    with pytest.raises(AgencySettingsError, match="OVERDUE_TEST_EAST_KEY, which is not set"):
        await start_agencies(settings, own_db_pool)
    assert await own_db_pool.fetchval("SELECT count(*) FROM agencies WHERE id = 'east'") == 0

    with pytest.MonkeyPatch.context() as env:
        env.setenv("OVERDUE_TEST_EAST_KEY", "secret")
        adapter = await start_agencies(settings, own_db_pool)
    await adapter.aclose()

    active = await own_db_pool.fetch("SELECT id FROM agencies WHERE active ORDER BY id")
    assert [r["id"] for r in active] == ["east"]


async def test_a_broken_file_stops_the_worker_before_any_change(
    own_db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    file = tmp_path / "agencies.toml"
    file.write_text(VALID.replace("capacity = 5", "capacity = 'many'"))

    with pytest.raises(AgencyConfigError, match=r"agencies\[0 id=east\]\.capacity"):
        await start_agencies(Settings.model_validate({"agencies_file": file}), own_db_pool)

    active = await own_db_pool.fetch("SELECT id FROM agencies WHERE active ORDER BY id")
    assert [r["id"] for r in active] == ["east-recovery", "north-credit"]  # untouched
