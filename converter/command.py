"""``bllossom convert SOURCE [-o OUT.gguf] [--quant Q4_K_M] [--verify]``."""

from __future__ import annotations

import argparse
import logging
import sys
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
        help="also compare next-token logits with transformers (needs torch)",
    )
    parser.add_argument(
        "--no-verify-tokenizer",
        action="store_true",
        help="skip the tokenizer parity check that runs after every conversion",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bllossom_core.errors import TokenizerError
    from converter._convert import convert
    from converter._progress import TqdmProgress
    from converter._quantize import quant_type

    quant_type(args.quant)  # an unknown type fails before any work
    # gguf-py warns about tokenizer details it cannot judge; our parity check can.
    logging.getLogger("gguf").setLevel(logging.ERROR)
    bars = None if args.quiet else TqdmProgress()
    try:
        result = convert(
            args.source,
            args.output,
            args.quant,
            force=args.force,
            verify=args.verify,
            verify_tokenizer=not args.no_verify_tokenizer,
            progress=bars,
        )
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
                f"The tokenizer in {result.output} does not match the checkpoint's tokenizer.",
                hint="Please report this with the model name.",
                path=result.output,
            )
    sys.stdout.flush()
    return 0
