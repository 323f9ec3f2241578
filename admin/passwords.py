"""The password policy of the admin UI: a pure function that says what is wrong with a new password.

    check_password("password1234", username="li.na")  ->  [("password", "... a very common password ...")]

Rules, each with its own reason: at least 12 visible characters (spaces, zero-width and other invisible
characters do not count); no control or invisible characters at all (a zero-width space typed by accident
cannot be typed again, and one pasted on purpose hides the password's real length); not containing the user
name; not one of the common passwords of zxcvbn's frequency lists (30,000 passwords from real leaks, shipped
in the maintained `zxcvbn` package, nothing downloaded); and a zxcvbn strength score of at least 3 of 4
(repeats like 'aaaaaaaaaaaa', keyboard walks and dictionary words with digits score low).
"""

from __future__ import annotations

import unicodedata
from functools import cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MIN_SCORE = 3  # zxcvbn: 3 "safely unguessable" (about 10^10 guesses), 4 "very unguessable"
MAX_LENGTH = 256  # argon2 hashes anything, but zxcvbn's matching grows quickly with the length
# Unicode categories that are not visible: controls (Cc), format characters such as zero-width spaces and
# direction marks (Cf), surrogates (Cs), private use (Co), unassigned (Cn).
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}

Reason = tuple[str, str]  # (field, message), as starter.api.InvalidRequest takes them


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def visible_length(password: str) -> int:
    """Characters that show: not whitespace, not invisible, not a combining mark on another character."""
    return sum(
        1
        for char in password
        if not char.isspace() and unicodedata.category(char) not in _INVISIBLE | {"Mn", "Me"}
    )


def check_password(password: str, *, username: str = "", field: str = "password") -> list[Reason]:
    """Every reason `password` is refused (empty when it is acceptable); the reasons name `field`."""
    reasons: list[Reason] = []
    if len(password) > MAX_LENGTH:
        return [(field, f"at most {MAX_LENGTH} characters")]
    if any(unicodedata.category(char) in _INVISIBLE for char in password):
        reasons.append((field, "no control or invisible characters (such as a zero-width space)"))
    if visible_length(password) < MIN_LENGTH:
        reasons.append(
            (field, f"at least {MIN_LENGTH} visible characters (spaces and invisible ones do not count)")
        )
    if reasons:
        return reasons  # the checks below would only repeat the same problem in other words
    lowered = password.casefold()
    name = username.strip().casefold()
    if name and (name in lowered or any(len(part) >= 4 and part in lowered for part in _name_parts(name))):
        reasons.append((field, "must not contain the user name"))
    compact = "".join(lowered.split())
    if lowered in _common() or compact in _common():
        reasons.append((field, "is a very common password: choose another one"))
        return reasons
    result = zxcvbn(password, user_inputs=[name, *_name_parts(name)] if name else [])
    if result["score"] < MIN_SCORE:
        warning = str(result["feedback"].get("warning") or "").rstrip(".")
        detail = f" ({warning})" if warning else ""
        reasons.append(
            (field, f"too easy to guess{detail}: use a longer passphrase of unrelated words, or add symbols")
        )
    return reasons


def _name_parts(name: str) -> list[str]:
    """'li.na-wang' -> ['li', 'na', 'wang']: a password holding the user's surname holds their name."""
    for separator in "._-":
        name = name.replace(separator, " ")
    return name.split()
