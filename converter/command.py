"""``bllossom convert SOURCE [-o OUT.gguf] [--quant Q4_K_M] [--verify]``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from converter._quantize import DEFAULT_QUANT, SUPPORTED_QUANTS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert a Hugging Face Llama checkpoint to a GGUF file.",
        description=(
            "Convert a Bllossom/Llama checkpoint (a local folder, or a Hugging Face id when "
            "online) to one GGUF file that llama.cpp runs."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="checkpoint folder or hub id")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.gguf",
        help="output file ending in .gguf, or an existing folder to write "
        "MODEL-TYPE.gguf into (default: MODEL-TYPE.gguf in the current folder)",
    )
    parser.add_argument(
        "--quant",
        default=DEFAULT_QUANT,
        metavar="TYPE",
        help=f"quantization type (default {DEFAULT_QUANT}); one of {', '.join(SUPPORTED_QUANTS)}",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also compare next-token logits with transformers (needs the 'verify' extra: "
        "torch and transformers)",
    )
    parser.add_argument(
        "--no-verify-tokenizer",
        action="store_true",
        help="skip the tokenizer parity check that runs after every conversion",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (the terminal closed) arrived: unwind like Ctrl-C, so that every
    ``finally`` runs (temporary parts removed, the quantizer child killed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`_Stopped` in the main thread for the block."""
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        for other in signals:  # a second signal must not interrupt the clean-up
            signal.signal(other, signal.SIG_IGN)
        raise _Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run(args: argparse.Namespace) -> int:
    from bllossom_core.errors import ErrorCode, TokenizerError
    from converter._convert import convert
    from converter._progress import TqdmProgress
    from converter._quantize import quant_type

    quant_type(args.quant)  # an unknown type fails before any work
    # gguf-py warns about tokenizer details it cannot judge; our parity check can.
    logging.getLogger("gguf").setLevel(logging.ERROR)
    bars = None if args.quiet else TqdmProgress()
    try:
        with _stop_like_ctrl_c():
            result = convert(
                args.source,
                args.output,
                args.quant,
                force=args.force,
                verify=args.verify,
                verify_tokenizer=not args.no_verify_tokenizer,
                progress=bars,
            )
    except _Stopped as stopped:
        if bars is not None:
            bars.close()
        name = signal.Signals(stopped.signum).name
        print(f"bllossom: stopped by {name}; no output was written.", file=sys.stderr)
        return 128 + stopped.signum
    finally:
        if bars is not None:
            bars.close()
    size = result.output_bytes / 2**20
    print(
        f"Wrote {result.output} ({result.quant}, {size:,.1f} MiB, {result.tensor_count} tensors, "
        f"{result.tokenizer.upper()} tokenizer '{result.pre_tokenizer}') in {result.seconds:.1f} s"
    )
    report = result.verification
    if report is not None:
        print(report.format())
        if report.cancelled:
            sys.stdout.flush()
            return 130  # interrupted, as the shell expects, though the file is kept
        if not report.tokenizer_ok:
            raise TokenizerError(
                f"The tokenizer in {result.output} does not match the checkpoint's tokenizer "
                "(the file is kept).",
                hint="Please report this with the model name.",
                path=result.output,
                code=ErrorCode.VERIFY_FAILED,
            )
    sys.stdout.flush()
    return 0
