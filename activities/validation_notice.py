"""The US validation notice (Regulation F §1006.34, Model Form B-1 content) as a one-page letter.

A US borrower without an e-mail address gets the notice by post: this module renders it as a PDF in the
borrower's language (en, or zh-CN), stores it once per idempotency key among the loan's legal documents
(kind 'validation_notice') and returns its id, which `dispatch_registered_mail` then posts.

The content follows Model Form B-1: who is collecting and for whom, the amount owed and since when, the end
of the validation period (`dispute_by`), the rights to dispute and to ask for the original creditor's name
and address, how to dispute, and a reply form. Fonts, amounts and dates come from the lawyer's letter
(activities/lawyer_letter.py), so both documents print a borrower, a sum or a date the same way; like the
letter, the PDF is built in reportlab's invariant mode: one request, one set of bytes, one SHA-256.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from xml.sax.saxutils import escape

import asyncpg
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, HRFlowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from activities import contracts
from activities.contracts import ValidationNoticeReceipt, ValidationNoticeRequest
from activities.errors import (
    invalid,
    permanent,
    require_currency,
    require_non_negative,
    require_same_loan,
)
from activities.lawyer_letter import (
    CJK_FONT,
    LATIN_FONT,
    _latin_markup,
    cjk_font,
    format_amount,
    format_date,
    format_product,
)
from activities.legal import _ADDRESS_MAX_CHARS, _ADDRESS_MAX_LINES, store_document_once

KIND = "validation_notice"  # legal_documents.kind (migrations/0015_validation_notice_documents.sql)

# §1006.34(b)(5): the validation period ends 30 days after the borrower RECEIVES the notice, so its end is at
# least 30 days after the notice is issued (the caller adds the days the post takes).
VALIDATION_PERIOD_MIN_DAYS = 30

CFPB_URL = "www.cfpb.gov/debt-collection"


def address_block(postal_address: str) -> tuple[str, ...]:
    """The address lines as printed under the addressee: the non-empty lines, trimmed."""
    return tuple(line.strip() for line in postal_address.splitlines() if line.strip())


def validate_notice(request: ValidationNoticeRequest) -> None:
    """Refuse, naming the field, what can never make a lawful notice (non-retryable InvalidRequest)."""
    require_currency(request.currency)
    require_non_negative(amount_overdue_minor=request.amount_overdue_minor)
    if not request.lender.strip():
        raise invalid("lender: must not be empty")
    if not request.borrower_name.strip():
        raise invalid("borrower_name: must not be empty")
    lines = address_block(request.postal_address)
    if not lines:
        raise invalid("postal_address: must not be empty (the validation notice goes by post)")
    if len(lines) > _ADDRESS_MAX_LINES or len(request.postal_address) > _ADDRESS_MAX_CHARS:
        raise invalid(
            f"postal_address: at most {_ADDRESS_MAX_LINES} lines and {_ADDRESS_MAX_CHARS} characters"
        )
    if request.overdue_since > request.issued_on:
        raise invalid(f"overdue_since: {request.overdue_since} is after issued_on {request.issued_on}")
    earliest = request.issued_on + timedelta(days=VALIDATION_PERIOD_MIN_DAYS)
    if request.dispute_by < earliest:
        raise invalid(
            f"dispute_by: {request.dispute_by} is less than {VALIDATION_PERIOD_MIN_DAYS} days after "
            f"issued_on {request.issued_on} (the validation period runs 30 days from receipt)"
        )


def _end(sentence: str) -> str:
    """The sentence with its full stop, unless it ends with one already ("Lending Inc.")."""
    return sentence if sentence.endswith(".") else sentence + "."


# -- wording -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wording:
    font: str
    title: str
    reference: str
    to: tuple[str, ...]  # addressee and address lines
    intro: str
    facts: tuple[tuple[str, str], ...]  # (label, value), value already formatted
    sections: tuple[tuple[str, str], ...]  # (heading, text)
    form_title: str
    form_lines: tuple[str, ...]


def _wording(request: ValidationNoticeRequest) -> _Wording:
    locale = request.locale

    # In running English text an amount or a date never breaks across lines.
    def keep(text: str) -> str:
        return text if locale == "zh-CN" else text.replace(" ", "\u00a0")

    amount = keep(format_amount(request.amount_overdue_minor, request.currency, locale))
    dispute_by = keep(format_date(request.dispute_by, locale))
    since = keep(format_date(request.overdue_since, locale))
    reference = f"{request.loan_id}-{request.issued_on:%Y%m%d}-VN"
    lender, loan_id = request.lender, request.loan_id
    address = address_block(request.postal_address)
    product = format_product(request.product, locale) if request.product else None
    box = "[  ]"  # a tick box that any font prints
    if locale == "zh-CN":
        facts = [("债权人", lender), ("借款编号", loan_id)]
        facts += [("贷款产品", product)] if product else []
        facts += [
            ("逾期起始日", format_date(request.overdue_since, locale)),
            (f"截至{format_date(request.issued_on, locale)}欠款", amount),
            ("异议截止日", dispute_by),
        ]
        return _Wording(
            font=CJK_FONT,
            title="债务确认通知",
            reference=f"编号：{reference}",
            to=(
                f"致：{request.borrower_name}",
                *(f"地址：{line}" if i == 0 else line for i, line in enumerate(address)),
            ),
            intro=f"{lender}正在向您催收一笔债务。我们将使用您提供的任何信息来协助催收该债务。根据我们的记录，"
            f"您自{since}起逾期，尚欠{lender}款项{amount}。",
            facts=tuple(facts),
            sections=(
                (
                    "如何对债务提出异议？",
                    f"请在{dispute_by}之前致电或写信告知我们您对全部或部分债务有异议；否则，我们将视为我们的"
                    f"信息正确无误。如您在{dispute_by}之前以书面形式提出异议，在我们向您寄送证明您欠有该债务的"
                    "材料之前，我们将停止对有异议部分的催收。",
                ),
                (
                    "您还可以做什么？",
                    f"如原始债权人与现债权人不同，您可以书面要求我们提供原始债权人的名称和地址。如您在"
                    f"{dispute_by}之前提出书面要求，在我们向您寄送该信息之前，我们将停止催收。",
                ),
                (
                    "如何回复？",
                    f"请填写下方回复表，注明编号{reference}，寄回{lender}（地址见您的借款合同或账单）。"
                    f"您也可以访问 {CFPB_URL} 了解您依据美国联邦法律享有的权利。",
                ),
            ),
            form_title="回复表",
            form_lines=(
                f"{box} 我对该债务有异议，因为我认为：这不是我的债务 / 金额有误 / 其他原因：________________",
                f"{box} 请寄送原始债权人的名称和地址。",
                f"借款编号：{loan_id}　编号：{reference}　签名：____________　日期：__________",
            ),
        )
    facts = [("Creditor", lender), ("Loan", loan_id)]
    facts += [("Product", product)] if product else []
    facts += [
        ("Overdue since", format_date(request.overdue_since, locale)),
        (f"Amount owed as of {format_date(request.issued_on, locale)}", amount),
        ("Dispute by", dispute_by),
    ]
    return _Wording(
        font=LATIN_FONT,
        title="VALIDATION NOTICE",
        reference=f"Reference: {reference}",
        to=(request.borrower_name, *address),
        intro=f"{lender} is a debt collector. We are trying to collect a debt that you owe to {_end(lender)} "
        f"We will use any information you give us to help collect the debt. Our records show that your loan "
        f"{loan_id} has been overdue since {since} and that you owe {amount}.",
        facts=tuple(facts),
        sections=(
            (
                "How can you dispute the debt?",
                f"Call or write to us by {dispute_by} to dispute all or part of the debt. If you do not, we "
                f"will assume that our information is correct. If you write to us by {dispute_by}, we must "
                "stop collection on any amount you dispute until we send you information that shows you owe "
                "the debt.",
            ),
            (
                "What else can you do?",
                "Write to ask for the name and address of the original creditor, if different from the "
                f"current creditor. If you write by {dispute_by}, we must stop collection until we send you "
                "that information.",
            ),
            (
                "How to reply",
                f"Fill in the form below and mail it to {lender} at the address in your loan agreement or "
                f"statement, quoting reference {reference}. Visit {CFPB_URL} to learn more about your rights "
                "under federal law.",
            ),
        ),
        form_title="How do you want to respond?",
        form_lines=(
            f"{box} I want to dispute the debt because I think: this is not my debt / the amount is wrong / "
            "other: ______________________",
            f"{box} I want you to send me the name and address of the original creditor.",
            f"Loan {loan_id} \u00b7 Ref {reference} \u00b7 Signature: ______________ \u00b7 Date: __________",
        ),
    )


# -- the PDF -------------------------------------------------------------------------------------------------

_MARGIN = 20 * mm
_FRAME_PADDING = 6  # SimpleDocTemplate's frame keeps 6 pt inside each margin


def render_validation_notice(request: ValidationNoticeRequest) -> bytes:
    """The notice as PDF bytes (US Letter, one page); identical bytes for an identical request."""
    cjk_font()  # registered before any paragraph names it
    wording = _wording(request)
    cjk = request.locale == "zh-CN"

    def markup(text: str) -> str:
        return escape(text) if cjk else _latin_markup(text)

    base = ParagraphStyle(
        "body",
        fontName=wording.font,
        fontSize=9.5,
        leading=13.5,
        spaceAfter=4,
        wordWrap="CJK" if cjk else None,
    )
    heading = ParagraphStyle("heading", parent=base, fontSize=10.5, leading=14, spaceBefore=3, spaceAfter=2)
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22, spaceAfter=1)
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, spaceAfter=6)
    cell = ParagraphStyle("cell", parent=base, spaceAfter=0, leading=12)
    if not cjk:  # headings in bold; the CJK font has no bold face, so Chinese headings stay regular
        heading.fontName = title.fontName = "Helvetica-Bold"

    width = LETTER[0] - 2 * _MARGIN - 2 * _FRAME_PADDING
    facts = Table(
        [[Paragraph(markup(label), cell), Paragraph(markup(value), cell)] for label, value in wording.facts],
        colWidths=[width * 0.4, width * 0.6],
        hAlign="LEFT",
    )
    facts.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story: list[Flowable] = [
        Paragraph(markup(request.lender), heading),
        Paragraph(markup(wording.title), title),
        Paragraph(markup(wording.reference), small),
        *(Paragraph(markup(line), cell) for line in wording.to),
        Spacer(1, 10),
        Paragraph(markup(wording.intro), base),
        facts,
        Spacer(1, 4),
    ]
    for head, text in wording.sections:
        story += [Paragraph(markup(head), heading), Paragraph(markup(text), base)]
    story += [
        HRFlowable(width="100%", thickness=0.6, dash=(3, 2), color=colors.grey, spaceBefore=6, spaceAfter=6),
        Paragraph(markup(wording.form_title), heading),
        *(Paragraph(markup(line), base) for line in wording.form_lines),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,  # a US notice, posted in a US envelope
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=16 * mm,
        bottomMargin=14 * mm,
        invariant=1,  # fixed timestamps and document id: same input, same bytes, same hash
        title=f"{wording.title} {request.loan_id}",
        author=request.lender,
        subject=wording.title,
        creator="Overdue collections",
        lang=request.locale,
    )
    document.build(story)
    return buffer.getvalue()


# -- the activity's work -------------------------------------------------------------------------------------


async def generate_validation_notice(
    pool: asyncpg.Pool, request: ValidationNoticeRequest
) -> ValidationNoticeReceipt:
    """Render the notice and store it once; a repeated key returns the stored document without rendering."""
    validate_notice(request)
    row, duplicate = await store_document_once(
        pool,
        idempotency_key=request.idempotency_key,
        loan_id=request.loan_id,
        kind=KIND,
        locale=request.locale,
        render=lambda: render_validation_notice(request),
        what="validation notice",
    )
    return _receipt(row, request, duplicate=duplicate)


def _receipt(
    row: asyncpg.Record, request: ValidationNoticeRequest, *, duplicate: bool
) -> ValidationNoticeReceipt:
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "validation notice")
    # The key names another document of this loan: never pass a lawyer's letter off as a notice.
    if row["kind"] != KIND:
        raise permanent(
            contracts.IDEMPOTENCY_KEY_CONFLICT,
            f"idempotency_key {request.idempotency_key!r} already used by this loan's {row['kind']}",
        )
    return ValidationNoticeReceipt(
        document_id=str(row["id"]), sha256=row["sha256"], size_bytes=row["size_bytes"], duplicate=duplicate
    )
