"""The one exception hierarchy of Bllossom.

Every error a user can cause (a bad file, a full disk, a model that does not fit)
is a :class:`BllossomError`. Its ``str()`` is a complete sentence written for the
user: what went wrong, where, and what to do next. The CLI prints it on one line
and exits non-zero; the desktop app shows it in a dialog. Anything that is *not* a
``BllossomError`` is a bug and is reported with a traceback.

    BllossomError
    ├── InputError            bad arguments or paths given by the user
    ├── CheckpointError       a Hugging Face checkpoint we cannot convert
    ├── TokenizerError        a tokenizer that is missing, corrupt or unsupported
    ├── GGUFError             a GGUF file that is truncated, corrupt or hostile
    ├── ModelLoadError        llama.cpp could not load or run a model
    ├── TemplateError         a chat template that is invalid or unsafe
    ├── StorageError          the conversation database or an output file
    │   └── DiskFullError     no space left on the device
    ├── RemoteError           an OpenAI-compatible endpoint failed
    └── Cancelled             the user cancelled a long operation
"""

from __future__ import annotations

from pathlib import Path


class BllossomError(Exception):
    """Base class: an error with a message meant for the user.

    ``hint`` is an optional second sentence saying what to do next; ``path`` names
    the file the error is about, when there is one.
    """

    def __init__(self, message: str, *, hint: str | None = None, path: Path | str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class InputError(BllossomError):
    """Bad command-line arguments, missing paths, unknown option values."""


class CheckpointError(BllossomError):
    """A checkpoint folder that is incomplete, inconsistent or of an unsupported kind."""


class TokenizerError(BllossomError):
    """A tokenizer that is missing, corrupt, or that does not round-trip."""


class GGUFError(BllossomError):
    """A GGUF file that is truncated, corrupt, or built to attack the parser."""


class ModelLoadError(BllossomError):
    """llama.cpp could not load the model (out of memory, driver error, bad build)."""


class TemplateError(BllossomError):
    """A chat template that cannot be rendered, or tries to escape the sandbox."""


class StorageError(BllossomError):
    """Reading or writing saved data failed for a reason outside the program."""


class DiskFullError(StorageError):
    """No space is left where we need to write."""


class RemoteError(BllossomError):
    """An OpenAI-compatible server failed, refused us, or stopped mid-reply."""


class Cancelled(BllossomError):
    """The user stopped a long operation; whatever it had written is cleaned up."""
