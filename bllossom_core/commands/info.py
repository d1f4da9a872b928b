"""``bllossom info FILE.gguf``: what a GGUF holds, read safely without loading weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="Show a GGUF model's architecture, size, tokens and chat template."
    )
    parser.add_argument("model", type=Path, metavar="FILE.gguf")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def summarize(path: Path) -> dict[str, Any]:
    from bllossom_core.gguf_inspect import read_gguf_info

    info = read_gguf_info(path)
    specials = {
        role: {"id": token_id, "text": info.token_text(token_id)}
        for role, token_id in info.special_token_ids().items()
    }
    return {
        "file": str(path),
        "file_size": info.file_size,
        "gguf_version": info.version,
        "name": info.name,
        "architecture": info.architecture,
        "parameters": info.parameter_count,
        "quantization": info.quantization,
        "context_length": info.context_length,
        # The count the device report uses ("GPU: …, 31/31 layers"): llama.cpp offloads
        # the transformer blocks and the output layer.
        "layers": info.block_count + 1,
        "blocks": info.block_count,
        "vocab_size": info.vocab_size,
        "tokenizer": info.get("tokenizer.ggml.model"),
        "add_bos_token": info.add_bos_token,
        "special_tokens": specials,
        "chat_template": info.chat_template,
    }


def run(args: argparse.Namespace) -> int:
    from bllossom_core import human_size
    from bllossom_core.commands.generate import refuse_folder

    refuse_folder(args.model)
    summary = summarize(args.model)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    specials = ", ".join(
        f"{role}={v['id']} {v['text']!r}" for role, v in summary["special_tokens"].items()
    )
    rows = [
        ("File", f"{summary['file']} ({human_size(summary['file_size'])})"),
        ("Name", summary["name"]),
        (
            "Architecture",
            f"{summary['architecture']}, {summary['layers']} layers "
            f"({summary['blocks']} transformer blocks + the output layer)",
        ),
        ("Parameters", f"{summary['parameters'] / 1e6:.1f}M"),
        ("Quantization", summary["quantization"]),
        ("Context length", summary["context_length"]),
        ("Vocabulary", f"{summary['vocab_size']} tokens ({summary['tokenizer']})"),
        ("Adds BOS", "yes" if summary["add_bos_token"] else "no"),
        ("Special tokens", specials or "none"),
    ]
    for label, value in rows:
        print(f"{label + ':':<16}{value}")
    template = summary["chat_template"]
    print("Chat template:  " + ("none" if not template else ""))
    if template:
        print(template)
    return 0
