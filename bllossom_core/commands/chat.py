"""``bllossom chat MODEL.gguf`` (or ``--endpoint URL``): an interactive terminal chat.

Replies stream as they are generated; Ctrl-C stops a reply (and at the prompt, quits).
Every message is saved to the conversation database the desktop app uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bllossom_core.commands.generate import (
    add_load_arguments,
    add_sampling_arguments,
    ctrl_c_cancels,
    load_engine,
    settings_from_args,
)
from bllossom_core.errors import BllossomError, InputError
from bllossom_core.types import CancelToken, ChatEngine, GenerationSettings

HELP = (
    "Commands: /new (new conversation), /system [TEXT] (show or set the system prompt), "
    "/save [FILE] (export this conversation as Markdown), /help, /quit. "
    "Ctrl-C stops a reply."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("chat", help="Chat with a GGUF model or a remote server.")
    parser.add_argument("model", type=Path, nargs="?", metavar="MODEL.gguf")
    parser.add_argument("--endpoint", default=None,
                        help="OpenAI-compatible server URL instead of a local model")  # fmt: skip
    parser.add_argument("--api-key", default=None, help="API key for --endpoint")
    parser.add_argument("--remote-model", default=None, help="model id at --endpoint")
    parser.add_argument("--system", default=None, help="system prompt")
    add_sampling_arguments(parser)
    add_load_arguments(parser)
    parser.set_defaults(handler=run)


def _open_engine(args: argparse.Namespace) -> ChatEngine:
    if args.endpoint:
        from bllossom_core.remote import RemoteEngine

        return RemoteEngine(args.endpoint, api_key=args.api_key, model=args.remote_model)
    if args.model is None:
        raise InputError("Give a MODEL.gguf file or --endpoint URL to chat with.")
    return load_engine(args)


class ChatSession:
    """The conversation loop, separate from terminal I/O so it is easy to drive."""

    def __init__(self, engine: ChatEngine, settings: GenerationSettings, system: str | None,
                 template: str | None) -> None:  # fmt: skip
        from bllossom_core.store import ConversationStore

        self.engine = engine
        self.settings = settings
        self.system = system
        self.template = template
        self.store = ConversationStore()
        self.conversation_id = self._new_conversation()

    def _new_conversation(self) -> int:
        conversation = self.store.create_conversation(
            model=self.engine.display_name, template=self.template,
            system_prompt=self.system, settings=self.settings,
        )  # fmt: skip
        return conversation.id

    def command(self, line: str) -> bool:
        """Handle a /command; False means quit."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/new":
            self.conversation_id = self._new_conversation()
            print("Started a new conversation.")
        elif name == "/system":
            if rest:
                self.system = rest
                self.store.update_conversation(self.conversation_id, system_prompt=rest)
                print("System prompt set.")
            else:
                print(f"System prompt: {self.system or '(model default)'}")
        elif name == "/save":
            target = Path(rest) if rest else Path(f"conversation-{self.conversation_id}.md")
            written = self.store.export_file(target, [self.conversation_id])
            print(f"Saved to {written}.")
        else:
            print(HELP)
        return True

    def reply(self, text: str) -> None:
        self.store.add_message(self.conversation_id, "user", text)
        messages = self.store.chat_messages(self.conversation_id)
        cancel = CancelToken()
        with self.store.start_reply(self.conversation_id) as writer, ctrl_c_cancels(cancel):
            stream = self.engine.stream_chat(messages, self.settings, cancel)
            for piece in stream:
                writer.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            writer.finish(stream.stats)
        sys.stdout.write("\n")
        if stream.stats.stop_reason == "cancelled":
            print("[stopped]")
        if stream.stats.dropped_messages:
            print(f"[{stream.stats.dropped_messages} oldest messages no longer fit the context "
                  "and were left out]")  # fmt: skip

    def close(self) -> None:
        self.store.close()


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    engine = _open_engine(args)
    session = ChatSession(engine, settings, args.system, args.template)
    print(f"{engine.display_name} — {engine.device.summary}")
    print(HELP)
    try:
        while True:
            try:
                line = input("> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not line:
                continue
            if line.startswith("/"):
                if not session.command(line):
                    return 0
                continue
            try:
                session.reply(line)
            except BllossomError as exc:  # e.g. a remote server failing mid-chat
                print(f"bllossom: error: {exc}", file=sys.stderr)
    finally:
        session.close()
        engine.close()
