"""Streaming into the chat view: coalesced repaints, auto-scroll that yields to the user."""

from __future__ import annotations

import pytest

from desktop.chat_view import ChatView
from desktop.message_widget import ShownMessage


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    widget = ChatView()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    return widget


def long_conversation(count: int) -> list[ShownMessage]:
    return [
        ShownMessage(id=i, role="user" if i % 2 == 0 else "assistant", text=f"메시지 {i}\n\n" * 3)
        for i in range(count)
    ]


def test_pieces_are_coalesced_into_few_renders(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    view.set_messages([ShownMessage(id=1, role="assistant", text="")])
    widget = view.widgets[0]
    view.begin_stream(widget)
    for i in range(500):
        view.add_piece(f"토큰{i} ")
    assert view.renders == 0  # nothing is drawn per piece
    qtbot.waitUntil(lambda: view.renders >= 1, timeout=2000)
    qtbot.wait(60)
    assert view.renders <= 3
    assert widget.message.text == "".join(f"토큰{i} " for i in range(500))
    view.stop_stream()
    assert not view.streaming


def test_only_the_streaming_message_is_rerendered(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    messages = [*long_conversation(20), ShownMessage(id=99, role="assistant", text="")]
    view.set_messages(messages)
    first_body = view.widgets[0].body_html()
    view.begin_stream(view.widgets[-1])
    view.add_piece("**굵게**")
    view.flush_stream()
    assert "<strong>굵게</strong>" in view.widgets[-1].body_html()
    assert view.widgets[0].body_html() == first_body
    # While it streams, the reply's own buttons are disabled.
    assert not view.widgets[-1].regenerate_button.isEnabled()
    view.stop_stream()
    assert view.widgets[-1].regenerate_button.isEnabled()


def test_auto_scroll_follows_until_user_scrolls_up(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    view.set_messages([*long_conversation(30), ShownMessage(id=99, role="assistant", text="")])
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=2000)
    view.begin_stream(view.widgets[-1])
    for _ in range(5):
        view.add_piece("새 줄입니다.\n\n" * 5)
        view.flush_stream()
        qtbot.wait(20)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum(), timeout=2000)
    # The user scrolls up to read: the view must stay where they put it.
    bar.setValue(bar.maximum() // 3)
    assert not view.follow_bottom
    kept = bar.value()
    for _ in range(5):
        view.add_piece("더 많은 내용.\n\n" * 5)
        view.flush_stream()
        qtbot.wait(20)
    assert bar.value() == kept
    # Scrolling back to the bottom resumes following.
    bar.setValue(bar.maximum())
    assert view.follow_bottom
    max_before = bar.maximum()
    view.add_piece("끝.\n\n" * 20)
    view.flush_stream()
    qtbot.waitUntil(
        lambda: bar.maximum() > max_before and bar.value() == bar.maximum(), timeout=2000
    )
    view.stop_stream()


def test_interrupted_reply_is_marked(view) -> None:  # type: ignore[no-untyped-def]
    view.set_messages([ShownMessage(id=1, role="assistant", text="반쯤", complete=False)])
    assert view.widgets[0].notice.text() == "This reply was interrupted."
    assert not view.widgets[0].notice.isHidden()


def test_long_conversation_opens_at_its_end_then_fills_in(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    from desktop.chat_view import FIRST_BATCH

    messages = long_conversation(200)
    view.set_messages(messages)
    assert len(view.widgets) == FIRST_BATCH and view.loading
    assert [w.message.id for w in view.widgets] == [m.id for m in messages[-FIRST_BATCH:]]
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    assert [w.message.id for w in view.widgets] == [m.id for m in messages]
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum(), timeout=2000)


def test_jumping_to_an_early_message_loads_it_at_once(view) -> None:  # type: ignore[no-untyped-def]
    view.set_messages(long_conversation(100))
    widget = view.widget_for(3)
    assert widget is not None and widget.message.id == 3
    assert not view.loading and len(view.widgets) == 100


def test_message_labels_hint_one_width_whatever_their_text(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    """The root of the 45-180 ms stalls: Qt measures every message at the widest hint
    width among them, and a streaming reply's hint width grew with its text, so each
    new width made every message lay out its rich text again (benchmarks/desktop.py)."""
    from desktop.message_body import CHUNK_MIN_WIDTH

    view.resize(1100, 700)
    view.set_messages([*long_conversation(6), ShownMessage(id=99, role="assistant", text="")])
    stream = view.widgets[-1]
    view.begin_stream(stream)
    widths = set()
    for piece in [
        "짧은 답",
        " 가나다라" * 5,
        " 마바사" * 8,
        "\n\n```\n" + "x = 1; " * 9 + "\n```\n",
    ]:
        view.add_piece(piece)
        view.flush_stream()
        qtbot.wait(20)
        labels = [label for widget in view.widgets for label in widget.chunk_labels]
        widths |= {label.sizeHint().width() for label in labels}
        widths |= {label.minimumSizeHint().width() for label in labels}
    view.stop_stream()
    assert widths == {CHUNK_MIN_WIDTH}
    assert "x = 1;" in stream.body_html()
    # Heights are still the real ones: at the hint width and at the shown width.
    label = stream.chunk_labels[0]
    assert label.sizeHint().height() == label.heightForWidth(CHUNK_MIN_WIDTH) > 0
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))


def test_a_long_reply_is_as_tall_as_its_text_at_the_shown_width(qtbot, view) -> None:  # type: ignore[no-untyped-def]
    """Seen under Xvfb with a real model: a 5,000-character reply left the view blank,
    because each label was as tall as its text at the narrow hint width."""
    view.resize(900, 600)
    sentence = "서울의 봄 날씨는 따뜻하고 맑은 날이 많습니다."
    reply = " ".join(f"문장 {i}번: {sentence}" for i in range(120))
    question = ShownMessage(id=1, role="user", text="질문")
    view.set_messages([question, ShownMessage(id=2, role="assistant", text=reply)])
    labels = [label for widget in view.widgets for label in widget.chunk_labels]
    qtbot.waitUntil(lambda: all(label.width() > 400 for label in labels))
    for label in labels:
        assert label.height() <= label.heightForWidth(label.width()) + 2
    content = view.widget()
    needed = content.layout().heightForWidth(content.width())
    assert content.height() <= needed + 2
