"""What a borrower's reply asks for: stop (opt out of the channel), help, or nothing we act on.

Replies are compared after NFKC normalisation (full-width "ＳＴＯＰ" is "STOP"), case folding and trimming of
spaces and punctuation, and only as the whole reply: "please don't stop calling" is not an opt-out, but
"Stop." and " 退订 " are. The lists follow the carriers' (CTIA) and the Chinese operators' usual keywords.
"""

from __future__ import annotations

import string
import unicodedata
from typing import Literal

Intent = Literal["stop", "help", "other"]

STOP_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "optout",
        "opt out",
        "opt-out",
        "revoke",
        "td",
        "t",
        "退订",
        "退定",
        "取消",
        "取消订阅",
        "退订短信",
        "停止",
    }
)
HELP_WORDS = frozenset({"help", "info", "帮助", "求助", "客服"})

# ASCII and the CJK punctuation a phone keyboard adds around a keyword (after NFKC, full-width is ASCII).
_TRIM = string.whitespace + string.punctuation + "。、！？「」『』【】《》…～·"


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.strip(_TRIM).split())


def intent(text: str) -> Intent:
    word = normalise(text)
    if word in STOP_WORDS:
        return "stop"
    if word in HELP_WORDS:
        return "help"
    return "other"
