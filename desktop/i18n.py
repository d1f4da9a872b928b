"""UI language: Qt translators for our strings and Qt's own dialogs, switchable live.

Installing or removing a translator makes Qt send ``LanguageChange`` to every widget;
each widget re-reads its texts in ``changeEvent`` (``retranslate()``), so a
switch needs no restart. The compiled ``.qm`` is built by ``scripts/setup``; when it
is missing or older than its ``.ts`` source (a fresh checkout, an edited source) we run
``lrelease`` once ourselves, into the user data folder if the package is read-only.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import PySide6

from bllossom_core.paths import data_dir
from desktop.qt import QCoreApplication, QEvent, QLibraryInfo, QLocale, QObject, QTranslator

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


_MNEMONIC = re.compile(r"&(\w)")


def qt_catalog(language: str) -> Path:
    """Qt's own translations of its dialogs (``qtbase_ko.qm``, shipped with PySide6)."""
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    return Path(qt_dir) / f"qtbase_{language}.qm"


class MnemonicFallbackTranslator(QTranslator):
    """Qt's strings whose shipped translation predates their keyboard mnemonic.

    Qt 6.11's file dialog asks for ``"&Look in:"`` and ``"Files of &type:"`` while
    ``qtbase_ko.qm`` only translates ``"Look in:"`` and ``"Files of type:"``, so those
    labels stayed English. This asks ``qt`` for the text without the ``&`` and puts the
    mnemonic back the Korean way: ``"다음에서 찾기(&L):"``. Installed *before* ``qt``
    so an exact translation, when Qt has one, always wins.
    """

    def __init__(self, qt: QTranslator, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._qt = qt

    def isEmpty(self) -> bool:
        return False

    def translate(
        self, context: str, source: str, disambiguation: str | None = None, n: int = -1
    ) -> str | None:
        # None, not "": Qt takes an empty (non-null) string as a translation, which blanked
        # every string the app's own catalogue leaves as it is (e.g. "CPU, %1").
        mnemonic = _MNEMONIC.search(source or "")
        if mnemonic is None:
            return None
        plain = source.replace("&&", "\0").replace("&", "").replace("\0", "&")
        translated = self._qt.translate(context, plain, disambiguation, n)
        if not translated:
            return None
        key = mnemonic.group(1).upper()
        stripped = translated.rstrip()
        if stripped.endswith(":"):
            return f"{stripped[:-1]}(&{key}):"
        return f"{stripped}(&{key})"


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
            qt = self._load(qt_catalog("ko"))
            if qt is not None:
                self._install(app, MnemonicFallbackTranslator(qt))
                self._install(app, qt)
            else:
                log.warning("Qt's own Korean translations (%s) are missing", qt_catalog("ko"))
            ours = self._load(compiled_catalog("ko"))
            if ours is not None:
                self._install(app, ours)
        self.current = language
        QLocale.setDefault(
            QLocale(QLocale.Language.Korean if language == "ko" else QLocale.Language.English)
        )
        return language

    @staticmethod
    def _load(path: Path | None) -> QTranslator | None:
        if path is None or not path.exists():
            return None
        translator = QTranslator()
        if translator.load(str(path)):
            return translator
        log.warning("could not load translation %s", path)
        return None

    def _install(self, app: QCoreApplication, translator: QTranslator) -> None:
        app.installTranslator(translator)
        self._installed.append(translator)


def is_language_change(event: QEvent) -> bool:
    """True for the event Qt sends every widget after a translator is (un)installed."""
    return event.type() == QEvent.Type.LanguageChange
