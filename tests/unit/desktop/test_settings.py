"""App settings: JSON in BLLOSSOM_HOME, atomic, tolerant of damage and newer versions."""

from __future__ import annotations

import json
from pathlib import Path

from bllossom_core.paths import settings_path
from desktop.settings import AppSettings, RegisteredModel


def test_round_trip_in_bllossom_home(bllossom_home: Path) -> None:
    settings = AppSettings(language="ko", theme="dark", last_model="/m/a.gguf")
    settings.register_model(RegisteredModel(name="a", path="/m/a.gguf", size_bytes=5))
    settings.register_model(RegisteredModel(name="srv", base_url="http://h:8080/v1"))
    settings.drafts["new"] = "쓰다 만 글"
    settings.save()
    assert settings_path().parent == bllossom_home
    loaded = AppSettings.load()
    assert loaded == settings
    assert [m.key for m in loaded.models] == ["http://h:8080/v1", "/m/a.gguf"]
    assert loaded.find_model("http://h:8080/v1").is_remote  # type: ignore[union-attr]
    assert list(bllossom_home.glob(".settings-*")) == []  # no temp file left behind


def test_damaged_or_foreign_file_gives_defaults() -> None:
    settings_path().write_text("{not json", encoding="utf-8")
    assert AppSettings.load() == AppSettings()
    settings_path().write_text("[1, 2]", encoding="utf-8")
    assert AppSettings.load() == AppSettings()


def test_unknown_keys_from_newer_versions_are_ignored() -> None:
    settings_path().write_text(
        json.dumps({"language": "en", "future": 1, "models": [{"name": "x", "path": "p", "z": 2}]}),
        encoding="utf-8",
    )
    loaded = AppSettings.load()
    assert loaded.language == "en"
    assert loaded.models == [RegisteredModel(name="x", path="p")]


def test_registering_again_moves_model_first_and_forget_clears_last() -> None:
    settings = AppSettings()
    settings.register_model(RegisteredModel(name="a", path="/a"))
    settings.register_model(RegisteredModel(name="b", path="/b"))
    settings.register_model(RegisteredModel(name="a2", path="/a"))
    assert [m.name for m in settings.models] == ["a2", "b"]
    settings.last_model = "/b"
    settings.forget_model("/b")
    assert settings.last_model == "" and [m.key for m in settings.models] == ["/a"]


def test_settings_file_with_api_key_is_private_to_the_user() -> None:
    import os
    import stat

    settings = AppSettings()
    settings.register_model(RegisteredModel(name="srv", base_url="http://h/v1", api_key="sk-1"))
    previous = os.umask(0o022)  # a typical umask would make new files world-readable
    try:
        settings.save()
        settings.save()  # replacing an existing file keeps it private too
    finally:
        os.umask(previous)
    assert stat.S_IMODE(settings_path().stat().st_mode) == 0o600
    assert AppSettings.load().models[0].api_key == "sk-1"


def test_api_key_field_says_how_the_key_is_stored(qtbot) -> None:  # type: ignore[no-untyped-def]
    from desktop.models import ModelsDialog

    dialog = ModelsDialog([], "", None)
    qtbot.addWidget(dialog)
    assert "settings.json" in dialog.key_edit.toolTip()
    assert "unencrypted" in dialog.key_edit.toolTip()


def test_settings_are_saved_back_to_the_file_they_came_from(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A save that comes late (a window's deferred save after BLLOSSOM_HOME changed, as
    between two tests) writes the profile the settings were read from, not another."""
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("BLLOSSOM_HOME", str(first))
    defaults = AppSettings.load()  # no file yet: the defaults, bound to this profile
    AppSettings(last_conversation="3").save()
    loaded = AppSettings.load()
    monkeypatch.setenv("BLLOSSOM_HOME", str(second))
    loaded.last_conversation = "4"
    loaded.save()
    assert AppSettings.load(first / "settings.json").last_conversation == "4"
    defaults.language = "ko"
    defaults.save()
    assert AppSettings.load(first / "settings.json").language == "ko"
    assert not settings_path().exists()  # nothing written in the second profile
