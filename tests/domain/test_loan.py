"""Loan, Borrower and Payment validation: each rule rejects with a message naming the field to fix."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from domain.loan import (
    Instalment,
    Loan,
    check_overdue_since,
    format_money,
    parse_major_units,
    parse_minor_units,
)
from tests.domain.factories import borrower_fields, instalments, loan, loan_fields, payment


def only_error(error: ValidationError) -> tuple[tuple[int | str, ...], str]:
    """The single (location, message) of a validation error; fails if there is not exactly one."""
    errors = error.errors(include_url=False)
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"]), errors[0]["msg"]


def rejected_loan(**overrides: Any) -> tuple[tuple[int | str, ...], str]:
    with pytest.raises(ValidationError) as failure:
        Loan(**loan_fields(**overrides))
    return only_error(failure.value)


def test_valid_loan_is_accepted() -> None:
    accepted = loan()

    assert accepted.currency == "CNY"
    assert accepted.borrower.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    "phone", ["13800138000", "+0123456789", "+86 138 0013 8000", "+12345", "+1234567890123456"]
)
def test_phone_not_e164_is_rejected_on_borrower_phone(phone: str) -> None:
    where, message = rejected_loan(borrower=borrower_fields(phone=phone))

    assert where == ("borrower", "phone")
    assert "must be E.164" in message


def test_e164_phone_with_surrounding_spaces_is_stripped_and_accepted() -> None:
    accepted = loan(borrower=borrower_fields(phone="  +12125550123 "))

    assert accepted.borrower.phone == "+12125550123"


@pytest.mark.parametrize(
    "email", ["li.na at example.com", "li.na@example", "li@na@example.com", "li na@example.com"]
)
def test_bad_email_is_rejected_on_borrower_email(email: str) -> None:
    where, message = rejected_loan(borrower=borrower_fields(email=email))

    assert where == ("borrower", "email")
    assert "not an e-mail address" in message


def test_missing_email_is_allowed() -> None:
    assert loan(borrower=borrower_fields(email=None)).borrower.email is None


@pytest.mark.parametrize("zone", ["Asia/Beijing", "America", "../etc/passwd", "EST+8"])
def test_unknown_timezone_is_rejected_on_borrower_timezone(zone: str) -> None:
    where, message = rejected_loan(borrower=borrower_fields(timezone=zone))

    assert where == ("borrower", "timezone")
    assert f"unknown IANA timezone {zone!r}" in message


def test_unknown_currency_rmb_is_rejected_on_currency_with_the_supported_list() -> None:
    where, message = rejected_loan(currency="RMB")

    assert where == ("currency",)
    assert "unsupported currency 'RMB'" in message
    assert "CNY" in message


def test_principal_below_amount_overdue_is_rejected_naming_both_fields() -> None:
    _, message = rejected_loan(amount_overdue_minor=500_000, principal_outstanding_minor=499_999)

    assert "principal_outstanding_minor must be at least amount_overdue_minor" in message


def test_principal_equal_to_amount_overdue_is_accepted() -> None:
    accepted = loan(amount_overdue_minor=500_000, principal_outstanding_minor=500_000)

    assert accepted.principal_outstanding_minor == 500_000


def test_instalments_not_adding_up_to_amount_overdue_are_rejected_with_both_totals() -> None:
    _, message = rejected_loan(
        amount_overdue_minor=500_000,
        overdue_instalments=instalments((200_000, date(2026, 1, 5)), (200_000, date(2026, 2, 5))),
    )

    assert message.endswith("overdue_instalments add up to 400000, not amount_overdue_minor 500000")


def test_overdue_since_not_the_oldest_instalment_is_rejected_naming_the_oldest_date() -> None:
    _, message = rejected_loan(
        overdue_since=date(2026, 2, 5),
        amount_overdue_minor=500_000,
        overdue_instalments=instalments((300_000, date(2026, 2, 5)), (200_000, date(2026, 1, 5))),
    )

    assert message.endswith("overdue_since must be the oldest instalment's due date (2026-01-05)")


def test_zero_amount_overdue_is_rejected_on_the_field() -> None:
    where, message = rejected_loan(amount_overdue_minor=0)

    assert where == ("amount_overdue_minor",)
    assert message == "Input should be greater than 0"


def test_zero_instalment_amount_is_rejected_on_the_instalment() -> None:
    with pytest.raises(ValidationError) as failure:
        Instalment(due_date=date(2026, 1, 5), amount_minor=0)

    assert only_error(failure.value)[0] == ("amount_minor",)


def test_payment_with_naive_received_at_is_rejected_on_the_field() -> None:
    with pytest.raises(ValidationError) as failure:
        payment(received_at=datetime(2026, 1, 20, 10, 0))

    where, message = only_error(failure.value)
    assert where == ("received_at",)
    assert "must carry a timezone offset" in message


def test_payment_of_zero_is_rejected_on_amount() -> None:
    with pytest.raises(ValidationError) as failure:
        payment(amount_minor=0)

    where, message = only_error(failure.value)
    assert where == ("amount_minor",)
    assert message == "Input should be greater than 0"


def test_payment_in_unknown_currency_is_rejected_on_currency() -> None:
    with pytest.raises(ValidationError) as failure:
        payment(currency="RMB")

    assert only_error(failure.value)[0] == ("currency",)


def test_unknown_field_is_rejected() -> None:
    where, message = rejected_loan(amount_due=1)

    assert where == ("amount_due",)
    assert message == "Extra inputs are not permitted"


def test_instalments_are_returned_oldest_first_whatever_the_input_order() -> None:
    the_loan = loan(
        amount_overdue_minor=600_000,
        overdue_instalments=instalments(
            (300_000, date(2026, 3, 5)), (100_000, date(2026, 1, 5)), (200_000, date(2026, 2, 5))
        ),
    )

    assert [(i.due_date, i.amount_minor) for i in the_loan.instalments()] == [
        (date(2026, 1, 5), 100_000),
        (date(2026, 2, 5), 200_000),
        (date(2026, 3, 5), 300_000),
    ]


def test_loan_without_instalments_is_one_instalment_of_the_whole_arrears_at_overdue_since() -> None:
    the_loan = loan(amount_overdue_minor=123_456, overdue_since=date(2026, 1, 5))

    assert the_loan.instalments() == [Instalment(due_date=date(2026, 1, 5), amount_minor=123_456)]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (123_450, "CNY", "CNY 1,234.50"),
        (5, "CNY", "CNY 0.05"),
        (100_000_000, "USD", "USD 1,000,000.00"),
        (1_234_567, "JPY", "JPY 1,234,567"),
        (0, "JPY", "JPY 0"),
        (-123_450, "CNY", "-CNY 1,234.50"),
        (-5, "GBP", "-GBP 0.05"),
    ],
)
def test_format_money(amount: int, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


def test_format_money_negative_jpy_puts_the_sign_first_like_other_currencies() -> None:
    assert format_money(-1_234, "JPY") == "-JPY 1,234"


# -- amounts as typed or read from files ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e3", "１２３", "1_000", "12.5", "0x10", "", 1000.0, True, "٣"])
def test_minor_units_are_plain_ascii_integers_only(value: object) -> None:
    with pytest.raises(ValueError, match="must be a whole number of minor units"):
        parse_minor_units(value)


@pytest.mark.parametrize("value", ["9" * 5000, 10**400, "12345678901234567"])
def test_minor_units_of_thousands_of_digits_are_refused_without_formatting_them(value: object) -> None:
    with pytest.raises(ValueError, match=r"must be at most 1000000000000000 \(got a number of \d+ digits\)"):
        parse_minor_units(value)


def test_minor_units_accept_ascii_digits_and_ints() -> None:
    assert parse_minor_units(" 123450 ") == 123450
    assert parse_minor_units(7) == 7
    assert parse_minor_units("-5") == -5  # refused by the field's range, with the range in the message


def test_a_loan_with_a_huge_amount_is_refused_on_the_field_not_with_an_exception() -> None:
    where, message = rejected_loan(amount_overdue_minor="9" * 5000)

    assert where == ("amount_overdue_minor",)
    assert "must be at most 1000000000000000" in message


def test_a_float_amount_in_a_loan_is_refused_although_it_is_whole() -> None:
    where, message = rejected_loan(amount_overdue_minor=1e3)

    assert where == ("amount_overdue_minor",) and "whole number of minor units" in message


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1,234.5", "CNY", 123450),
        ("500", "USD", 50000),
        ("0.05", "GBP", 5),
        ("1200", "JPY", 1200),
        (".5", "CNY", 50),
    ],
)
def test_major_units_from_a_form(text: str, currency: str, minor: int) -> None:
    assert parse_major_units(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "reason"),
    [
        ("1e3", "CNY", "enter an amount like 500.00"),
        ("１２３", "CNY", "enter an amount like 500.00"),
        ("NaN", "CNY", "enter an amount like 500.00"),
        ("12.345", "CNY", "at most 2 decimal places for CNY"),
        ("12.5", "JPY", "no decimal places for JPY"),
        ("9" * 5000, "CNY", "too large: at most CNY 10,000,000,000,000.00"),
    ],
)
def test_major_units_refuse_anything_but_plain_decimals(text: str, currency: str, reason: str) -> None:
    with pytest.raises(ValueError) as failure:
        parse_major_units(text, currency)

    assert str(failure.value).startswith(reason)


# -- overdue_since where loans enter -------------------------------------------------------------------------

TODAY = date(2026, 12, 3)


def test_overdue_since_in_1900_is_refused_naming_the_earliest_date() -> None:
    with pytest.raises(ValueError) as failure:
        check_overdue_since(date(1900, 1, 1), TODAY, 10)

    assert str(failure.value).startswith(
        "1900-01-01 is more than 10 years ago (earliest accepted 2016-12-03)"
    )


def test_overdue_since_in_the_future_is_refused() -> None:
    with pytest.raises(ValueError, match="2026-12-04 is in the future"):
        check_overdue_since(date(2026, 12, 4), TODAY, 10)


@pytest.mark.parametrize("day", [TODAY, date(2016, 12, 3), date(2024, 2, 29)])
def test_overdue_since_within_the_range_is_accepted(day: date) -> None:
    assert check_overdue_since(day, TODAY, 10) == day


def test_range_from_29_february_ends_on_28_february() -> None:
    assert check_overdue_since(date(2023, 2, 28), date(2024, 2, 29), 1) == date(2023, 2, 28)
    with pytest.raises(ValueError):
        check_overdue_since(date(2023, 2, 27), date(2024, 2, 29), 1)


# -- postal address ------------------------------------------------------------------------------------------


def test_postal_address_is_optional_and_may_span_lines() -> None:
    address = "Flat 2, 10 Downing Row\nLondon SW1A 2AA"

    assert loan().borrower.postal_address is None
    assert loan(borrower=borrower_fields(postal_address=address)).borrower.postal_address == address


@pytest.mark.parametrize(("address", "fragment"), [("x" * 301, "at most 300"), ("1 Main St\x00", "U+0000")])
def test_postal_address_too_long_or_with_a_nul_is_refused(address: str, fragment: str) -> None:
    where, message = rejected_loan(borrower=borrower_fields(postal_address=address))

    assert where == ("borrower", "postal_address") and fragment in message
