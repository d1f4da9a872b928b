"""Server-Sent Events parsing for :mod:`bllossom_core.remote` (internal).

Only what chat completions use: ``data:`` fields joined per event, comments and other
fields ignored, events ending at a blank line. Lines are decoded whole, so a UTF-8
character split across network packets is never split in the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream is not valid Server-Sent Events."""


def iter_sse_data(readline: Callable[[int], bytes]) -> Iterator[str]:
    """Yield the ``data`` of each event until the stream ends (``readline`` returns b"").

    ``readline(limit)`` is a binary file's ``readline``. A final event without its
    blank line is still delivered (some servers close right after ``data: [DONE]``).
    """
    data_lines: list[str] = []
    size = 0
    while True:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        if len(raw) > MAX_LINE_BYTES:
            raise SSEError("an event line is longer than 4 MiB")
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise SSEError(f"the event stream is not UTF-8 ({error})") from error
        if not line:
            if data_lines:
                yield "\n".join(data_lines)
            data_lines, size = [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            value = value[1:] if value.startswith(" ") else value
            size += len(value)
            if size > MAX_EVENT_BYTES:
                raise SSEError("an event is larger than 16 MiB")
            data_lines.append(value)
    if data_lines:
        yield "\n".join(data_lines)
