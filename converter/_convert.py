"""The conversion pipeline: check everything, write the GGUF, quantize, verify."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bllossom_core.errors import BllossomError, Cancelled, ErrorCode, InputError, StorageError
from bllossom_core.types import CancelToken
from converter._checkpoint import open_checkpoint
from converter._parts import part_beside, remove_stale_parts
from converter._progress import ProgressCallback, Reporter
from converter._quantize import (
    DEFAULT_QUANT,
    intermediate_type,
    quant_type,
    run_quantizer,
)
from converter._source import resolve_source
from converter._tensors import plan_tensors
from converter._verify import VerificationReport, require_verify_modules, verify_gguf
from converter._vocab import load_vocabulary
from converter._writer import check_free_space, estimated_size, publish, write_gguf


@dataclass
class ConversionResult:
    output: Path
    quant: str
    source: Path
    tokenizer: str
    """"spm" or "bpe"."""
    pre_tokenizer: str
    tensor_count: int
    output_bytes: int
    seconds: float
    verification: VerificationReport | None = None


def default_output(model_name: str, quant: str) -> Path:
    return Path.cwd() / default_file_name(model_name, quant)


def default_file_name(model_name: str, quant: str) -> str:
    return f"{model_name}-{quant}.gguf"


def resolve_output(output: str | Path | None, model_name: str, quant: str) -> Path:
    """The absolute output file; an existing folder gets the default name inside it."""
    if not output:
        return default_output(model_name, quant).absolute()
    out = Path(output).expanduser().absolute()
    if out.is_dir():
        return out / default_file_name(model_name, quant)
    return out


def _checkpoint_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _check_output(output: Path, source: Path, force: bool) -> None:
    if output.suffix.lower() != ".gguf":
        raise InputError(
            f"The output {output} does not end in .gguf; the converter writes GGUF files only.",
            hint=f"Pass -o {output.with_name(output.name + '.gguf').name} or another *.gguf name.",
            code=ErrorCode.INVALID_INPUT,
        )
    if output.exists():
        target = output.stat()
        for file in _checkpoint_files(source):
            info = file.stat()
            if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
                raise InputError(
                    f"The output {output} is the checkpoint's own file {file}; converting "
                    "would overwrite the model being read.",
                    hint="Pass -o with a new file name outside the checkpoint.",
                    code=ErrorCode.INVALID_INPUT,
                )
    if output.exists() and not force:
        raise InputError(
            f"{output} already exists.",
            hint="Use --force to overwrite it.",
            path=output,
            code=ErrorCode.OUTPUT_EXISTS,
        )
    parent = output.parent
    if not parent.is_dir():
        raise StorageError(
            f"The output folder {parent} does not exist.",
            hint=f"Create it first (mkdir -p {parent}), or pass -o with a file in an "
            "existing folder.",
            path=parent,
            code=ErrorCode.FILE_NOT_FOUND,
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(
            f"The output folder {parent} is not writable.",
            hint="Choose another output with -o.",
            path=parent,
            code=ErrorCode.READ_ONLY,
        )


def convert(
    source: str | Path,
    output: str | Path | None = None,
    quant: str = DEFAULT_QUANT,
    *,
    force: bool = False,
    verify: bool = False,
    verify_tokenizer: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ConversionResult:
    """Convert a Llama checkpoint folder (or hub id) to one GGUF file.

    Raises a :class:`~bllossom_core.errors.BllossomError` for anything the user can fix;
    on any failure or cancellation no output or temporary file is left behind (and the
    parts that a killed earlier run left are removed). ``verify`` needs the ``verify``
    extra and is refused before any work without it. Once the GGUF is in place the
    conversion has succeeded: cancelling (or Ctrl-C) during verification returns the result
    with ``verification.cancelled`` set, and verification that cannot run returns it with
    ``verification.not_run`` saying why.
    """
    started = time.monotonic()
    reporter = Reporter(progress, cancel)
    target_type = quant_type(quant)
    if verify:
        require_verify_modules()
    folder, name = resolve_source(source, reporter)
    checkpoint = open_checkpoint(folder)
    vocab = load_vocabulary(folder, int(checkpoint.config["vocab_size"]))
    out = resolve_output(output, name, target_type.name)
    _check_output(out, folder, force)
    remove_stale_parts(out)

    written_type = target_type
    if not target_type.direct:
        written_type = intermediate_type(checkpoint.source_dtype)
    plan = plan_tensors(checkpoint, written_type.tensor_type)
    written_size = estimated_size(plan, vocab)
    final_size = written_size
    if target_type is not written_type:
        final_size = int(written_size * target_type.bits_per_weight / written_type.bits_per_weight)
        check_free_space(out.parent, written_size + final_size)
    else:
        check_free_space(out.parent, written_size)
    reporter.check()

    with part_beside(out, written_type.name.lower()) as written:
        # With a quantizer step after it, the progress says this is step 1 of 2.
        step = (
            ""
            if target_type is written_type
            else f"1/2: writing the {written_type.name} intermediate"
        )
        write_gguf(
            checkpoint,
            vocab,
            plan,
            written_type.file_type,
            written,
            reporter,
            model_name=name,
            message=step,
            final=target_type is written_type,
        )
        if target_type is written_type:
            publish(written, out, force=force)
        else:
            with part_beside(out, target_type.name.lower()) as quantized:
                run_quantizer(written, quantized, target_type, final_size, reporter)
                reporter.check()
                publish(quantized, out, force=force)

    result = ConversionResult(
        output=out,
        quant=target_type.name,
        source=folder,
        tokenizer=vocab.kind,
        pre_tokenizer=vocab.pre,
        tensor_count=len(plan),
        output_bytes=out.stat().st_size,
        seconds=time.monotonic() - started,
    )
    if verify or verify_tokenizer:
        try:
            result.verification = verify_gguf(
                out, folder, logits=verify, progress=progress, cancel=cancel
            )
        except (Cancelled, KeyboardInterrupt):
            # The GGUF is complete and in place; only the check was stopped, so the
            # conversion still succeeded and the report says the file was not checked.
            result.verification = VerificationReport(out, cancelled=True)
        except BllossomError as exc:
            # Likewise when the check itself cannot run (an unreadable reference
            # tokenizer, a checkpoint transformers cannot load): the GGUF is not at fault.
            result.verification = VerificationReport(out)
            result.verification.record_not_run(exc)
    return result
