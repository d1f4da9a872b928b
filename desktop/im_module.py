"""Pick a Qt input-method module that works in this process (before QApplication).

PySide6 brings its own Qt, with only the ``ibus`` and ``compose`` input-context plugins.
A fcitx5 user's ``QT_IM_MODULE=fcitx`` therefore finds no plugin, or (with
``QT_PLUGIN_PATH`` pointing at the distribution's plugins) one built for another Qt
that does not load: Debian 12's needs Qt 6.4's private
``QWindowSystemInterface::handleExtendedKeyEvent``. Qt then runs with no input method
at all, and no Korean can be typed.

fcitx5 also speaks the IBus protocol (its IBus frontend, on by default), and PySide6's
``ibus`` plugin speaks it too. So when fcitx is asked for and no usable fcitx plugin is
there, :func:`choose_input_method` switches to ``ibus`` through the IBus portal service
(``IBUS_USE_PORTAL=1``: on the session bus, so it needs neither ``ibus-daemon`` installed
nor the IBus address file) when that service answers. Otherwise it says what to set.

Nothing changes when ``QT_IM_MODULE`` names another module, when ``QT_IM_MODULES`` (the
list Qt tries in order) is set, or when a fcitx plugin built for this Qt is found.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IBUS_PORTAL = "org.freedesktop.portal.IBus"
FCITX_KEYS = ("fcitx", "fcitx5")


@dataclass(frozen=True)
class InputMethodChoice:
    """What :func:`choose_input_method` did."""

    module: str | None
    """The module it set (``"ibus"``), or None when it changed nothing."""
    working: bool
    """False when fcitx was asked for and neither it nor its IBus frontend can be used."""

    def log_line(self) -> str:
        if self.working:
            return (
                "bllossom-desktop: this Qt has no working fcitx input-method plugin; "
                "typing through fcitx5's IBus frontend (QT_IM_MODULE=ibus IBUS_USE_PORTAL=1)"
            )
        return (
            "bllossom-desktop: Korean input is off: this Qt has no working fcitx "
            "input-method plugin and fcitx5's IBus frontend does not answer. Start fcitx5 "
            "with its IBus frontend (Addons > IBus Frontend, on by default), or ibus, and "
            "run the app with QT_IM_MODULE=ibus"
        )

    def notice(self) -> str:
        """The problem in the UI language (for the status bar); empty when it works."""
        if self.working:
            return ""
        from desktop.qt import QCoreApplication

        return QCoreApplication.translate(
            "InputMethod",
            "Korean input is off: fcitx5 cannot reach this app. Turn on fcitx5's IBus "
            "Frontend add-on and start the app with QT_IM_MODULE=ibus.",
        )


def fcitx_requested(environ: MutableMapping[str, str]) -> bool:
    """The session asks Qt for fcitx: ``QT_IM_MODULE``, or (unset) the X/GTK settings."""
    module = environ.get("QT_IM_MODULE", "").strip().lower()
    if module:
        return module in FCITX_KEYS
    gtk = environ.get("GTK_IM_MODULE", "").strip().lower()
    return gtk in FCITX_KEYS or "@im=fcitx" in environ.get("XMODIFIERS", "").lower()


def usable_plugin(
    keys: Iterable[str], plugin_folders: Iterable[str], qt_version: tuple[int, int]
) -> Path | None:
    """A platform input-context plugin for one of ``keys`` built for this Qt's
    major.minor (a plugin built for another Qt uses private API that is not there).
    Reads the plugins' metadata only: nothing is loaded."""
    from desktop.qt import QPluginLoader

    wanted = set(keys)
    for folder in plugin_folders:
        for path in sorted(Path(folder, "platforminputcontexts").glob("*.so")):
            meta: Any = QPluginLoader(str(path)).metaData()  # a dict, from the JSON
            if "PlatformInputContextFactoryInterface" not in str(meta.get("IID", "")):
                continue
            plugin_keys = {str(k).lower() for k in meta.get("MetaData", {}).get("Keys", [])}
            version = int(meta.get("version", 0))
            if plugin_keys & wanted and (version >> 16, (version >> 8) & 0xFF) == qt_version:
                return path
    return None


def ibus_portal_answers() -> bool:
    """The IBus portal service (fcitx5's IBus frontend, or ibus) is on the session bus."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.environ.get("XDG_RUNTIME_DIR"):
        return False
    from desktop.qt import QDBusConnection

    bus = QDBusConnection.sessionBus()
    interface = bus.interface() if bus.isConnected() else None
    if interface is None:
        return False
    reply = interface.isServiceRegistered(IBUS_PORTAL)
    return bool(reply.isValid() and reply.value())


def choose_input_method(
    environ: MutableMapping[str, str] | None = None,
) -> InputMethodChoice | None:
    """Switch a fcitx request Qt cannot serve to fcitx5's IBus frontend (in
    ``environ``, by default the process environment); None when nothing was wrong."""
    from desktop.qt import QCoreApplication, qVersion

    env = os.environ if environ is None else environ
    if env.get("QT_IM_MODULES") or not fcitx_requested(env):
        return None
    major, minor = (int(part) for part in qVersion().split(".")[:2])
    # Only a fcitx asked for by name is loaded (QT_IM_MODULE unset: Qt takes compose).
    named = bool(env.get("QT_IM_MODULE", "").strip())
    if named and usable_plugin(FCITX_KEYS, QCoreApplication.libraryPaths(), (major, minor)):
        return None
    if ibus_portal_answers():
        env["QT_IM_MODULE"] = "ibus"
        env["IBUS_USE_PORTAL"] = "1"
        choice = InputMethodChoice(module="ibus", working=True)
    else:
        choice = InputMethodChoice(module=None, working=False)
    print(choice.log_line(), file=sys.stderr)
    return choice
