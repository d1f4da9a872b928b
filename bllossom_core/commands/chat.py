"""``bllossom chat MODEL.gguf`` (or ``--endpoint URL``): an interactive terminal chat.

Replies stream as they are generated; Ctrl-C stops a reply (and at the prompt, quits).
Every message is saved to the conversation database the desktop app uses.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from bllossom_core.commands.generate import (
    SYSTEM_HELP,
    ReplyPrinter,
    add_load_arguments,
    add_sampling_arguments,
    ctrl_c_cancels,
    load_engine,
    settings_from_args,
)
from bllossom_core.errors import BllossomError, InputError
from bllossom_core.session import ChatSession, ConversationOptions
from bllossom_core.types import ChatEngine

HELP = (
    "Commands: /new (new conversation), /system [TEXT] (show or set the system prompt), "
    "/save [FILE] (export this conversation; .md = Markdown, else JSON), /help, /quit. "
    "To send a message that starts with a command word, begin it with //. "
    "Ctrl-C stops a reply."
)
COMMANDS = ("/new", "/system", "/save", "/help", "/quit", "/exit")
_COMMAND_WORD = re.compile(r"/[A-Za-z]+")


def parse_line(line: str) -> tuple[str, str]:
    """``("command", line)``, ``("unknown", word)`` or ``("text", message)``.

    A line is a command when its first word is one of :data:`COMMANDS`. Any other
    single word of letters after a slash (``/sve``) is a mistyped command, not sent.
    Everything else is a message, so ``/etc/hosts 설명해줘`` is sent as it is; a
    leading ``//`` sends the rest with one slash (``//new`` sends ``/new``).
    """
    if line.startswith("//"):
        return "text", line[1:]
    word = line.split(maxsplit=1)[0] if line.strip() else ""
    if word in COMMANDS:
        return "command", line
    if _COMMAND_WORD.fullmatch(word):
        return "unknown", word
    return "text", line


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("chat", help="Chat with a GGUF model or a remote server.")
    parser.add_argument("model", type=Path, nargs="?", metavar="MODEL.gguf")
    parser.add_argument("--endpoint", default=None,
                        help="OpenAI-compatible server URL instead of a local model")  # fmt: skip
    parser.add_argument("--api-key", default=None, help="API key for --endpoint")
    parser.add_argument("--remote-model", default=None, help="model id at --endpoint")
    parser.add_argument("--system", default=None, help=SYSTEM_HELP)
    parser.add_argument("--hide-thinking", action="store_true",
                        help="reasoning models: print only the answer (thinking is shown "
                        "dimmed by default)")  # fmt: skip
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


class TerminalChat:
    """The terminal front end of a :class:`~bllossom_core.session.ChatSession`:
    commands, printing and Ctrl-C; every rule about the conversation is the session's."""

    def __init__(
        self, engine: ChatEngine, options: ConversationOptions, *, show_thinking: bool = True
    ) -> None:
        from bllossom_core.store import ConversationStore

        self.show_thinking = show_thinking
        self.store = ConversationStore()
        self.session = ChatSession(self.store, engine, options=options)

    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    def command(self, line: str) -> bool:
        """Handle a /command; False means quit."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/new":
            self.session = ChatSession(
                self.store, self.session.engine, options=self.session.options
            )
            print("Started a new conversation.")
        elif name == "/system":
            if rest:
                self.session.set_system_prompt(rest)
                print("System prompt set.")
            else:
                print(f"System prompt: {self.session.options.system_prompt or '(model default)'}")
        elif name == "/save":
            self._save(rest)
        else:
            print(HELP)
        return True

    def _save(self, name: str) -> None:
        conversation_id = self.session.conversation_id
        if conversation_id is None:
            print("Nothing to save yet: send a message first.")
            return
        target = Path(name) if name else Path(f"conversation-{conversation_id}.md")
        try:
            written = self.store.export_file(target, [conversation_id])
        except BllossomError as exc:  # a bad file name must not end the chat
            print(f"Not saved: {exc}")
        else:
            print(f"Saved to {written}.")

    def reply(self, text: str) -> None:
        """Answer ``text``, printing the reply as it streams; Ctrl-C stops the reply."""
        reply = self.session.ask(text)
        printer = ReplyPrinter(sys.stdout, show_thinking=self.show_thinking)
        with ctrl_c_cancels(reply.cancel_token):
            for piece in reply:
                printer.write(piece)
        printer.end_thinking()  # a reply stopped while thinking
        sys.stdout.write("\n")
        if reply.stats.stop_reason == "cancelled" or reply.cancelled:
            print("[stopped]")
        if reply.stats.dropped_messages:
            print(f"[{reply.stats.dropped_messages} oldest messages no longer fit the context "
                  "and were left out]")  # fmt: skip

    def close(self) -> None:
        self.store.close()


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    engine = _open_engine(args)
    session = TerminalChat(
        engine,
        ConversationOptions(args.system, args.template or "auto", settings),
        show_thinking=not args.hide_thinking,
    )
    print(f"{engine.display_name} — {engine.device.summary}")
    note = getattr(engine, "template_note", None)  # a local file without a template
    if note:
        print(note)
    print(HELP)
    try:
        while True:
            try:
                line = input("> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            kind, text = parse_line(line)
            if not text.strip():
                continue
            if kind == "unknown":
                print(f"Unknown command {text}; /help lists them. To send a line starting "
                      "with / as a message, begin it with //.")  # fmt: skip
                continue
            if kind == "command":
                if not session.command(text):
                    return 0
                continue
            try:
                session.reply(text)
            except BllossomError as exc:  # e.g. a remote server failing mid-chat
                print(f"bllossom: error: {exc}", file=sys.stderr)
    finally:
        session.close()
        engine.close()
