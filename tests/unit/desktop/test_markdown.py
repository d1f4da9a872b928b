"""Markdown rendering: structure, highlighted code with copy links, no raw HTML."""

from __future__ import annotations

import re

from desktop.markdown import MarkdownRenderer, MarkdownStyle, plain_to_html, split_chunks


def render(text: str) -> tuple[str, list[str]]:
    result = MarkdownRenderer(MarkdownStyle(copy_label="복사")).render(text)
    return result.html, result.code_blocks


def test_headings_lists_and_tables() -> None:
    html, _ = render("# 제목\n\n- 하나\n- 둘\n\n| 이름 | 값 |\n|---|---|\n| 가 | 1 |\n")
    assert "<h1>제목</h1>" in html
    assert re.search(r"<ul>\s*<li>하나</li>\s*<li>둘</li>\s*</ul>", html)
    assert '<table border="1"' in html and "<th>이름</th>" in html and "<td>가</td>" in html


def test_code_block_is_highlighted_and_copyable() -> None:
    html, blocks = render("설명\n\n```python\ndef f():\n    return 1\n```\n\n```\nplain\n```\n")
    assert blocks == ["def f():\n    return 1\n", "plain\n"]
    assert '<a href="copy:0">복사</a>' in html and '<a href="copy:1">복사</a>' in html
    # Pygments wraps the keyword in a coloured span (inline style: Qt has no CSS classes).
    assert re.search(r'<span style="[^"]*color: #[0-9A-Fa-f]{6}[^"]*">def</span>', html)
    assert ">python<" in html


def test_raw_html_from_the_model_is_escaped() -> None:
    html, _ = render('<img src="x" onerror="alert(1)"> **굵게**')
    assert "<img" not in html
    assert "&lt;img" in html
    assert "<strong>굵게</strong>" in html


def test_unfinished_fence_while_streaming_still_renders() -> None:
    html, blocks = render("```python\nprint(1")
    assert blocks == ["print(1"]
    assert "copy:0" in html


def test_user_text_is_shown_verbatim() -> None:
    assert plain_to_html("# 아님\n<b>x</b>") == "# 아님<br>&lt;b&gt;x&lt;/b&gt;"


def test_chunks_only_change_at_the_end_while_streaming() -> None:
    text = "".join(f"문단 {i} " * 30 + "\n\n" for i in range(20))
    text += "```python\n" + "x = 1\n\n" * 200 + "```\n\n끝"
    final = split_chunks(text)
    assert "".join(final) != "" and "\n".join(final) == text
    assert len(final) > 3
    # No split inside the fence: the code block with blank lines stays in one chunk.
    assert sum(chunk.count("```") for chunk in final) == 2
    assert any(chunk.count("```") == 2 for chunk in final)
    for cut in range(0, len(text), 97):
        prefix = split_chunks(text[:cut])
        # Every chunk but the last of a prefix is already final.
        assert prefix[:-1] == final[: len(prefix) - 1]
