"""Read the loans a servicing system hands over: .json (one loan or an array), .jsonl, or a flat .csv.

Every record is validated before anything is returned, so a file either yields all its loans or a
`LoanFileError` listing every bad field, one line each, located by line number:

    loans.csv:3 (loan_id=L-9): borrower.phone: must be E.164: '+' then country code and number, ...

Nothing is started from a file with a single bad record: fixing the file and running it again is always safe,
because starting a loan is idempotent (see `starter.api.CollectionsStarter.start_loan`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from domain.loan import DEFAULT_MAX_OVERDUE_YEARS, Loan, check_overdue_since
from starter.problems import field_problems

FileKind = Literal["json", "jsonl", "csv"]
KINDS: dict[str, FileKind] = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

# The flat CSV layout: one row per loan, borrower fields inlined. Columns not listed here are an error (a
# misspelt optional column would otherwise be silently ignored); empty cells take the model's default.
CSV_BORROWER_COLUMNS = {
    "borrower_name": "name",
    "phone": "phone",
    "email": "email",
    "locale": "locale",
    "timezone": "timezone",
    "postal_address": "postal_address",
}
CSV_COLUMNS = (
    "loan_id",
    "borrower_name",
    "phone",
    "email",
    "locale",
    "timezone",
    "postal_address",
    "currency",
    "amount_overdue_minor",
    "principal_outstanding_minor",
    "overdue_since",
    "product",
    "risk_grade",
    "segment",
    "jurisdiction",
    "lender",
)
CSV_REQUIRED = (
    "loan_id",
    "borrower_name",
    "phone",
    "currency",
    "amount_overdue_minor",
    "principal_outstanding_minor",
    "overdue_since",
)

_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]+$")
# A JSON number longer than this is kept as a marker, not converted: Python refuses to build ints of more than
# 4,300 digits (a traceback), and no amount has more than 16.
_MAX_JSON_DIGITS = 40
_MINOR_HINT = "must be a whole number of minor units (e.g. 123450 for 1,234.50)"


class LoanFileError(ValueError):
    """A loan file that cannot be used; `problems`: one line per bad field, `file:line (loan_id=..): ...`."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class _Record:
    line: int
    data: Any  # as parsed: a dict for a well-formed record
    problems: tuple[tuple[str, str], ...] = ()  # (field, message) found while parsing, before the model


@dataclass(frozen=True)
class OverdueRange:
    """Where loans enter collections, `overdue_since` must be at most `now` (in the borrower's timezone) and
    at most `max_years` back (settings: OVERDUE_MAX_OVERDUE_YEARS)."""

    now: datetime
    max_years: int = DEFAULT_MAX_OVERDUE_YEARS

    def problem(self, loan: Loan) -> str | None:
        try:
            check_overdue_since(loan.overdue_since, self.now.astimezone(loan.zone).date(), self.max_years)
        except ValueError as error:
            return str(error)
        return None


def load_loans(
    path: Path | str,
    *,
    segments: Collection[str] | None = None,
    overdue_range: OverdueRange | None = None,
) -> list[Loan]:
    """All loans of the file, or `LoanFileError` naming every bad field. The format follows the extension.

    `segments`: if given, an explicit `segment` must be one of them (the strategy's segment names), since a
    typo would otherwise silently put the loan on the standard steps.
    `overdue_range`: if given, every `overdue_since` must lie in it (the start command passes today's);
    without it the file is checked as data only, whatever the date.
    """
    path = Path(path)
    source = str(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise LoanFileError(path, [f"{source}: unknown file type ({shown}); expected .json, .jsonl or .csv"])
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise LoanFileError(path, [f"{source}: cannot read: is a directory"]) from None
    except OSError as error:
        raise LoanFileError(path, [f"{source}: cannot read: {error.strerror or error}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoanFileError(
            path,
            [f"{source}: cannot read: not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8"],
        ) from None
    return parse_loans(text, kind=kind, source=source, segments=segments, overdue_range=overdue_range)


def parse_loans(
    text: str,
    *,
    kind: FileKind,
    source: str = "<loans>",
    segments: Collection[str] | None = None,
    overdue_range: OverdueRange | None = None,
) -> list[Loan]:
    """Parse and validate the text of a loan file (see `load_loans`)."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise LoanFileError(source, [f"{source}: file is empty; expected at least one loan"])
    if kind == "json":
        records = _json_records(text, source)
    elif kind == "jsonl":
        records = _jsonl_records(text)
    else:
        records = _csv_records(text, source)
    if not records:
        raise LoanFileError(source, [f"{source}: no loans in the file"])
    return _validate(records, source, segments, overdue_range)


# -- validation ----------------------------------------------------------------------------------------------


def _validate(
    records: list[_Record],
    source: str,
    segments: Collection[str] | None,
    overdue_range: OverdueRange | None,
) -> list[Loan]:
    loans: list[Loan] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for record in records:
        where = _where(source, record)
        found = list(record.problems)
        if isinstance(record.data, dict):
            found += _minor_unit_problems(record.data)
            checked = {field for field, _ in found}
            try:
                loan = Loan.model_validate(record.data)
            except ValidationError as error:
                found += [p for p in field_problems(error) if p[0] not in checked]
            else:
                if segments is not None and loan.segment is not None and loan.segment not in segments:
                    known = ", ".join(sorted(segments))
                    found.append(("segment", f"unknown segment {loan.segment!r}; the strategy has {known}"))
                overdue_problem = overdue_range.problem(loan) if overdue_range else None
                if overdue_problem:
                    found.append(("overdue_since", overdue_problem))
                if not found:
                    loans.append(loan)
            loan_id = record.data.get("loan_id")
            if isinstance(loan_id, str) and loan_id.strip():
                loan_id = loan_id.strip()
                if loan_id in first_line:
                    found.append(
                        ("loan_id", f"duplicate: loan {loan_id} is already at line {first_line[loan_id]}")
                    )
                else:
                    first_line[loan_id] = record.line
        elif not found:
            found.append(("", f"expected a JSON object (one loan), got {_json_type(record.data)}"))
        found.sort(key=_field_rank)
        problems += [
            f"{where}: {field}: {message}" if field else f"{where}: {message}" for field, message in found
        ]
    if problems:
        raise LoanFileError(source, problems)
    return loans


_FIELD_ORDER = [*Loan.model_fields]


def _field_rank(problem: tuple[str, str]) -> int:
    """Problems of a record in the order of the loan's fields; record-level problems first."""
    top = problem[0].split(".")[0].split("[")[0]
    return _FIELD_ORDER.index(top) + 1 if top in _FIELD_ORDER else 0


def _where(source: str, record: _Record) -> str:
    where = f"{source}:{record.line}"
    if isinstance(record.data, dict):
        loan_id = record.data.get("loan_id")
        if isinstance(loan_id, str | int) and str(loan_id).strip():
            where += f" (loan_id={str(loan_id).strip()[:64]})"
    return where


def _minor_unit_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Money is integer minor units. pydantic would accept 1234.0 or true; a loan file must not."""
    problems: list[tuple[str, str]] = []
    for field in ("amount_overdue_minor", "principal_outstanding_minor"):
        problem = _minor_unit_problem(data.get(field))
        if problem:
            problems.append((field, problem))
    instalments = data.get("overdue_instalments")
    if isinstance(instalments, list):
        for index, instalment in enumerate(instalments):
            if isinstance(instalment, dict):
                problem = _minor_unit_problem(instalment.get("amount_minor"))
                if problem:
                    problems.append((f"overdue_instalments[{index}].amount_minor", problem))
    return problems


def _minor_unit_problem(value: object) -> str | None:
    if isinstance(value, _LongNumber):
        return f"must be at most 1000000000000000 (got a number of {len(value.text)} digits)"
    if isinstance(value, bool) or isinstance(value, float):
        return f"{_MINOR_HINT}, got {json.dumps(value)}"
    if isinstance(value, str) and value.strip() and not _WHOLE_NUMBER.match(value.strip()):
        return f"{_MINOR_HINT}, got {value!r}"
    return None


@dataclass(frozen=True)
class _LongNumber:
    """A JSON number of more than _MAX_JSON_DIGITS digits, never converted (see `_json_int`)."""

    text: str


def _json_int(text: str) -> int | _LongNumber:
    return _LongNumber(text) if len(text) > _MAX_JSON_DIGITS else int(text)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


# -- formats -------------------------------------------------------------------------------------------------


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _json_records(text: str, source: str) -> list[_Record]:
    """One object, or an array of objects; each record keeps the line its value starts on."""
    decoder = json.JSONDecoder(parse_int=_json_int)

    def decode(index: int) -> tuple[Any, int]:
        try:
            return decoder.raw_decode(text, index)
        except json.JSONDecodeError as error:
            raise LoanFileError(
                source, [f"{source}:{error.lineno}: not valid JSON: {error.msg} (column {error.colno})"]
            ) from None

    def fail(index: int, message: str) -> LoanFileError:
        return LoanFileError(source, [f"{source}:{_line_of(text, index)}: not valid JSON: {message}"])

    index = _skip_ws(text, 0)
    if text[index] != "[":
        value, end = decode(index)
        if _skip_ws(text, end) != len(text):
            raise fail(
                _skip_ws(text, end), "extra data after the loan object (use an array for several loans)"
            )
        return [_Record(_line_of(text, index), value)]
    records: list[_Record] = []
    index = _skip_ws(text, index + 1)
    if index >= len(text) or text[index] != "]":
        while True:
            value, end = decode(index)
            records.append(_Record(_line_of(text, index), value))
            index = _skip_ws(text, end)
            if index < len(text) and text[index] == ",":
                index = _skip_ws(text, index + 1)
                continue
            if index < len(text) and text[index] == "]":
                break
            raise fail(index, "expected ',' or ']' after a loan")
    rest = _skip_ws(text, index + 1)  # text[index] is the closing ']'
    if rest < len(text):
        raise fail(rest, "extra data after the array")
    return records


def _jsonl_records(text: str) -> list[_Record]:
    """One JSON object per line; blank lines are ignored. A malformed line is a bad record like any other."""
    records: list[_Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_int=_json_int)
        except json.JSONDecodeError as error:
            records.append(
                _Record(number, None, (("", f"not valid JSON: {error.msg} (column {error.colno})"),))
            )
            continue
        records.append(_Record(number, value))
    return records


def _csv_records(text: str, source: str) -> list[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            break
    if header is None:
        raise LoanFileError(source, [f"{source}: file is empty; expected a header row and at least one loan"])
    header_line = reader.line_num
    problems = []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        problems.append(
            f"{source}:{header_line}: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            f"columns are {', '.join(CSV_COLUMNS)}"
        )
    repeated = sorted({c for c in header if header.count(c) > 1 and c})
    if repeated:
        problems.append(f"{source}:{header_line}: column(s) {', '.join(repeated)} appear more than once")
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        problems.append(f"{source}:{header_line}: missing required column(s) {', '.join(missing)}")
    if problems:
        raise LoanFileError(source, problems)

    records: list[_Record] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        extra: tuple[tuple[str, str], ...] = ()
        if len(row) > len(header):
            extra = (("", f"row has {len(row)} cells but the header has {len(header)} columns"),)
        cells = {column: row[i].strip() for i, column in enumerate(header) if i < len(row) and row[i].strip()}
        records.append(_Record(reader.line_num, _csv_loan(cells), extra))
    return records


def _csv_loan(cells: dict[str, str]) -> dict[str, Any]:
    loan: dict[str, Any] = {}
    borrower: dict[str, Any] = {}
    for column, value in cells.items():
        if column in CSV_BORROWER_COLUMNS:
            borrower[CSV_BORROWER_COLUMNS[column]] = value
        else:  # amounts stay text: the model reads plain ASCII digits only (domain.loan.parse_minor_units)
            loan[column] = value
    loan["borrower"] = borrower
    return loan


# -- writing -------------------------------------------------------------------------------------------------


def write_loans(path: Path | str, loans: Iterable[Loan]) -> Path:
    """Write loans as .jsonl (one per line) or .json (an array) — files `load_loans` reads back unchanged."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    records = [loan.model_dump(mode="json", exclude_none=True) for loan in loans]
    if kind == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    elif kind == "json":
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    else:
        raise ValueError(f"{path}: write loans as .jsonl or .json (CSV cannot carry overdue_instalments)")
    path.write_text(text, encoding="utf-8")
    return path
