from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from starter.loaders import LoanFileError, OverdueRange, load_loans, parse_loans, write_loans
from tests.starter.samples import CSV_HEADER, csv_row, loan_record


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(LoanFileError) as caught:
        load_loans(path, **kwargs)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# -- valid files ---------------------------------------------------------------------------------------------


def test_json_array_of_loans(tmp_path: Path) -> None:
    instalments = [
        {"due_date": "2026-09-01", "amount_minor": 60000},
        {"due_date": "2026-10-01", "amount_minor": 63450},
    ]
    records = [
        loan_record("L-1"),
        loan_record("L-2", overdue_since="2026-09-01", overdue_instalments=instalments),
    ]
    loans = load_loans(write(tmp_path, "loans.json", json.dumps(records, ensure_ascii=False, indent=2)))

    assert [loan.loan_id for loan in loans] == ["L-1", "L-2"]
    assert loans[0].borrower.name == "张伟"
    assert loans[0].overdue_since == date(2026, 10, 1)
    assert [i.amount_minor for i in loans[1].instalments()] == [60000, 63450]


def test_json_single_object_is_one_loan(tmp_path: Path) -> None:
    loans = load_loans(write(tmp_path, "loan.json", json.dumps(loan_record("L-7"))))

    assert [loan.loan_id for loan in loans] == ["L-7"]


def test_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    text = jsonl(loan_record("L-1")) + "\n   \n" + jsonl(loan_record("L-2"))
    loans = load_loans(write(tmp_path, "loans.jsonl", text))

    assert [loan.loan_id for loan in loans] == ["L-1", "L-2"]


def test_csv_maps_flat_columns_and_empty_cells_take_defaults(tmp_path: Path) -> None:
    text = "\n".join(
        [
            CSV_HEADER,
            csv_row("L-1"),
            csv_row("L-2", borrower_name="王芳", phone="+8613900139000", email="", locale="zh-CN",
                    timezone="", currency="CNY", risk_grade="", jurisdiction="cn", lender="", product=""),
        ]
    )  # fmt: skip
    loans = load_loans(write(tmp_path, "loans.csv", "\ufeff" + text + "\n"))  # a BOM as Excel writes it

    first, second = loans
    assert first.borrower.phone == "+12125550123"
    assert first.borrower.timezone == "America/New_York"
    assert first.amount_overdue_minor == 45000
    assert first.jurisdiction == "us"
    assert second.borrower.name == "王芳"
    assert second.borrower.email is None
    assert second.borrower.timezone == "Asia/Shanghai"  # model default
    assert second.risk_grade == "C"
    assert second.product == "consumer_loan"


def test_csv_with_only_required_columns(tmp_path: Path) -> None:
    text = (
        "loan_id,borrower_name,phone,currency,amount_overdue_minor,principal_outstanding_minor,overdue_since\n"
        "L-1,Li Na,+8613800138000,CNY,50000,50000,2026-11-01\n"
    )
    (loan,) = load_loans(write(tmp_path, "loans.csv", text))

    assert loan.borrower.locale == "zh-CN"
    assert loan.principal_outstanding_minor == 50000


def test_written_loans_read_back_unchanged(tmp_path: Path) -> None:
    loans = load_loans(write(tmp_path, "in.json", json.dumps([loan_record("L-1"), loan_record("L-2")])))

    for name in ("out.jsonl", "out.json"):
        assert load_loans(write_loans(tmp_path / name, loans)) == loans


# -- bad rows: one line per bad field, located by line -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"phone": "13800138000"}, "loans.csv:2 (loan_id=L-9): borrower.phone: must be E.164"),
        (
            {"email": "mary@"},
            "loans.csv:2 (loan_id=L-9): borrower.email: not an e-mail address (got 'mary@')",
        ),
        ({"locale": "fr"}, "loans.csv:2 (loan_id=L-9): borrower.locale: Input should be 'zh-CN' or 'en'"),
        ({"timezone": "Mars/Olympus"}, "loans.csv:2 (loan_id=L-9): borrower.timezone: unknown IANA timezone"),
        ({"borrower_name": ""}, "loans.csv:2 (loan_id=L-9): borrower.name: required"),
        ({"currency": "RMB"}, "loans.csv:2 (loan_id=L-9): currency: unsupported currency 'RMB'"),
        (
            {"amount_overdue_minor": "450.00"},
            "loans.csv:2 (loan_id=L-9): amount_overdue_minor: must be a whole number of minor units",
        ),
        (
            {"amount_overdue_minor": "0"},
            "loans.csv:2 (loan_id=L-9): amount_overdue_minor: Input should be greater",
        ),
        (
            {"principal_outstanding_minor": "-1"},
            "loans.csv:2 (loan_id=L-9): principal_outstanding_minor: Input should be greater than or equal",
        ),
        (
            {"overdue_since": "01/10/2026"},
            "loans.csv:2 (loan_id=L-9): overdue_since: Input should be a valid date",
        ),
        (
            {"risk_grade": "F"},
            "loans.csv:2 (loan_id=L-9): risk_grade: Input should be 'A', 'B', 'C', 'D' or 'E'",
        ),
        (
            {"jurisdiction": "de"},
            "loans.csv:2 (loan_id=L-9): jurisdiction: Input should be 'cn', 'us' or 'uk'",
        ),
        (
            {"principal_outstanding_minor": "100"},
            "loans.csv:2 (loan_id=L-9): principal_outstanding_minor must be at least amount_overdue_minor",
        ),
    ],
)
def test_csv_bad_field_gives_its_line(tmp_path: Path, changes: dict[str, str], expected: str) -> None:
    path = write(tmp_path, "loans.csv", f"{CSV_HEADER}\n{csv_row('L-9', **changes)}\n")

    problems = problems_of(path)

    assert len(problems) == 1, problems
    assert problems[0].startswith(str(tmp_path / expected)), problems[0]


def test_every_bad_field_of_every_record_is_reported(tmp_path: Path) -> None:
    text = "\n".join(
        [
            CSV_HEADER,
            csv_row("L-1"),
            csv_row("L-2", phone="12345", currency="RMB"),
            csv_row("L-3"),
            csv_row("bad id", risk_grade="Z"),
        ]
    )
    path = write(tmp_path, "loans.csv", text)

    problems = [p.removeprefix(str(tmp_path) + "/") for p in problems_of(path)]

    assert [p.split(": ")[0:2] for p in problems] == [
        ["loans.csv:3 (loan_id=L-2)", "borrower.phone"],
        ["loans.csv:3 (loan_id=L-2)", "currency"],
        ["loans.csv:5 (loan_id=bad id)", "loan_id"],
        ["loans.csv:5 (loan_id=bad id)", "risk_grade"],
    ]


def test_csv_row_without_loan_id(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.csv", f"{CSV_HEADER}\n\n{csv_row('')}\n")

    assert problems_of(path) == [f"{tmp_path}/loans.csv:3: loan_id: required"]


def test_csv_row_with_too_many_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.csv", f"{CSV_HEADER}\n{csv_row('L-1')},surplus\n")

    assert problems_of(path) == [
        f"{tmp_path}/loans.csv:2 (loan_id=L-1): row has 17 cells but the header has 16 columns"
    ]


def test_csv_header_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path, "loans.csv", "loan_id,name,phone,currency,amount_overdue_minor,overdue_since\nL-1\n"
    )

    assert problems_of(path) == [
        f"{tmp_path}/loans.csv:1: unknown column(s) 'name'; columns are " + CSV_HEADER.replace(",", ", "),
        f"{tmp_path}/loans.csv:1: missing required column(s) borrower_name, principal_outstanding_minor",
    ]


def test_json_field_errors_name_nested_fields(tmp_path: Path) -> None:
    bad = loan_record(
        "L-2",
        borrower={"name": "Li", "phone": "+8613800138000", "nickname": "x"},
        amount_overdue_minor=1234.5,
        principal_outstanding_minor=True,
        overdue_instalments=[{"due_date": "2026-10-01", "amount_minor": 0}],
    )
    text = json.dumps([loan_record("L-1"), bad], indent=2)
    path = write(tmp_path, "loans.json", text)

    lines = text.splitlines()
    line = lines.index("  {", lines.index("  {") + 1) + 1  # where the second object opens
    assert problems_of(path) == [
        f"{path}:{line} (loan_id=L-2): borrower.nickname: unknown field (check the spelling)",
        f"{path}:{line} (loan_id=L-2): amount_overdue_minor: must be a whole number of minor units "
        "(e.g. 123450 for 1,234.50), got 1234.5",
        f"{path}:{line} (loan_id=L-2): principal_outstanding_minor: must be a whole number of minor units "
        "(e.g. 123450 for 1,234.50), got true",
        f"{path}:{line} (loan_id=L-2): overdue_instalments[0].amount_minor: Input should be greater than 0",
    ]


def test_json_array_element_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.json", '[\n  "L-1"\n]')

    assert problems_of(path) == [f"{path}:2: expected a JSON object (one loan), got a string"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[\n  {"loan_id": "L-1",}\n]',
            ":2: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (
            '[\n  {"loan_id": "L-1"}\n  {"loan_id": "L-2"}\n]',
            ":3: not valid JSON: expected ',' or ']' after a loan",
        ),
        ('[{"loan_id": "L-1"}]\n]', ":2: not valid JSON: extra data after the array"),
        ('{"loan_id": "L-1"}\n{"loan_id": "L-2"}', ":2: not valid JSON: extra data after the loan object"),
    ],
)
def test_json_syntax_error_names_its_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "loans.json", text)

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}{expected}"), problem


def test_jsonl_bad_lines_are_reported_with_the_others(tmp_path: Path) -> None:
    text = (
        jsonl(loan_record("L-1")) + "{not json\n\n" + jsonl(loan_record("L-3", currency="XXX")) + "[1, 2]\n"
    )
    path = write(tmp_path, "loans.jsonl", text)

    problems = problems_of(path)

    assert problems[0].startswith(f"{path}:2: not valid JSON: ")
    assert problems[1].startswith(f"{path}:4 (loan_id=L-3): currency: unsupported currency 'XXX'")
    assert problems[2] == f"{path}:5: expected a JSON object (one loan), got an array"
    assert len(problems) == 3


# -- duplicates ----------------------------------------------------------------------------------------------


def test_duplicate_loan_ids_in_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path, "loans.csv", "\n".join([CSV_HEADER, csv_row("L-1"), csv_row("L-2"), csv_row("L-1")])
    )

    assert problems_of(path) == [f"{path}:4 (loan_id=L-1): loan_id: duplicate: loan L-1 is already at line 2"]


def test_duplicate_loan_ids_in_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.jsonl", jsonl(loan_record("A-1"), loan_record("A-1", currency="USD")))

    assert problems_of(path) == [f"{path}:2 (loan_id=A-1): loan_id: duplicate: loan A-1 is already at line 1"]


def test_duplicate_loan_ids_in_json(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.json", json.dumps([loan_record("A-1"), loan_record("A-1")], indent=1))

    (problem,) = problems_of(path)
    assert problem.endswith("(loan_id=A-1): loan_id: duplicate: loan A-1 is already at line 2")


# -- unusable files ------------------------------------------------------------------------------------------


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.xlsx", "whatever")

    assert problems_of(path) == [f"{path}: unknown file type ('.xlsx'); expected .json, .jsonl or .csv"]


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.csv") == [
        f"{tmp_path}/nope.csv: cannot read: No such file or directory"
    ]


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()

    assert problems_of(tmp_path / "dir.json") == [f"{tmp_path}/dir.json: cannot read: is a directory"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("loans.csv", "", "file is empty; expected at least one loan"),
        ("loans.jsonl", "\n  \n", "file is empty; expected at least one loan"),
        ("loans.json", " ", "file is empty; expected at least one loan"),
        ("loans.json", "[ ]", "no loans in the file"),
        ("loans.csv", CSV_HEADER + "\n", "no loans in the file"),
    ],
)
def test_empty_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)

    assert problems_of(path) == [f"{path}: {message}"]


def test_not_utf8(tmp_path: Path) -> None:
    path = write(
        tmp_path, "loans.csv", (CSV_HEADER + "\n" + csv_row("L-1", borrower_name="王芳")).encode("gbk")
    )

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: cannot read: not UTF-8 text")


def test_explicit_segment_must_exist_in_the_strategy() -> None:
    text = jsonl(loan_record("L-1", segment="high_balance"), loan_record("L-2", segment="hihg_balance"))

    with pytest.raises(LoanFileError) as caught:
        parse_loans(text, kind="jsonl", source="in.jsonl", segments={"high_balance", "standard"})

    assert caught.value.problems == [
        "in.jsonl:2 (loan_id=L-2): segment: unknown segment 'hihg_balance'; "
        "the strategy has high_balance, standard"
    ]


# -- input sanity --------------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 21:00 the day before in New York


def test_overdue_since_out_of_range_is_refused_with_the_range_when_starting() -> None:
    text = jsonl(
        loan_record("L-1", overdue_since="1900-01-01"),
        loan_record("L-2", overdue_since="2026-12-04"),
        loan_record("L-3", overdue_since="2016-12-03"),
    )

    with pytest.raises(LoanFileError) as caught:
        parse_loans(text, kind="jsonl", source="in.jsonl", overdue_range=OverdueRange(NOW, 10))

    assert caught.value.problems == [
        "in.jsonl:1 (loan_id=L-1): overdue_since: 1900-01-01 is more than 10 years ago (earliest accepted "
        "2016-12-03); check the date, or raise OVERDUE_MAX_OVERDUE_YEARS",
        "in.jsonl:2 (loan_id=L-2): overdue_since: 2026-12-04 is in the future (today is 2026-12-03 in the "
        "borrower's timezone)",
    ]


def test_today_is_the_borrowers_today() -> None:
    """2026-12-03 has begun in Shanghai but not yet in New York at NOW."""
    text = f"{CSV_HEADER}\n{csv_row('L-1', overdue_since='2026-12-03')}\n"

    with pytest.raises(LoanFileError) as caught:
        parse_loans(text, kind="csv", source="in.csv", overdue_range=OverdueRange(NOW))

    assert caught.value.problems == [
        "in.csv:2 (loan_id=L-1): overdue_since: 2026-12-03 is in the future (today is 2026-12-02 in the "
        "borrower's timezone)"
    ]


def test_a_json_number_of_thousands_of_digits_is_a_field_problem_not_a_traceback(tmp_path: Path) -> None:
    huge = "9" * 5000
    text = json.dumps(loan_record("L-1")).replace(
        '"amount_overdue_minor": 123450', f'"amount_overdue_minor": {huge}'
    )
    for name, content in (("loans.json", f"[{text}]"), ("loans.jsonl", text + "\n")):
        path = write(tmp_path, name, content)

        assert problems_of(path) == [
            f"{path}:1 (loan_id=L-1): amount_overdue_minor: must be at most 1000000000000000 "
            "(got a number of 5000 digits)"
        ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("9" * 5000, "must be at most 1000000000000000 (got a number of 5000 digits)"),
        ("１２３", "must be a whole number of minor units (e.g. 123450 for 1,234.50), got '１２３'"),
        ("1e3", "must be a whole number of minor units (e.g. 123450 for 1,234.50), got '1e3'"),
    ],
)
def test_csv_amounts_are_plain_ascii_digits(tmp_path: Path, cell: str, expected: str) -> None:
    path = write(tmp_path, "loans.csv", f"{CSV_HEADER}\n{csv_row('L-1', principal_outstanding_minor=cell)}\n")

    assert problems_of(path) == [f"{path}:2 (loan_id=L-1): principal_outstanding_minor: {expected}"]


def test_json_amount_1e3_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.jsonl", jsonl(loan_record("L-1", amount_overdue_minor=1e3)))

    assert problems_of(path) == [
        f"{path}:1 (loan_id=L-1): amount_overdue_minor: must be a whole number of minor units "
        "(e.g. 123450 for 1,234.50), got 1000.0"
    ]


def test_borrower_name_with_a_bidi_override_is_refused(tmp_path: Path) -> None:
    record = loan_record("L-1")
    record["borrower"]["name"] = "张\u202e伟"
    path = write(tmp_path, "loans.jsonl", jsonl(record))

    assert problems_of(path) == [
        f"{path}:1 (loan_id=L-1): borrower.name: contains the bidi control U+202E RIGHT-TO-LEFT OVERRIDE "
        "at position 2; remove it (got '张\\u202e伟')"
    ]


def test_postal_address_from_csv_and_json(tmp_path: Path) -> None:
    quoted = '"12 Elm St, Apt 3\nSpringfield, IL 62704"'  # a multi-line cell, quoted as spreadsheets write it
    csv_path = write(
        tmp_path, "loans.csv", f"{CSV_HEADER}\n{csv_row('L-1', postal_address=quoted)}\n{csv_row('L-2')}\n"
    )
    record = loan_record("L-3")
    record["borrower"]["postal_address"] = "上海市浦东新区世纪大道100号"
    json_path = write(tmp_path, "loans.jsonl", jsonl(record))

    with_address, without = load_loans(csv_path)
    [from_json] = load_loans(json_path)

    assert with_address.borrower.postal_address == "12 Elm St, Apt 3\nSpringfield, IL 62704"
    assert without.borrower.postal_address is None
    assert from_json.borrower.postal_address == "上海市浦东新区世纪大道100号"
