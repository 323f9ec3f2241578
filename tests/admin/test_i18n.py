"""Every English string the admin UI shows through `_()` has its zh-CN wording (admin/translations)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from admin.i18n import catalog, locale_from_header, translate

ADMIN = Path(__file__).resolve().parents[2] / "admin"
# `_("text")` / `_('text')` in templates; `Forbidden("text")` and `_("text")` in the routers.
CALL = re.compile(r"""(?:\b_|Forbidden)\(\s*(?P<q>["'])(?P<text>(?:(?!(?P=q)).)+)(?P=q)""")


def shown_strings() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in [*ADMIN.glob("templates/*.html"), *ADMIN.glob("*.py")]:
        if path.name == "i18n.py":  # its docstring shows examples
            continue
        for match in CALL.finditer(path.read_text(encoding="utf-8")):
            found.add((path.name, match.group("text")))
    return found


def test_the_templates_use_translated_strings() -> None:
    assert len(shown_strings()) > 10  # the pattern finds them: a broken pattern would pass vacuously


@pytest.mark.parametrize(("where", "text"), sorted(shown_strings()))
def test_every_string_has_a_zh_cn_translation(where: str, text: str) -> None:
    translated = catalog("zh-CN").get(text)
    assert translated, f"{where}: {text!r} has no zh-CN entry in admin/translations/*.toml"
    # The same {placeholders} on both sides, or the Chinese page would lose (or crash on) a value.
    assert set(re.findall(r"\{(\w+)\}", translated)) == set(re.findall(r"\{(\w+)\}", text)), text


def test_placeholders_are_filled_and_english_passes_through() -> None:
    assert translate("zh-CN", "This action needs the {role} role.", role="主管") == "此操作需要主管角色。"
    assert translate("en", "This action needs the {role} role.", role="supervisor") == (
        "This action needs the supervisor role."
    )
    assert translate("zh-CN", "no such text, kept in English") == "no such text, kept in English"


def test_the_login_page_follows_the_browser_language() -> None:
    assert locale_from_header("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert locale_from_header("en-GB,en;q=0.9") == "en"
    assert locale_from_header(None) == "en"


def test_every_stage_and_outcome_label_has_a_zh_cn_translation() -> None:
    from admin.web import OUTCOME_LABELS, STAGE_LABELS

    missing = [
        label for label in [*STAGE_LABELS.values(), *OUTCOME_LABELS.values()] if label not in catalog("zh-CN")
    ]
    assert missing == []


def test_workflow_reasons_about_amounts_are_shown_in_the_loans_currency() -> None:
    from admin.web import amounts_in_money

    assert amounts_in_money("amount_minor: 9999900 is more than the amount overdue (115128)", "CNY") == (
        "amount_minor: CNY 99,999.00 is more than the amount overdue (CNY 1,151.28)"
    )
    assert amounts_in_money("instalments: the total 5000 is more than the amount overdue (4000)", "JPY") == (
        "instalments: the total JPY 5,000 is more than the amount overdue (JPY 4,000)"
    )
    # Reasons about other fields keep their numbers (days, dates are not money).
    assert amounts_in_money("days: at most 60 days", "CNY") == "days: at most 60 days"
    assert (
        amounts_in_money("due_date: 2026-12-01 is in the past", "CNY")
        == "due_date: 2026-12-01 is in the past"
    )
