"""Legal stage: the lawyer's letter (律师函) as a PDF in the borrower's language, and litigation referrals.

The PDF is built with reportlab in invariant mode (fixed creation date and document id), so the same request
always gives the same bytes and the same SHA-256: a retried activity, or a court checking a copy, sees one
document. Chinese text uses reportlab's built-in CID font STSong-Light (no font file to ship; viewers supply
a Song/Ming face), English uses Helvetica.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

import asyncpg
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from activities import contracts
from activities.contracts import (
    LawyerLetterReceipt,
    LawyerLetterRequest,
    LitigationReferralReceipt,
    LitigationReferralRequest,
)
from activities.db import Connection, find_by_key, insert_once
from activities.errors import (
    invalid,
    permanent,
    rejected_data_is_permanent,
    require_currency,
    require_non_negative,
    require_same_loan,
)
from domain.loan import format_money

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


# -- formatting ----------------------------------------------------------------------------------------------


def format_amount(amount_minor: int, currency: str, locale: str) -> str:
    """'人民币 12,345.67 元' for CNY in Chinese, else the neutral 'CNY 12,345.67'."""
    if locale == "zh-CN" and currency == "CNY":
        return format_money(amount_minor, currency).replace("CNY ", "人民币 ") + " 元"
    return format_money(amount_minor, currency)


def format_date(day: date, locale: str) -> str:
    if locale == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {day.strftime('%B')} {day.year}"


# -- the letter ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wording:
    font: str
    title: str
    to: str
    opening: str
    # labels of: lender, borrower, loan id, overdue since, DPD, overdue, principal, issued on, respond by
    facts: tuple[str, ...]
    body: tuple[str, ...]
    closing: str
    signature: str


def _wording(request: LawyerLetterRequest) -> _Wording:
    amount = format_amount(request.amount_overdue_minor, request.currency, request.locale)
    respond_by = format_date(request.respond_by, request.locale)
    if request.locale == "zh-CN":
        return _Wording(
            font=CJK_FONT,
            title="律师函",
            to="致：{borrower}",
            opening="受{lender}（以下简称“贷款人”）委托，现就您在贷款人处的借款（借款编号：{loan_id}）逾期未还一事，"
            "郑重致函如下：",
            facts=(
                "贷款人",
                "借款人",
                "借款编号",
                "逾期起始日",
                "逾期天数",
                "逾期金额",
                "剩余本金",
                "发函日期",
                "回复期限",
            ),
            body=(
                "根据您与贷款人签订的借款合同，您应当按期足额归还借款本息。《中华人民共和国民法典》第六百七十五条规定，"
                f"借款人应当按照约定的期限返还借款。截至本函发出之日，上述借款已逾期{request.dpd}天。贷款人此前已多次"
                "通过短信、电子邮件及电话等方式提醒您还款，但逾期款项至今仍未结清，您的行为已构成违约。",
                f"为维护贷款人的合法权益，现郑重通知您：请于{respond_by}前归还上述逾期款项{amount}，或主动联系贷款人"
                "协商还款安排。如您确因客观原因暂时无法足额还款，贷款人愿意本着诚信、合法的原则，与您协商分期还款等"
                "可行方案。",
                "如您在上述期限内既未还款，也未与贷款人联系，贷款人将依法采取包括但不限于提起民事诉讼、申请财产保全等"
                "法律措施，由此产生的诉讼费、保全费等相关费用可能依法由您承担，并可能对您的个人信用记录产生不利影响。"
                "望您珍视个人信用，慎重对待。",
                "如您在收到本函前已结清上述款项，请忽略本函。本函涉及您的个人信息，仅送达您本人。",
            ),
            closing="特此函告。",
            signature="受托律师（代表{lender}）",
        )
    return _Wording(
        font=LATIN_FONT,
        title="LAWYER'S LETTER",
        to="To: {borrower}",
        opening="We write on behalf of {lender} (the \u201cLender\u201d) about your loan {loan_id}, which is "
        "overdue. The details are:",
        facts=(
            "Lender",
            "Borrower",
            "Loan",
            "Overdue since",
            "Days past due",
            "Amount overdue",
            "Principal outstanding",
            "Issued on",
            "Respond by",
        ),
        body=(
            "Under your loan agreement you must repay the loan on the agreed dates. As of the date of "
            f"this letter the loan is {request.dpd} days past due. The Lender has reminded you several "
            "times by SMS, e-mail and telephone, but the overdue amount remains unpaid.",
            f"Please pay the amount overdue of {amount} by {respond_by}, or contact the Lender to agree a "
            "repayment arrangement. If you are in financial difficulty, the Lender will consider a "
            "reasonable arrangement, such as payment in instalments; free, impartial debt advice is also "
            "available from independent advice services.",
            "If by that date you have neither paid nor contacted the Lender, the Lender may start legal "
            "proceedings to recover the debt without further notice. You may then be liable for court fees "
            "and other costs, and your credit record may be affected.",
            "If you paid the amount in full before receiving this letter, please disregard it. This letter "
            "contains personal information and is addressed to you alone.",
        ),
        closing="Yours faithfully,",
        signature="Counsel, on behalf of {lender}",
    )


def render_lawyer_letter(request: LawyerLetterRequest) -> bytes:
    """The letter as PDF bytes; identical bytes for an identical request."""
    wording = _wording(request)
    locale = request.locale
    names = {
        "lender": escape(request.lender),
        "borrower": escape(request.borrower_name),
        "loan_id": escape(request.loan_id),
    }
    cjk = locale == "zh-CN"
    base = ParagraphStyle(
        "body",
        fontName=wording.font,
        fontSize=10.5,
        leading=17,
        spaceAfter=7,
        wordWrap="CJK" if cjk else None,
        firstLineIndent=21 if cjk else 0,
    )
    title = ParagraphStyle(
        "title", parent=base, fontSize=20, leading=28, alignment=TA_CENTER, spaceAfter=14, firstLineIndent=0
    )
    plain = ParagraphStyle("plain", parent=base, firstLineIndent=0)
    cell = ParagraphStyle("cell", parent=plain, spaceAfter=0, leading=14)
    right = ParagraphStyle("right", parent=plain, alignment=TA_RIGHT)

    values = (
        request.lender,
        request.borrower_name,
        request.loan_id,
        format_date(request.overdue_since, locale),
        str(request.dpd),
        format_amount(request.amount_overdue_minor, request.currency, locale),
        format_amount(request.principal_outstanding_minor, request.currency, locale),
        format_date(request.issued_on, locale),
        format_date(request.respond_by, locale),
    )
    facts = Table(
        [
            [Paragraph(escape(label), cell), Paragraph(escape(value), cell)]
            for label, value in zip(wording.facts, values, strict=True)
        ],
        colWidths=[45 * mm, 110 * mm],
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
        Paragraph(wording.title, title),
        Paragraph(wording.to.format(**names), plain),
        Spacer(1, 4),
        Paragraph(wording.opening.format(**names), base),
        facts,
        Spacer(1, 10),
        *(Paragraph(escape(text), base) for text in wording.body),
        Paragraph(wording.closing, plain),
        Spacer(1, 18),
        Paragraph(wording.signature.format(**names), right),
        Paragraph(format_date(request.issued_on, locale), right),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=25 * mm,
        invariant=1,  # fixed timestamps and document id: same input, same bytes, same hash
        title=f"{wording.title} {request.loan_id}",
        author=request.lender,
        subject=wording.title,
        creator="Overdue collections",
        lang=locale,
    )
    document.build(story)
    return buffer.getvalue()


def _validate_letter(request: LawyerLetterRequest) -> None:
    require_currency(request.currency)
    require_non_negative(
        amount_overdue_minor=request.amount_overdue_minor,
        principal_outstanding_minor=request.principal_outstanding_minor,
        dpd=request.dpd,
    )
    if request.respond_by < request.issued_on:
        raise invalid(f"respond_by: {request.respond_by} is before issued_on {request.issued_on}")
    if not request.borrower_name.strip():
        raise invalid("borrower_name: must not be empty")


async def generate_lawyer_letter(pool: asyncpg.Pool, request: LawyerLetterRequest) -> LawyerLetterReceipt:
    """Render the letter and store it once; a repeated key returns the stored document without rendering."""
    _validate_letter(request)
    async with pool.acquire() as connection:
        existing = await find_by_key(connection, "legal_documents", request.idempotency_key)
    if existing is not None:
        return _letter_receipt(existing, request, duplicate=True)
    # Rendering is CPU work: keep the event loop (and other activities' heartbeats) responsive.
    content = await asyncio.to_thread(render_lawyer_letter, request)
    async with pool.acquire() as connection:
        with rejected_data_is_permanent("lawyer's letter"):
            row, duplicate = await insert_once(
                connection,
                "legal_documents",
                {
                    "idempotency_key": request.idempotency_key,
                    "loan_id": request.loan_id,
                    "kind": "lawyer_letter",
                    "locale": request.locale,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size_bytes": len(content),
                    "content": content,
                },
            )
    return _letter_receipt(row, request, duplicate=duplicate)


def _letter_receipt(
    row: asyncpg.Record, request: LawyerLetterRequest, *, duplicate: bool
) -> LawyerLetterReceipt:
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "lawyer's letter")
    return LawyerLetterReceipt(
        document_id=str(row["id"]), sha256=row["sha256"], size_bytes=row["size_bytes"], duplicate=duplicate
    )


@dataclass(frozen=True)
class LegalDocument:
    document_id: str
    loan_id: str
    kind: str
    locale: str
    content_type: str
    sha256: str
    content: bytes


async def fetch_document(pool: asyncpg.Pool, document_id: str) -> LegalDocument | None:
    """A stored document by id (for the admin UI's download link); None when there is no such document."""
    try:
        key = uuid.UUID(document_id)
    except ValueError:
        return None
    async with pool.acquire() as connection:
        row = await connection.fetchrow("SELECT * FROM legal_documents WHERE id = $1", key)
    if row is None:
        return None
    return LegalDocument(
        document_id=str(row["id"]),
        loan_id=row["loan_id"],
        kind=row["kind"],
        locale=row["locale"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        content=bytes(row["content"]),
    )


# -- litigation ----------------------------------------------------------------------------------------------


async def refer_to_litigation(
    pool: asyncpg.Pool, request: LitigationReferralRequest
) -> LitigationReferralReceipt:
    """File the referral once, with the loan's own documents; a repeated key returns the first case."""
    require_currency(request.currency)
    require_non_negative(
        amount_overdue_minor=request.amount_overdue_minor,
        principal_outstanding_minor=request.principal_outstanding_minor,
        dpd=request.dpd,
    )
    async with pool.acquire() as connection:
        await _require_documents(connection, request)
        with rejected_data_is_permanent("litigation referral"):
            row, duplicate = await insert_once(
                connection,
                "litigation_referrals",
                {
                    "idempotency_key": request.idempotency_key,
                    "loan_id": request.loan_id,
                    "currency": request.currency,
                    "amount_overdue_minor": request.amount_overdue_minor,
                    "principal_outstanding_minor": request.principal_outstanding_minor,
                    "dpd": request.dpd,
                    "document_ids": list(request.document_ids),
                    "summary": request.summary,
                },
            )
    require_same_loan(row["loan_id"], request.loan_id, request.idempotency_key, "litigation referral")
    return LitigationReferralReceipt(case_id=str(row["id"]), duplicate=duplicate)


async def _require_documents(connection: Connection, request: LitigationReferralRequest) -> None:
    """Every document id must be a stored document of this loan: a court file never cites a missing paper."""
    ids: list[uuid.UUID] = []
    for document_id in request.document_ids:
        try:
            ids.append(uuid.UUID(document_id))
        except ValueError:
            raise permanent(
                contracts.UNKNOWN_DOCUMENT, f"document_ids: {document_id!r} is not a document id"
            ) from None
    found = {
        str(r["id"])
        for r in await connection.fetch(
            "SELECT id FROM legal_documents WHERE loan_id = $1 AND id = ANY($2::uuid[])", request.loan_id, ids
        )
    }
    missing = [str(i) for i in ids if str(i) not in found]
    if missing:
        raise permanent(
            contracts.UNKNOWN_DOCUMENT,
            f"document_ids: {', '.join(missing)} not found among loan {request.loan_id}'s documents",
        )
