"""Bllossom's inference core: llama.cpp models, chat templates, saved conversations.

No Qt here: the desktop app and the CLI both stand on this package.
"""

from bllossom_core._format import human_size
from bllossom_core._utf8 import Utf8Assembler
from bllossom_core.engine import LocalEngine, LocalStream
from bllossom_core.errors import (
    BllossomError,
    Cancelled,
    CheckpointError,
    DiskFullError,
    ErrorCode,
    GGUFError,
    InputError,
    InvalidSettingError,
    ModelLoadError,
    RemoteError,
    StorageError,
    TemplateError,
    TokenizerError,
)
from bllossom_core.gguf_inspect import GGUFInfo, read_gguf_info
from bllossom_core.paths import data_dir, database_path, models_dir
from bllossom_core.remote import RemoteChatStream, RemoteEngine
from bllossom_core.store import Conversation, ConversationStore, Message, ReplyWriter, SearchHit
from bllossom_core.templates import TEMPLATE_NAMES, render_prompt_ids
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    GenerationSettings,
    GenerationStats,
    check_settings,
)

__version__ = "0.1.0"

__all__ = [
    "TEMPLATE_NAMES",
    "BllossomError",
    "CancelToken",
    "Cancelled",
    "ChatMessage",
    "CheckpointError",
    "Conversation",
    "ConversationStore",
    "DiskFullError",
    "ErrorCode",
    "GGUFError",
    "GGUFInfo",
    "GenerationSettings",
    "GenerationStats",
    "InputError",
    "InvalidSettingError",
    "LocalEngine",
    "LocalStream",
    "Message",
    "ModelLoadError",
    "RemoteChatStream",
    "RemoteEngine",
    "RemoteError",
    "ReplyWriter",
    "SearchHit",
    "StorageError",
    "TemplateError",
    "TokenizerError",
    "Utf8Assembler",
    "__version__",
    "check_settings",
    "data_dir",
    "database_path",
    "human_size",
    "models_dir",
    "read_gguf_info",
    "render_prompt_ids",
]
