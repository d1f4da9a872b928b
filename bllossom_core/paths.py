"""Where Bllossom keeps the user's data.

The platform's convention (``platformdirs``) decides, unless ``BLLOSSOM_HOME`` is
set: tests and scripts point it at a temporary folder so that they never touch the
real profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Bllossom"
HOME_ENV = "BLLOSSOM_HOME"


def data_dir(create: bool = True) -> Path:
    """The folder for conversations, settings and registered models."""
    override = os.environ.get(HOME_ENV)
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir(create: bool = True) -> Path:
    """Default folder for GGUF files the user converts from inside the app."""
    path = data_dir(create) / "models"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    """The SQLite file holding saved conversations."""
    return data_dir() / "conversations.sqlite3"


def settings_path() -> Path:
    """The JSON file with app settings (last model, UI language, theme)."""
    return data_dir() / "settings.json"
