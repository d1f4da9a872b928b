"""The one atomic file writer: all-or-nothing content, permissions, clean-up, errors."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bllossom_core import fileio
from bllossom_core.errors import DiskFullError, ErrorCode, StorageError
from bllossom_core.fileio import (
    TEMPORARY_SUFFIX,
    atomic_output,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_file_has_the_content_and_no_temporary_is_left(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with atomic_output(target, overwrite=False) as stream:
        stream.write(b"abc")
        stream.write(b"def")
        assert not target.exists(), "the target appeared before the block ended"
    assert target.read_bytes() == b"abcdef"
    assert _names(tmp_path) == ["out.bin"]


def test_text_is_utf8_with_unix_line_ends(tmp_path: Path) -> None:
    target = tmp_path / "대화.md"
    atomic_write_text(target, "안녕하세요\nhello\n", overwrite=False)
    assert target.read_bytes() == "안녕하세요\nhello\n".encode()


@posix_only
def test_new_file_gets_what_open_would_give_it(tmp_path: Path) -> None:
    reference = tmp_path / "plain"
    reference.write_bytes(b"")
    target = tmp_path / "atomic"
    atomic_write_bytes(target, b"x", overwrite=False)
    assert _mode(target) == _mode(reference)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_new_file_gets_the_given_mode_exactly(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "secret.json"
    atomic_write_text(target, "{}", overwrite=False, mode=mode)
    assert _mode(target) == mode


@posix_only
@pytest.mark.parametrize("mode", [None, 0o600, 0o644])
def test_replaced_file_keeps_its_permissions(tmp_path: Path, mode: int | None) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")
    target.chmod(0o604)
    atomic_write_text(target, "new", overwrite=True, mode=mode)
    assert target.read_text() == "new"
    assert _mode(target) == 0o604


def test_overwrite_false_refuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "chat.md"
    target.write_text("keep me")
    with pytest.raises(StorageError) as caught:
        atomic_write_text(target, "new", overwrite=False)
    assert caught.value.code is ErrorCode.OUTPUT_EXISTS
    assert str(target) in str(caught.value)
    assert target.read_text() == "keep me"
    assert _names(tmp_path) == ["chat.md"]


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "chat.md"
    with pytest.raises(StorageError) as caught, atomic_output(target, overwrite=False) as stream:
        stream.write(b"mine")
        target.write_text("someone else's")
    assert caught.value.code is ErrorCode.OUTPUT_EXISTS
    assert target.read_text() == "someone else's"
    assert _names(tmp_path) == ["chat.md"]


def test_overwrite_true_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    atomic_write_text(target, "new", overwrite=True)
    assert target.read_text() == "new"
    assert _names(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_a_failure_inside_the_block_leaves_the_target_untouched(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old model")
    with pytest.raises(type(error)), atomic_output(target, overwrite=True) as stream:
        stream.write(b"half a new model")
        stream.flush()
        raise error
    assert target.read_bytes() == b"old model"
    assert _names(tmp_path) == ["model.gguf"]


def test_disk_full_during_the_final_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError) as caught:
        atomic_write_bytes(target, b"new content", overwrite=True)
    assert caught.value.code is ErrorCode.DISK_FULL
    assert caught.value.path == tmp_path
    assert str(tmp_path) in str(caught.value)
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.gguf"]


def test_disk_full_while_writing(tmp_path: Path) -> None:
    target = tmp_path / "export.md"
    with pytest.raises(DiskFullError) as caught, atomic_output(target, overwrite=False):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.code is ErrorCode.DISK_FULL
    assert str(tmp_path) in str(caught.value)
    assert _names(tmp_path) == []


def test_other_errors_inside_the_block_are_not_disguised(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "x", overwrite=False):
        open(tmp_path / "missing-source")  # noqa: SIM115 - the caller's own read fails
    assert _names(tmp_path) == []


def test_the_file_and_its_folder_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write_bytes(tmp_path / "f", b"data", overwrite=False)
    assert synced[0] is False, "the file is flushed before the rename"
    if os.name == "posix":
        assert synced[-1] is True, "the folder is flushed after the rename"


def test_the_umask_is_never_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(mask: int) -> int:
        raise AssertionError("os.umask changes the whole process, other threads included")

    monkeypatch.setattr(os, "umask", forbidden)
    atomic_write_text(tmp_path / "a", "x", overwrite=False)
    atomic_write_text(tmp_path / "a", "y", overwrite=True, mode=0o600)
    assert (tmp_path / "a").read_text() == "y"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(StorageError, match="is a folder"):
        atomic_write_text(folder, "x", overwrite=True)
    assert folder.is_dir()
    assert _names(tmp_path) == ["folder"]


def test_a_missing_folder_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="Could not write"):
        atomic_write_text(tmp_path / "no" / "such" / "file.txt", "x", overwrite=False)


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_names_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StorageError) as caught:
            atomic_write_text(folder / "x.txt", "x", overwrite=False)
        assert str(folder) in str(caught.value)
    finally:
        folder.chmod(0o700)


def test_atomic_path_publishes_what_a_child_process_wrote(tmp_path: Path) -> None:
    target = tmp_path / "model-Q4_K_M.gguf"
    with atomic_path(target, overwrite=False, tag="q4_k_m") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".model-Q4_K_M.gguf.")
        assert temporary.name.endswith(".q4_k_m" + TEMPORARY_SUFFIX)
        code = "import sys; open(sys.argv[1], 'wb').write(b'quantized')"
        subprocess.run([sys.executable, "-c", code, str(temporary)], check=True)
    assert target.read_bytes() == b"quantized"
    assert _names(tmp_path) == ["model-Q4_K_M.gguf"]


def test_temporary_beside_is_always_removed(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    with fileio.temporary_beside(target, "f16") as temporary:
        assert temporary.exists()
        temporary.write_bytes(b"intermediate")
    assert _names(tmp_path) == []


def test_a_long_target_name_still_gets_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 240 + ".gguf")
    atomic_write_bytes(target, b"x", overwrite=False)
    assert target.read_bytes() == b"x"


@pytest.mark.parametrize("temporary", [".model.gguf.1a2b3c4d.part", ".model.gguf.4242.bf16.part"])
def test_errors_name_the_file_the_user_asked_for(tmp_path: Path, temporary: str) -> None:
    error = fileio.storage_error(OSError(errno.ENOSPC, "No space left"), tmp_path / temporary)
    assert isinstance(error, DiskFullError)
    assert "model.gguf was not written" in str(error)
    assert ".part" not in str(error)


def test_start_writeback_keeps_the_content(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    data = os.urandom(3 * 2**20)
    with atomic_output(target, overwrite=False) as stream:
        stream.write(data)
        stream.flush()
        fileio.start_writeback(stream.fileno(), 0, len(data))
    assert target.read_bytes() == data
