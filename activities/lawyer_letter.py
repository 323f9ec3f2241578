"""The lawyer's letter (律师函) as a PDF in the borrower's language: fonts, wording and layout.

The PDF is built with reportlab in invariant mode (fixed creation date and document id), so the same request
always gives the same bytes and the same SHA-256: a retried activity, or a court checking a copy, sees one
document. Chinese text is set in WenQuanYi Micro Hei (文泉驿微米黑, Apache-2.0), a TrueType font shipped
inside the `paperang-p2-fonts-cjk` wheel and EMBEDDED (subset) in the PDF, so any reader on any machine
shows the same glyphs; nothing is downloaded and no system font is used. English text is Helvetica, with
any Chinese name in it (a borrower, a lender) set in the embedded font too.

The letter states only facts: the reminders it mentions are those in the request (channel and date), and
without any it claims none. activities/legal.py stores the letter; this module only renders it.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date
from importlib.resources import as_file, files
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib import textsplit as _textsplit
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus import paragraph as _paragraph

from activities.contracts import (
    LawyerLetterRequest,
)
from domain.loan import format_money
from stack.settings import Settings

# The embedded CJK font: package, file inside it, face in the collection (0: proportional, 1: Mono).
CJK_FONT_PACKAGE = "paperang_p2_fonts_cjk"
CJK_FONT_FILE = ("fonts", "wqy-microhei.ttc")
CJK_FONT = "WenQuanYiMicroHei"  # registered name; the PDF names its subsets AAAAAA+WenQuanYiMicroHei
LATIN_FONT = "Helvetica"

_font_lock = threading.Lock()

# reportlab's CJK line breaking hangs a "cannot start a line" mark in the margin instead of starting the next
# line with it, but its list is Japanese: add the Chinese full-width marks so no line starts with "，" or "”".
# (Both modules hold a copy: one-fragment paragraphs break in textsplit, mixed ones in paragraph.)
_CHINESE_CANNOT_START = "，。、；：！？）》〉」』】”’…"
for _module in (_textsplit, _paragraph):
    _module.ALL_CANNOT_START += "".join(c for c in _CHINESE_CANNOT_START if c not in _module.ALL_CANNOT_START)


def cjk_font() -> TTFont:
    """The embedded CJK font, registered with reportlab on first use (parsing the 5 MB file takes 0.1 s)."""
    with _font_lock:
        try:
            font = pdfmetrics.getFont(CJK_FONT)
        except KeyError:
            resource = files(CJK_FONT_PACKAGE).joinpath(*CJK_FONT_FILE)
            with as_file(resource) as path:
                font = TTFont(CJK_FONT, str(path), subfontIndex=0)
            pdfmetrics.registerFont(font)
        assert isinstance(font, TTFont)
        return font


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


# Known product codes (Loan.product) in words; any other code is printed as it is.
PRODUCTS: dict[str, dict[str, str]] = {
    "consumer_loan": {"zh-CN": "个人消费贷款", "en": "Consumer loan"},
    "cash_loan": {"zh-CN": "个人现金贷款", "en": "Cash loan"},
    "instalment": {"zh-CN": "分期付款", "en": "Instalment purchase"},
    "credit_card": {"zh-CN": "信用卡", "en": "Credit card"},
}


def format_product(product: str, locale: str) -> str:
    return PRODUCTS.get(product, {}).get(locale, product)


def _latin_markup(text: str) -> str:
    """Escaped paragraph markup for Helvetica; runs it cannot encode (Chinese names) in the embedded font."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append(f'<font face="{CJK_FONT}">{escape("".join(run))}</font>')
            run.clear()

    for char in text:
        try:
            char.encode("cp1252")  # Helvetica's WinAnsi encoding
        except UnicodeEncodeError:
            run.append(char)
            continue
        flush()
        out.append(escape(char))
    flush()
    return "".join(out)


# -- the letter ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wording:
    font: str
    title: str
    reference: str
    to: str
    address: tuple[str, ...]  # lines under the addressee; empty without a postal address
    opening: str
    facts: tuple[tuple[str, str], ...]  # (label, value), value already formatted
    body: tuple[str, ...]
    closing: str
    signature: tuple[str, ...]
    page: str  # footer: "{reference} · page {page}"


def _facts(request: LawyerLetterRequest, labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    locale = request.locale
    rows = [
        (labels["lender"], request.lender),
        (labels["borrower"], request.borrower_name),
        (labels["loan"], request.loan_id),
    ]
    if request.product:
        rows.append((labels["product"], format_product(request.product, locale)))
    rows += [
        (labels["overdue_since"], format_date(request.overdue_since, locale)),
        (labels["dpd"], str(request.dpd)),
        (labels["overdue"], format_amount(request.amount_overdue_minor, request.currency, locale)),
        (labels["principal"], format_amount(request.principal_outstanding_minor, request.currency, locale)),
        (labels["issued_on"], format_date(request.issued_on, locale)),
        (labels["respond_by"], format_date(request.respond_by, locale)),
    ]
    return tuple(rows)


# How each channel of a reminder reads in the letter: zh-CN nouns (after 通过), English phrases.
_CHANNEL_WORDS: dict[str, dict[str, str]] = {
    "sms": {"zh-CN": "短信", "en": "by SMS"},
    "email": {"zh-CN": "电子邮件", "en": "by e-mail"},
    "push": {"zh-CN": "应用推送消息", "en": "by app notification"},
    "call": {"zh-CN": "电话", "en": "by telephone"},
    "visit": {"zh-CN": "上门拜访", "en": "in person"},
    "letter": {"zh-CN": "信函", "en": "by letter"},
}
_CHANNEL_ORDER = list(_CHANNEL_WORDS)


def _reminders_by_date(request: LawyerLetterRequest) -> list[tuple[date, list[str]]]:
    """The reminders sent, one entry per date (oldest first) with its channels in a fixed order."""
    channels: dict[date, set[str]] = {}
    for reminder in request.reminders:
        channels.setdefault(reminder.sent_on, set()).add(reminder.channel)
    return [(day, sorted(channels[day], key=_CHANNEL_ORDER.index)) for day in sorted(channels)]


def _english_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def reminders_sentence(request: LawyerLetterRequest) -> str:
    """What the letter says of earlier reminders: exactly those of the request, or nothing is claimed."""
    by_date = _reminders_by_date(request)
    if request.locale == "zh-CN":
        if not by_date:
            return "逾期款项至今仍未结清，您的行为已构成违约。"
        clauses = [
            f"{format_date(day, 'zh-CN')}通过" + "和".join(_CHANNEL_WORDS[c]["zh-CN"] for c in channels)
            for day, channels in by_date
        ]
        return f"贷款人已于{'、'.join(clauses)}提醒您还款，但逾期款项至今仍未结清，您的行为已构成违约。"
    if not by_date:
        return "The overdue amount remains unpaid, and you are in breach of the agreement."
    clauses = [
        " and ".join(_CHANNEL_WORDS[c]["en"] for c in channels)
        + " on "
        + format_date(day, "en").replace(" ", "\u00a0")
        for day, channels in by_date
    ]
    return (
        f"The Lender reminded you to pay {_english_list(clauses)}, but the overdue amount remains unpaid, "
        "and you are in breach of the agreement."
    )


def address_lines(request: LawyerLetterRequest) -> tuple[str, ...]:
    """The postal address as the letter prints it under the addressee (its non-empty lines)."""
    if request.postal_address is None:
        return ()
    return tuple(line.strip() for line in request.postal_address.splitlines() if line.strip())


def _wording(request: LawyerLetterRequest, law_firm: str) -> _Wording:
    # In running English text an amount or a date never breaks across lines ("CNY" / "12,345.67").
    def keep(text: str) -> str:
        return text if request.locale == "zh-CN" else text.replace(" ", "\u00a0")

    amount = keep(format_amount(request.amount_overdue_minor, request.currency, request.locale))
    principal = keep(format_amount(request.principal_outstanding_minor, request.currency, request.locale))
    respond_by = keep(format_date(request.respond_by, request.locale))
    reference = f"{request.loan_id}-{request.issued_on:%Y%m%d}"
    lender, borrower, loan_id = request.lender, request.borrower_name, request.loan_id
    if request.locale == "zh-CN":
        return _Wording(
            font=CJK_FONT,
            title="律师函",
            reference=f"函号：{reference}",
            to=f"致：{borrower}（借款人）",
            address=(f"地址：{' '.join(address_lines(request))}",) if address_lines(request) else (),
            opening=f"{law_firm}（以下简称“本所”）受{lender}（以下简称“贷款人”）委托，现就您在贷款人处的借款"
            f"（借款编号：{loan_id}）逾期未还一事，郑重致函如下：",
            facts=_facts(
                request,
                {
                    "lender": "贷款人",
                    "borrower": "借款人",
                    "loan": "借款编号",
                    "product": "贷款产品",
                    "overdue_since": "逾期起始日",
                    "dpd": "逾期天数",
                    "overdue": "逾期金额",
                    "principal": "剩余本金",
                    "issued_on": "发函日期",
                    "respond_by": "回复期限",
                },
            ),
            body=(
                "根据您与贷款人签订的借款合同，您应当按照约定的期限足额归还借款本息。《中华人民共和国民法典》"
                "第六百七十五条、第六百七十六条规定，借款人应当按照约定的期限返还借款；未按照约定的期限返还借款的，"
                f"应当按照约定或者国家有关规定支付逾期利息。截至本函发出之日，上述借款已逾期{request.dpd}天，"
                f"逾期金额为{amount}，剩余本金为{principal}。{reminders_sentence(request)}",
                f"本所受托郑重敦促您切实履行还款义务：请于{respond_by}前归还上述逾期款项{amount}，或主动联系"
                "贷款人协商还款安排。如您确因客观原因暂时无法足额还款，贷款人愿意本着诚信、合法的原则，与您协商"
                "分期还款、延期还款等可行方案。",
                "如您在上述期限内既未还款，也未与贷款人联系，贷款人保留依法追究您违约责任的权利，并将依法采取"
                "包括但不限于提起民事诉讼、申请财产保全等法律措施，由此产生的诉讼费、保全费等相关费用可能依法由"
                "您承担，并可能对您的个人信用记录产生不利影响。望您珍视个人信用，慎重对待。",
                "如您在收到本函前已结清上述款项，请忽略本函；如您对上述债务有异议，请于回复期限内以书面形式向"
                "贷款人或本所提出。本函涉及您的个人信息，仅送达您本人。",
            ),
            closing="特此函告。",
            signature=(law_firm, f"受托律师（代表{lender}）"),
            page=f"{law_firm} · 函号 {reference} · 第 {{page}} 页",
        )
    return _Wording(
        font=LATIN_FONT,
        title="LAWYER'S LETTER",
        reference=f"Our ref: {reference}",
        to=f"To: {borrower} (the borrower)",
        address=address_lines(request),
        opening=f"We, {law_firm}, act for {lender} (the \u201cLender\u201d) and write to you about your loan "
        f"{loan_id}, which is overdue. The details are:",
        facts=_facts(
            request,
            {
                "lender": "Lender",
                "borrower": "Borrower",
                "loan": "Loan",
                "product": "Product",
                "overdue_since": "Overdue since",
                "dpd": "Days past due",
                "overdue": "Amount overdue",
                "principal": "Principal outstanding",
                "issued_on": "Issued on",
                "respond_by": "Respond by",
            },
        ),
        body=(
            "Under your loan agreement you must repay the loan and its interest in full on the agreed "
            f"dates. As of the date of this letter the loan is {request.dpd} days past due: {amount} is "
            f"overdue and {principal} of principal is outstanding. {reminders_sentence(request)}",
            "On the Lender's instructions we urge you to meet your obligation to repay: please pay the "
            f"amount overdue of {amount} by {respond_by}, or contact the Lender to agree a repayment "
            "arrangement. If you are in financial difficulty, the Lender will consider a reasonable "
            "arrangement, such as payment in instalments or more time to pay; free, impartial debt advice "
            "is also available from independent advice services.",
            "If by that date you have neither paid nor contacted the Lender, the Lender reserves all its "
            "rights to pursue the debt by lawful means, including court proceedings and an application to "
            "preserve your assets pending judgment, without further notice. You may then be liable for "
            "court fees and other costs, and your credit record may be affected.",
            "If you paid the amount in full before receiving this letter, please disregard it. If you "
            "dispute the debt, please tell the Lender or us in writing by the date above. This letter "
            "contains personal information and is addressed to you alone.",
        ),
        closing="Yours faithfully,",
        signature=(law_firm, f"Counsel, on behalf of {lender}"),
        page=f"{law_firm} \u00b7 Ref {reference} \u00b7 page {{page}}",
    )


_MARGIN = 25 * mm
_FRAME_PADDING = 6  # SimpleDocTemplate's frame keeps 6 pt inside each margin


def law_firm_name() -> str:
    """The firm that signs the letters: OVERDUE_LAW_FIRM_NAME (a demo name by default)."""
    return Settings().law_firm_name


def render_lawyer_letter(request: LawyerLetterRequest, *, law_firm: str | None = None) -> bytes:
    """The letter as PDF bytes; identical bytes for an identical request (and law firm)."""
    firm = law_firm if law_firm is not None else law_firm_name()
    cjk_font()  # registered before any paragraph names it
    wording = _wording(request, firm)
    cjk = request.locale == "zh-CN"

    def markup(text: str) -> str:
        return escape(text) if cjk else _latin_markup(text)

    base = ParagraphStyle(
        "body",
        fontName=wording.font,
        fontSize=10.5,
        leading=16,
        spaceAfter=5,
        wordWrap="CJK" if cjk else None,
        firstLineIndent=21 if cjk else 0,
    )
    plain = ParagraphStyle("plain", parent=base, firstLineIndent=0)
    letterhead = ParagraphStyle("letterhead", parent=plain, fontSize=13, leading=18, alignment=TA_CENTER)
    title = ParagraphStyle("title", parent=plain, fontSize=20, leading=28, alignment=TA_CENTER, spaceAfter=4)
    reference = ParagraphStyle("reference", parent=plain, fontSize=9, alignment=TA_CENTER, spaceAfter=12)
    cell = ParagraphStyle("cell", parent=plain, spaceAfter=0, leading=13)
    right = ParagraphStyle("right", parent=plain, alignment=TA_RIGHT, spaceAfter=2)

    # Two facts per row (label, value, label, value), in reading order; an odd last row has one.
    cells = [
        [Paragraph(markup(label), cell), Paragraph(markup(value), cell)] for label, value in wording.facts
    ]
    empty = [Paragraph("", cell), Paragraph("", cell)]
    rows = [cells[i] + (cells[i + 1] if i + 1 < len(cells) else empty) for i in range(0, len(cells), 2)]
    half = (A4[0] - 2 * _MARGIN - 2 * _FRAME_PADDING) / 2  # the table spans the text width exactly
    label_width = 24 * mm if cjk else 34 * mm
    facts = Table(rows, colWidths=[label_width, half - label_width] * 2, hAlign="LEFT")
    facts.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("BACKGROUND", (2, 0), (2, -1), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )

    story: list[Flowable] = [
        Paragraph(markup(firm), letterhead),
        HRFlowable(width="100%", thickness=0.8, color=colors.black, spaceBefore=2, spaceAfter=10),
        Paragraph(markup(wording.title), title),
        Paragraph(markup(wording.reference), reference),
        Paragraph(markup(wording.to), plain),
        *(Paragraph(markup(line), plain) for line in wording.address),
        Spacer(1, 4),
        Paragraph(markup(wording.opening), base),
        facts,
        Spacer(1, 8),
        *(Paragraph(markup(text), base) for text in wording.body),
        KeepTogether(
            [
                Paragraph(markup(wording.closing), plain),
                Spacer(1, 10),
                *(Paragraph(markup(line), right) for line in wording.signature),
                Paragraph(markup(format_date(request.issued_on, request.locale)), right),
            ]
        ),
    ]

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(CJK_FONT, 8)  # the embedded font has Latin glyphs too; names may be Chinese
        canvas.setFillColor(colors.grey)
        canvas.drawCentredString(A4[0] / 2, 14 * mm, wording.page.format(page=document.page))
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=20 * mm,
        bottomMargin=22 * mm,
        invariant=1,  # fixed timestamps and document id: same input, same bytes, same hash
        title=f"{wording.title} {request.loan_id}",
        author=firm,
        subject=wording.title,
        creator="Overdue collections",
        lang=request.locale,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
