"""Storage failures name their real cause: a full drive, a read-only folder, a database
locked by another program, a damaged or newer file. Replies are never lost to them.

The full and read-only drives are real: a small tmpfs mounted in a private mount
namespace (``unshare``), with the store opened by a child process inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bllossom_core.errors import DiskFullError, ErrorCode, StorageError
from bllossom_core.store import ConversationStore

REPO = Path(__file__).resolve().parents[3]

OPEN_STORE = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    sys.path.insert(0, sys.argv[2])
    from bllossom_core.errors import BllossomError
    from bllossom_core.store import ConversationStore
    try:
        with ConversationStore(sys.argv[1] + "/conversations.sqlite3") as store:
            conversation = store.create_conversation("t")
            store.add_message(conversation.id, "user", "x" * int(sys.argv[3]))
        print(json.dumps({"ok": True}))
    except BllossomError as error:
        print(json.dumps({"code": error.code.value, "message": str(error)}))
    """
)


def _namespace_works() -> bool:
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespace_works(), reason="needs unprivileged mount namespaces (unshare)"
)


def open_store_on_tmpfs(tmp_path: Path, setup: str, message_size: int = 10) -> dict[str, str]:
    """Mount a 256 KiB tmpfs on ``tmp_path/drive``, run ``setup`` (shell, $D is the
    drive), then open the store there in a child; returns its outcome."""
    drive = tmp_path / "drive"
    drive.mkdir()
    script = tmp_path / "open_store.py"
    script.write_text(OPEN_STORE)
    python = f"{sys.executable} {script} $D {REPO}"
    command = (
        f"D={drive}; mount -t tmpfs -o size=256k tmpfs $D && "
        f"{setup.replace('OPEN', python + ' 10')} && {python} {message_size}"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", command],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


FILL = "(dd if=/dev/zero of=$D/filler bs=4k count=1000 2>/dev/null || true)"


@needs_namespace
def test_full_drive_at_start_says_so(tmp_path: Path) -> None:
    # An existing database on a full drive: SQLite itself says "disk I/O error".
    outcome = open_store_on_tmpfs(tmp_path, f"OPEN && {FILL}")
    assert outcome["code"] == ErrorCode.DISK_FULL.value, outcome
    assert "is full" in outcome["message"] and str(tmp_path / "drive") in outcome["message"]
    assert "Free some space" in outcome["message"] and "connected" not in outcome["message"]


@needs_namespace
def test_full_drive_for_a_new_database_says_so(tmp_path: Path) -> None:
    outcome = open_store_on_tmpfs(tmp_path, FILL)
    assert outcome["code"] == ErrorCode.DISK_FULL.value, outcome


@needs_namespace
def test_drive_filling_while_saving_says_so(tmp_path: Path) -> None:
    outcome = open_store_on_tmpfs(tmp_path, "true", message_size=400_000)
    assert outcome["code"] == ErrorCode.DISK_FULL.value, outcome


@needs_namespace
@pytest.mark.parametrize("with_database", [True, False])
def test_read_only_data_folder_says_so(tmp_path: Path, with_database: bool) -> None:
    setup = "OPEN && " if with_database else ""
    outcome = open_store_on_tmpfs(tmp_path, setup + "mount -o remount,ro $D")
    assert outcome["code"] == ErrorCode.READ_ONLY.value, outcome
    message = outcome["message"]
    assert "read-only" in message and str(tmp_path / "drive") in message
    assert "BLLOSSOM_HOME" in message and "unable to open" not in message


def test_database_locked_by_another_program(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    with ConversationStore(path, busy_timeout_s=0.1) as store:
        conversation = store.create_conversation()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError) as caught:
                store.add_message(conversation.id, "user", "blocked")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert caught.value.code is ErrorCode.DATABASE_LOCKED
        assert "in use by another program" in str(caught.value) and str(path) in str(caught.value)
        store.add_message(conversation.id, "user", "after the lock")


def test_damaged_and_newer_databases_have_their_codes(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"not a database\n" * 500)
    with pytest.raises(StorageError) as caught:
        ConversationStore(damaged)
    assert caught.value.code is ErrorCode.DATABASE_CORRUPT
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError) as caught:
        ConversationStore(newer)
    assert caught.value.code is ErrorCode.DATABASE_TOO_NEW


def test_a_reply_whose_final_save_fails_is_saved_when_space_returns(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "full.sqlite3") as store:
        conversation = store.create_conversation("t")
        store.add_message(conversation.id, "user", "question")
        assert store._conn is not None
        writer = store.start_reply(conversation.id, checkpoint_interval_s=0.05)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the drive fills
        writer.append_thinking("생각 " * 50_000)
        writer.append("답변 " * 300_000)
        with pytest.raises(DiskFullError) as caught:
            writer.fail(RuntimeError("the server went away"))
        assert caught.value.code is ErrorCode.DISK_FULL and writer.unsaved
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
        deadline = time.monotonic() + 30
        while not writer.closed:  # the background thread retries the final save
            assert time.monotonic() < deadline, "the reply was never saved"
            time.sleep(0.05)
        saved = store.get_message(writer.message_id)
        assert saved.text == "답변 " * 300_000 and saved.thinking == "생각 " * 50_000
        assert saved.error == "the server went away" and not saved.complete
        assert not writer.unsaved


@pytest.mark.parametrize(
    ("piece", "stored"),
    [
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("undecodable byte \udcff", "undecodable byte \ufffd"),
        ("split pair \ud83d\ude00 joined", "split pair \U0001f600 joined"),
    ],
)
def test_text_that_is_not_valid_unicode_is_saved_not_lost(
    tmp_path: Path, piece: str, stored: str
) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation = store.create_conversation(piece, system_prompt=piece, model=piece)
        question = store.add_message(conversation.id, "user", piece)
        assert question.text == stored
        with pytest.raises(ValueError), store.start_reply(conversation.id) as writer:
            writer.append("partial ")
            writer.append(piece)
            raise ValueError(f"failed on {piece}")
        reply = store.get_message(writer.message_id)
        assert reply.text == "partial " + stored and reply.error == f"failed on {stored}"
        again = store.get_conversation(conversation.id)
        assert again.title == stored and again.system_prompt == stored and again.model == stored


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_folder_without_write_permission_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StorageError) as caught:
            ConversationStore(folder / "conversations.sqlite3")
    finally:
        folder.chmod(0o755)
    assert caught.value.code is ErrorCode.READ_ONLY
    assert "no write permission" in str(caught.value) and str(folder) in str(caught.value)
