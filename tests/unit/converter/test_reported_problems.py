"""Regressions for problems a reviewer hit running the converter as a user would."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFReader

from bllossom_core.errors import (
    BllossomError,
    CheckpointError,
    InputError,
    StorageError,
    TokenizerError,
)
from bllossom_core.types import CancelToken
from converter import ProgressEvent, convert
from converter._convert import default_file_name


def _one_line_error(
    error: type[BllossomError], source: Path, out: Path, *needles: str, **kwargs: Any
) -> BllossomError:
    out.parent.mkdir(exist_ok=True)
    before = sorted(out.parent.iterdir())
    with pytest.raises(error) as caught:
        convert(source, out, kwargs.pop("quant", "F16"), verify_tokenizer=False, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert sorted(out.parent.iterdir()) == before, "files were left behind"
    return caught.value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def _token_text(gguf_path: Path, token_id: int) -> str:
    field = GGUFReader(gguf_path).fields["tokenizer.ggml.tokens"]
    return bytes(field.parts[field.data[token_id]]).decode("utf-8")


# 1. malformed tokenizer_config.json / added_tokens.json


def test_tokenizer_config_holding_a_list(spm_copy: Path, tmp_path: Path) -> None:
    _write_json(spm_copy / "tokenizer_config.json", [1, 2, 3])
    error = _one_line_error(
        TokenizerError, spm_copy, tmp_path / "out" / "m.gguf", "tokenizer_config.json", "array"
    )
    assert error.path == spm_copy / "tokenizer_config.json"


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("abc", 'has key "abc", which is not a whole number'),
        ("-5", "has key -5, outside 0..31999"),
        ("32000", "has key 32000, outside 0..31999"),
        ("1.5", 'has key "1.5", which is not'),
    ],
)
def test_added_tokens_decoder_bad_keys(
    key: str, needle: str, spm_copy: Path, tmp_path: Path
) -> None:
    config_path = spm_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.setdefault("added_tokens_decoder", {})[key] = {"content": "<x>", "special": True}
    _write_json(config_path, config)
    _one_line_error(
        TokenizerError,
        spm_copy,
        tmp_path / "out" / "m.gguf",
        "tokenizer_config.json",
        needle,
    )


def test_added_tokens_decoder_not_an_object(bpe_copy: Path, tmp_path: Path) -> None:
    config_path = bpe_copy / "tokenizer_config.json"
    _write_json(config_path, {**json.loads(config_path.read_text()), "added_tokens_decoder": []})
    _one_line_error(
        TokenizerError, bpe_copy, tmp_path / "out" / "m.gguf", "tokenizer_config.json", "array"
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ([["<x>", 5]], "array"),
        ({"<x>": -5}, "token '<x>' has id -5, outside 0..31999"),
        ({"<x>": "abc"}, "token '<x>' has id \"abc\", which is not a whole number"),
        ({"<x>": 99_999}, "has id 99999, outside"),
    ],
)
def test_bad_added_tokens_json(content: Any, needle: str, spm_copy: Path, tmp_path: Path) -> None:
    _write_json(spm_copy / "added_tokens.json", content)
    _one_line_error(
        TokenizerError, spm_copy, tmp_path / "out" / "m.gguf", "added_tokens.json", needle
    )


def test_last_token_is_not_overwritten_by_a_negative_id(spm_copy: Path, tmp_path: Path) -> None:
    """Before the fix, id -1 silently replaced the last token of the vocabulary."""
    _write_json(spm_copy / "added_tokens.json", {"<hijack>": -1})
    with pytest.raises(TokenizerError, match="-1"):
        convert(spm_copy, tmp_path / "neg.gguf", "F16", verify_tokenizer=False)
    (spm_copy / "added_tokens.json").unlink()
    result = convert(spm_copy, tmp_path / "ok.gguf", "F16", verify_tokenizer=False)
    assert _token_text(result.output, 31_999) != "<hijack>"


# 2. the output may not be a file of the source checkpoint


def test_output_must_end_in_gguf(spm_copy: Path) -> None:
    weights = spm_copy / "model.safetensors"
    original = weights.read_bytes()
    with pytest.raises(InputError, match=r"does not end in \.gguf") as caught:
        convert(spm_copy, weights, "F16", force=True, verify_tokenizer=False)
    assert "model.safetensors.gguf" in str(caught.value)
    assert weights.read_bytes() == original


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_linked_to_a_source_file_is_refused(
    link: str, spm_copy: Path, tmp_path: Path
) -> None:
    weights = spm_copy / "model.safetensors"
    original = weights.read_bytes()
    out = tmp_path / "weights.gguf"
    if link == "symlink":
        out.symlink_to(weights)
    else:
        os.link(weights, out)
    with pytest.raises(InputError, match="checkpoint's own file") as caught:
        convert(spm_copy, out, "F16", force=True, verify_tokenizer=False)
    assert str(weights) in str(caught.value) and "\n" not in str(caught.value)
    assert weights.read_bytes() == original


# 3. output folders


def test_missing_output_folder_says_how_to_fix(spm_copy: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not" / "there"
    with pytest.raises(StorageError) as caught:
        convert(spm_copy, missing / "m.gguf", "F16", verify_tokenizer=False)
    message = str(caught.value)
    assert f"mkdir -p {missing}" in message and "existing folder" in message
    assert "\n" not in message
    assert not (tmp_path / "not").exists()


def test_output_folder_gets_the_default_name(spm_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    result = convert(spm_copy, folder, "F16", verify_tokenizer=False)
    expected = folder / default_file_name("model", "F16")
    assert result.output == expected
    assert [p.name for p in folder.iterdir()] == ["model-F16.gguf"]
    assert expected.read_bytes()[:4] == b"GGUF"
    with pytest.raises(InputError, match="already exists"):
        convert(spm_copy, folder, "F16", verify_tokenizer=False)


# 4. wrong-type config values


@pytest.mark.parametrize(
    ("value", "needle"),
    [("abc", 'vocab_size is "abc" (a JSON string)'), (-3, "vocab_size is -3"), (True, "true")],
)
def test_config_value_of_wrong_type(
    value: Any, needle: str, spm_copy: Path, tmp_path: Path
) -> None:
    config_path = spm_copy / "config.json"
    _write_json(config_path, {**json.loads(config_path.read_text()), "vocab_size": value})
    error = _one_line_error(
        CheckpointError, spm_copy, tmp_path / "out" / "m.gguf", "config.json", needle
    )
    assert "lacks" not in str(error) and "positive whole number" in str(error)


def test_config_key_missing_still_says_lacks(spm_copy: Path, tmp_path: Path) -> None:
    config_path = spm_copy / "config.json"
    config = json.loads(config_path.read_text())
    del config["hidden_size"]
    _write_json(config_path, config)
    _one_line_error(CheckpointError, spm_copy, tmp_path / "out" / "m.gguf", "lacks hidden_size")


# 5. cancelling verification keeps the finished GGUF and says so


def test_cancel_during_verify_keeps_output(spm_copy: Path, tmp_path: Path) -> None:
    token = CancelToken()

    def cancel_at_verify(event: ProgressEvent) -> None:
        if event.stage == "verify":
            token.cancel()

    out = tmp_path / "kept.gguf"
    result = convert(spm_copy, out, "F16", progress=cancel_at_verify, cancel=token)
    report = result.verification
    assert report is not None and report.cancelled
    assert report.tokenizer_cases == 0  # the check did not finish
    text = report.format()
    assert "cancelled" in text and str(out) in text and "kept" in text and "not checked" in text
    assert "no output was written" not in text
    assert GGUFReader(out).fields["general.file_type"].contents() == 1  # complete F16
    assert result.output_bytes == out.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name != "model"] == ["kept.gguf"]


def test_ctrl_c_during_verify_in_the_cli(
    spm_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bllossom_core import cli
    from converter import _convert

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_convert, "verify_gguf", interrupted)
    out = tmp_path / "kept.gguf"
    code = cli.main(["convert", str(spm_copy), "-o", str(out), "--quant", "F16", "-q"])
    captured = capsys.readouterr()
    assert code == 130
    assert f"Wrote {out}" in captured.out
    assert f"Verification cancelled: {out} is complete and kept" in captured.out
    assert "nothing was written" not in captured.out + captured.err
    assert "no output was written" not in captured.out + captured.err
    assert out.read_bytes()[:4] == b"GGUF"


# 6. one JSON reader, one message


@pytest.mark.parametrize(
    ("file", "error"),
    [
        ("config.json", CheckpointError),
        ("tokenizer_config.json", TokenizerError),
        ("added_tokens.json", TokenizerError),
    ],
)
def test_invalid_json_reads_the_same_everywhere(
    file: str, error: type[BllossomError], spm_copy: Path, tmp_path: Path
) -> None:
    (spm_copy / file).write_text('{"a": 1,,}', encoding="utf-8")
    _one_line_error(
        error,
        spm_copy,
        tmp_path / "out" / "m.gguf",
        f"{spm_copy / file} is not valid JSON",
        "line 1, column 9",
        "Download it again",
    )


def test_verify_reads_tokenizer_config_through_the_shared_reader(
    spm_copy: Path, tmp_path: Path
) -> None:
    from converter import verify_gguf

    out = convert(spm_copy, tmp_path / "v.gguf", "F16", verify_tokenizer=False).output
    (spm_copy / "tokenizer_config.json").write_text("[]", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"tokenizer_config\.json holds a JSON array"):
        verify_gguf(out, spm_copy, logits=False)


# 7. imatrix-only quantization types


@pytest.mark.parametrize("name", ["IQ3_XS", "iq2_xxs", "IQ2_M", "IQ1_S"])
def test_imatrix_only_quants_explained(name: str, spm_copy: Path, tmp_path: Path) -> None:
    error = _one_line_error(
        InputError, spm_copy, tmp_path / "out" / "m.gguf", "importance matrix", quant=name
    )
    assert "Unknown" not in str(error) and name.upper() in str(error)
    assert "IQ3_S" in str(error)  # what to choose instead


def test_verify_of_a_broken_gguf_is_one_line(spm_copy: Path, tmp_path: Path) -> None:
    from converter import verify_gguf

    out = convert(spm_copy, tmp_path / "v.gguf", "F16", verify_tokenizer=False).output
    out.write_bytes(out.read_bytes()[:4096])
    with pytest.raises(BllossomError) as caught:
        verify_gguf(out, spm_copy, logits=False)
    assert str(out) in str(caught.value) and "\n" not in str(caught.value)


def test_shard_index_without_weight_map(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "sharded"
    shutil.copytree(make_checkpoint(family="llama2-spm", layout="sharded", dtype="float16"), folder)
    _write_json(folder / "model.safetensors.index.json", {"metadata": {}})
    _one_line_error(
        CheckpointError,
        folder,
        tmp_path / "out" / "m.gguf",
        "no weight_map object",
        "Download model.safetensors.index.json again",
    )
