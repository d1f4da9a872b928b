"""Errors in plain language, in the UI's language, with what to do next.

The headline and the advice are chosen by the error's stable
:attr:`~bllossom_core.errors.BllossomError.code`, never by its class or English text.
The dialog shows the headline, then the core's specific sentence (which file, what
is wrong), then the advice.
"""

from __future__ import annotations

import html

from bllossom_core.errors import BllossomError, ErrorCode
from desktop.qt import QCoreApplication, QMessageBox, QWidget

translate = QCoreApplication.translate


def _wording() -> dict[ErrorCode, tuple[str, str]]:
    """``code -> (headline, advice)`` in the current UI language (built per call, so a
    language switch takes effect at once)."""
    return {
        ErrorCode.INVALID_INPUT: (
            translate("Errors", "That input cannot be used."),
            translate("Errors", "Correct it as described, then try again."),
        ),
        ErrorCode.INVALID_SETTING: (
            translate("Errors", "A setting is outside its allowed range."),
            translate("Errors", "Change the value as described, then save again."),
        ),
        ErrorCode.FILE_NOT_FOUND: (
            translate("Errors", "The file could not be found."),
            translate("Errors", "Check that it still exists, or choose another file."),
        ),
        ErrorCode.FILE_UNREADABLE: (
            translate("Errors", "The file could not be read."),
            translate("Errors", "Check that you may read it and that the drive is connected."),
        ),
        ErrorCode.ENCODING_INVALID: (
            translate("Errors", "The text is not valid UTF-8."),
            translate("Errors", "Convert it to UTF-8 (for example from EUC-KR), then try again."),
        ),
        ErrorCode.MESSAGE_TOO_LONG: (
            translate("Errors", "The message is too long for this model's context."),
            translate(
                "Errors",
                "Shorten it, or raise the context size in the model settings. Nothing was saved.",
            ),
        ),
        ErrorCode.NOTHING_TO_REPLY: (
            translate("Errors", "There is nothing to reply to."),
            translate("Errors", "Type a message first."),
        ),
        ErrorCode.CHECKPOINT_INVALID: (
            translate("Errors", "This checkpoint cannot be converted."),
            translate(
                "Errors",
                "Choose a folder with a Llama-based Hugging Face model (config.json and weights).",
            ),
        ),
        ErrorCode.CHECKPOINT_UNSUPPORTED: (
            translate("Errors", "This kind of model cannot be converted yet."),
            translate("Errors", "Look for a ready-made GGUF of it, or choose a Llama-based model."),
        ),
        ErrorCode.TOKENIZER_INVALID: (
            translate("Errors", "The tokenizer of this checkpoint is missing or damaged."),
            translate("Errors", "Make sure the tokenizer files are in the checkpoint folder."),
        ),
        ErrorCode.QUANTIZER_FAILED: (
            translate("Errors", "llama.cpp's quantizer failed."),
            translate("Errors", "Try another quantization type, or convert to F16 first."),
        ),
        ErrorCode.VERIFY_UNAVAILABLE: (
            translate("Errors", "Verification is not available in this installation."),
            translate("Errors", "Convert without verification, or use the developer install."),
        ),
        ErrorCode.VERIFY_FAILED: (
            translate("Errors", "The converted model did not pass verification."),
            translate("Errors", "Convert again; if it fails again, report the details."),
        ),
        ErrorCode.NO_MODEL: (
            translate("Errors", "No model is loaded."),
            translate("Errors", "Open a GGUF file, download a model or add a remote server first."),
        ),
        ErrorCode.MODEL_FILE_MISSING: (
            translate("Errors", "The model file is missing."),
            translate("Errors", "It was moved or deleted: open it from its new place."),
        ),
        ErrorCode.GGUF_CORRUPT: (
            translate("Errors", "This model file is damaged or is not a GGUF file."),
            translate("Errors", "Download or convert the model again, then open the new file."),
        ),
        ErrorCode.MODEL_UNSUPPORTED: (
            translate("Errors", "This model's architecture is not supported."),
            translate("Errors", "Choose another model, or update Bllossom."),
        ),
        ErrorCode.MODEL_LOAD_FAILED: (
            translate("Errors", "The model could not be loaded."),
            translate(
                "Errors", "Check that the file is complete and that there is enough free memory."
            ),
        ),
        ErrorCode.OUT_OF_MEMORY: (
            translate("Errors", "There is not enough memory for this model."),
            translate(
                "Errors",
                "Close other programs, lower the context size, or use a smaller quantization "
                "such as Q4_K_M.",
            ),
        ),
        ErrorCode.GPU_UNAVAILABLE: (
            translate("Errors", "The model could not use the graphics card."),
            translate("Errors", "It runs on the CPU instead; see the status bar for the reason."),
        ),
        ErrorCode.ENGINE_BUSY: (
            translate("Errors", "The model is still answering another message."),
            translate("Errors", "Wait for it to finish, or stop it first."),
        ),
        ErrorCode.TEMPLATE_INVALID: (
            translate("Errors", "The chat template of this model cannot be used."),
            translate("Errors", "Choose another template in the conversation settings."),
        ),
        ErrorCode.TEMPLATE_LIMIT: (
            translate("Errors", "The chat template of this model is unsafe or too costly."),
            translate("Errors", "Choose a built-in template in the conversation settings."),
        ),
        ErrorCode.STORAGE_FAILED: (
            translate("Errors", "Your conversations could not be saved or read."),
            translate("Errors", "Check that the data folder is writable and not damaged."),
        ),
        ErrorCode.DISK_FULL: (
            translate("Errors", "The disk is full."),
            translate("Errors", "Free some space, then try again. Nothing you wrote was lost."),
        ),
        ErrorCode.DATABASE_LOCKED: (
            translate("Errors", "The conversation database is busy."),
            translate(
                "Errors", "Another Bllossom program is writing to it; try again in a moment."
            ),
        ),
        ErrorCode.DATABASE_CORRUPT: (
            translate("Errors", "The conversation database is damaged."),
            translate("Errors", "Restore it from a backup, or move it aside to start a new one."),
        ),
        ErrorCode.DATABASE_TOO_NEW: (
            translate("Errors", "The conversations were saved by a newer Bllossom."),
            translate("Errors", "Update Bllossom to open them."),
        ),
        ErrorCode.READ_ONLY: (
            translate("Errors", "The data folder cannot be written to."),
            translate(
                "Errors", "Check its permissions, or set BLLOSSOM_HOME to a writable folder."
            ),
        ),
        ErrorCode.OUTPUT_EXISTS: (
            translate("Errors", "The file already exists."),
            translate("Errors", "Choose another name, or confirm replacing it."),
        ),
        ErrorCode.IMPORT_INVALID: (
            translate("Errors", "The file could not be imported."),
            translate("Errors", "Choose a .json file exported by Bllossom."),
        ),
        ErrorCode.SERVER_UNREACHABLE: (
            translate("Errors", "Could not connect to the server."),
            translate("Errors", "Check the address and that the server is running."),
        ),
        ErrorCode.SERVER_ERROR: (
            translate("Errors", "The server did not answer properly."),
            translate("Errors", "Check the server's log, or try again later."),
        ),
        ErrorCode.REPLY_INTERRUPTED: (
            translate("Errors", "The reply stopped midway."),
            translate("Errors", "What arrived is kept; generate the reply again to retry."),
        ),
        ErrorCode.AUTH_FAILED: (
            translate("Errors", "The server refused the API key."),
            translate("Errors", "Check the API key in Models and remote servers."),
        ),
        ErrorCode.API_KEY_REQUIRED: (
            translate("Errors", "An API key is required."),
            translate("Errors", "Set an API key before allowing other devices to connect."),
        ),
        ErrorCode.PORT_IN_USE: (
            translate("Errors", "The port is already in use."),
            translate("Errors", "Choose another port, or stop the program using it."),
        ),
        ErrorCode.OFFLINE: (
            translate("Errors", "You are offline."),
            translate(
                "Errors", "Connect to the internet, or use a model already on this computer."
            ),
        ),
        ErrorCode.DOWNLOAD_FAILED: (
            translate("Errors", "The download failed."),
            translate(
                "Errors", "Check your connection and try again; it resumes where it stopped."
            ),
        ),
        ErrorCode.REPO_NOT_FOUND: (
            translate("Errors", "The model was not found on Hugging Face."),
            translate("Errors", "Check the name (ORGANISATION/NAME) and the revision."),
        ),
        ErrorCode.REPO_GATED: (
            translate("Errors", "This model requires accepting its licence."),
            translate(
                "Errors",
                "Accept the licence on the model's page, then set HF_TOKEN or log in with "
                "'hf auth login'.",
            ),
        ),
        ErrorCode.REMOTE_FILE_NOT_FOUND: (
            translate("Errors", "That file is not in the model's repository."),
            translate("Errors", "Check the file name, or choose a quantization the list offers."),
        ),
        ErrorCode.DOWNLOAD_INTERRUPTED: (
            translate("Errors", "The download was interrupted."),
            translate("Errors", "Start it again: it continues from where it stopped."),
        ),
        ErrorCode.UNKNOWN_MODEL: (
            translate("Errors", "There is no model by that name in the catalog."),
            translate("Errors", "Choose one from the list, or give a Hugging Face id (ORG/NAME)."),
        ),
        ErrorCode.QUANT_NOT_AVAILABLE: (
            translate("Errors", "That quantization is not offered for this model."),
            translate("Errors", "Choose one of the quantizations listed."),
        ),
        ErrorCode.CHECKSUM_MISMATCH: (
            translate("Errors", "The downloaded file is damaged."),
            translate("Errors", "It was deleted; download it again."),
        ),
        ErrorCode.CANCELLED: (
            translate("Errors", "Stopped."),
            translate("Errors", "Nothing was left half-written."),
        ),
        ErrorCode.INTERNAL: (
            translate("Errors", "Something went wrong."),
            translate("Errors", "Details are below."),
        ),
    }


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(headline, advice)`` for ``error``, translated; chosen by its code."""
    if isinstance(error, BllossomError):
        wording = _wording()
        return wording.get(error.code, wording[ErrorCode.INTERNAL])
    return (
        translate("Errors", "An unexpected error occurred."),
        translate("Errors", "This is a bug in Bllossom; please report it with the details below."),
    )


def connection_failure(error: BaseException, address: str) -> str:
    """The headline for a failed connection test of the server at ``address`` (host:port),
    chosen by the error's code: it names the server, which the generic one cannot."""
    code = error.code if isinstance(error, BllossomError) else None
    if code is ErrorCode.SERVER_UNREACHABLE:
        return translate("Errors", "Could not connect to %1.").replace("%1", address)
    if code is ErrorCode.AUTH_FAILED:
        return translate("Errors", "The server at %1 refused the API key.").replace("%1", address)
    if code is ErrorCode.SERVER_ERROR:
        return translate(
            "Errors", "The server at %1 did not answer as an OpenAI-compatible API."
        ).replace("%1", address)
    return describe_error(error)[0]


def error_detail(error: BaseException) -> str:
    """The specific sentences: which file, what is wrong, what to do (the core's words)."""
    if isinstance(error, BllossomError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def show_error(
    parent: QWidget | None,
    error: BaseException,
    headline: str | None = None,
    advice: str | None = None,
) -> QMessageBox:
    """An error box: headline, the specific message, then the advice.

    ``headline``/``advice`` replace the ones for ``error``'s code when the caller knows
    better what the user was doing.
    """
    generic_headline, generic_advice = describe_error(error)
    headline = headline or generic_headline
    advice = advice or generic_advice
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(translate("Errors", "Bllossom"))
    box.setTextFormat(box.textFormat().RichText)
    box.setText(f"<b>{html.escape(headline)}</b><br><br>{html.escape(error_detail(error))}")
    box.setInformativeText(advice)
    if not isinstance(error, BllossomError):
        box.setDetailedText(error_detail(error))
    box.setObjectName("errorBox")
    box.open()
    return box
