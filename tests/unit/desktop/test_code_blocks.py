"""Code blocks scroll sideways with Copy in view; Markdown details read apart; the
conversation column keeps a readable width in very wide windows."""

from __future__ import annotations

import re

import pytest

from desktop.chat_view import MAX_CONTENT_WIDTH, ChatView
from desktop.markdown import MarkdownRenderer, MarkdownStyle, fenced_code, split_chunks
from desktop.message_body import CodeBlock
from desktop.message_widget import ShownMessage
from desktop.qt import QPoint, Qt

LONG_LINE = "result = compute(" + ", ".join(f"argument_{n}" for n in range(40)) + ")"
REPLY = f"예시 코드입니다:\n\n```python\n{LONG_LINE}\nprint(result)\n```\n\n끝."


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    widget = ChatView()
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.mark.parametrize("width", [700, 1000, 1200])
def test_long_code_lines_scroll_inside_the_block_and_copy_stays_visible(qtbot, view, width) -> None:  # type: ignore[no-untyped-def]
    view.resize(width, 600)
    view.set_messages([ShownMessage(1, "user", "코드 보여줘"), ShownMessage(2, "assistant", REPLY)])
    reply = view.widgets[1]
    blocks = [w for w in reply.chunk_labels if isinstance(w, CodeBlock)]
    assert len(blocks) == 1
    block = blocks[0]
    assert block.code == f"{LONG_LINE}\nprint(result)\n"
    qtbot.waitUntil(lambda: block.width() > 100)
    qtbot.waitUntil(lambda: block.scroller.horizontalScrollBar().maximum() > 0)
    # The whole line is there (not clipped): the code is wider than the block and the
    # block scrolls to its end.
    assert block.code_label.width() > block.scroller.viewport().width()
    assert LONG_LINE in block.code_label.text().replace("&quot;", '"') or "argument_39" in (
        block.code_label.text()
    )
    bar = block.scroller.horizontalScrollBar()
    bar.setValue(bar.maximum())
    right_edge = block.code_label.mapTo(block.scroller.viewport(), QPoint(0, 0)).x() + (
        block.code_label.width()
    )
    assert right_edge == block.scroller.viewport().width()
    # Copy is inside the visible part of the view, and copies the code.
    button = block.copy_button
    assert button.isVisible() and button.text() == "Copy"
    top_left = button.mapTo(view.viewport(), QPoint(0, 0))
    assert top_left.x() >= 0 and top_left.x() + button.width() <= view.viewport().width()
    copied: list[str] = []
    view.copy_requested.connect(copied.append)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert copied == [block.code]
    # The message itself is not wider than the view (no clipping at its right edge).
    assert reply.width() <= view.viewport().width()


def test_code_block_streams_into_its_own_chunk() -> None:
    chunks = split_chunks(REPLY)
    assert chunks[1].startswith("```python") and chunks[1].endswith("```")
    assert fenced_code(chunks[1]) == ("python", f"{LONG_LINE}\nprint(result)\n")
    assert fenced_code("```js\nlet a") == ("js", "let a\n")  # still streaming
    assert fenced_code(chunks[0]) is None


def test_inline_code_quotes_nested_and_task_lists_render_distinctly() -> None:
    style = MarkdownStyle(inline_code_background="#123456", quote_bar="#654321")
    html = (
        MarkdownRenderer(style)
        .render(
            "`pip install` 하세요.\n\n> 인용문\n\n- 바깥\n  - 안쪽\n    - 더 안쪽\n\n"
            "1. 첫째\n   1. 하위\n\n- [ ] 할 일\n- [x] 한 일\n"
        )
        .html
    )
    assert re.search(r'<code style="background-color: #123456;[^"]*">&nbsp;pip install', html)
    assert 'bgcolor="#654321"' in html and "인용문" in html and "<blockquote>" not in html
    assert '<ul type="circle">' in html and '<ul type="square">' in html
    assert '<ol type="a">' in html
    assert "☐ 할 일" in html and "☑ 한 일" in html and "[ ]" not in html


def test_very_wide_windows_keep_a_readable_column(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    view.resize(2400, 800)
    view.set_messages([ShownMessage(1, "user", "질문"), ShownMessage(2, "assistant", "답 " * 400)])
    reply = view.widgets[1]
    qtbot.waitUntil(lambda: reply.width() > 0)
    qtbot.waitUntil(lambda: MAX_CONTENT_WIDTH - 40 <= reply.width() <= MAX_CONTENT_WIDTH)
    left = reply.mapTo(view.viewport(), QPoint(0, 0)).x()
    right = view.viewport().width() - (left + reply.width())
    assert abs(left - right) <= 2  # centred
    # Narrow windows use the whole width.
    view.resize(600, 800)
    qtbot.waitUntil(lambda: reply.width() >= view.viewport().width() - 40)
