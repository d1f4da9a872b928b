"""Korean UI: the catalogue is complete and no visible text stays English."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import PySide6
import pytest

from desktop.convert_dialog import ConvertDialog
from desktop.file_actions import RecentlyDeletedDialog
from desktop.i18n import I18N_DIR, compiled_catalog
from desktop.models import ModelsDialog
from desktop.qt import (
    QAbstractButton,
    QAction,
    QComboBox,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    Qt,
    QTableWidget,
    QWidget,
)
from desktop.settings import RegisteredModel
from desktop.settings_dialog import ConversationSettingsDialog, SettingsDialog
from desktop.sidebar import ConversationEntry
from tests.unit.desktop.scripted import ScriptedEngine, use_engine

TS_FILE = I18N_DIR / "bllossom_ko.ts"
# Proper names, product names, key names and units that are the same in Korean.
ALLOWED_WORDS = {
    "Bllossom",
    "GGUF",
    "Hugging",
    "Face",
    "Llama",
    "CPU",
    "GPU",
    "API",
    "URL",
    "OpenAI",
    "Enter",
    "Shift",
    "Ctrl",
    "Esc",
    "Top",
    "English",
    "temperature",
    "MLP",
    "KTLim",
    "llama",
    "Korean",
    "gguf",
    "http",
    "localhost",
    "CUDA",
    "tiny",
    "Q4_K_M",
}


def ts_messages() -> list[tuple[str, str, str | None, str | None]]:
    root = ET.parse(TS_FILE).getroot()
    found = []
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            translation = message.find("translation")
            assert translation is not None
            found.append(
                (name, message.findtext("source") or "", translation.text, translation.get("type"))
            )
    return found


def test_catalogue_is_complete() -> None:
    messages = ts_messages()
    assert len(messages) > 100
    for context, source, translation, kind in messages:
        assert translation, f"{context}: {source!r} has no Korean translation"
        assert kind not in ("unfinished", "obsolete", "vanished"), (context, source, kind)
        assert re.search("[가-힣]", translation) or translation == source, (source, translation)
        assert source.count("%1") == translation.count("%1"), (source, translation)


def test_catalogue_covers_every_string_in_the_source(tmp_path: Path) -> None:
    """Re-extract with lupdate: a new self.tr() string without a translation fails here."""
    lupdate = Path(PySide6.__file__).with_name("lupdate")
    fresh = tmp_path / "fresh.ts"
    sources = sorted(str(p) for p in Path(I18N_DIR).parent.glob("*.py"))
    subprocess.run([str(lupdate), "-silent", *sources, "-ts", str(fresh)], check=True, timeout=60)
    extracted = {
        (c.findtext("name"), m.findtext("source"))
        for c in ET.parse(fresh).getroot().iter("context")
        for m in c.iter("message")
    }
    translated = {(context, source) for context, source, _t, _k in ts_messages()}
    assert extracted <= translated, sorted(extracted - translated)


def test_missing_qm_is_compiled_from_the_ts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import desktop.i18n as i18n

    fake_dir = tmp_path / "i18n"
    fake_dir.mkdir()
    (fake_dir / "bllossom_ko.ts").write_bytes(TS_FILE.read_bytes())
    monkeypatch.setattr(i18n, "I18N_DIR", fake_dir)
    catalog = compiled_catalog("ko")
    assert catalog == fake_dir / "bllossom_ko.qm"
    assert catalog.stat().st_size > 1000


def visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(where, text) for the chrome of ``root``: labels, buttons, fields, menus, tables."""
    texts: list[tuple[str, str]] = [("title", root.windowTitle())]
    for widget in [root, *root.findChildren(QWidget)]:
        if widget.objectName() in ("messageBody",) or not widget.isVisibleTo(root):
            continue
        kind = type(widget).__name__
        if isinstance(widget, QLabel) and widget.objectName() != "roleLabel":
            texts.append((kind, widget.text()))
        if isinstance(widget, QAbstractButton):
            texts += [(kind, widget.text()), (kind + ".tip", widget.toolTip())]
        if isinstance(widget, (QLineEdit, QPlainTextEdit)):
            texts.append((kind + ".placeholder", widget.placeholderText()))
        if isinstance(widget, QComboBox):
            texts += [(kind, widget.itemText(i)) for i in range(widget.count())]
        if isinstance(widget, QTableWidget):
            texts += [
                (kind, widget.horizontalHeaderItem(i).text()) for i in range(widget.columnCount())
            ]
    for action in root.findChildren(QAction):
        texts += [("action", action.text()), ("action.tip", action.toolTip())]
    return [(where, text) for where, text in texts if text]


def untranslated(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    english_sources = {source for _c, source, _t, _k in ts_messages()}
    bad = []
    for where, text in texts:
        plain = re.sub(r"<[^>]+>", "", text).replace("&", "")
        if text in english_sources or plain in english_sources:
            bad.append((where, text))
            continue
        # Words with digits or underscores are identifiers (Q4_K_M, F16), not English.
        words = {w for w in re.findall(r"[A-Za-z][A-Za-z_0-9]{2,}", plain) if w.isalpha()}
        if words - ALLOWED_WORDS and not re.search("[가-힣]", plain):
            bad.append((where, text))
    return bad


def test_every_visible_string_is_korean(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window(language="ko")
    assert untranslated(visible_texts(window)) == []  # the welcome page
    use_engine(window, ScriptedEngine([["답변"], ["다른 답변"]]))
    window.chat.input.setPlainText("질문")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: not window.ops.busy, timeout=5000)
    window.conversation.regenerate(window.chat.view.widgets[-1].message.id)
    qtbot.waitUntil(lambda: not window.ops.busy, timeout=5000)
    window.sidebar.undo_bar.show()
    problems = untranslated(visible_texts(window))
    dialogs: list[QWidget] = [
        SettingsDialog("ko", "light", window),
        ConversationSettingsDialog(window.conversation.options(), None, window),
        ModelsDialog(
            [RegisteredModel(name="tiny", path="/m/tiny.gguf", size_bytes=10)], "", window
        ),
        ConvertDialog(window.ops, window),
        RecentlyDeletedDialog([ConversationEntry(1, "질문")], window),
        RecentlyDeletedDialog([], window),
    ]
    for dialog in dialogs:
        dialog.show()
        problems += [(type(dialog).__name__, *p) for p in untranslated(visible_texts(dialog))]
        dialog.close()
    assert problems == [], problems


def test_language_switches_live_without_restart(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window(language="en")
    assert window.sidebar.new_button.text() == "New chat"
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)  # Ctrl+,
    dialog = window.findChild(SettingsDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.language_combo.setCurrentIndex(dialog.language_combo.findData("ko"))
    # Qt posts LanguageChange to every widget; they retranslate when it is delivered.
    qtbot.waitUntil(lambda: window.sidebar.new_button.text() == "새 대화", timeout=10_000)
    assert window.file_menu.title() == "파일(&F)"
    assert dialog.windowTitle() == "설정"
    # Qt's own standard buttons come from qtbase_ko.
    close = dialog.buttons.button(QDialogButtonBox.StandardButton.Close)
    assert close.text() == "닫기"
    assert window.settings.language == "ko"
    dialog.language_combo.setCurrentIndex(dialog.language_combo.findData("en"))
    qtbot.waitUntil(lambda: window.sidebar.new_button.text() == "New chat", timeout=10_000)
    assert close.text() == "Close"


def test_strings_korean_leaves_as_they_are_are_not_blanked(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    """A translation equal to its source ("CPU, %1") showed as nothing in the Korean UI:
    Qt's mnemonic helper answered "" (a translation) instead of no answer."""
    from tests.unit.desktop.scripted import ScriptedEngine, use_engine

    window = make_window(language="ko")
    use_engine(window, ScriptedEngine([["x"]]))
    assert window.status.device_label.text() == "CPU, 스레드 2개"
