"""``bllossom-desktop [--model FILE.gguf]``: the desktop app's entry point."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.main_window import MainWindow
    from desktop.qt import QApplication

_STARTED = time.perf_counter()


DESKTOP_FILE_ID = "io.github.bllossom.BllossomDesktop"
"""The .desktop entry and AppStream id of the installed app (packaging/)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bllossom-desktop", description="Bllossom: a private Korean/English AI assistant."
    )
    parser.add_argument("--model", type=Path, help="open this GGUF file (and remember it)")
    parser.add_argument("--language", choices=["system", "ko", "en"], help="UI language")
    parser.add_argument("--theme", choices=["system", "light", "dark"], help="colour theme")
    parser.add_argument(
        "--report-startup",
        action="store_true",
        help="print the seconds from start to a visible window (for benchmarks)",
    )
    return parser.parse_args(argv)


def build_window(args: argparse.Namespace) -> tuple[QApplication, MainWindow]:
    """Create the QApplication (if needed) and the main window; returns (app, window).

    Qt and the window modules are imported here, not at the top, so that ``--help``
    answers at once.
    """
    from bllossom_core.store import ConversationStore
    from desktop.i18n import LanguageSwitcher
    from desktop.main_window import MainWindow
    from desktop.qt import QApplication
    from desktop.settings import AppSettings
    from desktop.theme import apply_fonts, apply_theme

    input_method = None
    if QApplication.instance() is None:
        from desktop.im_module import choose_input_method

        input_method = choose_input_method()  # before Qt picks its input method
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Bllossom")
    app.setOrganizationName("Bllossom")
    # Names the installed .desktop entry (packaging/), so Wayland shows its icon and name.
    app.setDesktopFileName(DESKTOP_FILE_ID)
    app.setApplicationDisplayName("Bllossom")
    settings = AppSettings.load()
    if args.language:
        settings.language = args.language
    if args.theme:
        settings.theme = args.theme
    apply_fonts(app)
    languages = LanguageSwitcher()
    languages.apply(settings.language)
    apply_theme(app, settings.theme)
    window = MainWindow(ConversationStore(), settings, languages)
    if input_method is not None and not input_method.working:
        window.statusBar().showMessage(input_method.notice())
    # A method of the window: Qt drops the connection with the window.
    app.styleHints().colorSchemeChanged.connect(window.follow_system_scheme)
    return app, window


def _close_on_sigterm(window: MainWindow) -> None:
    """SIGTERM (logout, ``kill``) closes the window normally, saving draft and reply."""
    from desktop.qt import QTimer

    signal.signal(signal.SIGTERM, lambda _signum, _frame: window.close())
    # Python runs signal handlers only when it holds control; wake it up regularly.
    ticker = QTimer(window)
    ticker.timeout.connect(lambda: None)
    ticker.start(250)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bllossom_core.errors import BllossomError

    try:
        app, window = build_window(args)
    except BllossomError as error:  # e.g. a damaged or read-only conversation database
        return _report_startup_failure(error)
    window.show()
    _close_on_sigterm(window)
    if args.report_startup:
        from desktop.qt import QTimer

        def report() -> None:
            print(f"startup_s={time.perf_counter() - _STARTED:.3f}", flush=True)

        QTimer.singleShot(0, report)
    if args.model is not None:
        window.models.open_file(args.model.expanduser())
    elif window.settings.last_model:
        model = window.settings.find_model(window.settings.last_model)
        if model is not None and (model.is_remote or os.path.exists(model.path)):
            window.models.load(model)
    code = int(app.exec())
    _tear_down(window)
    return code


def _report_startup_failure(error: BaseException) -> int:
    """The window cannot open (its database is unusable): say why in a dialog and on
    stderr, and exit without touching anything."""
    from desktop.errors import show_error
    from desktop.qt import QApplication

    print(f"bllossom-desktop: error: {error}", file=sys.stderr)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    box = show_error(None, error)
    box.exec()
    return 1


def _tear_down(window: MainWindow) -> None:
    """Destroy the window (and its worker threads) now, in order, not at interpreter exit.

    ``closeEvent`` has already stopped the reply, waited for the workers, saved
    everything and closed the engine and the store. Deleting the window here makes Qt
    destroy the widgets while the QApplication still exists, so nothing Qt-owned is
    left for Python's final garbage collection to free in arbitrary order.
    (The "bool_dealloc" abort that once ended clean quits was not an ordering problem
    but a reference-counting bug of PySide6 6.12.0; the dependency pin excludes it.)
    """
    from desktop.qt import QCoreApplication, QEvent

    if not window.closed:  # the event loop ended without closing the window
        window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


if __name__ == "__main__":
    raise SystemExit(main())
