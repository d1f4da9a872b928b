"""Light/dark palettes (following the system unless chosen) and Hangul/emoji fonts."""

from __future__ import annotations

from dataclasses import dataclass

from desktop.qt import (
    QAction,
    QApplication,
    QColor,
    QFont,
    QFontDatabase,
    QIcon,
    QLineEdit,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    Qt,
)

CLEAR_ACTION_NAME = "_q_qlineeditclearaction"
"""Qt's name for the ✕ action a line edit shows with setClearButtonEnabled(True)."""

# Preferred UI fonts, best first: Noto CJK renders Hangul everywhere (scripts/setup
# installs it on Linux); the others are the platforms' own Korean fonts.
HANGUL_FAMILIES = (
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "NanumGothic",
    "Source Han Sans K",
)
EMOJI_FAMILIES = ("Noto Color Emoji", "Segoe UI Emoji", "Apple Color Emoji")
MONO_FAMILIES = ("Noto Sans Mono CJK KR", "D2Coding", "DejaVu Sans Mono", "Consolas", "Menlo")


def available_families(wanted: tuple[str, ...]) -> list[str]:
    installed = set(QFontDatabase.families())
    return [family for family in wanted if family in installed]


def apply_fonts(app: QApplication) -> list[str]:
    """Give the app a fallback chain that covers Latin, Hangul and emoji."""
    font = app.font()
    chain = available_families(HANGUL_FAMILIES) + available_families(EMOJI_FAMILIES)
    if chain:
        font.setFamilies([*chain, font.family()])
        app.setFont(font)
    return chain


def monospace_family() -> str:
    found = available_families(MONO_FAMILIES)
    return (
        found[0] if found else QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
    )


@dataclass(frozen=True)
class Colors:
    """The few colours our own widgets use, beside the palette."""

    dark: bool
    user_bubble: str
    assistant_bubble: str
    code_background: str
    muted_text: str
    highlight: str
    pygments_style: str


LIGHT = Colors(False, "#e8f0fe", "#ffffff", "#f4f4f6", "#6b6b76", "#ffe58a", "default")
DARK = Colors(True, "#2b3a55", "#23252b", "#16171b", "#9a9aa6", "#7a5d00", "monokai")


def system_prefers_dark() -> bool:
    hints = QApplication.styleHints()
    return bool(hints.colorScheme() == Qt.ColorScheme.Dark)


def resolve_theme(choice: str) -> Colors:
    if choice == "dark":
        return DARK
    if choice == "light":
        return LIGHT
    return DARK if system_prefers_dark() else LIGHT


def _palette(colors: Colors) -> QPalette:
    palette = QPalette()
    if colors.dark:
        base, window, text, button = "#1d1e22", "#25262b", "#e6e6ea", "#2e3036"
        highlight, link = "#4c7dff", "#8ab4ff"
    else:
        base, window, text, button = "#ffffff", "#f3f3f6", "#1c1c21", "#ececf0"
        highlight, link = "#2f6bff", "#1a56db"
    role = QPalette.ColorRole
    palette.setColor(role.Window, QColor(window))
    palette.setColor(role.WindowText, QColor(text))
    palette.setColor(role.Base, QColor(base))
    palette.setColor(role.AlternateBase, QColor(window))
    palette.setColor(role.Text, QColor(text))
    palette.setColor(role.Button, QColor(button))
    palette.setColor(role.ButtonText, QColor(text))
    palette.setColor(role.ToolTipBase, QColor(base))
    palette.setColor(role.ToolTipText, QColor(text))
    palette.setColor(role.PlaceholderText, QColor(colors.muted_text))
    palette.setColor(role.Highlight, QColor(highlight))
    palette.setColor(role.HighlightedText, QColor("#ffffff"))
    palette.setColor(role.Link, QColor(link))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.Text, role.ButtonText, role.WindowText):
        palette.setColor(disabled, r, QColor(colors.muted_text))
    return palette


def apply_theme(app: QApplication, choice: str) -> Colors:
    colors = resolve_theme(choice)
    app.setStyle("Fusion")
    # Before the palette: widgets redraw their own colours on the palette change and
    # read current_colors() then.
    app.setProperty("bllossom_dark", colors.dark)
    app.setPalette(_palette(colors))
    return colors


def current_colors() -> Colors:
    app = QApplication.instance()
    return DARK if app is not None and app.property("bllossom_dark") else LIGHT


def ui_font(point_delta: float = 0, bold: bool = False) -> QFont:
    font = QApplication.font()
    if point_delta:
        font.setPointSizeF(max(6.0, font.pointSizeF() + point_delta))
    font.setBold(bold)
    return font


def clear_icon(color: str, size: int = 32) -> QIcon:
    """A ✕ drawn in ``color``: the style's own one is dark grey, near invisible on the
    dark theme's fields."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(QColor(color))
    pen.setWidthF(size / 10)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    margin = size * 0.28
    far = size - margin
    painter.drawLine(int(margin), int(margin), int(far), int(far))
    painter.drawLine(int(far), int(margin), int(margin), int(far))
    painter.end()
    return QIcon(pixmap)


def style_clear_button(line_edit: QLineEdit) -> None:
    """Give a line edit's clear button a ✕ in the current theme's colours."""
    action = line_edit.findChild(QAction, CLEAR_ACTION_NAME)
    if action is not None:
        action.setIcon(clear_icon(current_colors().muted_text))
