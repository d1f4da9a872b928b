"""Saved conversations: a SQLite database of conversations, reply versions and branches.

The public API (stable; the desktop app and the CLI use it)::

    from bllossom_core.store import ConversationStore

    store = ConversationStore()                      # paths.database_path(), or a path
    conversation = store.create_conversation(model="bllossom-8b-q4_k_m.gguf")
    question = store.add_message(conversation.id, "user", "안녕하세요?")
    with store.start_reply(conversation.id) as reply:  # a ReplyWriter
        prompt = store.chat_messages(conversation.id, up_to=reply.parent_id)
        stream = engine.stream_chat(prompt, conversation.settings)
        for piece in stream.events():                 # a reasoning model's thinking apart
            if piece.kind == "thinking":
                reply.append_thinking(piece.text)
            else:
                reply.append(piece.text)              # committed at least every 0.5 s
        reply.finish(stream.stats)                    # an exception calls reply.fail()
    store.thread(conversation.id)                     # [question, reply] with "n/m" info
    store.regenerate(reply.message_id)                # a second version of the reply
    store.search("안녕")                              # SearchHit, snippet "[[안녕]]하세요?"
    store.export_file("chat.md", [conversation.id], language="ko")

Messages form a tree: regenerating a reply or editing a message adds a sibling (the
old one and everything after it is kept) and the conversation remembers which branch
is shown (its active leaf); :meth:`ConversationStore.switch_version` changes it.
"""

from bllossom_core.store._markdown import EXPORT_LANGUAGES
from bllossom_core.store._records import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Conversation,
    Message,
    SearchHit,
)
from bllossom_core.store._reply import DEFAULT_CHECKPOINT_INTERVAL_S, ReplyWriter
from bllossom_core.store._schema import SCHEMA_VERSION
from bllossom_core.store._store import ConversationStore

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL_S",
    "EXPORT_LANGUAGES",
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "SCHEMA_VERSION",
    "Conversation",
    "ConversationStore",
    "Message",
    "ReplyWriter",
    "SearchHit",
]
