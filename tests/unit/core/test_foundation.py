"""User data location and the CLI's error contract."""

from __future__ import annotations

import argparse
from pathlib import Path

import platformdirs
import pytest

from bllossom_core import cli, paths
from bllossom_core.errors import BllossomError, DiskFullError, InputError, StorageError


def test_bllossom_home_overrides_platform_dir(bllossom_home: Path) -> None:
    assert paths.data_dir() == bllossom_home
    assert paths.database_path().parent == bllossom_home
    assert paths.models_dir().is_dir()


def test_platform_dir_when_no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLLOSSOM_HOME")
    assert paths.data_dir(create=False) == Path(platformdirs.user_data_dir("Bllossom"))


def test_error_message_carries_hint_and_path() -> None:
    error = DiskFullError("No space left on /data.", hint="Free 2 GB and retry.", path="/data/x")
    assert isinstance(error, StorageError) and isinstance(error, BllossomError)
    assert str(error) == "No space left on /data. Free 2 GB and retry."
    assert error.path == Path("/data/x")


def _fake_command(error: Exception) -> argparse.ArgumentParser:
    def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        sub = subparsers.add_parser("boom")

        def handler(args: argparse.Namespace) -> int:
            raise error

        sub.set_defaults(handler=handler)

    parser = argparse.ArgumentParser(prog="bllossom")
    register(parser.add_subparsers())
    return parser


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (InputError("Unknown quantization 'Q9'.", hint="Use --quant Q4_K_M."), 2, "Q9"),
        (DiskFullError("No space left."), 1, "No space left."),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_cli_turns_user_errors_into_one_line_and_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    text: str,
) -> None:
    monkeypatch.setattr(cli, "build_parser", lambda *_: _fake_command(error))  # type: ignore[arg-type]
    assert cli.main(["boom"]) == code
    err = capsys.readouterr().err
    assert text in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_cli_bugs_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "build_parser", lambda *_: _fake_command(ZeroDivisionError()))
    with pytest.raises(ZeroDivisionError):
        cli.main(["boom"])


def test_cli_lists_the_public_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("convert", "info", "generate", "chat"):
        assert command in out


@pytest.mark.parametrize("package", ["bllossom_core", "bllossom_core.server"])
def test_the_public_names_resolve_to_their_modules_objects(package: str) -> None:
    import importlib

    root = importlib.import_module(package)
    exported = {name: module for module, names in root._EXPORTS.items() for name in names}
    for name in root.__all__:
        if name != "__version__":
            module = importlib.import_module(exported[name])
            assert getattr(root, name) is getattr(module, name), name
    assert set(root.__all__) - {"__version__"} == set(exported)
    assert set(exported) <= set(dir(root))
    with pytest.raises(AttributeError):
        root.no_such_name  # noqa: B018


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    import ast
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    found: list[str] = ast.literal_eval(loaded.stdout.strip())
    return found


def test_importing_one_module_does_not_load_the_engine() -> None:
    """Before: ``import bllossom_core.errors`` loaded llama.cpp, SQLite and HTTP (~200 ms
    before every ``bllossom`` command); ``bllossom --version`` built every subcommand."""
    code = (
        "import bllossom_core.errors, bllossom_core.cli as cli\n"
        "cli.build_parser(cli._named_subcommand(['--version']))\n"
        "import bllossom_core.server.options"
    )
    heavy = ("llama_cpp", "bllossom_core.engine", "sqlite3", "httpx", "numpy", "starlette")
    assert _loaded_after(code, heavy) == []


def test_help_loads_neither_numpy_nor_gguf() -> None:
    """Before: ``bllossom --help`` and ``bllossom convert --help`` imported gguf and numpy
    (~0.3 s) only to list the quantization types."""
    code = (
        "import contextlib, io, bllossom_core.cli as cli\n"
        "for argv in (['--help'], ['convert', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        cli.main(argv)"
    )
    assert _loaded_after(code, ("numpy", "gguf")) == []
