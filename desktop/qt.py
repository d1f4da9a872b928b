"""The one place that imports Qt: every other desktop module imports from here.

Keeping the binding behind one module (as Anki and qutebrowser do) means a change of
binding or version touches one file, and grep shows exactly which Qt classes we use.

It also works around a reference-counting bug of PySide6 6.12 on CPython < 3.12 as
soon as Qt is imported (see :func:`_pyside_steals_singletons`).
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import (
    QByteArray,
    QCoreApplication,
    QElapsedTimer,
    QEvent,
    QLibraryInfo,
    QLocale,
    QObject,
    QPoint,
    QRect,
    QSize,
    Qt,
    QThread,
    QTimer,
    QTranslator,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QIcon,
    QInputMethodEvent,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QShortcut,
    QTextCursor,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStatusBar,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "QAbstractButton",
    "QAbstractItemView",
    "QAction",
    "QApplication",
    "QByteArray",
    "QCheckBox",
    "QCloseEvent",
    "QColor",
    "QComboBox",
    "QCoreApplication",
    "QDialog",
    "QDialogButtonBox",
    "QDoubleSpinBox",
    "QElapsedTimer",
    "QEvent",
    "QFileDialog",
    "QFont",
    "QFontDatabase",
    "QFormLayout",
    "QFrame",
    "QGuiApplication",
    "QHBoxLayout",
    "QIcon",
    "QInputMethodEvent",
    "QKeyEvent",
    "QKeySequence",
    "QLabel",
    "QLibraryInfo",
    "QLineEdit",
    "QListWidget",
    "QListWidgetItem",
    "QLocale",
    "QMainWindow",
    "QMessageBox",
    "QObject",
    "QPalette",
    "QPlainTextEdit",
    "QPoint",
    "QProgressBar",
    "QPushButton",
    "QRect",
    "QScrollArea",
    "QShortcut",
    "QSize",
    "QSizePolicy",
    "QSpinBox",
    "QSplitter",
    "QStackedWidget",
    "QStatusBar",
    "QTableWidget",
    "QTableWidgetItem",
    "QTextBrowser",
    "QTextCursor",
    "QTextOption",
    "QThread",
    "QTimer",
    "QToolButton",
    "QTranslator",
    "QUrl",
    "QVBoxLayout",
    "QWidget",
    "Qt",
    "Signal",
    "Slot",
]


def _pyside_steals_singletons() -> bool:
    """Whether PySide6 returns ``None``/``True`` without owning a reference to them.

    The PySide6 6.12.0 wheels (``cp310-abi3``) do, on CPython 3.10 and 3.11: every call
    of a method that returns nothing (``setText``, ``update``, ``processEvents``...)
    lowers ``None``'s reference count by one, and every ``Signal.emit`` lowers
    ``True``'s. The code evidently counts on CPython 3.12's immortal singletons.
    Before 3.12 the count reaches zero after some thousands of calls, and the
    interpreter aborts ("Fatal Python error: none_dealloc" or "bool_dealloc"), mid
    session or while it tears down at exit. Measured rather than assumed from the
    version, so a fixed PySide6 turns the workaround off by itself.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # the singletons are immortal there: nothing can underflow

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    tries = 32
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(tries):
        probe.setObjectName("probe")
        probe.ping.emit()
    stolen = max(none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    return stolen >= tries


IMMORTAL_BOOST = 1 << (40 if ctypes.sizeof(ctypes.c_ssize_t) == 8 else 28)
"""References added to each singleton: far more than a process could ever take back."""


def _make_singletons_immortal() -> None:
    """Do what CPython 3.12 does: give the singletons a count no decrement can exhaust.

    A precise fix would need one compensation per PySide6 call, everywhere (Qt calls
    made by the code of other libraries included). Raising the counts once is the
    only thing that covers all of them; these objects are never freed anyway.
    """
    for singleton in (None, True, False, NotImplemented, Ellipsis):
        ctypes.c_ssize_t.from_address(id(singleton)).value += IMMORTAL_BOOST


PYSIDE_STEALS_SINGLETONS = _pyside_steals_singletons()
if PYSIDE_STEALS_SINGLETONS:
    _make_singletons_immortal()
