"""Full-text search over messages. Internal; see :meth:`ConversationStore.search`.

FTS5's trigram tokenizer matches any substring of three or more characters, which
suits Korean (no word segmentation needed) and is case-insensitive. Shorter queries
(one or two Hangul syllables are common) cannot be matched by trigrams, so they fall
back on a ``LIKE`` scan. A reasoning model's thinking is indexed in its own column
and searched only on request.
"""

from __future__ import annotations

import re
import sqlite3

from bllossom_core.store._records import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit

_TRIGRAM = 3
_CONTEXT_CHARS = 40
_ELLIPSIS = "…"

_SELECT = (
    "SELECT m.id, m.conversation_id, m.role, m.text, m.thinking, m.updated_at, c.title "
    "FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id "
)
# The NUL-free copies (see the version-3 migration): LIKE, too, stops at a NUL.
_TEXT = "coalesce(m.text_search, m.text)"
_THINKING = "coalesce(m.thinking_search, m.thinking)"


def search_copy(text: str) -> str | None:
    """The NUL-free copy FTS5 indexes instead of ``text``, or ``None`` when not needed."""
    return text.replace("\0", " ") if "\0" in text else None


def search(
    conn: sqlite3.Connection, query: str, limit: int, *, include_thinking: bool = False
) -> list[SearchHit]:
    needle = query.strip()
    if not needle or limit <= 0:
        return []
    if len(needle) >= _TRIGRAM:
        phrase = _fts_phrase(needle)
        rows = conn.execute(
            _SELECT + "JOIN messages_fts AS f ON f.rowid = m.id "
            "WHERE messages_fts MATCH ? AND c.deleted_at IS NULL "
            "ORDER BY m.updated_at DESC, m.id DESC LIMIT ?",
            (phrase if include_thinking else "{text} : " + phrase, limit),
        ).fetchall()
    else:
        pattern = f"%{_escape_like(needle)}%"
        where = f"{_TEXT} LIKE ? ESCAPE '\\'"
        arguments: tuple[str, ...] = (pattern,)
        if include_thinking:
            where = f"({where} OR {_THINKING} LIKE ? ESCAPE '\\')"
            arguments = (pattern, pattern)
        rows = conn.execute(
            _SELECT + f"WHERE {where} AND c.deleted_at IS NULL "
            "ORDER BY m.updated_at DESC, m.id DESC LIMIT ?",
            (*arguments, limit),
        ).fetchall()
    return [_hit(row, needle, include_thinking) for row in rows]


def _fts_phrase(text: str) -> str:
    """One FTS5 phrase: the query is matched literally, operators and all."""
    return '"' + text.replace('"', '""') + '"'


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _hit(row: sqlite3.Row, needle: str, include_thinking: bool) -> SearchHit:
    excerpt, highlights = make_excerpt(row["text"], needle)
    in_thinking = False
    if not highlights and include_thinking and row["thinking"]:
        thinking_excerpt, thinking_highlights = make_excerpt(row["thinking"], needle)
        if thinking_highlights:
            excerpt, highlights, in_thinking = thinking_excerpt, thinking_highlights, True
    return SearchHit(
        conversation_id=row["conversation_id"],
        conversation_title=row["title"],
        message_id=row["id"],
        role=row["role"],
        snippet=mark(excerpt, highlights),
        excerpt=excerpt,
        highlights=highlights,
        updated_at=row["updated_at"],
        in_thinking=in_thinking,
    )


def make_excerpt(
    text: str, needle: str, context: int = _CONTEXT_CHARS
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A window of ``text`` around the first match and the match ranges inside it."""
    matches = [m.span() for m in re.finditer(re.escape(needle), text, re.IGNORECASE)]
    if not matches:
        # SQLite's case folding matched where Python's did not: show the start, unmarked.
        cut = text[: 2 * context]
        return (cut + _ELLIPSIS if len(cut) < len(text) else cut), ()
    first_start, first_end = matches[0]
    start = max(0, first_start - context)
    end = min(len(text), first_end + context)
    prefix = _ELLIPSIS if start > 0 else ""
    suffix = _ELLIPSIS if end < len(text) else ""
    excerpt = prefix + text[start:end] + suffix
    shift = len(prefix) - start
    highlights = tuple((s + shift, e + shift) for s, e in matches if s >= start and e <= end)
    return excerpt, highlights


def mark(excerpt: str, highlights: tuple[tuple[int, int], ...]) -> str:
    pieces: list[str] = []
    position = 0
    for start, end in highlights:
        pieces += [excerpt[position:start], HIGHLIGHT_START, excerpt[start:end], HIGHLIGHT_END]
        position = end
    pieces.append(excerpt[position:])
    return "".join(pieces)
