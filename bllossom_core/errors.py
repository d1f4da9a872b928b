"""The one exception hierarchy of Bllossom, with a stable code on every error.

Every error a user can cause (a bad file, a full disk, a model that does not fit)
is a :class:`BllossomError`. Its ``str()`` is a complete sentence written for the
user: what went wrong, where, and what to do next. The CLI prints it on one line
and exits non-zero; the desktop app shows it in a dialog. Anything that is *not* a
``BllossomError`` is a bug and is reported with a traceback.

Front ends choose their own wording (headline, advice, language) by
:attr:`BllossomError.code`, never by the class or the English text: the classes
group errors by where they come from, the codes say what they mean to a user.

    BllossomError
    ├── InputError            bad arguments or paths given by the user
    │   └── InvalidSettingError  a setting outside its range (names the field)
    ├── CheckpointError       a Hugging Face checkpoint we cannot convert
    ├── TokenizerError        a tokenizer that is missing, corrupt or unsupported
    ├── GGUFError             a GGUF file that is truncated, corrupt or hostile
    ├── ModelLoadError        llama.cpp could not load or run a model
    ├── TemplateError         a chat template that is invalid or unsafe
    ├── StorageError          the conversation database or an output file
    │   └── DiskFullError     no space left on the device
    ├── RemoteError           an OpenAI-compatible endpoint or the model hub failed
    └── Cancelled             the user cancelled a long operation
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path


class ErrorCode(str, Enum):
    """What an error means to a user; stable across versions (front ends key on it)."""

    # input and settings
    INVALID_INPUT = "invalid_input"
    INVALID_SETTING = "invalid_setting"
    FILE_NOT_FOUND = "file_not_found"
    FILE_UNREADABLE = "file_unreadable"
    ENCODING_INVALID = "encoding_invalid"
    MESSAGE_TOO_LONG = "message_too_long"
    NOTHING_TO_REPLY = "nothing_to_reply"
    # checkpoints and conversion
    CHECKPOINT_INVALID = "checkpoint_invalid"
    CHECKPOINT_UNSUPPORTED = "checkpoint_unsupported"
    TOKENIZER_INVALID = "tokenizer_invalid"
    QUANTIZER_FAILED = "quantizer_failed"
    VERIFY_UNAVAILABLE = "verify_unavailable"
    VERIFY_FAILED = "verify_failed"
    # models
    NO_MODEL = "no_model"
    MODEL_FILE_MISSING = "model_file_missing"
    GGUF_CORRUPT = "gguf_corrupt"
    MODEL_UNSUPPORTED = "model_unsupported"
    MODEL_LOAD_FAILED = "model_load_failed"
    OUT_OF_MEMORY = "out_of_memory"
    GPU_UNAVAILABLE = "gpu_unavailable"
    ENGINE_BUSY = "engine_busy"
    TEMPLATE_INVALID = "template_invalid"
    TEMPLATE_LIMIT = "template_limit"
    # storage
    STORAGE_FAILED = "storage_failed"
    DISK_FULL = "disk_full"
    DATABASE_LOCKED = "database_locked"
    DATABASE_CORRUPT = "database_corrupt"
    DATABASE_TOO_NEW = "database_too_new"
    READ_ONLY = "read_only"
    OUTPUT_EXISTS = "output_exists"
    IMPORT_INVALID = "import_invalid"
    # network: remote engines and the model hub
    SERVER_UNREACHABLE = "server_unreachable"
    SERVER_ERROR = "server_error"
    REPLY_INTERRUPTED = "reply_interrupted"
    AUTH_FAILED = "auth_failed"
    OFFLINE = "offline"
    DOWNLOAD_FAILED = "download_failed"
    REPO_NOT_FOUND = "repo_not_found"
    REPO_GATED = "repo_gated"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    REMOTE_FILE_NOT_FOUND = "remote_file_not_found"
    DOWNLOAD_INTERRUPTED = "download_interrupted"
    UNKNOWN_MODEL = "unknown_model"
    QUANT_NOT_AVAILABLE = "quant_not_available"
    # the user stopped it
    CANCELLED = "cancelled"
    INTERNAL = "internal"
    # the local API server (bllossom serve, the app's "Local API server" switch)
    API_KEY_REQUIRED = "api_key_required"
    PORT_IN_USE = "port_in_use"


class BllossomError(Exception):
    """Base class: an error with a message meant for the user.

    ``hint`` is an optional second sentence saying what to do next; ``path`` names
    the file the error is about, when there is one; ``code`` says what it means
    (each class has a default, raise sites pass a more precise one).
    """

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: Path | str | None = None,
        code: ErrorCode | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = Path(path) if path is not None else None
        self.code: ErrorCode = code if code is not None else self.default_code

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class InputError(BllossomError):
    """Bad command-line arguments, missing paths, unknown option values."""

    default_code = ErrorCode.INVALID_INPUT


class InvalidSettingError(InputError):
    """A generation or model setting outside its range; ``setting`` names the field
    (``top_p``, ``max_tokens``…) so a form can point at it."""

    default_code = ErrorCode.INVALID_SETTING

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class CheckpointError(BllossomError):
    """A checkpoint folder that is incomplete, inconsistent or of an unsupported kind."""

    default_code = ErrorCode.CHECKPOINT_INVALID


class TokenizerError(BllossomError):
    """A tokenizer that is missing, corrupt, or that does not round-trip."""

    default_code = ErrorCode.TOKENIZER_INVALID


class GGUFError(BllossomError):
    """A GGUF file that is truncated, corrupt, or built to attack the parser."""

    default_code = ErrorCode.GGUF_CORRUPT


class ModelLoadError(BllossomError):
    """llama.cpp could not load the model (out of memory, driver error, bad build)."""

    default_code = ErrorCode.MODEL_LOAD_FAILED


class TemplateError(BllossomError):
    """A chat template that cannot be rendered, or tries to escape the sandbox."""

    default_code = ErrorCode.TEMPLATE_INVALID


class StorageError(BllossomError):
    """Reading or writing saved data failed for a reason outside the program."""

    default_code = ErrorCode.STORAGE_FAILED


class DiskFullError(StorageError):
    """No space is left where we need to write."""

    default_code = ErrorCode.DISK_FULL


class RemoteError(BllossomError):
    """An OpenAI-compatible server or the model hub failed, refused us, or stopped."""

    default_code = ErrorCode.SERVER_ERROR


class Cancelled(BllossomError):
    """The user stopped a long operation; whatever it had written is cleaned up."""

    default_code = ErrorCode.CANCELLED
