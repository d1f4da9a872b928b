"""``bllossom chat MODEL.gguf`` (or ``--endpoint URL``): an interactive terminal chat.

Replies stream as they are generated; Ctrl-C stops a reply (and at the prompt, quits).
Every message is saved to the conversation database the desktop app uses.
"""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bllossom_core.commands.generate import (
    SYSTEM_HELP,
    add_load_arguments,
    add_sampling_arguments,
    ctrl_c_cancels,
    load_engine,
    settings_from_args,
)
from bllossom_core.errors import BllossomError, InputError
from bllossom_core.types import CancelToken, ChatEngine, ChatMessage, GenerationSettings

if TYPE_CHECKING:
    from bllossom_core.store import Message

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
        self._unanswered: Message | None = None  # a question whose reply has no text

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
            self._unanswered = None
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
            try:
                written = self.store.export_file(target, [self.conversation_id])
            except BllossomError as exc:  # a bad file name must not end the chat
                print(f"Not saved: {exc}")
            else:
                print(f"Saved to {written}.")
        else:
            print(HELP)
        return True

    def reply(self, text: str) -> None:
        """Answer ``text`` and save both; nothing is saved when the reply cannot start.

        The engine checks the prompt (length, server reachable) before the user's
        message is stored. A reply that ends without any text (failed or stopped) is
        kept in the database with its error, but the store leaves empty replies out of
        prompts and the next message becomes a new version of the unanswered one, so
        the model never sees two user turns in a row.
        """
        placement: dict[str, Any] = {}  # add_message's default parent: the active leaf
        if self._unanswered is None:
            history = self.store.chat_messages(self.conversation_id)
        else:
            parent_id = self._unanswered.parent_id
            placement["parent_id"] = parent_id
            history = (
                self.store.chat_messages(self.conversation_id, up_to=parent_id)
                if parent_id is not None
                else self._system_messages()
            )
        cancel = CancelToken()
        stream = self.engine.stream_chat(
            [*history, ChatMessage("user", text)], self.settings, cancel
        )
        question = self.store.add_message(self.conversation_id, "user", text, **placement)
        self._unanswered = question
        with (
            closing(stream),
            self.store.start_reply(self.conversation_id) as writer,
            ctrl_c_cancels(cancel),
        ):
            for piece in stream:
                writer.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            writer.finish(stream.stats)
        if writer.text:
            self._unanswered = None
        sys.stdout.write("\n")
        if stream.stats.stop_reason == "cancelled":
            print("[stopped]")
        if stream.stats.dropped_messages:
            print(f"[{stream.stats.dropped_messages} oldest messages no longer fit the context "
                  "and were left out]")  # fmt: skip

    def _system_messages(self) -> list[ChatMessage]:
        system = self.store.get_conversation(self.conversation_id).system_prompt
        return [ChatMessage("system", system)] if system else []

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
