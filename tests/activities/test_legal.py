from __future__ import annotations

import hashlib
import io
import re
import uuid

import asyncpg
import pytest
from pypdf import PdfReader
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.legal import fetch_document, render_lawyer_letter
from tests.activities.builders import letter_request, referral_request


def _text(pdf: bytes) -> str:
    """The PDF's text with line breaks removed (a long sentence may wrap anywhere)."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s*\n\s*", "", text)


def test_english_letter_names_borrower_loan_and_amount() -> None:
    text = _text(render_lawyer_letter(letter_request("LN-2026-000123", borrower_name="Jane Doe")))

    assert "Jane Doe" in text
    assert "LN-2026-000123" in text
    assert "CNY 12,345.67" in text  # amount overdue
    assert "CNY 98,765.43" in text  # principal outstanding
    assert "20 April 2026" in text  # respond by


def test_chinese_letter_names_borrower_loan_and_amount() -> None:
    # STSong-Light is a CID font with a Unicode CMap: pypdf extracts its text back as Chinese characters.
    request = letter_request(
        "LN-2026-000123", locale="zh-CN", borrower_name="张伟", lender="示例消费金融有限公司"
    )

    text = _text(render_lawyer_letter(request))

    assert "律师函" in text
    assert "张伟" in text
    assert "LN-2026-000123" in text
    assert "人民币 12,345.67 元" in text
    assert "2026年4月20日" in text


def test_markup_characters_in_names_are_printed_literally() -> None:
    text = _text(render_lawyer_letter(letter_request("LN-1", borrower_name="A <b> & Co")))

    assert "A <b> & Co" in text


def test_same_request_renders_identical_bytes() -> None:
    request = letter_request("LN-1", locale="zh-CN", borrower_name="张伟")

    assert render_lawyer_letter(request) == render_lawyer_letter(request)


async def test_letter_is_stored_with_its_sha256(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.generate_lawyer_letter(letter_request(loan_id))

    row = await db_pool.fetchrow("SELECT * FROM legal_documents WHERE loan_id = $1", loan_id)
    assert row is not None
    content = bytes(row["content"])
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == receipt.sha256 == row["sha256"]
    assert len(content) == receipt.size_bytes
    assert (str(row["id"]), receipt.duplicate) == (receipt.document_id, False)


async def test_same_key_twice_stores_one_letter_and_reports_duplicate(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.generate_lawyer_letter(letter_request(loan_id))
    second = await activities.generate_lawyer_letter(letter_request(loan_id))

    assert await db_pool.fetchval("SELECT count(*) FROM legal_documents WHERE loan_id = $1", loan_id) == 1
    assert (second.document_id, second.sha256, second.duplicate) == (first.document_id, first.sha256, True)


async def test_stored_letter_can_be_fetched_by_id(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.generate_lawyer_letter(letter_request(loan_id, locale="zh-CN"))

    document = await fetch_document(db_pool, receipt.document_id)

    assert document is not None
    assert (document.loan_id, document.locale, document.content_type) == (loan_id, "zh-CN", "application/pdf")
    assert hashlib.sha256(document.content).hexdigest() == receipt.sha256


async def test_respond_by_before_issue_date_is_non_retryable(
    activities: CollectionActivities, loan_id: str
) -> None:
    request = letter_request(loan_id)
    bad = request.model_copy(update={"respond_by": request.issued_on.replace(day=1)})

    with pytest.raises(ApplicationError) as error:
        await activities.generate_lawyer_letter(bad)

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)


async def test_referral_is_stored_with_its_documents(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    letter = await activities.generate_lawyer_letter(letter_request(loan_id))

    receipt = await activities.refer_to_litigation(referral_request(loan_id, [letter.document_id]))

    row = await db_pool.fetchrow("SELECT * FROM litigation_referrals WHERE loan_id = $1", loan_id)
    assert row is not None
    assert (str(row["id"]), row["document_ids"], row["amount_overdue_minor"]) == (
        receipt.case_id,
        [letter.document_id],
        1_234_567,
    )
    assert receipt.duplicate is False


async def test_same_referral_key_twice_files_once_and_reports_duplicate(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.refer_to_litigation(referral_request(loan_id, []))
    second = await activities.refer_to_litigation(referral_request(loan_id, []))

    count = await db_pool.fetchval("SELECT count(*) FROM litigation_referrals WHERE loan_id = $1", loan_id)
    assert count == 1
    assert (second.case_id, second.duplicate) == (first.case_id, True)


async def test_referral_citing_a_document_the_loan_lacks_is_non_retryable(
    activities: CollectionActivities, loan_id: str
) -> None:
    with pytest.raises(ApplicationError) as error:
        await activities.refer_to_litigation(referral_request(loan_id, [str(uuid.uuid4())]))

    assert (error.value.type, error.value.non_retryable) == (contracts.UNKNOWN_DOCUMENT, True)
