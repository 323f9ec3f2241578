"""Borrower message templates: Jinja2 files per locale and channel; amounts and dates formatted with Babel.

    activities/templates/{locale}/{name}.{channel}.j2   one message: blocks `subject` (e-mail subject,
                                                        push title; unused by SMS) and `content`
    activities/templates/{locale}/_{channel}.j2         the layout every message of that locale and channel
                                                        extends: SMS signature, closing, the US validation
                                                        notice, opt-out and contact-preference lines

Every file starts with a version comment, `{# version: 3 #}`. The version recorded with a message is the
message file's own version plus its layout's, e.g. "3+_sms.1": a change to either shows in the outbox.

Plain text, so no autoescaping (the e-mail channel escapes when it builds its HTML part). StrictUndefined: a
variable the template needs and the request lacks is an error, never an empty gap in a borrower's message.

Pure: no database, no Temporal. The activity (activities/messaging.py) and `python -m starter preview` both
render through `MessageTemplates.render(name, locale, channel, template_context(...))`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import meta

from domain.loan import CURRENCIES

TEMPLATES_DIR = Path(__file__).with_name("templates")
CHANNELS = ("sms", "email", "push")
JURISDICTIONS = ("cn", "us", "uk")
# What the workflow sends in `validation_notice` (US §1006.34): "included" puts the notice in e-mails.
VALIDATION_NOTICE_VALUES = ("included", "omitted")

# Every variable a template may use. The activity derives the first four from the request (see
# `template_context`); the others come from MessageRequest.variables as they are.
TEMPLATE_VARIABLES = (
    "amount",  # from amount_minor + currency (Babel, the borrower's locale), else the caller's `amount`
    "due_date",  # from due_date, else overdue_since; ISO dates are formatted (Babel, medium)
    "pay_url",  # the caller's, else the activities' pay-URL pattern with {loan_id} filled in
    "loan_id",
    "jurisdiction",  # "cn", "us", "uk" or "" (unknown): decides opt-out and preference lines
    "validation_notice",  # True when the caller sent validation_notice="included"
    "borrower_name",
    "dpd",
    "lender",
)
# A missing derived variable is reported by the request variables that would have supplied it.
_SOURCES = {
    "amount": "amount_minor + currency (or amount)",
    "due_date": "overdue_since (or due_date)",
}

_VERSION = re.compile(r"\A\{#\s*version:\s*([0-9A-Za-z][0-9A-Za-z.\-]*)\s*#\}")
_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.(?P<channel>[a-z]+)\.j2$")
_MINOR_UNITS = re.compile(r"^[0-9]{1,16}$")


class TemplateProblem(Exception):
    """A request the templates cannot render; never retryable. The message names fields, never PII."""


class UnknownTemplate(TemplateProblem):
    """No such template, or none in that locale or for that channel."""


class TemplateVariableMissing(TemplateProblem):
    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class InvalidVariable(TemplateProblem):
    """A variable present but unusable (amount_minor not a number, an unknown currency or jurisdiction)."""


class TemplateFileError(ValueError):
    """Template files that cannot be used (no version, a syntax error, no layout): one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("message templates:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class RenderedText:
    subject: str | None  # None for SMS
    body: str
    version: str


@dataclass(frozen=True)
class _Entry:
    template: jinja2.Template
    version: str
    variables: frozenset[str]


class MessageTemplates:
    """Every message template of a directory, compiled and checked when loaded (a worker fails at start)."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory, encoding="utf-8"),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        problems: list[str] = []
        for path in sorted(directory.glob("*/*.j2")):
            locale, match = path.parent.name, _FILE.match(path.name)
            if path.name.startswith("_"):
                continue  # a layout: checked through the messages that extend it
            if match is None or match["channel"] not in CHANNELS:
                problems.append(
                    f"{locale}/{path.name}: name it {{template}}.{{channel}}.j2, channel one of "
                    f"{', '.join(CHANNELS)}"
                )
                continue
            try:
                entry = self._compile(locale, match["name"], match["channel"])
            except (TemplateFileError, jinja2.TemplateError) as error:
                problems.extend(_problem_lines(f"{locale}/{path.name}", error))
                continue
            self._entries[(match["name"], locale, match["channel"])] = entry
        if not self._entries and not problems:
            problems.append(f"{directory}: no templates ({{locale}}/{{template}}.{{channel}}.j2)")
        if problems:
            raise TemplateFileError(problems)

    @classmethod
    def load(cls, directory: Path = TEMPLATES_DIR) -> MessageTemplates:
        return cls(directory)

    def _compile(self, locale: str, name: str, channel: str) -> _Entry:
        file = f"{locale}/{name}.{channel}.j2"
        layout = f"{locale}/_{channel}.j2"
        source = self._source(file)
        references = set(meta.find_referenced_templates(self._env.parse(source)))
        if layout not in references:
            raise TemplateFileError([f'{{% extends "{layout}" %}} missing: every {channel} message uses it'])
        template = self._env.get_template(file)
        if channel != "sms" and "subject" not in template.blocks:
            raise TemplateFileError([f"{{% block subject %}} missing: {channel} messages need one"])
        versions = [_version(file, source)]
        variables = set(meta.find_undeclared_variables(self._env.parse(source)))
        for dependency in sorted(self._dependencies(references)):
            dependency_source = self._source(dependency)
            versions.append(f"{Path(dependency).stem}.{_version(dependency, dependency_source)}")
            variables |= meta.find_undeclared_variables(self._env.parse(dependency_source))
        return _Entry(template=template, version="+".join(versions), variables=frozenset(variables))

    def _source(self, name: str) -> str:
        source, _, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
        return source

    def _dependencies(self, references: set[str | None]) -> set[str]:
        """Every file the message extends or includes, transitively."""
        found: set[str] = set()
        pending = [r for r in references if r is not None]
        while pending:
            name = pending.pop()
            if name in found:
                continue
            found.add(name)
            parsed = self._env.parse(self._source(name))
            pending += [r for r in meta.find_referenced_templates(parsed) if r is not None]
        return found

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _, _ in self._entries})

    def locales(self, name: str) -> list[str]:
        return sorted({locale for n, locale, _ in self._entries if n == name})

    def channels(self, name: str, locale: str) -> list[str]:
        return [c for c in CHANNELS if (name, locale, c) in self._entries]

    def version(self, name: str, locale: str, channel: str) -> str:
        return self._entry(name, locale, channel).version

    def variables(self) -> set[str]:
        """Every variable any template or layout uses."""
        return {v for entry in self._entries.values() for v in entry.variables}

    def _entry(self, name: str, locale: str, channel: str) -> _Entry:
        entry = self._entries.get((name, locale, channel))
        if entry is not None:
            return entry
        if name not in self.names:
            raise UnknownTemplate(f"template: unknown template {name!r}; known: {', '.join(self.names)}")
        if locale not in self.locales(name):
            raise UnknownTemplate(
                f"locale: template {name!r} has no {locale!r} version (has {', '.join(self.locales(name))})"
            )
        raise UnknownTemplate(
            f"channel: template {name!r} has no {channel!r} version in {locale!r} "
            f"(has {', '.join(self.channels(name, locale))})"
        )

    def check(self, name: str, locale: str, channel: str) -> None:
        """Raise UnknownTemplate unless the template exists in that locale for that channel."""
        self._entry(name, locale, channel)

    def render(self, name: str, locale: str, channel: str, context: Mapping[str, object]) -> RenderedText:
        entry = self._entry(name, locale, channel)
        missing = sorted(entry.variables - context.keys())
        if missing:
            raise _missing(name, missing)
        try:
            body = entry.template.render(context)
            subject = None
            if channel != "sms":
                block = entry.template.blocks["subject"]
                subject = "".join(block(entry.template.new_context(dict(context))))
        except jinja2.UndefinedError as error:  # e.g. an attribute of a variable: still the caller's gap
            raise TemplateVariableMissing(f"variables: template {name!r}: {error.message}", []) from None
        return RenderedText(
            subject=None if subject is None else " ".join(subject.split()),
            body=_tidy(body),
            version=entry.version,
        )


def _missing(name: str, missing: list[str]) -> TemplateVariableMissing:
    described = ", ".join(_SOURCES.get(v, v) for v in missing)
    return TemplateVariableMissing(f"variables: template {name!r} needs {described}", missing)


def _version(name: str, source: str) -> str:
    match = _VERSION.match(source)
    if match is None:
        raise TemplateFileError([f"{name}: first line must be a version comment, e.g. {{# version: 1 #}}"])
    return match[1]


def _problem_lines(where: str, error: Exception) -> list[str]:
    if isinstance(error, TemplateFileError):
        return [p if p.startswith(where.split("/")[0] + "/") else f"{where}: {p}" for p in error.problems]
    if isinstance(error, jinja2.TemplateSyntaxError):
        return [f"{error.name or where}:{error.lineno}: {error.message}"]
    return [f"{where}: {error}"]


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, nothing around: layouts stay simple to write."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


# ------------------------------------------------------------------------------------------------ context


def babel_locale(locale: str, jurisdiction: str = "") -> str:
    """The borrower's Babel locale: zh-CN as is; English as spoken where the loan is (en_GB in the UK)."""
    if locale.startswith("en"):
        return {"us": "en_US", "uk": "en_GB"}.get(jurisdiction, "en")
    return locale.replace("-", "_")


def format_amount(amount_minor: int, currency: str, locale: str, jurisdiction: str = "") -> str:
    """Minor units as the borrower reads money: '¥1,234.50' (zh-CN, CNY), '$1,234.50' (en, USD).

    The currency's exponent (domain.loan.CURRENCIES) places the decimal point: CNY 2, JPY 0 ('¥1,235').
    """
    exponent = CURRENCIES.get(currency)
    if exponent is None:
        raise InvalidVariable(
            f"variables.currency: unsupported currency {currency!r}; expected one of "
            f"{', '.join(sorted(CURRENCIES))}"
        )
    amount = Decimal(amount_minor).scaleb(-exponent)
    return format_currency(amount, currency, locale=babel_locale(locale, jurisdiction))


def format_day(day: date, locale: str, jurisdiction: str = "") -> str:
    """'2026年1月5日' (zh-CN), 'Jan 5, 2026' (en), '5 Jan 2026' (en, UK)."""
    return format_date(day, format="medium", locale=babel_locale(locale, jurisdiction))


# What a `{token}` link shows where no link was minted (the preview command): the message activity mints
# each borrower-page link itself (borrower/links.py) and passes it as the `pay_url` variable.
PREVIEW_TOKEN = "PREVIEW-TOKEN"


def link_preview(pattern: str, loan_id: str) -> str:
    """The pay URL pattern filled in: `{loan_id}` (legacy pay links), `{token}` shown as a placeholder."""
    return pattern.replace("{loan_id}", loan_id).replace("{token}", PREVIEW_TOKEN)


def template_context(
    variables: Mapping[str, str], *, locale: str, loan_id: str, pay_url: str
) -> dict[str, object]:
    """What the templates see: the request's variables, plus money, dates and links formatted for the locale.

    `pay_url` is the pattern of the payment link ({loan_id} filled in), used when the caller sends none.
    Raw values win over pre-formatted ones (amount_minor + currency over amount); a derived variable with no
    source is left out, so rendering reports it as missing.
    """
    context: dict[str, object] = dict(variables)
    jurisdiction = variables.get("jurisdiction", "").strip().lower()
    if jurisdiction not in ("", *JURISDICTIONS):
        raise InvalidVariable(
            f"variables.jurisdiction: expected one of {', '.join(JURISDICTIONS)}, got {jurisdiction!r}"
        )
    context["jurisdiction"] = jurisdiction
    notice = variables.get("validation_notice", "").strip().lower()
    if notice not in ("", *VALIDATION_NOTICE_VALUES):
        raise InvalidVariable(
            f"variables.validation_notice: expected {' or '.join(VALIDATION_NOTICE_VALUES)}, got {notice!r}"
        )
    context["validation_notice"] = notice == "included"
    context["loan_id"] = variables.get("loan_id") or loan_id
    context["pay_url"] = variables.get("pay_url") or link_preview(pay_url, str(context["loan_id"]))

    if "amount_minor" in variables and "currency" in variables:
        text = variables["amount_minor"].strip()
        if not _MINOR_UNITS.match(text):
            raise InvalidVariable(
                f"variables.amount_minor: must be a whole number of minor units, e.g. 123450, got {text!r}"
            )
        context["amount"] = format_amount(int(text), variables["currency"].strip(), locale, jurisdiction)
    for field in ("due_date", "overdue_since"):
        if variables.get(field):
            context["due_date"] = _day_text(variables[field], field, locale, jurisdiction)
            break
    return context


def _day_text(value: str, field: str, locale: str, jurisdiction: str) -> str:
    """An ISO date formatted for the locale; anything else passes as the caller sent it (old workflows)."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        if field == "overdue_since":
            raise InvalidVariable(
                f"variables.overdue_since: not an ISO date (YYYY-MM-DD): {value!r}"
            ) from None
        return value
    return format_day(day, locale, jurisdiction)
