"""Error wording is chosen by code: every code has a headline and advice in both
languages, and the dialog leads with them around the core's specific sentence."""

from __future__ import annotations

import re

import pytest

from bllossom_core.errors import (
    BllossomError,
    ErrorCode,
    GGUFError,
    InputError,
    StorageError,
)
from desktop.errors import describe_error, show_error
from desktop.i18n import LanguageSwitcher


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_code_has_a_headline_and_advice(qtbot, language: str) -> None:  # type: ignore[no-untyped-def]
    switcher = LanguageSwitcher()
    switcher.apply(language)
    try:
        seen: dict[str, ErrorCode] = {}
        for code in ErrorCode:
            headline, advice = describe_error(BllossomError("specific", code=code))
            assert headline and advice, code
            if language == "ko":
                assert re.search("[가-힣]", headline), (code, headline)
                assert re.search("[가-힣]", advice), (code, advice)
            if code is not ErrorCode.INTERNAL:
                # A code that fell through to the generic wording has none of its own.
                generic = describe_error(BllossomError("x", code=ErrorCode.INTERNAL))
                assert (headline, advice) != generic, code
            assert headline not in seen or code is ErrorCode.INTERNAL, (code, seen.get(headline))
            seen[headline] = code
    finally:
        switcher.apply("en")


def test_wording_follows_the_code_not_the_class() -> None:
    # A quantizer crash reported through a storage error reads as a quantizer problem.
    quantizer = StorageError("llama.cpp crashed", code=ErrorCode.QUANTIZER_FAILED)
    assert "quantizer" in describe_error(quantizer)[0]
    busy = InputError("busy", code=ErrorCode.ENGINE_BUSY)
    assert "still answering" in describe_error(busy)[0]
    assert describe_error(GGUFError("bad"))[0].startswith("This model file is damaged")


def test_the_dialog_shows_the_specific_message_in_its_main_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    error = GGUFError("/models/x.gguf ends after 12 bytes; the file is truncated.")
    box = show_error(None, error)
    qtbot.addWidget(box)
    assert "damaged" in box.text() and "/models/x.gguf ends after 12 bytes" in box.text()
    assert "Download or convert the model again" in box.informativeText()
