"""``bllossom generate/info`` argument checks and the CLI's handling of its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bllossom_core import cli, templates
from bllossom_core._format import human_size
from bllossom_core.commands import generate
from bllossom_core.errors import InputError
from bllossom_core.types import GenerationSettings, check_settings

ROOT = Path(__file__).resolve().parents[3]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--temperature", "-1", "0 or more (0 = greedy)"),
        ("--temperature", "nan", "0 or more (0 = greedy)"),
        ("--top-p", "5", "above 0 and at most 1"),
        ("--top-p", "0", "above 0 and at most 1"),
        ("--top-k", "-3", "0 (all tokens) or more"),
        ("--max-tokens", "0", "at least 1"),
        ("--max-tokens", "-5", "at least 1"),
        ("--repeat-penalty", "0", "above 0 (1 = none)"),
        ("--seed", "-2", "0 or more"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "chat"])
def test_sampling_arguments_are_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, option: str, value: str,
    allowed: str,
) -> None:  # fmt: skip
    extra = ["--prompt", "hi"] if command == "generate" else []
    code, out, err = run_cli(capsys, command, str(tmp_path / "m.gguf"), *extra, f"{option}={value}")
    assert code == 2 and out == ""
    assert err.startswith(f"bllossom: error: {option} must be {allowed}, not ")
    assert err.count("\n") == 1


def test_defaults_and_greedy_pass_the_check() -> None:
    assert check_settings(GenerationSettings()) == GenerationSettings()
    greedy = GenerationSettings(temperature=0.0, top_k=0, top_p=1.0)
    assert check_settings(greedy) is greedy


def test_help_documents_ranges_and_greedy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0 = greedy" in out and "above 0 and at most 1" in out and "0 = all" in out


def test_empty_prompt_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "m.gguf"), "--prompt", "  ")
    assert (
        code == 2 and err == "bllossom: error: --prompt is empty; give the message to reply to.\n"
    )


@pytest.mark.parametrize("command", [["info"], ["generate", "--prompt", "hi"], ["chat"]])
def test_a_folder_given_as_the_model_is_named_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "bllossom-8b"
    folder.mkdir()
    code, _, err = run_cli(capsys, command[0], str(folder), *command[1:])
    assert code == 2
    assert err.startswith(f"bllossom: error: {folder} is a folder, not a model file.")
    assert "Give the path of a .gguf file" in err and "does not exist" not in err


def test_template_choices_are_the_template_modules() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["generate", "m.gguf", "--prompt", "x", "--template", "llama3"])
    assert args.template == "llama3"
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "m.gguf", "--prompt", "x", "--template", "nope"])
    assert not hasattr(generate, "TEMPLATE_CHOICES")
    assert templates.TEMPLATE_NAMES == (
        "auto",
        "llama2-bllossom",
        "llama3",
        "chatml",
        "gemma",
        "gguf",
    )


def test_human_size() -> None:
    sizes = [0, 512, 1536, 5 * 1024**3, 3 * 1024**4]
    assert [human_size(n) for n in sizes] == ["0 B", "512 B", "1.5 KB", "5.0 GB", "3.0 TB"]


def test_bllossom_home_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BLLOSSOM_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "bllossom_core.cli", "chat", "--endpoint", "http://127.0.0.1:9"],
        input="", capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr == (
        f"bllossom: error: The data folder {home} (set by BLLOSSOM_HOME) is a file, not a "
        "folder. Set BLLOSSOM_HOME to a folder you can write to.\n"
    )
    assert home.read_text() == "not a folder"


def test_a_closed_output_pipe_ends_quietly() -> None:
    from tests.fixtures.gguf_models import fixture_gguf

    model = fixture_gguf("llama2-spm")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bllossom_core.cli", "info", str(model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` exiting before bllossom writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err == ""


def test_check_settings_is_one_function_for_every_front_end() -> None:
    with pytest.raises(InputError, match=r"--top-p must be above 0 and at most 1, not 1\.5\."):
        check_settings(GenerationSettings(top_p=1.5))


def test_info_and_the_device_report_count_layers_the_same_way(capsys) -> None:  # type: ignore[no-untyped-def]
    """`bllossom info` says 31 layers where the device report says 31/31 (30 blocks plus
    the output layer llama.cpp offloads too), not 30 against 31."""
    from bllossom_core.engine import LocalEngine
    from tests.fixtures.gguf_models import fixture_gguf

    model = fixture_gguf("llama2-spm-ko")
    assert cli.main(["info", str(model), "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    engine = LocalEngine.load(model, context_size=256)
    try:
        assert summary["layers"] == engine.device.total_layers == summary["blocks"] + 1
    finally:
        engine.close()
    assert cli.main(["info", str(model)]) == 0
    assert f"{summary['layers']} layers ({summary['blocks']} transformer blocks" in (
        capsys.readouterr().out
    )
