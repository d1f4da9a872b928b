"""Choosing the input-method module before Qt starts (fcitx users reach the app
through fcitx5's IBus frontend; tests/e2e/test_real_ime.py runs the real thing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop import im_module
from desktop.im_module import choose_input_method, fcitx_requested, usable_plugin
from desktop.qt import QLibraryInfo

PYSIDE_PLUGINS = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
DEBIAN_PLUGINS = "/usr/lib/x86_64-linux-gnu/qt6/plugins"


@pytest.mark.parametrize(
    ("environ", "fcitx"),
    [
        ({"QT_IM_MODULE": "fcitx"}, True),
        ({"QT_IM_MODULE": "fcitx5"}, True),
        ({"QT_IM_MODULE": "ibus", "XMODIFIERS": "@im=fcitx"}, False),
        ({"XMODIFIERS": "@im=fcitx"}, True),
        ({"GTK_IM_MODULE": "fcitx"}, True),
        ({"XMODIFIERS": "@im=ibus", "GTK_IM_MODULE": "ibus"}, False),
        ({}, False),
    ],
)
def test_fcitx_requested(environ: dict[str, str], fcitx: bool) -> None:
    assert fcitx_requested(environ) is fcitx


def test_usable_plugin_reads_keys_and_qt_version() -> None:
    from desktop.qt import qVersion

    major, minor = (int(part) for part in qVersion().split(".")[:2])
    ibus = usable_plugin(["ibus"], [PYSIDE_PLUGINS], (major, minor))
    assert ibus is not None and "ibus" in ibus.name
    assert usable_plugin(["ibus"], [PYSIDE_PLUGINS], (major, minor + 1)) is None
    assert usable_plugin(["fcitx", "fcitx5"], [PYSIDE_PLUGINS], (major, minor)) is None


@pytest.mark.skipif(
    not Path(DEBIAN_PLUGINS, "platforminputcontexts").is_dir(),
    reason="no distribution Qt 6 input-context plugins here",
)
def test_a_distribution_plugin_for_another_qt_is_not_usable() -> None:
    from desktop.qt import qVersion

    major, minor = (int(part) for part in qVersion().split(".")[:2])
    assert usable_plugin(["fcitx", "fcitx5"], [DEBIAN_PLUGINS], (major, minor)) is None


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    answers = [True]
    monkeypatch.setattr(im_module, "ibus_portal_answers", lambda: answers[0])
    return answers


def test_fcitx_without_plugin_switches_to_the_ibus_frontend(
    portal: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"QT_IM_MODULE": "fcitx", "XMODIFIERS": "@im=fcitx"}
    choice = choose_input_method(environ)
    assert choice is not None and choice.working and choice.module == "ibus"
    assert environ["QT_IM_MODULE"] == "ibus"
    assert environ["IBUS_USE_PORTAL"] == "1"
    assert choice.notice() == ""
    assert "fcitx5's IBus frontend" in capsys.readouterr().err


def test_fcitx_only_in_xmodifiers_also_switches(portal: list[bool]) -> None:
    environ = {"XMODIFIERS": "@im=fcitx"}
    assert choose_input_method(environ) is not None
    assert environ["QT_IM_MODULE"] == "ibus"


def test_no_frontend_says_what_to_set(
    portal: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    portal[0] = False
    environ = {"QT_IM_MODULE": "fcitx"}
    choice = choose_input_method(environ)
    assert choice is not None and not choice.working
    assert environ == {"QT_IM_MODULE": "fcitx"}  # nothing changed
    assert "QT_IM_MODULE=ibus" in capsys.readouterr().err
    assert "QT_IM_MODULE=ibus" in choice.notice()


def test_a_usable_fcitx_plugin_is_kept(portal: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(im_module, "usable_plugin", lambda *_args: Path("fcitx.so"))
    environ = {"QT_IM_MODULE": "fcitx"}
    assert choose_input_method(environ) is None
    assert environ == {"QT_IM_MODULE": "fcitx"}


@pytest.mark.parametrize(
    "environ",
    [
        {"QT_IM_MODULE": "ibus"},
        {"QT_IM_MODULE": "compose"},
        {"QT_IM_MODULES": "fcitx;ibus", "QT_IM_MODULE": "fcitx"},
        {},
    ],
)
def test_other_settings_are_left_alone(portal: list[bool], environ: dict[str, str]) -> None:
    before = dict(environ)
    assert choose_input_method(environ) is None
    assert environ == before
