"""The Jinja2 message templates: every one renders in both locales, money and dates per locale (Babel),
versions, the jurisdiction's compliance lines, and clear non-retryable errors. Pure: no database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.messaging import TemplateCatalogue
from activities.templating import (
    CHANNELS,
    TEMPLATES_DIR,
    InvalidVariable,
    MessageTemplates,
    RenderedText,
    TemplateFileError,
    TemplateVariableMissing,
    UnknownTemplate,
    format_amount,
    template_context,
)
from tests.activities.builders import message_request

TEMPLATES = MessageTemplates.load()
CATALOGUE = TemplateCatalogue(TEMPLATES)
# The default strategy's message steps and the broken-promise follow-up (strategies/default.toml).
STRATEGY_TEMPLATES = ["broken_promise", "reminder_polite", "second_reminder", "statement"]
LOCALES = ["zh-CN", "en"]
PAY_URL = "https://pay.example.com/loans/{loan_id}"
RECIPIENT = {"sms": "+8613800138000", "email": "li.na@example.com", "push": "LN-1"}

US_OPT_OUT = {
    ("en", "sms"): "Reply STOP to opt out.",
    ("en", "email"): "To stop e-mails about this debt, reply to this e-mail with STOP.",
    ("zh-CN", "sms"): "回复STOP退订。",
    ("zh-CN", "email"): "如不希望再收到关于此笔欠款的邮件，请回复本邮件“STOP”。",
}
UK_PREFERENCES = {"en": "tell us how; we will respect your preferences", "zh-CN": "我们将尊重您的选择"}
VALIDATION_NOTICE = {"en": "Validation notice:", "zh-CN": "债务确认通知："}


def loan_variables(**changes: str) -> dict[str, str]:
    """What the workflow sends for a loan (workflows/step_requests.py), raw values only."""
    return {
        "borrower_name": "李娜",
        "loan_id": "LN-1",
        "amount_minor": "123450",
        "currency": "CNY",
        "dpd": "3",
        "overdue_since": "2026-01-05",
        "lender": "Overdue Demo Consumer Finance",
    } | changes


def render(
    template: str = "reminder_polite", locale: str = "en", channel: str = "sms", **variables: str
) -> RenderedText:
    context = template_context(loan_variables(**variables), locale=locale, loan_id="LN-1", pay_url=PAY_URL)
    return TEMPLATES.render(template, locale, channel, context)


def every_template() -> list[Any]:
    return [
        pytest.param(name, locale, channel, id=f"{name}-{locale}-{channel}")
        for name in STRATEGY_TEMPLATES
        for locale in LOCALES
        for channel in CHANNELS
    ]


# -------------------------------------------------------------------------------------- the catalogue


def test_every_strategy_template_exists_in_both_locales_for_every_channel() -> None:
    assert TEMPLATES.names == STRATEGY_TEMPLATES
    for name in STRATEGY_TEMPLATES:
        assert TEMPLATES.locales(name) == sorted(LOCALES)
        for locale in LOCALES:
            assert TEMPLATES.channels(name, locale) == list(CHANNELS)


def test_every_template_file_starts_with_a_version() -> None:
    files = sorted(TEMPLATES_DIR.glob("*/*.j2"))
    assert len(files) == len(STRATEGY_TEMPLATES) * len(LOCALES) * len(CHANNELS) + len(LOCALES) * 3
    for path in files:
        first_line = path.read_text(encoding="utf-8").splitlines()[0]
        assert re.fullmatch(r"\{# version: [0-9]+ #\}", first_line), path


def test_the_recorded_version_names_the_message_file_and_its_layout() -> None:
    assert re.fullmatch(r"[0-9]+\+_sms\.[0-9]+", TEMPLATES.version("reminder_polite", "zh-CN", "sms"))
    assert re.fullmatch(r"[0-9]+\+_email\.[0-9]+", TEMPLATES.version("statement", "en", "email"))
    assert render().version == TEMPLATES.version("reminder_polite", "en", "sms")


def test_the_templates_use_only_documented_variables() -> None:
    from activities.templating import TEMPLATE_VARIABLES

    assert TEMPLATES.variables() == set(TEMPLATE_VARIABLES)


# ------------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize(("template", "locale", "channel"), every_template())
def test_every_template_renders_for_a_sample_loan(template: str, locale: str, channel: str) -> None:
    rendered = render(template, locale, channel, currency="USD")

    assert "$1,234.50" in rendered.body
    assert "{" not in rendered.body and "}" not in rendered.body
    assert "123450" not in rendered.body  # never raw minor units
    assert (rendered.subject is None) == (channel == "sms")
    if rendered.subject is not None:
        assert rendered.subject.strip() and "\n" not in rendered.subject
    if channel != "push":  # a push goes to the borrower's own app account: no name needed
        assert "李娜" in rendered.body


@pytest.mark.parametrize(("template", "locale", "channel"), every_template())
def test_every_template_keeps_a_polite_tone_and_offers_a_way_to_talk(
    template: str, locale: str, channel: str
) -> None:
    rendered = render(template, locale, channel)
    text = f"{rendered.subject or ''}\n{rendered.body}"

    if locale == "zh-CN":
        assert "您好" in text
        assert "协商" in text or (channel == "push" and template == "reminder_polite")
        for word in ("起诉", "法院", "律师", "警告", "后果自负", "曝光", "通讯录", "家人", "单位"):
            assert word not in text, word
    else:
        assert "please" in text.lower()
        for word in (
            "lawsuit",
            "court",
            "attorney",
            "arrest",
            "police",
            "warning",
            "consequences",
            "employer",
        ):
            assert word not in text.lower(), word


def test_zh_cn_reminder_reads_like_a_polite_chinese_reminder() -> None:
    rendered = render("reminder_polite", "zh-CN", "sms")

    assert rendered.body.startswith("【Overdue Demo Consumer Finance】尊敬的李娜，您好！温馨提示：")
    assert "请您及时还款" in rendered.body
    assert "如有困难，可与我们协商还款方案" in rendered.body


@pytest.mark.parametrize(
    ("locale", "currency", "amount_minor", "expected"),
    [
        ("zh-CN", "CNY", "123450", "¥1,234.50"),
        ("en", "USD", "123450", "$1,234.50"),
        ("en", "GBP", "123450", "£1,234.50"),
        ("en", "EUR", "123450", "€1,234.50"),
        ("en", "JPY", "1235", "¥1,235"),
        ("zh-CN", "JPY", "1235", "JP¥1,235"),
        ("en", "CNY", "5", "CN¥0.05"),
        ("zh-CN", "USD", "100000000", "US$1,000,000.00"),
    ],
)
def test_amounts_are_formatted_for_the_borrowers_locale_from_minor_units(
    locale: str, currency: str, amount_minor: str, expected: str
) -> None:
    rendered = render("statement", locale, "email", currency=currency, amount_minor=amount_minor)

    assert expected in rendered.body


def test_yen_has_no_decimals() -> None:
    assert format_amount(1235, "JPY", "en") == "¥1,235"
    assert "." not in format_amount(100, "JPY", "zh-CN")


@pytest.mark.parametrize(
    ("locale", "jurisdiction", "expected"),
    [
        ("zh-CN", "cn", "2026年1月5日"),
        ("en", "us", "Jan 5, 2026"),
        ("en", "uk", "5 Jan 2026"),
        ("en", "", "Jan 5, 2026"),
    ],
)
def test_dates_are_medium_dates_of_the_borrowers_locale(
    locale: str, jurisdiction: str, expected: str
) -> None:
    rendered = render("reminder_polite", locale, "email", jurisdiction=jurisdiction)

    assert expected in rendered.body
    assert "2026-01-05" not in rendered.body


def test_raw_amount_wins_over_an_already_formatted_one() -> None:
    rendered = render(amount="CNY 9.99")

    assert "CN¥1,234.50" in rendered.body
    assert "9.99" not in rendered.body


def test_an_older_workflows_formatted_amount_and_due_date_are_used_as_sent() -> None:
    variables = {k: v for k, v in loan_variables().items() if k not in ("amount_minor", "currency")}
    variables |= {"amount": "CNY 1,234.50", "due_date": "5 January"}
    del variables["overdue_since"]
    context = template_context(variables, locale="en", loan_id="LN-1", pay_url=PAY_URL)

    rendered = TEMPLATES.render("reminder_polite", "en", "sms", context)

    assert "your payment of CNY 1,234.50 was due on 5 January." in rendered.body


def test_pay_url_defaults_to_the_pattern_with_the_loan_id() -> None:
    assert "https://pay.example.com/loans/LN-1 " in render().body
    assert "https://pay.lender.test/x " in render(pay_url="https://pay.lender.test/x").body


def test_a_token_link_pattern_previews_with_a_placeholder_and_never_the_loan_id() -> None:
    context = template_context(
        loan_variables(), locale="en", loan_id="LN-1", pay_url="https://pay.lender.test/b/{token}"
    )
    assert context["pay_url"] == "https://pay.lender.test/b/PREVIEW-TOKEN"


def test_text_is_not_html_escaped() -> None:
    rendered = render("statement", "en", "email", borrower_name="O'Brien & <Sons>")

    assert "Dear O'Brien & <Sons>," in rendered.body


def test_a_borrower_name_that_looks_like_a_template_is_not_evaluated() -> None:
    assert "Hello {{ lender }}," in render(borrower_name="{{ lender }}").body


def test_english_days_agree_with_the_number() -> None:
    assert "(1 day past due)" in (render("statement", "en", "email", dpd="1").subject or "")
    assert "(3 days past due)" in (render("statement", "en", "email", dpd="3").subject or "")


# ------------------------------------------------------------------------- jurisdictions and notices


@pytest.mark.parametrize("template", STRATEGY_TEMPLATES)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_us_sms_and_email_carry_the_opt_out_line(template: str, locale: str, channel: str) -> None:
    rendered = render(template, locale, channel, jurisdiction="us")

    assert US_OPT_OUT[(locale, channel)] in rendered.body


@pytest.mark.parametrize("jurisdiction", ["cn", "uk", ""])
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_no_opt_out_line_outside_the_us(jurisdiction: str, locale: str, channel: str) -> None:
    rendered = render("second_reminder", locale, channel, jurisdiction=jurisdiction)

    assert "STOP" not in rendered.body


def test_a_us_sms_ends_with_the_opt_out() -> None:
    assert render("reminder_polite", "en", "sms", jurisdiction="us").body.endswith(
        "agree a plan. Reply STOP to opt out."
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_us_push_has_no_opt_out_line(locale: str) -> None:
    assert "STOP" not in render("second_reminder", locale, "push", jurisdiction="us").body


@pytest.mark.parametrize("locale", LOCALES)
def test_uk_emails_offer_to_honour_contact_preferences(locale: str) -> None:
    assert UK_PREFERENCES[locale] in render("statement", locale, "email", jurisdiction="uk").body
    for jurisdiction in ("us", "cn"):
        body = render("statement", locale, "email", jurisdiction=jurisdiction).body
        assert UK_PREFERENCES[locale] not in body
    assert UK_PREFERENCES[locale] not in render("statement", locale, "sms", jurisdiction="uk").body


@pytest.mark.parametrize("locale", LOCALES)
def test_validation_notice_paragraph_only_when_flagged(locale: str) -> None:
    flagged = render("statement", locale, "email", jurisdiction="us", validation_notice="included").body
    omitted = render("statement", locale, "email", jurisdiction="us", validation_notice="omitted").body
    absent = render("statement", locale, "email", jurisdiction="us").body
    sms = render("statement", locale, "sms", jurisdiction="us", validation_notice="included").body

    [paragraph] = [p for p in flagged.split("\n\n") if p.startswith(VALIDATION_NOTICE[locale])]
    in_dollars = render("statement", locale, "email", currency="USD", validation_notice="included").body
    assert "$1,234.50" in in_dollars.split(VALIDATION_NOTICE[locale])[1]
    assert "Overdue Demo Consumer Finance" in paragraph
    assert "30" in paragraph
    assert ("dispute" if locale == "en" else "异议") in paragraph
    assert len(paragraph) < 600  # brief and factual
    for body in (omitted, absent, sms):
        assert VALIDATION_NOTICE[locale] not in body


def test_the_validation_notice_comes_before_the_closing_and_the_opt_out_last() -> None:
    body = render("statement", "en", "email", jurisdiction="us", validation_notice="included").body

    notice, closing = body.index("Validation notice:"), body.index("Kind regards,")
    opt_out = body.index("To stop e-mails about this debt")
    assert notice < closing < opt_out


def test_jurisdiction_is_read_case_insensitively() -> None:
    assert "Reply STOP to opt out." in render(jurisdiction="US").body


# ------------------------------------------------------------------------------------------- errors


def test_missing_variable_is_template_variable_missing_naming_it() -> None:
    variables = {k: v for k, v in loan_variables().items() if k != "lender"}
    context = template_context(variables, locale="en", loan_id="LN-1", pay_url=PAY_URL)

    with pytest.raises(TemplateVariableMissing) as error:
        TEMPLATES.render("reminder_polite", "en", "sms", context)

    assert error.value.missing == ["lender"]
    assert "reminder_polite" in str(error.value) and "lender" in str(error.value)


def test_missing_variable_through_the_activity_catalogue_is_non_retryable() -> None:
    variables = {k: v for k, v in loan_variables().items() if k != "overdue_since"}
    request = message_request("LN-1", variables=variables)

    with pytest.raises(ApplicationError) as error:
        CATALOGUE.render(request)

    assert (error.value.type, error.value.non_retryable) == (contracts.TEMPLATE_VARIABLE_MISSING, True)
    assert "overdue_since" in str(error.value)


@pytest.mark.parametrize(
    ("template", "locale", "channel", "field"),
    [("threat", "en", "sms", "template:"), ("statement", "fr", "email", "locale:")],
)
def test_unknown_template_or_locale_is_unknown_template(
    template: str, locale: str, channel: str, field: str
) -> None:
    with pytest.raises(UnknownTemplate) as error:
        TEMPLATES.render(template, locale, channel, {})

    assert str(error.value).startswith(field)
    if field == "template:":
        assert "reminder_polite" in str(error.value)  # the known ones are listed


def test_unknown_template_through_the_activity_catalogue_is_non_retryable() -> None:
    with pytest.raises(ApplicationError) as error:
        CATALOGUE.render(message_request("LN-1", template="final_warning", variables=loan_variables()))

    assert (error.value.type, error.value.non_retryable) == (contracts.UNKNOWN_TEMPLATE, True)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_minor": "12.50"}, "amount_minor"),
        ({"amount_minor": "-5"}, "amount_minor"),
        ({"currency": "RMB"}, "currency"),
        ({"jurisdiction": "usa"}, "jurisdiction"),
        ({"validation_notice": "yes"}, "validation_notice"),
        ({"overdue_since": "05/01/2026"}, "overdue_since"),
    ],
)
def test_unusable_values_are_invalid(change: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidVariable, match=rf"^variables\.{field}:"):
        template_context(loan_variables(**change), locale="en", loan_id="LN-1", pay_url=PAY_URL)


def test_unusable_values_through_the_activity_catalogue_are_invalid_requests() -> None:
    with pytest.raises(ApplicationError) as error:
        CATALOGUE.render(message_request("LN-1", variables=loan_variables(currency="RMB")))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)


# ----------------------------------------------------------------------------- broken template files

_LAYOUT = "{# version: 1 #}\n{% block content %}{% endblock %}\n"


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def test_a_template_file_without_a_version_is_refused_at_load(tmp_path: Path) -> None:
    _write(tmp_path, {"en/_sms.j2": _LAYOUT, "en/hello.sms.j2": '{% extends "en/_sms.j2" %}hi'})

    with pytest.raises(TemplateFileError, match=r"en/hello\.sms\.j2: first line must be a version"):
        MessageTemplates.load(tmp_path)


def test_a_message_not_using_its_channel_layout_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"en/hello.sms.j2": "{# version: 1 #}\nHello {{ borrower_name }}"})

    with pytest.raises(TemplateFileError, match=r'en/hello\.sms\.j2: \{% extends "en/_sms\.j2" %\} missing'):
        MessageTemplates.load(tmp_path)


def test_an_email_without_a_subject_is_refused(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "en/_email.j2": _LAYOUT,
            "en/hello.email.j2": '{# version: 1 #}\n{% extends "en/_email.j2" %}'
            "{% block content %}x{% endblock %}",
        },
    )

    with pytest.raises(TemplateFileError, match="subject"):
        MessageTemplates.load(tmp_path)


def test_a_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "en/_sms.j2": _LAYOUT,
            "en/hello.sms.j2": '{# version: 1 #}\n{% extends "en/_sms.j2" %}\n'
            "{% block content %}{{ x {% endblock %}",
        },
    )

    with pytest.raises(TemplateFileError, match=r"en/hello\.sms\.j2:3:"):
        MessageTemplates.load(tmp_path)


def test_a_layout_version_change_changes_the_recorded_version(tmp_path: Path) -> None:
    files = {
        "en/_sms.j2": _LAYOUT,
        "en/hello.sms.j2": '{# version: 4 #}\n{% extends "en/_sms.j2" %}{% block content %}hi{% endblock %}',
    }
    assert MessageTemplates.load(_write(tmp_path, files)).version("hello", "en", "sms") == "4+_sms.1"

    _write(tmp_path, {"en/_sms.j2": _LAYOUT.replace("version: 1", "version: 2")})

    assert MessageTemplates.load(tmp_path).version("hello", "en", "sms") == "4+_sms.2"


def test_strict_undefined_catches_what_the_static_check_cannot(tmp_path: Path) -> None:
    files = {
        "en/_sms.j2": _LAYOUT,
        "en/hello.sms.j2": '{# version: 1 #}\n{% extends "en/_sms.j2" %}'
        "{% block content %}Hi {{ borrower.name }}{% endblock %}",
    }
    templates = MessageTemplates.load(_write(tmp_path, files))

    with pytest.raises(TemplateVariableMissing, match="name"):
        templates.render("hello", "en", "sms", {"borrower": {}})
