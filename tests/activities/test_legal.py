from __future__ import annotations

import hashlib
import io
import re
import uuid
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, PdfObject
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.legal import (
    CJK_FONT,
    CJK_FONT_PACKAGE,
    cjk_font,
    fetch_document,
    list_documents,
    render_lawyer_letter,
)
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
    # The embedded TrueType subsets carry a ToUnicode CMap: pypdf extracts the text back as Chinese.
    request = letter_request(
        "LN-2026-000123", locale="zh-CN", borrower_name="张伟", lender="示例消费金融有限公司"
    )

    text = _text(render_lawyer_letter(request))

    assert "律师函" in text
    assert "张伟" in text
    assert "LN-2026-000123" in text
    assert "人民币 12,345.67 元" in text
    assert "人民币 98,765.43 元" in text
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


# -- the embedded font, the letter's facts, determinism ------------------------------------------------------


def _dict(value: object) -> DictionaryObject:
    resolved = value.get_object() if isinstance(value, PdfObject) else value
    assert isinstance(resolved, DictionaryObject)
    return resolved


def _fonts(pdf: bytes) -> dict[str, dict[str, object]]:
    """Every font the pages use: BaseFont name -> {"subtype", "embedded" (a font file in its descriptor)}."""
    fonts: dict[str, dict[str, object]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in _dict(_dict(page["/Resources"])["/Font"]).values():
            font = _dict(ref)
            descriptor = _dict(font["/FontDescriptor"]) if "/FontDescriptor" in font else DictionaryObject()
            fonts[str(font["/BaseFont"])] = {
                "subtype": str(font["/Subtype"]),
                "embedded": any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")),
            }
    return fonts


def _is_cjk_subset(name: str) -> bool:
    """A subset of the packaged font: '/AAAAAA+WenQuanYiMicroHei-0' (-0: the first face of the .ttc)."""
    return re.fullmatch(rf"/[A-Z]{{6}}\+{CJK_FONT}(-\d+)?", name) is not None


def test_chinese_letter_embeds_the_packaged_truetype_font_not_stsong() -> None:
    pdf = render_lawyer_letter(letter_request("LN-1", locale="zh-CN", borrower_name="张伟"))

    fonts = _fonts(pdf)

    cjk = {name: info for name, info in fonts.items() if _is_cjk_subset(name)}
    assert cjk, f"no {CJK_FONT} subset among {sorted(fonts)}"
    assert all(info == {"subtype": "/TrueType", "embedded": True} for info in cjk.values())
    assert b"STSong" not in pdf and not any("STSong" in name for name in fonts)


def test_the_font_comes_from_the_installed_package_not_the_system() -> None:
    path = Path(cjk_font().face.filename).resolve()

    package = Path(str(files(CJK_FONT_PACKAGE))).resolve()
    assert path.is_relative_to(package) and path.name == "wqy-microhei.ttc"


def test_the_font_has_a_glyph_for_every_character_of_the_chinese_letter() -> None:
    request = letter_request(
        "LN-1", locale="zh-CN", borrower_name="张伟", lender="示例消费金融有限公司", product="consumer_loan"
    )
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(render_lawyer_letter(request))).pages)

    glyphs = cjk_font().face.charToGlyph
    missing = sorted({char for char in text if not char.isspace() and ord(char) not in glyphs})
    assert missing == []


def test_english_letter_sets_a_chinese_name_in_the_embedded_font() -> None:
    pdf = render_lawyer_letter(letter_request("LN-1", borrower_name="Li Na (李娜)"))

    assert "Li Na (李娜)" in _text(pdf)
    assert any(_is_cjk_subset(name) for name in _fonts(pdf))


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_letter_names_the_law_firm_the_product_and_the_overdue_date(locale: str) -> None:
    request = letter_request("LN-1", locale=locale, product="consumer_loan")

    text = _text(render_lawyer_letter(request, law_firm="Example & Partners LLP"))

    assert "Example & Partners LLP" in text
    assert ("个人消费贷款" if locale == "zh-CN" else "Consumer loan") in text
    assert ("2026年1月5日" if locale == "zh-CN" else "5 January 2026") in text  # overdue since
    assert "90" in text  # DPD


def test_chinese_letter_urges_repayment_and_reserves_legal_rights() -> None:
    text = _text(render_lawyer_letter(letter_request("LN-1", locale="zh-CN")))

    assert "敦促您切实履行还款义务" in text
    assert "保留依法追究" in text
    assert "财产保全" in text


def test_law_firm_defaults_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERDUE_LAW_FIRM_NAME", "Configured Firm")

    assert "Configured Firm" in _text(render_lawyer_letter(letter_request("LN-1")))


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_same_request_hashes_the_same_and_another_request_does_not(locale: str) -> None:
    request = letter_request("LN-1", locale=locale, borrower_name="张伟")
    other = request.model_copy(update={"amount_overdue_minor": request.amount_overdue_minor + 1})

    first = hashlib.sha256(render_lawyer_letter(request)).hexdigest()

    assert hashlib.sha256(render_lawyer_letter(request)).hexdigest() == first
    assert hashlib.sha256(render_lawyer_letter(other)).hexdigest() != first


def test_long_names_still_lay_out_within_two_pages() -> None:
    request = letter_request("LN-1", locale="zh-CN", borrower_name="张" * 60, lender="示例" * 40)

    pages = PdfReader(io.BytesIO(render_lawyer_letter(request))).pages

    assert 1 <= len(pages) <= 2


# -- documents of a loan, and the litigation case ------------------------------------------------------------


async def test_list_documents_gives_the_loans_documents_only(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    zh = await activities.generate_lawyer_letter(letter_request(loan_id, locale="zh-CN"))
    en = await activities.generate_lawyer_letter(
        letter_request(loan_id, idempotency_key=f"{loan_id}:en-letter")
    )
    await activities.generate_lawyer_letter(letter_request(f"{loan_id}-other"))

    documents = await list_documents(db_pool, loan_id)

    assert [(d.document_id, d.locale, d.sha256) for d in documents] == [
        (zh.document_id, "zh-CN", zh.sha256),
        (en.document_id, "en", en.sha256),
    ]
    assert all(d.tracking_reference is None for d in documents)


async def test_referral_stores_the_property_preservation_request(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    letter = await activities.generate_lawyer_letter(letter_request(loan_id))

    receipt = await activities.refer_to_litigation(
        referral_request(loan_id, [letter.document_id], property_preservation=True)
    )

    row = await db_pool.fetchrow("SELECT * FROM litigation_referrals WHERE id = $1::uuid", receipt.case_id)
    assert row is not None
    assert (row["property_preservation"], row["document_ids"], row["summary"]) == (
        True,
        [letter.document_id],
        referral_request(loan_id, []).summary,
    )


async def test_referral_without_the_flag_asks_for_no_property_preservation(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.refer_to_litigation(referral_request(loan_id, []))

    stored = await db_pool.fetchval(
        "SELECT property_preservation FROM litigation_referrals WHERE id = $1::uuid", receipt.case_id
    )
    assert stored is False


async def test_referral_citing_another_loans_document_is_non_retryable(
    activities: CollectionActivities, loan_id: str
) -> None:
    others = await activities.generate_lawyer_letter(letter_request(f"{loan_id}-other"))

    with pytest.raises(ApplicationError) as error:
        await activities.refer_to_litigation(referral_request(loan_id, [others.document_id]))

    assert (error.value.type, error.value.non_retryable) == (contracts.UNKNOWN_DOCUMENT, True)
