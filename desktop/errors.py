"""Errors in plain language, in the UI's language, with what to do next.

The core's messages are precise but English; the dialog leads with a translated
headline and advice chosen by the error's class and shows the core's sentence (the
file, the cause) below it.
"""

from __future__ import annotations

from bllossom_core.errors import (
    BllossomError,
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
from desktop.qt import QCoreApplication, QMessageBox, QWidget

translate = QCoreApplication.translate


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(headline, advice)`` for ``error``, translated."""
    message = str(error).lower()
    if isinstance(error, ModelLoadError) and ("memory" in message or "alloc" in message):
        return (
            translate("Errors", "There is not enough memory for this model."),
            translate(
                "Errors", "Close other programs, or use a smaller quantization such as Q4_K_M."
            ),
        )
    if isinstance(error, ModelLoadError) and ("cuda" in message or "gpu" in message):
        return (
            translate("Errors", "The model could not use the graphics card."),
            translate(
                "Errors",
                "It will run on the CPU; to use the GPU, install the CUDA build "
                "with scripts/setup.",
            ),
        )
    table: list[tuple[type[BaseException], str, str]] = [
        (
            GGUFError,
            translate("Errors", "This model file is damaged or is not a GGUF file."),
            translate("Errors", "Download or convert the model again, then open the new file."),
        ),
        (
            ModelLoadError,
            translate("Errors", "The model could not be loaded."),
            translate(
                "Errors", "Check that the file is complete and that there is enough free memory."
            ),
        ),
        (
            TemplateError,
            translate("Errors", "The chat template of this model cannot be used."),
            translate(
                "Errors",
                "Choose the Llama-2 Bllossom or Llama-3 template in the conversation settings.",
            ),
        ),
        (
            RemoteError,
            translate("Errors", "The remote server did not answer properly."),
            translate(
                "Errors", "Check the server address, the API key and your network connection."
            ),
        ),
        (
            DiskFullError,
            translate("Errors", "The disk is full."),
            translate("Errors", "Free some space, then try again. Nothing you wrote was lost."),
        ),
        (
            StorageError,
            translate("Errors", "Your conversations could not be saved or read."),
            translate("Errors", "Check that the data folder is writable and not damaged."),
        ),
        (
            CheckpointError,
            translate("Errors", "This checkpoint cannot be converted."),
            translate(
                "Errors",
                "Choose a folder with a Llama-based Hugging Face model (config.json and weights).",
            ),
        ),
        (
            TokenizerError,
            translate("Errors", "The tokenizer of this checkpoint is missing or damaged."),
            translate("Errors", "Make sure tokenizer files are in the checkpoint folder."),
        ),
        (
            InputError,
            translate("Errors", "That file or setting cannot be used."),
            translate("Errors", "Check the path and try again."),
        ),
        (
            BllossomError,
            translate("Errors", "Something went wrong."),
            translate("Errors", "Details are below."),
        ),
    ]
    for kind, headline, advice in table:
        if isinstance(error, kind):
            return headline, advice
    return (
        translate("Errors", "An unexpected error occurred."),
        translate("Errors", "This is a bug in Bllossom; please report it with the details below."),
    )


def show_error(
    parent: QWidget | None,
    error: BaseException,
    headline: str | None = None,
    advice: str | None = None,
) -> None:
    """An error box; ``headline``/``advice`` replace the generic ones for ``error``'s kind
    when the caller knows better what the user was doing."""
    generic_headline, generic_advice = describe_error(error)
    headline = headline or generic_headline
    advice = advice or generic_advice
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(translate("Errors", "Bllossom"))
    box.setText(headline)
    box.setInformativeText(advice)
    detail = str(error) if isinstance(error, BllossomError) else f"{type(error).__name__}: {error}"
    box.setDetailedText(detail)
    box.setObjectName("errorBox")
    box.open()
