"""Text that enters from outside (names, notes, ids, reasons): refused at the door when it could never be
shown or journaled faithfully.

Refused everywhere: NUL and other control characters (a NUL makes a PostgreSQL text value unwritable), lone
surrogates (not encodable as UTF-8), bidi controls that make a name or a note display differently from what
it contains (U+202A-202E embeddings and overrides, U+2066-2069 isolates, U+200E/U+200F/U+061C marks) and
invisible zero-width characters (U+200B-200D, U+2060, U+FEFF) that make two equal-looking names differ.
Multi-line free text (notes, postal addresses) may contain newlines and tabs; single-line text may not.

Identifiers (payment ids, collector and approver names, references) must also not look like a phone number
or an e-mail address: the journal stores them in columns that never hold contact data, so such a value is a
mistake (a phone number typed into the payment id) and is refused where it is typed.

    from domain.text import CleanLine, CleanText, Identifier
    class Request(BaseModel):
        collector: Identifier
        reason: CleanLine
        note: CleanText | None = None
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Deliberately simple: one @, a dot in the domain, no spaces. Deliverability is the channel's problem.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Format characters that change how text is displayed, or hide in it, without being visible themselves.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_MULTILINE_ALLOWED = {"\n", "\t"}


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` is refused as entered text (naming the first bad character and its position), or None."""
    for index, char in enumerate(value):
        position = f"at position {index + 1}"
        if char in _BIDI:
            return f"contains the bidi control {_describe(char)} {position}; remove it"
        if char in _ZERO_WIDTH:
            return f"contains the invisible character {_describe(char)} {position}; remove it"
        category = unicodedata.category(char)
        if category == "Cs":
            return f"contains an unpaired surrogate {_describe(char)} {position}"
        if char in _MULTILINE_ALLOWED and multiline:
            continue
        if category == "Cc" or char in ("\u2028", "\u2029"):
            what = "a line break" if char in ("\n", "\r", "\u2028", "\u2029") else "the control character"
            shown = _describe(char) if char != "\x00" else "U+0000 (NUL)"
            return f"contains {what} {shown} {position}" + ("" if multiline else "; use one line")
    return None


def contact_data_problem(value: str) -> str | None:
    """Why an identifier is refused because it looks like a phone number or an e-mail address, or None."""
    compact = value.strip()
    if E164.match(compact) or E164.match(re.sub(r"[\s().-]", "", compact)):
        return "looks like a phone number; identifiers never hold contact data"
    if EMAIL.match(compact):
        return "looks like an e-mail address; identifiers never hold contact data"
    return None


def check_line(value: str) -> str:
    """Single-line text (a name, a reason): raises ValueError naming the bad character."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_text(value: str) -> str:
    """Multi-line free text (a note, a postal address): newlines and tabs allowed."""
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def check_identifier(value: str) -> str:
    """A single-line identifier that is not contact data (payment id, collector name, reference)."""
    check_line(value)
    problem = contact_data_problem(value)
    if problem:
        raise ValueError(problem)
    return value


CleanLine = Annotated[str, AfterValidator(check_line)]
CleanName = CleanLine  # a person's name: one clean line
CleanText = Annotated[str, AfterValidator(check_text)]
Identifier = Annotated[str, AfterValidator(check_identifier)]
