"""UI language: Qt translators for our strings and Qt's own dialogs, switchable live.

Installing or removing a translator makes Qt send ``LanguageChange`` to every widget;
each widget re-reads its texts in ``changeEvent`` (``retranslate()``), so a
switch needs no restart. The compiled ``.qm`` is built by ``scripts/setup``; when it
is missing or older than its ``.ts`` source (a fresh checkout, an edited source) we run
``lrelease`` once ourselves, into the user data folder if the package is read-only.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import PySide6

from bllossom_core.paths import data_dir
from desktop.qt import QCoreApplication, QEvent, QLibraryInfo, QLocale, QTranslator

log = logging.getLogger(__name__)

I18N_DIR = Path(__file__).with_name("i18n")
SUPPORTED = ("ko", "en")


def system_language() -> str:
    """``"ko"`` when the system locale is Korean, else ``"en"``."""
    return "ko" if QLocale.system().language() == QLocale.Language.Korean else "en"


def resolve_language(choice: str) -> str:
    return choice if choice in SUPPORTED else system_language()


def _lrelease_binary() -> Path | None:
    candidate = Path(PySide6.__file__).with_name("lrelease")
    return candidate if candidate.exists() else None


def compiled_catalog(language: str) -> Path | None:
    """The ``.qm`` for ``language``, compiling the ``.ts`` source when needed."""
    source = I18N_DIR / f"bllossom_{language}.ts"
    shipped = source.with_suffix(".qm")
    if not source.exists():
        return shipped if shipped.exists() else None
    if shipped.exists() and shipped.stat().st_mtime >= source.stat().st_mtime:
        return shipped
    cached = data_dir() / "i18n" / shipped.name
    if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
        return cached
    lrelease = _lrelease_binary()
    if lrelease is None:
        return shipped if shipped.exists() else None
    for target in (shipped, cached):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [str(lrelease), "-silent", str(source), "-qm", str(target)],
                check=True,
                capture_output=True,
                timeout=60,
            )
            return target
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("could not compile %s into %s: %s", source, target, exc)
    return shipped if shipped.exists() else None


class LanguageSwitcher:
    """Holds the installed translators; ``apply("ko" | "en" | "system")`` switches."""

    def __init__(self) -> None:
        self._installed: list[QTranslator] = []
        self.current = "en"

    def apply(self, choice: str) -> str:
        app = QCoreApplication.instance()
        assert app is not None, "create the QApplication first"
        language = resolve_language(choice)
        for translator in self._installed:
            app.removeTranslator(translator)
        self._installed = []
        if language == "ko":
            catalog = compiled_catalog("ko")
            qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
            candidates = [(Path(qt_dir) / "qtbase_ko.qm"), catalog]
            for path in candidates:
                if path is None or not path.exists():
                    continue
                translator = QTranslator()
                if translator.load(str(path)):
                    app.installTranslator(translator)
                    self._installed.append(translator)
                else:
                    log.warning("could not load translation %s", path)
        self.current = language
        QLocale.setDefault(
            QLocale(QLocale.Language.Korean if language == "ko" else QLocale.Language.English)
        )
        return language


def is_language_change(event: QEvent) -> bool:
    """True for the event Qt sends every widget after a translator is (un)installed."""
    return event.type() == QEvent.Type.LanguageChange
