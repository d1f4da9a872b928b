"""Files around the store: exports never clobber data, database paths that are not files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bllossom_core.errors import StorageError
from bllossom_core.store import ConversationStore


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    store = ConversationStore(tmp_path / "db" / "conversations.sqlite3")
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "보관할 질문")
    return store


def test_export_refuses_an_existing_file_unless_told_to_overwrite(
    store: ConversationStore, tmp_path: Path
) -> None:
    target = tmp_path / "notes.json"
    target.write_text("precious")
    target.chmod(0o640)
    with pytest.raises(StorageError, match="already exists; it was left unchanged") as caught:
        store.export_file(target)
    assert caught.value.path == target and target.read_text() == "precious"
    store.export_file(target, overwrite=True)  # e.g. after the app asked the user
    assert "보관할 질문" in target.read_text("utf-8")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an overwritten file keeps its mode
    store.close()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_export_never_writes_over_the_database(store: ConversationStore, suffix: str) -> None:
    target = store.path.with_name(store.path.name + suffix)
    before = target.read_bytes() if target.exists() else None
    with pytest.raises(StorageError, match="is the conversation database itself"):
        store.export_file(target, overwrite=True)
    with pytest.raises(StorageError, match="is the conversation database itself"):
        store.export_file(store.path.parent / ".." / "db" / target.name)
    assert (target.read_bytes() if target.exists() else None) == before
    assert len(store.list_conversations()) == 1
    store.close()


def test_export_expands_home_and_uses_the_umask(
    store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o027)
    try:
        written = store.export_file("~/exports/chat.md")
    finally:
        os.umask(old)
    assert written == tmp_path / "home" / "exports" / "chat.md"
    assert "보관할 질문" in written.read_text("utf-8") and not (tmp_path / "~").exists()
    assert stat.S_IMODE(written.stat().st_mode) == 0o640
    store.close()


def test_export_to_a_folder_says_it_is_a_folder(store: ConversationStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        store.export_file(tmp_path)
    assert (
        str(caught.value) == f"{tmp_path} is a folder. Give a file name, e.g. {tmp_path}/chat.md."
    )
    store.close()


def test_a_database_path_that_is_a_folder_is_named_so(tmp_path: Path) -> None:
    folder = tmp_path / "conversations.sqlite3"
    folder.mkdir()
    with pytest.raises(StorageError) as caught:
        ConversationStore(folder)
    message = str(caught.value)
    assert message.startswith(f"The conversation database {folder} is a folder, not a file.")
    assert "drive is connected" not in message and "unable to open" not in message
    assert folder.is_dir() and not any(folder.iterdir())


def test_damaged_database_advice_does_not_name_app_buttons(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    path.write_bytes(b"not a database\n" * 500)
    with pytest.raises(StorageError) as caught:
        ConversationStore(path)
    hint = caught.value.hint or ""
    assert "choose '" not in hint.lower() and "'Start a new database'" not in hint
    assert "move the damaged file aside" in hint and "start a new database" in hint
    assert "nothing is deleted" in hint


def test_export_never_touches_the_process_umask(
    store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the umask means setting it, for every thread at once (a file another
    thread creates meanwhile would get mode 0o666): the export uses the shared atomic
    writer, which lets the kernel apply the umask instead."""

    def umask_changed(mask: int) -> int:
        raise AssertionError(f"os.umask({mask:#o}) called during an export")

    monkeypatch.setattr(os, "umask", umask_changed)
    written = store.export_file(tmp_path / "new.md")
    assert "보관할 질문" in written.read_text("utf-8")
    store.export_file(tmp_path / "new.md", overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    store.close()
