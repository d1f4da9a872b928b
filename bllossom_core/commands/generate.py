"""``bllossom generate MODEL.gguf --prompt TEXT``: one reply, streamed or as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bllossom_core.errors import InputError
from bllossom_core.model_settings import KV_CACHE_TYPES, ModelSettings
from bllossom_core.templates import TEMPLATE_NAMES
from bllossom_core.types import CancelToken, GenerationSettings, StreamPiece, check_settings

if TYPE_CHECKING:
    from bllossom_core.engine import LocalEngine


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model loading")
    group.add_argument("--template", choices=TEMPLATE_NAMES, default="auto",
                       help="chat template (default: picked from the GGUF)")  # fmt: skip
    group.add_argument("--gpu-layers", type=int, default=None,
                       help="layers to put on the GPU (-1: all; default: automatic)")  # fmt: skip
    group.add_argument("--threads", type=int, default=None, help="CPU threads")
    group.add_argument("--context-size", type=int, default=None, help="context length in tokens")
    group.add_argument(
        "--flash-attention",
        action="store_true",
        help="use llama.cpp's flash attention (a quantized KV cache needs it)",
    )
    group.add_argument(
        "--kv-cache-type",
        choices=KV_CACHE_TYPES,
        default="f16",
        help="KV-cache element type; q8_0/q4_0 save memory (default %(default)s)",
    )


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = GenerationSettings()
    group = parser.add_argument_group("sampling (defaults from the Bllossom model card)")
    options: list[tuple[str, type, object, str]] = [
        ("--max-tokens", int, defaults.max_tokens, "longest reply in tokens, at least 1"),
        ("--temperature", float, defaults.temperature,
         "randomness, 0 or more; 0 = greedy (always the likeliest token)"),
        ("--top-p", float, defaults.top_p, "nucleus sampling, above 0 and at most 1"),
        ("--top-k", int, defaults.top_k, "sample from the k likeliest tokens; 0 = all"),
        ("--repeat-penalty", float, defaults.repeat_penalty,
         "above 0; 1 = none, more discourages repeating"),
    ]  # fmt: skip
    for flag, kind, default, text in options:
        group.add_argument(flag, type=kind, default=default, help=f"{text} (default %(default)s)")
    group.add_argument("--seed", type=int, default=None,
                       help="0 or more, for repeatable sampling (default: random)")  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    return check_settings(
        GenerationSettings(
            temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
            repeat_penalty=args.repeat_penalty, max_tokens=args.max_tokens, seed=args.seed,
        )
    )  # fmt: skip


def refuse_folder(path: Path) -> None:
    """A folder given where a GGUF file belongs gets its own message; the GGUF reader
    checks everything else about the path."""
    if path.is_dir():
        raise InputError(
            f"{path} is a folder, not a model file.",
            hint="Give the path of a .gguf file (convert a checkpoint folder first with "
            "'bllossom convert').",
            path=path,
        )


def load_engine(args: argparse.Namespace) -> LocalEngine:
    from bllossom_core.engine import LocalEngine

    refuse_folder(args.model)
    settings = ModelSettings(
        args.context_size, args.gpu_layers, args.threads, args.flash_attention,
        args.kv_cache_type,
    )  # fmt: skip
    return LocalEngine.load(args.model, template=args.template, **settings.load_arguments())


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


SYSTEM_HELP = "system prompt (default: the model card's for Llama-2 Bllossom, none for Llama-3)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("generate", help="Generate one reply from a GGUF model.")
    parser.add_argument("model", type=Path, metavar="MODEL.gguf")
    parser.add_argument("--prompt", required=True, help="the user's message")
    parser.add_argument("--system", default=None, help=SYSTEM_HELP)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the text, the thinking (reasoning "
                        "models), stats and device")  # fmt: skip
    parser.add_argument("--hide-thinking", action="store_true",
                        help="reasoning models: print only the answer, not the thinking "
                        "(shown dimmed by default)")  # fmt: skip
    add_sampling_arguments(parser)
    add_load_arguments(parser)
    parser.set_defaults(handler=run)


DIM, RESET = "\x1b[2m", "\x1b[0m"


class ReplyPrinter:
    """Streams a reply to a terminal: a reasoning model's thinking dimmed (plain text when
    ``out`` is not a terminal, so pipes get no escape codes) and set apart from the answer
    by a blank line, or left out."""

    def __init__(self, out: TextIO, *, show_thinking: bool) -> None:
        self._out = out
        self._show_thinking = show_thinking
        self._dim = out.isatty()
        self._thinking_open = False
        self._thought = False

    def write(self, piece: StreamPiece) -> None:
        if piece.kind == "thinking":
            if not self._show_thinking:
                return
            if not self._thinking_open:
                self._thinking_open = self._thought = True
                if self._dim:
                    self._out.write(DIM)
            self._out.write(piece.text)
        else:
            self.end_thinking()
            self._out.write(piece.text)
        self._out.flush()

    def end_thinking(self) -> None:
        """Close the dimmed block (also when the reply stops inside it)."""
        if not self._thinking_open:
            return
        self._thinking_open = False
        self._out.write((RESET if self._dim else "") + "\n\n")
        self._out.flush()


def run(args: argparse.Namespace) -> int:
    from bllossom_core.types import ChatMessage

    settings = settings_from_args(args)
    if not args.prompt.strip():
        raise InputError("--prompt is empty; give the message to reply to.")
    engine = load_engine(args)
    try:
        messages = [ChatMessage("user", args.prompt)]
        if args.system is not None:
            messages.insert(0, ChatMessage("system", args.system))
        cancel = CancelToken()
        stream = engine.stream_chat(messages, settings, cancel)
        printer = (
            None if args.json else ReplyPrinter(sys.stdout, show_thinking=not args.hide_thinking)
        )
        texts: dict[str, list[str]] = {"thinking": [], "answer": []}
        with closing(stream), ctrl_c_cancels(cancel):
            try:
                for piece in stream.events():
                    texts[piece.kind].append(piece.text)
                    if printer is not None:
                        printer.write(piece)
            finally:
                if printer is not None:
                    printer.end_thinking()
        if args.json:
            result = {
                "text": "".join(texts["answer"]),
                "thinking": "".join(texts["thinking"]),
                "model": str(args.model),
                "template": engine.template_name,
                "template_note": engine.template_note,
                "stats": stream.stats.to_dict(),
                "device": engine.device.__dict__,
            }
            print(json.dumps(result, ensure_ascii=False))
        else:
            sys.stdout.write("\n")
            print(f"[{engine.device.summary}]", file=sys.stderr)
            if engine.template_note:
                print(f"[{engine.template_note}]", file=sys.stderr)
        return 130 if stream.stats.stop_reason == "cancelled" else 0
    finally:
        engine.close()
