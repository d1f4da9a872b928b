"""Input that is not UTF-8 (EUC-KR/CP949 terminals, pasted bytes) never crashes the CLI:
arguments are refused with ENCODING_INVALID, typed lines are kept with U+FFFD and a
warning, file names keep their bytes. Each case runs the real ``bllossom`` in a child
process with bounded memory and time."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.core.test_remote import (
    FakeServer,
    Handler,
    Script,
    chunk,
)

ROOT = Path(__file__).resolve().parents[3]
EUC_KR_GREETING = "안녕하세요".encode("euc-kr")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def bllossom(
    *args: str | bytes, home: Path, stdin: bytes = b"", locale: str = "C.UTF-8"
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "BLLOSSOM_HOME": str(home),
        "LC_ALL": locale, "LANG": locale,
    }  # fmt: skip
    env.pop("PYTHONUTF8", None)
    env.pop("PYTHONIOENCODING", None)
    return subprocess.run(
        [sys.executable, "-m", "bllossom_core.cli", *args],
        input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=120, preexec_fn=_limits,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("--prompt", b"caf\xff", "byte 0xff at character 4"),
        ("--system", EUC_KR_GREETING, "byte 0xbe at character 1"),
    ],
)
def test_generate_refuses_arguments_that_are_not_utf8(
    tmp_path: Path, option: str, value: bytes, shown: str
) -> None:
    from tests.fixtures.gguf_models import fixture_gguf

    model = fixture_gguf("llama2-spm")
    extra: list[str | bytes] = [] if option == "--prompt" else ["--prompt", "hi"]
    done = bllossom("generate", str(model), option, value, *extra, home=tmp_path)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 2 and b"Traceback" not in done.stderr, err
    assert err.startswith(f"bllossom: error: {option} is not valid UTF-8 text ({shown});")
    assert "EUC-KR/CP949" in err and err.count("\n") == 1


def test_chat_refuses_a_system_prompt_that_is_not_utf8(tmp_path: Path) -> None:
    done = bllossom(
        "chat", "--endpoint", "http://127.0.0.1:9", "--system", b"\xfe\xff", home=tmp_path
    )
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert b"--system is not valid UTF-8 text (byte 0xfe at character 1)" in done.stderr


def recording_script(handler: Handler) -> None:
    handler.start_events()
    handler.send_chunked(chunk("네, 알겠습니다."))
    handler.send_chunked(chunk(finish="stop"))
    handler.send_chunked(b"data: [DONE]\n\n")
    handler.end_chunked()


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_chat_lines_that_are_not_utf8_are_kept_with_a_warning(
    serve: Callable[[Script], FakeServer], tmp_path: Path, locale: str
) -> None:
    server = serve(recording_script)
    typed = b"/system be brief \xff\nhello \xff world " + EUC_KR_GREETING + b"\n/quit\n"
    done = bllossom(
        "chat", "--endpoint", server.url, "--remote-model", "m",
        home=tmp_path, stdin=typed, locale=locale,
    )  # fmt: skip
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and "Traceback" not in err, err
    assert "warning: the text read was not valid UTF-8 (byte 0xff)" in err
    assert "네, 알겠습니다." in done.stdout.decode("utf-8")
    (request,) = [json.loads(body) for method, _, _, body in server.requests if method == "POST"]
    question = (b"hello \xff world " + EUC_KR_GREETING).decode("utf-8", "replace")
    assert request["messages"] == [
        {"role": "system", "content": "be brief \ufffd"},
        {"role": "user", "content": question},
    ]
    conn = sqlite3.connect(tmp_path / "conversations.sqlite3")
    stored = [row[0] for row in conn.execute("SELECT text FROM messages ORDER BY id")]
    conn.close()
    assert stored == [question, "네, 알겠습니다."]


def test_a_file_name_that_is_not_utf8_is_still_a_path(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    name = folder + b"/\xbe\xc8\xb3\xe7.gguf"  # an EUC-KR file name
    with open(name, "wb") as handle:
        handle.write(b"GGUF but not really")
    done = bllossom("info", name, home=tmp_path)
    assert done.returncode in (1, 2) and b"Traceback" not in done.stderr
    assert b"ENCODING" not in done.stderr and b"not valid UTF-8 text" not in done.stderr
    assert name in done.stderr  # the name is shown with its own bytes
