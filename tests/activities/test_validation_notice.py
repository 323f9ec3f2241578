"""The US validation notice by post: its wording, its storage once per key, its registered-mail dispatch."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from pypdf import PdfReader
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import RegisteredMailRequest, ValidationNoticeRequest
from activities.legal import list_documents
from activities.registered_mail import RegisteredMail, is_tracking_reference
from activities.validation_notice import render_validation_notice
from tests.activities.builders import letter_request

ADDRESS = "1200 Main Street, Apt 4B\nSpringfield, IL 62704\nUnited States"


def notice_request(loan_id: str, **overrides: Any) -> ValidationNoticeRequest:
    fields: dict[str, Any] = {
        "idempotency_key": f"{loan_id}:2026-01-05:validation_notice",
        "loan_id": loan_id,
        "locale": "en",
        "lender": "Overdue Demo Lending Inc.",
        "borrower_name": "Jane Doe",
        "postal_address": ADDRESS,
        "currency": "USD",
        "amount_overdue_minor": 123_456,
        "overdue_since": date(2026, 1, 5),
        "issued_on": date(2026, 1, 8),
        "dispute_by": date(2026, 2, 12),
        "product": "consumer_loan",
    }
    return ValidationNoticeRequest(**(fields | overrides))


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _text(pdf: bytes) -> str:
    """The PDF's text with line breaks removed (a long sentence may wrap anywhere)."""
    return re.sub(r"\s*\n\s*", "", "".join(_pages(pdf)))


def test_english_notice_states_amount_dates_rights_and_address() -> None:
    text = _text(render_validation_notice(notice_request("LN-2026-000123")))

    assert "VALIDATION NOTICE" in text
    assert "LN-2026-000123" in text
    assert "USD 1,234.56" in text  # the amount owed
    assert "5 January 2026" in text  # overdue since
    assert "12 February 2026" in text  # the end of the validation period
    assert "dispute all or part of the debt" in text
    assert "name and address of the original creditor" in text
    assert "www.cfpb.gov/debt-collection" in text
    for line in ("Jane Doe", "1200 Main Street, Apt 4B", "Springfield, IL 62704", "United States"):
        assert line in text


def test_chinese_notice_states_amount_dates_and_address() -> None:
    request = notice_request(
        "LN-1", locale="zh-CN", borrower_name="张伟", postal_address="上海市浦东新区世纪大道100号\n1201室"
    )

    text = _text(render_validation_notice(request))

    assert "债务确认通知" in text
    assert "张伟" in text
    assert "USD 1,234.56" in text
    assert "2026年2月12日" in text
    assert "上海市浦东新区世纪大道100号" in text
    assert "原始债权人" in text


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_notice_fits_one_page_even_with_the_longest_address(locale: str) -> None:
    longest = "\n".join(f"Line {n} of a long postal address, Building {n}" for n in range(8))

    pdf = render_validation_notice(notice_request("LN-1", locale=locale, postal_address=longest))

    assert len(_pages(pdf)) == 1


def test_same_request_renders_identical_bytes() -> None:
    request = notice_request("LN-1", locale="zh-CN", borrower_name="张伟")

    assert render_validation_notice(request) == render_validation_notice(request)


async def test_notice_is_stored_as_a_validation_notice_with_its_sha256(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.generate_validation_notice(notice_request(loan_id))

    row = await db_pool.fetchrow("SELECT * FROM legal_documents WHERE loan_id = $1", loan_id)
    assert row is not None
    content = bytes(row["content"])
    assert content.startswith(b"%PDF-")
    assert (row["kind"], row["locale"]) == ("validation_notice", "en")
    assert hashlib.sha256(content).hexdigest() == receipt.sha256 == row["sha256"]
    assert (str(row["id"]), len(content), receipt.duplicate) == (
        receipt.document_id,
        receipt.size_bytes,
        False,
    )
    [listed] = await list_documents(db_pool, loan_id)
    assert (listed.document_id, listed.kind) == (receipt.document_id, "validation_notice")


async def test_retry_returns_the_same_document_as_a_duplicate(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.generate_validation_notice(notice_request(loan_id))
    second = await activities.generate_validation_notice(notice_request(loan_id))

    assert await db_pool.fetchval("SELECT count(*) FROM legal_documents WHERE loan_id = $1", loan_id) == 1
    assert (second.document_id, second.sha256, second.duplicate) == (first.document_id, first.sha256, True)


async def test_a_key_of_another_loan_or_of_a_lawyers_letter_is_a_conflict(
    activities: CollectionActivities, loan_id: str
) -> None:
    await activities.generate_validation_notice(notice_request(loan_id))
    letter = await activities.generate_lawyer_letter(letter_request(loan_id))
    assert not letter.duplicate

    for request in (
        notice_request("LN-other", idempotency_key=f"{loan_id}:2026-01-05:validation_notice"),
        notice_request(loan_id, idempotency_key=letter_request(loan_id).idempotency_key),
    ):
        with pytest.raises(ApplicationError) as error:
            await activities.generate_validation_notice(request)
        assert (error.value.type, error.value.non_retryable) == (contracts.IDEMPOTENCY_KEY_CONFLICT, True)


async def test_the_stored_notice_goes_out_by_registered_mail(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    notice = await activities.generate_validation_notice(notice_request(loan_id))
    mail = RegisteredMail(db_pool)
    request = RegisteredMailRequest(
        idempotency_key=f"{loan_id}:2026-01-05:validation_notice:mail",
        loan_id=loan_id,
        document_id=notice.document_id,
        locale="en",
    )

    first = await mail.dispatch_registered_mail(request)
    again = await mail.dispatch_registered_mail(request)

    assert is_tracking_reference(first.tracking_reference)
    assert (again.tracking_reference, first.duplicate, again.duplicate) == (
        first.tracking_reference,
        False,
        True,
    )
    [listed] = await list_documents(db_pool, loan_id)
    assert (listed.kind, listed.tracking_reference) == ("validation_notice", first.tracking_reference)


def test_a_request_without_postal_address_is_refused_naming_the_field() -> None:
    fields = notice_request("LN-1").model_dump()
    del fields["postal_address"]

    with pytest.raises(ValidationError) as error:
        ValidationNoticeRequest(**fields)

    assert [e["loc"] for e in error.value.errors()] == [("postal_address",)]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"postal_address": ""}, "postal_address"),
        ({"postal_address": "  \n \t\n"}, "postal_address"),
        ({"postal_address": "\n".join(["Line"] * 9)}, "postal_address"),
        ({"borrower_name": " "}, "borrower_name"),
        ({"lender": ""}, "lender"),
        ({"currency": "XXX"}, "currency"),
        ({"amount_overdue_minor": -1}, "amount_overdue_minor"),
        ({"overdue_since": date(2026, 1, 9)}, "overdue_since"),
        ({"dispute_by": date(2026, 2, 6)}, "dispute_by"),  # 29 days after issued_on: too short
    ],
)
async def test_bad_input_is_a_non_retryable_field_error_and_stores_nothing(
    activities: CollectionActivities,
    db_pool: asyncpg.Pool,
    loan_id: str,
    overrides: dict[str, Any],
    field: str,
) -> None:
    with pytest.raises(ApplicationError) as error:
        await activities.generate_validation_notice(notice_request(loan_id, **overrides))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)
    assert error.value.message.startswith(f"{field}:")
    assert await db_pool.fetchval("SELECT count(*) FROM legal_documents WHERE loan_id = $1", loan_id) == 0
