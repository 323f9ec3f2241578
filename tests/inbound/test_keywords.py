"""Which replies are opt-outs: whole-message keywords, any case, trimmed, full-width forms included."""

from __future__ import annotations

import pytest

from inbound.keywords import intent


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "ＳＴＯＰ",
        "UNSUBSCRIBE",
        "退订",
        "退订。",
        "TD",
        "ｔｄ",
        "T",
        "取消",
        "Stop all",
    ],
)
def test_stop_words(text: str) -> None:
    assert intent(text) == "stop"


@pytest.mark.parametrize("text", ["HELP", "help?", "ＨＥＬＰ", "帮助"])
def test_help_words(text: str) -> None:
    assert intent(text) == "help"


@pytest.mark.parametrize("text", ["", "stop calling my mother", "I paid", "topt", "STOPP", "OK 取消"])
def test_other_text_is_not_an_opt_out(text: str) -> None:
    assert intent(text) == "other"
