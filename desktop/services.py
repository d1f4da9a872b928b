"""The desktop's one door into ``bllossom_core`` and ``converter``.

Widgets never import the core: they call this adapter, which speaks the core's
public API (``ConversationStore``, ``LocalEngine``, ``RemoteEngine``,
``converter.convert``) and hands back the small view types the widgets draw
(:class:`~desktop.chat_view.ShownMessage`, sidebar entries, :class:`ModelInfo`).
Everything here may be called from a worker thread except where noted; the store
is thread safe by its own contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bllossom_core import LocalEngine, RemoteEngine
from bllossom_core.errors import InputError
from bllossom_core.gguf_inspect import read_gguf_info
from bllossom_core.store import Conversation, ConversationStore, Message, ReplyWriter
from bllossom_core.types import CancelToken, ChatEngine, ChatMessage, GenerationSettings
from converter import SUPPORTED_QUANTS, ConversionResult, ProgressEvent, convert
from desktop.chat_view import ShownMessage
from desktop.settings import RegisteredModel
from desktop.sidebar import ConversationEntry, SearchEntry

TEMPLATES = ("auto", "llama2-bllossom", "llama3")
"""Chat template choices offered in the UI; ``auto`` means "as the GGUF says"."""
QUANTIZATIONS = tuple(SUPPORTED_QUANTS)
TRASH_KEEP_DAYS = 30
"""Deleted conversations stay restorable this long; older ones are erased at start."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    size_bytes: int
    quantization: str
    architecture: str
    context_length: int | None


def shown_message(message: Message) -> ShownMessage:
    return ShownMessage(
        id=message.id,
        role=message.role,
        text=message.text,
        sibling_index=message.sibling_index,
        sibling_count=message.sibling_count,
        sibling_ids=message.sibling_ids,
        complete=message.complete,
        error=message.error,
    )


class Services:
    """Conversations, models and conversion, behind one small interface."""

    def __init__(self, store: ConversationStore | None = None) -> None:
        self._store = store

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            self._store = ConversationStore()
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # ------------------------------------------------------------------ conversations
    def conversations(self) -> list[ConversationEntry]:
        return [ConversationEntry(c.id, c.title) for c in self.store.list_conversations()]

    def conversation(self, conversation_id: int) -> Conversation:
        return self.store.get_conversation(conversation_id)

    def create_conversation(
        self,
        model: str | None,
        template: str,
        system_prompt: str | None,
        settings: GenerationSettings,
    ) -> Conversation:
        return self.store.create_conversation(
            model=model,
            template=template,
            system_prompt=system_prompt,
            settings=settings,
        )

    def update_conversation(self, conversation_id: int, **changes: Any) -> Conversation:
        return self.store.update_conversation(conversation_id, **changes)

    def rename(self, conversation_id: int, title: str) -> None:
        self.store.rename_conversation(conversation_id, title)

    def delete(self, conversation_id: int) -> None:
        self.store.delete_conversation(conversation_id)

    def restore(self, conversation_id: int) -> None:
        self.store.restore_conversation(conversation_id)

    def purge_old_deleted(self) -> int:
        """Erase conversations in the trash for longer than :data:`TRASH_KEEP_DAYS`."""
        return self.store.purge_deleted(TRASH_KEEP_DAYS * 24 * 3600.0)

    def deleted_conversations(self) -> list[ConversationEntry]:
        """The trash, most recently changed first (see :meth:`purge_old_deleted`)."""
        return [
            ConversationEntry(c.id, c.title) for c in self.store.list_conversations(deleted=True)
        ]

    def export_file(
        self, path: Path, conversation_ids: list[int] | None = None, *, overwrite: bool = False
    ) -> Path:
        """Markdown for ``.md``/``.markdown``, JSON otherwise; all conversations for ``None``.

        An existing file is replaced only with ``overwrite`` (the user confirmed it).
        """
        return self.store.export_file(path, conversation_ids, overwrite=overwrite)

    def import_file(self, path: Path) -> list[int]:
        """Add the conversations of a JSON export as new ones; returns their ids."""
        try:
            document = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path} is not a text file.",
                hint="Choose a .json file exported by Bllossom.",
                path=path,
            ) from error
        except OSError as error:
            raise InputError(
                f"{path} could not be read: {error.strerror}.",
                hint="Check that the file exists and that you may read it.",
                path=path,
            ) from error
        return self.store.import_json(document)

    def thread(self, conversation_id: int) -> list[ShownMessage]:
        return [shown_message(m) for m in self.store.thread(conversation_id)]

    def switch_version(self, message_id: int) -> list[ShownMessage]:
        return [shown_message(m) for m in self.store.switch_version(message_id)]

    def search(self, query: str) -> list[SearchEntry]:
        return [
            SearchEntry(
                h.conversation_id, h.conversation_title, h.message_id, h.excerpt, h.highlights
            )
            for h in self.store.search(query)
        ]

    def add_user_message(self, conversation_id: int, text: str) -> None:
        self.store.add_message(conversation_id, "user", text)

    def edit_user_message(self, message_id: int, text: str) -> None:
        self.store.edit_message(message_id, text)

    def prepare_reply(self, conversation_id: int) -> tuple[list[ChatMessage], ReplyWriter]:
        """The prompt for the active branch, and a writer for its new reply."""
        messages = self.store.chat_messages(conversation_id)
        return messages, self.store.start_reply(conversation_id)

    def prepare_regeneration(self, message_id: int) -> tuple[list[ChatMessage], ReplyWriter]:
        """The prompt that led to reply ``message_id``, and a writer for a new version."""
        original = self.store.get_message(message_id)
        # Up to the question (the new version's parent, ``writer.parent_id``): neither the
        # old version nor the new, empty one. Read first, so a failure leaves no empty reply.
        messages = self.store.chat_messages(original.conversation_id, up_to=original.parent_id)
        return messages, self.store.regenerate(message_id)

    # ------------------------------------------------------------------ models
    @staticmethod
    def inspect_model(path: Path | str) -> ModelInfo:
        """Read a GGUF's header safely (no weights): name, size, quantization."""
        path = Path(path)
        if not path.is_file():
            raise InputError(
                f"{path} does not exist.", hint="Choose an existing .gguf file.", path=path
            )
        info = read_gguf_info(path)
        return ModelInfo(
            name=info.name,
            path=path,
            size_bytes=info.file_size,
            quantization=info.quantization,
            architecture=info.architecture,
            context_length=info.context_length,
        )

    @staticmethod
    def registered(info: ModelInfo) -> RegisteredModel:
        return RegisteredModel(
            name=info.name,
            path=str(info.path.resolve()),
            size_bytes=info.size_bytes,
            quantization=info.quantization,
        )

    @staticmethod
    def load_engine(model: RegisteredModel, template: str) -> ChatEngine:
        """Open a model; slow (seconds), so call it from a worker thread."""
        if model.is_remote:
            return RemoteEngine(
                model.base_url, model.api_key or None, model=model.remote_model or None
            )
        Services.inspect_model(model.path)  # a corrupt file fails here, fast and safely
        return LocalEngine.load(model.path, template=template)

    # ------------------------------------------------------------------ conversion
    @staticmethod
    def convert(
        source: str,
        output: Path,
        quant: str,
        progress: Callable[[ProgressEvent], None],
        cancel: CancelToken,
        verify: bool = True,
    ) -> ConversionResult:
        """Run the converter (from a worker thread); the result carries the report."""
        return convert(source, output, quant, verify=verify, progress=progress, cancel=cancel)
