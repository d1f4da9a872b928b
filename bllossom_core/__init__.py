"""Bllossom's inference core: llama.cpp models, chat templates, saved conversations.

No Qt here: the desktop app and the CLI both stand on this package.
"""

from bllossom_core.errors import (
    BllossomError,
    Cancelled,
    CheckpointError,
    DiskFullError,
    GGUFError,
    InputError,
    ModelLoadError,
    RemoteError,
    StorageError,
    TemplateError,
    TokenizerError,
)
from bllossom_core.paths import data_dir, database_path, models_dir

__version__ = "0.1.0"

__all__ = [
    "BllossomError",
    "Cancelled",
    "CheckpointError",
    "DiskFullError",
    "GGUFError",
    "InputError",
    "ModelLoadError",
    "RemoteError",
    "StorageError",
    "TemplateError",
    "TokenizerError",
    "__version__",
    "data_dir",
    "database_path",
    "models_dir",
]
