"""Where Bllossom keeps the user's data.

The platform's convention (``platformdirs``) decides, unless ``BLLOSSOM_HOME`` is
set: tests and scripts point it at a temporary folder so that they never touch the
real profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from bllossom_core.errors import StorageError

APP_NAME = "Bllossom"
HOME_ENV = "BLLOSSOM_HOME"


def data_dir(create: bool = True) -> Path:
    """The folder for conversations, settings and registered models."""
    override = os.environ.get(HOME_ENV)
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    if create:
        _make_folder(path, from_env=bool(override))
    return path


def models_dir(create: bool = True) -> Path:
    """Default folder for GGUF files the user converts from inside the app."""
    path = data_dir(create) / "models"
    if create:
        _make_folder(path, from_env=bool(os.environ.get(HOME_ENV)))
    return path


def _make_folder(path: Path, *, from_env: bool) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        what = (
            "is a file, not a folder" if path.is_file() else f"cannot be created ({error.strerror})"
        )
        where = f"set by {HOME_ENV}" if from_env else "Bllossom's data folder"
        raise StorageError(
            f"The data folder {path} ({where}) {what}.",
            hint=f"Set {HOME_ENV} to a folder you can write to.",
            path=path,
        ) from error


def database_path() -> Path:
    """The SQLite file holding saved conversations."""
    return data_dir() / "conversations.sqlite3"


def settings_path() -> Path:
    """The JSON file with app settings (last model, UI language, theme)."""
    return data_dir() / "settings.json"
