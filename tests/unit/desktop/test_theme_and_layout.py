"""Dark theme details and the collapsible sidebar."""

from __future__ import annotations

from desktop.qt import QAction, QApplication, QColor, Qt
from desktop.settings import AppSettings
from desktop.theme import CLEAR_ACTION_NAME


def _lightest_ink(action: QAction) -> float:
    """The lightness (0-1) of the lightest clearly drawn pixel of the action's icon."""
    image = action.icon().pixmap(32, 32).toImage()
    values = [
        QColor.fromRgba(image.pixel(x, y))
        for x in range(image.width())
        for y in range(image.height())
    ]
    return max((c.lightnessF() for c in values if c.alpha() > 160), default=0.0)


def test_clear_icon_is_visible_on_the_dark_theme(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window(theme="dark")
    box = window.sidebar.search_box
    box.setText("찾기")
    action = box.findChild(QAction, CLEAR_ACTION_NAME)
    assert action is not None
    field = box.palette().color(box.backgroundRole()).lightnessF()
    assert field < 0.2  # a dark field
    assert _lightest_ink(action) - field > 0.4  # a light ✕ on it
    # Switching to light gives a ✕ that is darker than the light field.
    window.set_theme("light")
    qtbot.waitUntil(lambda: box.palette().color(box.backgroundRole()).lightnessF() > 0.8)
    light_field = box.palette().color(box.backgroundRole()).lightnessF()
    image = action.icon().pixmap(32, 32).toImage()
    inks = [
        QColor.fromRgba(image.pixel(x, y)).lightnessF()
        for x in range(32)
        for y in range(32)
        if QColor.fromRgba(image.pixel(x, y)).alpha() > 160
    ]
    assert inks and light_field - min(inks) > 0.3


def test_sidebar_collapses_and_the_choice_is_remembered(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    assert window.sidebar.isVisible() and window.chat.sidebar_button.isChecked()
    qtbot.mouseClick(window.chat.sidebar_button, Qt.MouseButton.LeftButton)
    assert not window.sidebar.isVisible()
    assert AppSettings.load().sidebar_visible is False
    # The chat takes the room.
    qtbot.waitUntil(lambda: window.stack.width() >= window.splitter.width() - 10)
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.isVisible()
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert not window.sidebar.isVisible()
    # Searching (Ctrl+F) needs the list: it comes back.
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.isVisible() and window.chat.sidebar_button.isChecked()
    qtbot.waitUntil(window.sidebar.search_box.hasFocus)
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert not window.sidebar.isVisible()
    again = make_window()  # the next start reads the saved choice
    assert not again.sidebar.isVisible() and not again.chat.sidebar_button.isChecked()
    QApplication.processEvents()


def test_a_system_scheme_change_reaches_open_windows_only(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The system's light/dark switch re-themes a window that follows the system; a
    deleted window is no longer called (it was, through a closure that Qt kept)."""
    from shiboken6 import isValid

    from desktop.app import build_window, parse_args
    from desktop.main_window import MainWindow

    followed: list[str] = []
    monkeypatch.setattr(MainWindow, "set_theme", lambda self, choice: followed.append(choice))
    hints = QApplication.styleHints()
    _app, old = build_window(parse_args(["--theme", "system"]))
    old.close()
    qtbot.waitUntil(lambda: old.closed)
    old.deleteLater()
    qtbot.waitUntil(lambda: not isValid(old))
    window = make_window(theme="system")
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert followed == ["system"]
    window.settings.theme = "light"  # a chosen theme stays
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert followed == ["system"]
