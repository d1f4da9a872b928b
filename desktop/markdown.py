"""Markdown to the HTML subset Qt's rich text engine draws.

markdown-it-py parses (CommonMark + GFM tables and strikethrough, raw HTML off so
model output can never inject markup); Pygments colours fenced code with inline
styles (Qt has no style sheets for rich text classes). Each code block gets a
header row with its language and a "copy:N" link; the caller maps N back to the
code through :attr:`RenderedMarkdown.code_blocks`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight as pygments_highlight  # type: ignore[import-untyped]
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
from pygments.lexers import get_lexer_by_name, guess_lexer  # type: ignore[import-untyped]
from pygments.util import ClassNotFound  # type: ignore[import-untyped]

COPY_SCHEME = "copy"


@dataclass(frozen=True)
class MarkdownStyle:
    code_background: str = "#f4f4f6"
    muted_text: str = "#6b6b76"
    border: str = "#c8c8d0"
    monospace: str = "monospace"
    pygments_style: str = "default"
    copy_label: str = "Copy"
    inline_code_background: str = "#ececf0"
    quote_bar: str = "#c8c8d0"


@dataclass
class RenderedMarkdown:
    html: str
    code_blocks: list[str] = field(default_factory=list)


_FORMATTERS: dict[str, HtmlFormatter[str]] = {}


def _formatter(style: str) -> HtmlFormatter[str]:
    if style not in _FORMATTERS:
        _FORMATTERS[style] = HtmlFormatter(noclasses=True, nowrap=True, style=style)
    return _FORMATTERS[style]


def _highlight(code: str, language: str, style: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        if len(code) < 20:
            return html.escape(code)
        try:
            lexer = guess_lexer(code)
        except ClassNotFound:
            return html.escape(code)
    return str(pygments_highlight(code, lexer, _formatter(style)))


class MarkdownRenderer:
    def __init__(self, style: MarkdownStyle | None = None) -> None:
        self.style = style or MarkdownStyle()
        self._md = MarkdownIt("commonmark", {"html": False, "breaks": True})
        self._md.enable(["table", "strikethrough"])

        # markdown-it rebinds rule functions to its renderer, so hand it a closure.
        def fence(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
            return self._render_fence(tokens, idx, env)

        def quote_open(
            renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any
        ) -> str:
            # Qt's rich text draws <blockquote> as a bare indent: a bar cell marks it.
            s = self.style
            return (
                '<table cellspacing="0" cellpadding="0" style="margin: 4px 0;"><tr>'
                f'<td width="3" bgcolor="{s.quote_bar}"></td>'
                f'<td style="padding-left: 10px; color: {s.muted_text};">'
            )

        def quote_close(
            renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any
        ) -> str:
            return "</td></tr></table>\n"

        self._md.add_render_rule("fence", fence)
        self._md.add_render_rule("code_block", fence)
        self._md.add_render_rule("blockquote_open", quote_open)
        self._md.add_render_rule("blockquote_close", quote_close)

    def render(self, text: str) -> RenderedMarkdown:
        env: dict[str, Any] = {"code_blocks": []}
        body = self._md.render(text, env)
        s = self.style
        body = body.replace(
            "<table>",
            f'<table border="1" cellspacing="0" cellpadding="5" '
            f'style="border-collapse: collapse; border-color: {s.border};">',
        )
        body = body.replace(
            "<code>",
            f'<code style="background-color: {s.inline_code_background}; '
            f'font-family: {s.monospace};">&nbsp;',
        ).replace("</code>", "&nbsp;</code>")
        body = _TASK.sub(lambda m: m.group(1) + ("☑ " if m.group(2) in "xX" else "☐ "), body)
        return RenderedMarkdown(_nested_list_markers(body), env["code_blocks"])

    def highlight_code(self, code: str, language: str) -> str:
        """A code block's text as highlighted HTML, lines kept whole (no wrapping)."""
        s = self.style
        highlighted = _highlight(code.rstrip("\n"), language, s.pygments_style)
        return (
            f'<pre style="font-family: {s.monospace}; margin: 0; white-space: pre;">'
            f"{highlighted}</pre>"
        )

    def _render_fence(self, tokens: Sequence[Any], idx: int, env: dict[str, Any]) -> str:
        token = tokens[idx]
        language = (token.info or "").strip().split(" ")[0]
        code = token.content
        blocks: list[str] = env["code_blocks"]
        index = len(blocks)
        blocks.append(code)
        s = self.style
        highlighted = _highlight(code.rstrip("\n"), language, s.pygments_style)
        label = html.escape(language) if language else "&nbsp;"
        return (
            f'<table width="100%" cellspacing="0" cellpadding="6" bgcolor="{s.code_background}">'
            f'<tr><td><span style="color: {s.muted_text};">{label}</span></td>'
            f'<td align="right"><a href="{COPY_SCHEME}:{index}">{html.escape(s.copy_label)}</a>'
            f"</td></tr>"
            f'<tr><td colspan="2"><pre style="font-family: {s.monospace}; margin: 0;">'
            f"{highlighted}</pre></td></tr></table>\n"
        )


_TASK = re.compile(r"(<li>(?:\s*<p>)?)\[( |x|X)\] ")
_LIST_TAG = re.compile(r"<(/?)(ul|ol)>")
_BULLETS = ("disc", "circle", "square")
_NUMBERS = ("1", "a", "i")


def _nested_list_markers(body: str) -> str:
    """Give nested lists their own markers (disc, circle, square; 1, a, i) so the
    levels read apart; Qt's rich text would draw every level alike."""
    depth = 0

    def tag(match: re.Match[str]) -> str:
        nonlocal depth
        closing, kind = match.group(1), match.group(2)
        if closing:
            depth = max(0, depth - 1)
            return match.group(0)
        markers = _BULLETS if kind == "ul" else _NUMBERS
        marker = markers[depth % len(markers)]
        depth += 1
        return match.group(0) if depth == 1 else f'<{kind} type="{marker}">'

    return _LIST_TAG.sub(tag, body)


def fenced_code(chunk: str) -> tuple[str, str] | None:
    """``(language, code)`` when ``chunk`` is one fenced code block (see split_chunks),
    closed or still streaming; else ``None``."""
    lines = chunk.split("\n")
    opening = _FENCE.match(lines[0])
    if opening is None:
        return None
    marker = opening.group(1)
    language = lines[0][opening.end() :].strip().split(" ")[0]
    body = lines[1:]
    closing = _FENCE.match(body[-1]) if body else None
    if (
        closing is not None
        and closing.group(1)[0] == marker[0]
        and len(closing.group(1)) >= len(marker)
        and not body[-1].strip().strip(marker[0])
    ):
        body = body[:-1]
    elif any(_closes(line, marker) for line in body):
        return None  # text after the closing fence: not a single block
    code = "\n".join(body)
    return language, code + "\n" if code else ""


def _closes(line: str, marker: str) -> bool:
    match = _FENCE.match(line)
    return (
        match is not None
        and match.group(1)[0] == marker[0]
        and len(match.group(1)) >= len(marker)
        and not line.strip().strip(marker[0])
    )


def plain_to_html(text: str) -> str:
    """User messages are shown as typed (escaped, newlines kept), not as Markdown."""
    return html.escape(text).replace("\n", "<br>")


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CHUNK_CHARS = 600
"""A chunk is closed once it holds this much; closed chunks are never re-rendered."""


def split_chunks(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Split Markdown at blank lines outside code fences, into chunks of about
    ``chunk_chars``; every fenced code block is a chunk of its own (the chat view shows
    it in a block that scrolls sideways, see :func:`fenced_code`). Appending text only
    ever changes the *last* chunk, so a streaming reply re-renders a bounded amount per
    update instead of the whole reply.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None
    lines = text.split("\n")
    for index, line in enumerate(lines):
        is_last = index == len(lines) - 1
        match = _FENCE.match(line)
        opens = match is not None and fence is None and not is_last
        if opens and current:
            chunks.append("\n".join(current))  # the text before a code block
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        closes = False
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif _closes(line, fence):
                fence, closes = None, True
        if is_last:
            break
        if closes or (fence is None and not line.strip() and size >= chunk_chars):
            chunks.append("\n".join(current))
            current, size = [], 0
    chunks.append("\n".join(current))
    return chunks
