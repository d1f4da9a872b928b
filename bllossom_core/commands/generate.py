"""``bllossom generate MODEL.gguf --prompt TEXT``: one reply, streamed or as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bllossom_core.errors import InputError
from bllossom_core.types import CancelToken, GenerationSettings

if TYPE_CHECKING:
    from bllossom_core.engine import LocalEngine

TEMPLATE_CHOICES = ("auto", "llama2-bllossom", "llama3", "gguf")  # templates.TEMPLATE_NAMES


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model loading")
    group.add_argument("--template", choices=TEMPLATE_CHOICES, default="auto",
                       help="chat template (default: picked from the GGUF)")  # fmt: skip
    group.add_argument("--gpu-layers", type=int, default=None,
                       help="layers to put on the GPU (-1: all; default: automatic)")  # fmt: skip
    group.add_argument("--threads", type=int, default=None, help="CPU threads")
    group.add_argument("--context-size", type=int, default=None, help="context length in tokens")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = GenerationSettings()
    group = parser.add_argument_group("sampling (defaults from the Bllossom model card)")
    group.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    group.add_argument("--temperature", type=float, default=defaults.temperature)
    group.add_argument("--top-p", type=float, default=defaults.top_p)
    group.add_argument("--top-k", type=int, default=defaults.top_k)
    group.add_argument("--repeat-penalty", type=float, default=defaults.repeat_penalty)
    group.add_argument("--seed", type=int, default=None)


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    if args.max_tokens < 1:
        raise InputError(f"--max-tokens must be at least 1, not {args.max_tokens}.")
    return GenerationSettings(
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        repeat_penalty=args.repeat_penalty, max_tokens=args.max_tokens, seed=args.seed,
    )  # fmt: skip


def load_engine(args: argparse.Namespace) -> LocalEngine:
    from bllossom_core.engine import LocalEngine

    path: Path = args.model
    if not path.is_file():
        raise InputError(f"Model file {path} does not exist.", path=path)
    return LocalEngine.load(
        path, gpu_layers=args.gpu_layers, threads=args.threads,
        context_size=args.context_size, template=args.template,
    )  # fmt: skip


@contextlib.contextmanager
def ctrl_c_cancels(cancel: CancelToken) -> Iterator[None]:
    """While a reply streams, Ctrl-C stops the reply instead of the program."""
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("generate", help="Generate one reply from a GGUF model.")
    parser.add_argument("model", type=Path, metavar="MODEL.gguf")
    parser.add_argument("--prompt", required=True, help="the user's message")
    parser.add_argument("--system", default=None, help="system prompt (default: Bllossom's)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the text, stats and device")  # fmt: skip
    add_sampling_arguments(parser)
    add_load_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bllossom_core.types import ChatMessage

    settings = settings_from_args(args)
    engine = load_engine(args)
    try:
        messages = [ChatMessage("user", args.prompt)]
        if args.system is not None:
            messages.insert(0, ChatMessage("system", args.system))
        cancel = CancelToken()
        stream = engine.stream_chat(messages, settings, cancel)
        pieces: list[str] = []
        with ctrl_c_cancels(cancel):
            for piece in stream:
                pieces.append(piece)
                if not args.json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        if args.json:
            result = {
                "text": "".join(pieces),
                "model": str(args.model),
                "template": engine.template_name,
                "stats": stream.stats.to_dict(),
                "device": engine.device.__dict__,
            }
            print(json.dumps(result, ensure_ascii=False))
        else:
            sys.stdout.write("\n")
            print(f"[{engine.device.summary}]", file=sys.stderr)
        return 130 if stream.stats.stop_reason == "cancelled" else 0
    finally:
        engine.close()
