"""The thinking/answer splitter, driven by scripted streams split at every position."""

from __future__ import annotations

import itertools

import pytest

from bllossom_core.reasoning import (
    ThinkingSplitter,
    collect,
    ends_with_open_think,
    mentions_thinking,
)
from bllossom_core.types import StreamPiece

REPLY = "<think>\nThe user asks for the capital.\nIt is Seoul.\n</think>\n\n서울입니다."


def split_all(pieces: list[str], *, starts_thinking: bool = False) -> list[StreamPiece]:
    return list(ThinkingSplitter(starts_thinking=starts_thinking).split(pieces))


def texts(pieces: list[StreamPiece]) -> tuple[str, str]:
    whole = collect(pieces)
    return whole["thinking"], whole["answer"]


def every_two_cut_split(text: str) -> list[list[str]]:
    """``text`` cut in three at every pair of positions (tags split every possible way)."""
    cuts = itertools.combinations(range(1, len(text)), 2)
    return [[text[:a], text[a:b], text[b:]] for a, b in cuts]


def test_think_block_then_answer() -> None:
    pieces = split_all([REPLY])
    assert pieces == [
        StreamPiece("thinking", "The user asks for the capital.\nIt is Seoul."),
        StreamPiece("answer", "서울입니다."),
    ]


def test_tags_split_anywhere_give_the_same_result() -> None:
    expected = ("The user asks for the capital.\nIt is Seoul.", "서울입니다.")
    for pieces in every_two_cut_split(REPLY):
        assert texts(split_all(pieces)) == expected, pieces


def test_character_by_character_streams_thinking_then_answer() -> None:
    pieces = split_all(list(REPLY))
    assert texts(pieces) == ("The user asks for the capital.\nIt is Seoul.", "서울입니다.")
    kinds = [piece.kind for piece in pieces]
    assert kinds == sorted(kinds, key=["thinking", "answer"].index)
    assert kinds.count("thinking") > 10  # streamed live, not held until the tag


def test_block_opened_by_the_prompt() -> None:
    """Template ends with ``<think>\\n``: the reply starts inside with no opening tag."""
    reply = [
        "Okay",
        ", 2",
        " plus",
        " 2 is",
        " 4.\n",
        "</",
        "think",
        ">\n\n",
        "The answer",
        " is 4.",
    ]
    pieces = split_all(reply, starts_thinking=True)
    assert texts(pieces) == ("Okay, 2 plus 2 is 4.", "The answer is 4.")


def test_prompt_opened_block_with_a_repeated_opening_tag() -> None:
    pieces = split_all(["<th", "ink>\nhmm", "</think>ok"], starts_thinking=True)
    assert texts(pieces) == ("hmm", "ok")


def test_thinking_streams_live_and_holds_back_only_a_possible_tag() -> None:
    splitter = ThinkingSplitter(starts_thinking=True)
    assert splitter.feed("Let me think") == [StreamPiece("thinking", "Let me think")]
    assert splitter.feed(" about it </") == [StreamPiece("thinking", " about it")]
    assert splitter.feed("th") == []
    assert splitter.feed("ink>") == []
    assert not splitter.in_thinking
    assert splitter.feed("\n\nDone") == [StreamPiece("answer", "Done")]
    assert splitter.flush() == []


def test_a_false_alarm_is_given_back_as_thinking() -> None:
    splitter = ThinkingSplitter(starts_thinking=True)
    assert splitter.feed("a </th") == [StreamPiece("thinking", "a")]
    assert splitter.feed("ing>") == [StreamPiece("thinking", " </thing>")]


def test_reply_without_thinking_is_all_answer_and_unchanged() -> None:
    reply = ["  Hello", " world", "\n"]
    assert texts(split_all(reply)) == ("", "  Hello world\n")


def test_think_tag_later_in_an_answer_is_text() -> None:
    reply = ["Use the ", "<think>", " tag like ", "</think>", "."]
    assert texts(split_all(reply)) == ("", "Use the <think> tag like </think>.")


def test_answer_that_starts_like_a_tag() -> None:
    assert texts(split_all(["<", "b>bold</b>"])) == ("", "<b>bold</b>")
    assert texts(split_all(["<thi"])) == ("", "<thi")  # stream ended mid-guess


def test_reply_cut_off_while_thinking_keeps_the_thinking() -> None:
    pieces = split_all(["<think>step one ", "</thi"])
    assert texts(pieces) == ("step one </thi", "")


def test_empty_think_block() -> None:
    assert texts(split_all(["<think>\n\n</think>\n\n", "Hi"])) == ("", "Hi")


def test_thinking_seconds_from_first_thought_to_closing_tag() -> None:
    now = iter([10.0, 11.0, 13.5, 20.0, 21.0])
    splitter = ThinkingSplitter(clock=lambda: next(now))
    splitter.feed("<think>a")  # 10.0: the block opens
    splitter.feed("b")  # 11.0
    splitter.feed("</think>")  # 13.5: closes
    splitter.feed("answer")  # 20.0: answer time does not count
    splitter.flush()
    assert splitter.thinking_seconds == pytest.approx(3.5)


def test_thinking_seconds_none_without_thinking() -> None:
    splitter = ThinkingSplitter()
    list(splitter.split(["plain answer"]))
    assert splitter.thinking_seconds is None


def test_prompt_ending_detection() -> None:
    assert ends_with_open_think("<｜User｜>hi<｜Assistant｜><think>\n")
    assert not ends_with_open_think("<｜User｜>hi<｜Assistant｜>")
    assert not ends_with_open_think("<think>a</think>")
    assert mentions_thinking(None, "{{ content.split('</think>')[-1] }}")
    assert not mentions_thinking(None, "{{ messages }}")
