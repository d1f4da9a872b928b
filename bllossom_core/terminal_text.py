"""Text from the terminal that is not UTF-8: one policy for every ``bllossom`` command.

A terminal set to EUC-KR/CP949, or text pasted from elsewhere, can hand Python bytes
that are not UTF-8. Python turns them into lone surrogates (``b"\\xff"`` becomes
``"\\udcff"``), which crash the first thing that encodes the text (the tokenizer, the
database, the terminal). Bllossom never guesses another encoding; instead:

- **Command-line arguments are refused** before anything runs (nothing is lost: the
  user retypes the command): :class:`InputError` with ``ENCODING_INVALID`` names the
  option and the byte. An argument naming an existing file is a path, not text, and
  is accepted whatever its bytes (Linux file names need not be UTF-8).
- **Lines read from standard input are kept**, each invalid byte replaced by U+FFFD,
  with a warning on stderr naming the problem: refusing a line would end a chat.
- **Output never fails**: a file name's undecodable bytes are written back as they
  were, any other unencodable character as U+FFFD.

:func:`prepare_standard_streams` and :func:`refuse_undecodable_arguments` are called
once by :mod:`bllossom_core.cli`, so every subcommand gets this.
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys
from typing import Any

from bllossom_core._utf8 import has_surrogates
from bllossom_core.errors import ErrorCode, InputError

INPUT_ERRORS = "bllossom-replace-and-warn"
"""The codec error handler of standard input (see the module docstring)."""
OUTPUT_ERRORS = "bllossom-restore-bytes"
"""The codec error handler of standard output and error."""

ENCODING_HINT = (
    "Bllossom reads UTF-8: if your terminal uses another encoding (EUC-KR/CP949), switch "
    "it to UTF-8 (for example LANG=ko_KR.UTF-8) or convert the text first."
)

_warned_about: list[int] = []  # id() of the last input buffer warned about


def _replace_and_warn(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    if not _warned_about or _warned_about[-1] != id(error.object):
        _warned_about[:] = [id(error.object)]
        byte = error.object[error.start]
        print(
            f"bllossom: warning: the text read was not valid UTF-8 (byte 0x{byte:02x}); "
            f"each invalid byte was replaced by \ufffd. {ENCODING_HINT}",
            file=sys.stderr,
            flush=True,
        )
    return "\ufffd", error.end


def _restore_bytes(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(code - 0xDC00)
        else:
            out += "\ufffd".encode(error.encoding, "replace")
    return bytes(out), error.end


codecs.register_error(INPUT_ERRORS, _replace_and_warn)
codecs.register_error(OUTPUT_ERRORS, _restore_bytes)


def prepare_standard_streams() -> None:
    """Give stdin, stdout and stderr the error handlers of this module's policy, and
    UTF-8 where the locale says ASCII (a bare C locale: Korean could not pass at all)."""
    streams: list[tuple[Any, str]] = [
        (sys.stdin, INPUT_ERRORS),
        (sys.stdout, OUTPUT_ERRORS),
        (sys.stderr, OUTPUT_ERRORS),
    ]
    for stream, errors in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:  # replaced (tests capturing output), or no console
            continue
        changes = {"errors": errors}
        try:
            if codecs.lookup(stream.encoding).name == "ascii":
                changes["encoding"] = "utf-8"
            reconfigure(**changes)
        except (LookupError, OSError, ValueError, TypeError, AttributeError):
            continue  # e.g. a stream already read from


def refuse_undecodable_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Raise ``ENCODING_INVALID`` for a text argument that was not valid UTF-8."""
    names = _argument_names(parser)
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str) or not has_surrogates(item):
                continue
            if os.path.lexists(item):
                continue  # a path to an existing file: its bytes are its name
            position, what = _first_bad(item)
            raise InputError(
                f"{names.get(dest, dest)} is not valid UTF-8 text ({what} at character "
                f"{position + 1}); nothing was done.",
                hint=ENCODING_HINT,
                code=ErrorCode.ENCODING_INVALID,
            )


def _first_bad(text: str) -> tuple[int, str]:
    """Where the first character that is not text is, and what it was."""
    for position, char in enumerate(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # the byte Python could not decode
            return position, f"byte 0x{code - 0xDC00:02x}"
        if 0xD800 <= code <= 0xDFFF:
            return position, f"U+{code:04X}"
    return 0, "?"


def _argument_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``dest`` -> how the user wrote it (``--prompt``, or ``SOURCE`` for a positional)."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if action.option_strings:
            names[action.dest] = max(action.option_strings, key=len)
        elif isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                for dest, name in _argument_names(subparser).items():
                    names.setdefault(dest, name)
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else None
            names.setdefault(action.dest, metavar or action.dest.upper())
    return names
