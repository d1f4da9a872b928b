"""``bllossom generate`` and ``bllossom info`` run as a user would run them."""

from __future__ import annotations

import itertools
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bllossom_core.llama_vocab import open_vocab
from bllossom_core.templates import render_prompt_ids
from bllossom_core.types import ChatMessage
from tests.fixtures.checkpoints import Family
from tests.fixtures.gguf_models import fixture_gguf, reasoning_gguf

PROMPT = "서울에 대해 알려줘. Keep it short."


def bllossom(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "bllossom_core.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=root,
    )  # fmt: skip


def _plain_greedy_text(path: Path, family: Family, max_tokens: int) -> tuple[str, int]:
    from llama_cpp import Llama

    vocab = open_vocab(path)
    info = vocab._info
    prompt = render_prompt_ids([ChatMessage("user", PROMPT)], "auto", vocab, info.chat_template)
    plain = Llama(model_path=str(path), n_ctx=512, n_threads=1, verbose=False)
    tokens = []
    for token in itertools.islice(
        plain.generate(prompt.ids, temp=0.0, repeat_penalty=1.1, top_k=40, top_p=0.9), max_tokens
    ):
        if token in prompt.stop_ids or vocab.is_end_of_generation(token):
            break
        tokens.append(token)
    plain.close()
    return vocab.detokenize(tokens).decode("utf-8", errors="replace"), len(prompt.ids)


@pytest.mark.parametrize("family", ["llama3-bpe-ko", "llama2-spm"])
def test_generate_json_greedy_equals_plain_llama_cpp(family: Family) -> None:
    path = fixture_gguf(family)
    done = bllossom("generate", str(path), "--prompt", PROMPT, "--temperature", "0", "--json",
                    "--max-tokens", "24", "--context-size", "512", "--threads", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected_text, prompt_tokens = _plain_greedy_text(path, family, 24)
    assert result["text"] == expected_text
    assert result["stats"]["prompt_tokens"] == prompt_tokens
    assert result["stats"]["generated_tokens"] >= 1
    assert result["stats"]["time_to_first_token_s"] > 0
    assert result["device"]["backend"] == "cpu"
    assert result["device"]["summary"].startswith("CPU: ")
    assert result["template"] == ("llama3" if family.startswith("llama3") else "llama2-bllossom")


def test_generate_streams_plain_text_and_reports_device() -> None:
    path = fixture_gguf("llama3-bpe-ko")
    done = bllossom("generate", str(path), "--prompt", PROMPT, "--temperature", "0",
                    "--max-tokens", "24", "--context-size", "512", "--threads", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected_text, _ = _plain_greedy_text(path, "llama3-bpe-ko", 24)
    assert done.stdout == expected_text + "\n"
    assert "[CPU: " in done.stderr


def test_generate_refuses_bad_files_and_arguments(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.gguf"
    hostile.write_bytes(b"GGUF\x03\x00\x00\x00" + (2**62).to_bytes(8, "little") + b"\0" * 31)
    started = time.monotonic()
    done = bllossom("generate", str(hostile), "--prompt", "hi")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("bllossom: error: ") and done.stderr.count("\n") == 1
    assert "hostile.gguf is not a usable GGUF file" in done.stderr
    assert time.monotonic() - started < 60  # a hang would hit the subprocess timeout instead
    missing = bllossom("generate", str(tmp_path / "nope.gguf"), "--prompt", "hi")
    assert missing.returncode == 1 and "does not exist" in missing.stderr  # the reader says so
    zero = bllossom(
        "generate", str(fixture_gguf("llama2-spm")), "--prompt", "x", "--max-tokens", "0"
    )
    assert zero.returncode == 2 and "--max-tokens" in zero.stderr


def test_info_prints_metadata_without_loading() -> None:
    path = fixture_gguf("llama3-bpe-ko")
    done = bllossom("info", str(path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # llama.cpp counts the output layer too, as the device report does ("3/3 layers")
    assert "Architecture:   llama, 3 layers (2 transformer blocks + the output layer)" in out
    assert "Quantization:   F16" in out
    assert "Vocabulary:     145088 tokens (gpt2)" in out
    assert "bos=144782 '<|begin_of_text|>'" in out
    assert "<|start_header_id|>" in out  # the chat template
    as_json = json.loads(bllossom("info", str(path), "--json").stdout)
    assert as_json["context_length"] == 8192 and as_json["special_tokens"]["eos"]["id"] == 144791


def test_info_on_truncated_file_is_one_line_error(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(fixture_gguf("llama2-spm").read_bytes()[:5000])
    done = bllossom("info", str(truncated))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cut.gguf is not a usable GGUF file" in done.stderr


# --------------------------------------------------------------------------- reasoning


def _expected_reasoning_reply(path: Path, max_tokens: int) -> tuple[str, str]:
    """Thinking and answer of the greedy reply, split from plain llama.cpp's text: the
    DeepSeek-R1 prompt opens the think block, so all before ``</think>`` is thinking."""
    text, _ = _plain_greedy_text(path, "llama3-bpe", max_tokens)
    thinking, _, answer = text.partition("</think>")
    return thinking.strip(), answer.lstrip()


def _generate_reasoning(*extra: str, tty: bool = False) -> tuple[int, str, str]:
    path = reasoning_gguf()
    args = ("generate", str(path), "--prompt", PROMPT, "--temperature", "0", "--max-tokens",
            "24", "--context-size", "512", "--threads", "1", *extra)  # fmt: skip
    if not tty:
        done = bllossom(*args)
        return done.returncode, done.stdout, done.stderr
    # stdout on a pseudo-terminal, as in an interactive shell
    root = Path(__file__).resolve().parents[2]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bllossom_core.cli", *args], stdout=follower,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = proc.communicate(timeout=120)
    output = b"".join(chunks).decode().replace("\r\n", "\n")
    return proc.returncode, output, err.decode()


def test_generate_json_gives_thinking_and_answer_apart() -> None:
    code, out, err = _generate_reasoning("--json")
    assert code == 0, err
    result = json.loads(out)
    thinking, answer = _expected_reasoning_reply(reasoning_gguf(), 24)
    assert thinking  # the prompt opened the block, so the reply starts with thinking
    assert (result["thinking"], result["text"]) == (thinking, answer)
    assert result["stats"]["thinking_seconds"] >= 0


def test_generate_prints_thinking_plain_when_piped_and_hides_it_on_request() -> None:
    thinking, answer = _expected_reasoning_reply(reasoning_gguf(), 24)
    code, out, err = _generate_reasoning()
    assert code == 0, err
    assert "\x1b" not in out  # no escape codes into a pipe
    assert out == f"{thinking}\n\n{answer}\n"
    code, out, err = _generate_reasoning("--hide-thinking")
    assert code == 0, err
    assert out == f"{answer}\n"


def test_generate_dims_thinking_on_a_terminal() -> None:
    thinking, answer = _expected_reasoning_reply(reasoning_gguf(), 24)
    code, out, err = _generate_reasoning(tty=True)
    assert code == 0, err
    assert out == f"\x1b[2m{thinking}\x1b[0m\n\n{answer}\n"
