"""Entered text: what could never be shown or journaled faithfully is refused, naming the character."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from pydantic import ValidationError

from domain.arrangements import InterestWaiver, RepaymentPlanRequest
from domain.holds import HardshipHold, StartBreathingSpace
from domain.loan import Loan
from domain.promise import PromiseRequest
from domain.text import contact_data_problem, text_problem
from tests.domain.factories import borrower_fields, loan_fields, payment

DUE = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Li\u202eNa", "contains the bidi control U+202E RIGHT-TO-LEFT OVERRIDE at position 3; remove it"),
        ("Li\u2066Na", "contains the bidi control U+2066 LEFT-TO-RIGHT ISOLATE at position 3; remove it"),
        ("Li\u200bNa", "contains the invisible character U+200B ZERO WIDTH SPACE at position 3; remove it"),
        (
            "L\ufeffi",
            "contains the invisible character U+FEFF ZERO WIDTH NO-BREAK SPACE at position 2; remove it",
        ),
        ("Li\x00Na", "contains the control character U+0000 (NUL) at position 3; use one line"),
        ("Li\x1bNa", "contains the control character U+001B at position 3; use one line"),
        ("Li\nNa", "contains a line break U+000A at position 3; use one line"),
    ],
)
def test_single_line_text_refuses_hidden_and_control_characters(text: str, expected: str) -> None:
    assert text_problem(text) == expected


def test_multiline_text_allows_newlines_and_tabs_but_not_nul() -> None:
    assert text_problem("line one\n\tline two", multiline=True) is None
    assert (
        text_problem("a\x00b", multiline=True) == "contains the control character U+0000 (NUL) at position 2"
    )
    assert text_problem("a\rb", multiline=True) == "contains a line break U+000D at position 2"


@pytest.mark.parametrize("text", ["张伟", "Zoë O'Brien-Smith", "محمد", "José María"])
def test_ordinary_names_in_any_script_are_accepted(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize(
    "value", ["+8613800138000", "+1 (212) 555-0123", "li.na@example.com", " +447700900123 "]
)
def test_contact_data_is_spotted_in_identifiers(value: str) -> None:
    assert contact_data_problem(value) is not None


@pytest.mark.parametrize("value", ["P-881", "20261125000123", "li.na", "DRS-2026-001"])
def test_ordinary_identifiers_are_not_contact_data(value: str) -> None:
    assert contact_data_problem(value) is None


def test_borrower_name_with_a_bidi_override_is_refused_on_the_field() -> None:
    with pytest.raises(ValidationError) as failure:
        Loan(**loan_fields(borrower=borrower_fields(name="Ali\u202ecE")))

    [error] = failure.value.errors()
    assert error["loc"] == ("borrower", "name")
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in error["msg"]


@pytest.mark.parametrize(
    ("payment_id", "what"),
    [("+8613800138000", "phone number"), ("zhang.wei@example.cn", "e-mail address"), ("P\x001", "U+0000")],
)
def test_payment_id_that_is_contact_data_or_has_a_nul_is_refused(payment_id: str, what: str) -> None:
    with pytest.raises(ValidationError) as failure:
        payment(payment_id=payment_id)

    [error] = failure.value.errors()
    assert error["loc"] == ("payment_id",) and what in error["msg"]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: PromiseRequest(amount_minor=1, due_date=DUE, collector="li.na", note="a\x00"), "note"),
        (lambda: PromiseRequest(amount_minor=1, due_date=DUE, collector="+8613800138000"), "collector"),
        (lambda: HardshipHold(collector="li.na", days=3, note="job \u200blost"), "note"),
        (lambda: StartBreathingSpace(collector="li.na", reference="a@b.co"), "reference"),
        (lambda: InterestWaiver(approver="boss", amount_minor=1, reason="good\u202ewill"), "reason"),
        (lambda: InterestWaiver(approver="boss@bank.com", amount_minor=1, reason="goodwill"), "approver"),
        (
            lambda: RepaymentPlanRequest(
                collector="li.na",
                instalments=[
                    {"amount_minor": 1, "due_date": date(2026, 12, 1)},
                    {"amount_minor": 1, "due_date": date(2027, 1, 1)},
                ],
                note="x\x07",
            ),
            "note",
        ),
    ],
)
def test_request_models_refuse_bad_text_on_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as failure:
        build()

    assert [error["loc"] for error in failure.value.errors()] == [(field,)]


def test_notes_may_span_lines() -> None:
    request = PromiseRequest(
        amount_minor=1, due_date=date(2026, 12, 1), collector="li.na", note="payday\nthen the rest"
    )

    assert request.note == "payday\nthen the rest"
