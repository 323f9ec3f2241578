"""The admin UI in zh-CN and en, chosen per user (users.locale).

Templates write English and wrap it: `{{ _("Work queue") }}`, `{{ _("Loan {loan_id}", loan_id=loan_id) }}`.
The zh-CN wording lives in admin/translations/*.toml, one file per area of the UI, each a `[zh-CN]` table of
"English" = "中文" pairs. English is the key, so a missing translation shows English rather than nothing;
tests/admin/test_i18n.py fails when a template string has no zh-CN entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "en"
TRANSLATIONS = Path(__file__).parent / "translations"

Translate = Callable[..., str]


@cache
def catalog(locale: str) -> dict[str, str]:
    """Every translation of `locale`, merged across the area files (a key defined twice is an error)."""
    merged: dict[str, str] = {}
    if locale == "en":
        return merged
    for path in sorted(TRANSLATIONS.glob("*.toml")):
        with path.open("rb") as file:
            table = tomllib.load(file).get(locale, {})
        for english, translated in table.items():
            if english in merged and merged[english] != translated:
                raise ValueError(f"{path.name}: {english!r} is translated differently in another file")
            merged[english] = translated
    return merged


def translate(locale: str, text: str, **values: Any) -> str:
    """`text` in `locale`, with `{name}` placeholders filled from `values`."""
    translated = catalog(locale).get(text, text) if locale in LOCALES else text
    return translated.format(**values) if values else translated


def translator(locale: str) -> Translate:
    def _(text: str, **values: Any) -> str:
        return translate(locale, text, **values)

    return _


def locale_from_header(accept_language: str | None) -> str:
    """Before login (no user yet): Chinese when the browser asks for it first, else English."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh-CN" if first.startswith("zh") else DEFAULT_LOCALE
