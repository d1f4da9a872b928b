"""Desktop fixtures: a shown main window on the test's isolated profile."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def make_window(qtbot):  # type: ignore[no-untyped-def]
    """``make_window(language="en")`` -> a shown MainWindow on this test's profile."""
    from desktop.app import build_window, parse_args

    windows = []

    def make(language: str = "en", theme: str = "light"):  # type: ignore[no-untyped-def]
        _app, window = build_window(parse_args(["--language", language, "--theme", theme]))
        qtbot.addWidget(window)
        # Shortcuts (Ctrl+N, Esc, ...) only fire in the active window.
        with qtbot.waitActive(window):
            window.show()
            window.activateWindow()
        windows.append(window)
        return window

    yield make
    for window in windows:
        # Closed as a user would close it: running operations stop and end before the
        # window (and the widgets their results go to) is deleted.
        window.close()
        qtbot.waitUntil(lambda window=window: window.closed, timeout=30_000)
        window.languages.apply("en")
