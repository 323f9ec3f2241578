"""The lawyer's letter states only facts: the reminders actually sent, with their dates and channels, or none;
and the borrower's postal address under the addressee when there is one."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from pypdf import PdfReader
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import ReminderSent
from activities.legal import render_lawyer_letter
from tests.activities.builders import letter_request

REMINDERS = [
    ReminderSent(channel="email", sent_on=date(2026, 1, 5)),
    ReminderSent(channel="sms", sent_on=date(2026, 1, 3)),
    ReminderSent(channel="sms", sent_on=date(2026, 1, 3)),  # the same fact twice is stated once
]


def _text(pdf: bytes) -> str:
    """The PDF's text without any white space: a sentence may wrap anywhere, a space may be non-breaking."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", "", text.replace("\u00a0", " "))


def _has(text: str, phrase: str) -> bool:
    return re.sub(r"\s+", "", phrase) in text


def test_chinese_letter_lists_the_reminders_sent_with_dates_and_channels() -> None:
    request = letter_request("LN-1", locale="zh-CN", borrower_name="张伟", reminders=REMINDERS)

    text = _text(render_lawyer_letter(request))

    assert _has(
        text, "贷款人已于2026年1月3日通过短信、2026年1月5日通过电子邮件提醒您还款，但逾期款项至今仍未结清"
    )
    assert "电话" not in text and "多次" not in text


def test_english_letter_lists_the_reminders_sent_with_dates_and_channels() -> None:
    request = letter_request("LN-1", reminders=REMINDERS)

    text = _text(render_lawyer_letter(request))

    assert _has(
        text,
        "The Lender reminded you to pay by SMS on 3 January 2026 and by e-mail on 5 January 2026, "
        "but the overdue amount remains unpaid",
    )
    assert "telephone" not in text and "several" not in text


def test_channels_of_one_day_are_named_together() -> None:
    reminders = [
        ReminderSent(channel="call", sent_on=date(2026, 2, 1)),
        ReminderSent(channel="sms", sent_on=date(2026, 2, 1)),
        ReminderSent(channel="visit", sent_on=date(2026, 2, 9)),
        ReminderSent(channel="letter", sent_on=date(2026, 3, 1)),
    ]

    english = _text(render_lawyer_letter(letter_request("LN-1", reminders=reminders)))
    chinese = _text(render_lawyer_letter(letter_request("LN-1", locale="zh-CN", reminders=reminders)))

    assert _has(
        english,
        "reminded you to pay by SMS and by telephone on 1 February 2026, in person on 9 February 2026 "
        "and by letter on 1 March 2026,",
    )
    assert _has(
        chinese, "已于2026年2月1日通过短信和电话、2026年2月9日通过上门拜访、2026年3月1日通过信函提醒您还款"
    )


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_without_reminders_the_letter_claims_none(locale: str) -> None:
    text = _text(render_lawyer_letter(letter_request("LN-1", locale=locale)))

    for claim in ("remind", "SMS", "e-mail", "telephone", "提醒", "短信", "电子邮件", "电话", "多次"):
        assert claim not in text, claim
    expected = (
        "逾期款项至今仍未结清，您的行为已构成违约"
        if locale == "zh-CN"
        else "The overdue amount remains unpaid"
    )
    assert _has(text, expected)


@pytest.mark.parametrize(
    ("locale", "lines"),
    [
        ("en", ["Flat 2, 14 Mill Lane", "Leeds LS1 4AB"]),
        ("zh-CN", ["地址：上海市浦东新区世纪大道100号 12楼1203室"]),
    ],
)
def test_the_postal_address_is_printed_under_the_addressee(locale: str, lines: list[str]) -> None:
    address = (
        "Flat 2, 14 Mill Lane\nLeeds LS1 4AB" if locale == "en" else "上海市浦东新区世纪大道100号\n12楼1203室"
    )
    request = letter_request("LN-1", locale=locale, borrower_name="张伟", postal_address=address)

    text = _text(render_lawyer_letter(request))
    without = _text(render_lawyer_letter(letter_request("LN-1", locale=locale, borrower_name="张伟")))

    addressee = text.index("张伟")
    for line in lines:
        assert _has(text, line) and text.index(re.sub(r"\s+", "", line)) > addressee
        assert not _has(without, line)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"postal_address": " \n "}, "postal_address"),
        ({"postal_address": "\n".join(["x"] * 9)}, "postal_address"),
        ({"reminders": [ReminderSent(channel="sms", sent_on=date(2026, 5, 1))]}, "reminders"),
    ],
)
async def test_an_unusable_address_or_a_reminder_after_the_letter_is_refused(
    activities: CollectionActivities, loan_id: str, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ApplicationError) as error:
        await activities.generate_lawyer_letter(letter_request(loan_id, **changes))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)
    assert error.value.message.startswith(f"{field}:")


def test_the_request_takes_at_most_50_reminders() -> None:
    with pytest.raises(ValueError, match="reminders"):
        letter_request("LN-1", reminders=[ReminderSent(channel="sms", sent_on=date(2026, 1, 3))] * 51)
