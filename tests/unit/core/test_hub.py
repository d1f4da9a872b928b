"""Downloads through the real huggingface_hub client against a local stand-in hub."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core import hardware
from bllossom_core.catalog import parse_catalog
from bllossom_core.errors import BllossomError, Cancelled, ErrorCode
from bllossom_core.hub import (
    PullPhase,
    PullProgress,
    load_registry,
    pending_pulls,
    plan_pull,
    pull,
)
from bllossom_core.types import CancelToken
from tests.fixtures.local_hub import (
    GATED_REPO,
    GGUF_REPO,
    LocalHub,
    add_fixture_repos,
    gguf_name,
)


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as served:
        add_fixture_repos(served)
        yield served


@pytest.fixture(autouse=True)
def fresh_hub_state(hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_OFFLINE once, at import: an earlier test may have
    # imported it offline.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.log.clear()
    hub.drop_after.clear()
    hub.corrupt.clear()
    hub.refuse_once.clear()
    hub.chunk_delay = 0.0
    hub.allowed_tokens.clear()


def _blob(hub: LocalHub, repo: str, name: str) -> bytes:
    return hub.repos[repo].files[name].data


def _fails(code: ErrorCode, **kwargs: object) -> BllossomError:
    with pytest.raises(BllossomError) as caught:
        pull(**kwargs)  # type: ignore[arg-type]
    assert caught.value.code is code, str(caught.value)
    assert "Traceback" not in str(caught.value)
    return caught.value


def test_gguf_download_verified_and_registered(hub: LocalHub, tmp_path: Path) -> None:
    events: list[PullProgress] = []
    result = pull(
        GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint, progress=events.append
    )
    expected = _blob(hub, GGUF_REPO, gguf_name("Q8_0"))
    assert result.path == tmp_path / gguf_name("Q8_0")
    assert result.path.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == [gguf_name("Q8_0")]  # no partial left
    registered = load_registry()
    assert registered[0].path == str(result.path)
    assert registered[0].sha256 == hashlib.sha256(expected).hexdigest()
    assert registered[0].revision == hub.repos[GGUF_REPO].commit
    assert registered[0].quant == "Q8_0" and registered[0].source == "download"
    assert pending_pulls() == []
    phases = [e.phase for e in events]
    assert phases[0] is PullPhase.RESOLVING and phases[-1] is PullPhase.DONE
    assert PullPhase.DOWNLOADING in phases and PullPhase.VERIFYING in phases
    downloads = [e for e in events if e.phase is PullPhase.DOWNLOADING]
    assert downloads[-1].done_bytes == downloads[-1].total_bytes == len(expected)
    # the file list and metadata came through the hub API, the bytes from the "CDN"
    assert hub.requests_for("/api/models/" + GGUF_REPO)
    assert any(r.method == "GET" and r.path.startswith("/_cdn/") for r in hub.log)


def test_pulling_again_keeps_the_verified_file(hub: LocalHub, tmp_path: Path) -> None:
    pull(GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint)
    hub.log.clear()
    pull(GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint)
    assert not any(r.path.startswith("/_cdn/") for r in hub.log)


def test_file_in_the_hf_cache_is_not_downloaded_again(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants
    from huggingface_hub import hf_hub_download

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    hf_hub_download(GGUF_REPO, gguf_name("Q4_K_M"), cache_dir=cache, endpoint=hub.endpoint)
    hub.log.clear()
    out = tmp_path / "models"
    result = pull(GGUF_REPO, quant="Q4_K_M", output_dir=out, endpoint=hub.endpoint)
    assert result.path.read_bytes() == _blob(hub, GGUF_REPO, gguf_name("Q4_K_M"))
    assert not any(r.path.startswith("/_cdn/") for r in hub.log)


def test_dropped_connection_resumes_with_range(hub: LocalHub, tmp_path: Path) -> None:
    data = _blob(hub, GGUF_REPO, gguf_name("F16"))
    sha = hashlib.sha256(data).hexdigest()
    hub.drop_after[sha] = len(data) // 3
    result = pull(GGUF_REPO, quant="F16", output_dir=tmp_path, endpoint=hub.endpoint)
    assert result.path.read_bytes() == data
    gets = [r for r in hub.log if r.path == f"/_cdn/{sha}"]
    assert [g.range for g in gets] == [None, f"bytes={len(data) // 3}-"]
    assert gets[1].status == 206


def test_checksum_mismatch_deletes_the_file(hub: LocalHub, tmp_path: Path) -> None:
    data = _blob(hub, GGUF_REPO, gguf_name("Q8_0"))
    hub.corrupt.add(hashlib.sha256(data).hexdigest())
    error = _fails(
        ErrorCode.CHECKSUM_MISMATCH,
        source=GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint,
    )  # fmt: skip
    assert "deleted" in str(error)
    assert list(tmp_path.iterdir()) == []
    assert load_registry() == []


def test_unknown_repo_and_file_and_revision(hub: LocalHub, tmp_path: Path) -> None:
    common = {"output_dir": tmp_path, "endpoint": hub.endpoint}
    _fails(ErrorCode.REPO_NOT_FOUND, source="fixture/no-such-model", **common)
    error = _fails(ErrorCode.REMOTE_FILE_NOT_FOUND, source=GGUF_REPO, file="nope.gguf", **common)
    assert gguf_name("Q8_0") in str(error)  # names the files that are there
    _fails(ErrorCode.REPO_NOT_FOUND, source=GGUF_REPO, revision="v9", **common)
    assert list(tmp_path.iterdir()) == []


def test_missing_quant_lists_the_quants_there(hub: LocalHub, tmp_path: Path) -> None:
    error = _fails(
        ErrorCode.QUANT_NOT_AVAILABLE,
        source=GGUF_REPO, quant="Q2_K", output_dir=tmp_path, endpoint=hub.endpoint,
    )  # fmt: skip
    for quant in ("F16", "Q8_0", "Q4_K_M"):
        assert quant in str(error)


def test_gated_repo_explains_licence_and_token(hub: LocalHub, tmp_path: Path) -> None:
    error = _fails(
        ErrorCode.REPO_GATED,
        source=GATED_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint,
    )  # fmt: skip
    text = str(error)
    assert "licence" in text and "HF_TOKEN" in text and "hf auth login" in text
    assert f"{hub.endpoint}/{GATED_REPO}" in text
    assert list(tmp_path.iterdir()) == []


def test_gated_repo_with_token(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.allowed_tokens.add("hf_test_token")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    result = pull(GATED_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint)
    assert result.path.is_file()
    assert all(r.authorization for r in hub.requests_for(f"/{GATED_REPO}/resolve/"))
    # like huggingface_hub, the token never goes to the (signed-URL) CDN
    assert not any(r.authorization for r in hub.requests_for("/_cdn/"))


def test_expired_cdn_url_is_asked_for_again(hub: LocalHub, tmp_path: Path) -> None:
    data = _blob(hub, GGUF_REPO, gguf_name("Q8_0"))
    hub.refuse_once[hashlib.sha256(data).hexdigest()] = 403
    result = pull(GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint)
    assert result.path.read_bytes() == data
    assert [r.status for r in hub.requests_for("/_cdn/")] == [403, 200]
    heads = [r for r in hub.requests_for(f"/{GGUF_REPO}/resolve/") if r.method == "HEAD"]
    assert len(heads) == 3  # the access check, the download, and the fresh URL


def test_disk_full_refused_before_download(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hardware, "disk_free", lambda path: 1024)
    error = _fails(
        ErrorCode.DISK_FULL,
        source=GGUF_REPO, quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint,
    )  # fmt: skip
    assert str(tmp_path) in str(error)
    assert not any(r.path.startswith("/_cdn/") for r in hub.log)
    assert list(tmp_path.iterdir()) == []


def test_cancel_keeps_partial_and_next_pull_continues(hub: LocalHub, tmp_path: Path) -> None:
    data = _blob(hub, GGUF_REPO, gguf_name("F16"))
    hub.chunk_delay = 0.01
    token = CancelToken()
    seen: list[PullProgress] = []

    def cancel_midway(event: PullProgress) -> None:
        seen.append(event)
        if event.phase is PullPhase.DOWNLOADING and event.done_bytes > len(data) // 4:
            token.cancel()

    with pytest.raises(Cancelled) as caught:
        pull(
            GGUF_REPO, quant="F16", output_dir=tmp_path, endpoint=hub.endpoint,
            progress=cancel_midway, cancel=token,
        )  # fmt: skip
    assert caught.value.code is ErrorCode.CANCELLED
    measured = [e for e in seen if e.speed is not None]
    assert measured, "no speed was measured"
    last = measured[-1]
    assert last.speed > 0 and last.eta is not None  # type: ignore[operator]
    assert last.eta == pytest.approx((len(data) - last.done_bytes) / last.speed)  # type: ignore[operator]
    partials = list(tmp_path.glob(".*.partial"))
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < len(data)
    kept = partials[0].stat().st_size
    assert [p.source for p in pending_pulls()] == [GGUF_REPO]

    hub.chunk_delay = 0.0
    hub.log.clear()
    result = pull(GGUF_REPO, quant="F16", output_dir=tmp_path, endpoint=hub.endpoint)
    assert result.path.read_bytes() == data
    assert [r.range for r in hub.log if r.path.startswith("/_cdn/")] == [f"bytes={kept}-"]
    assert pending_pulls() == []


def test_offline_is_one_clear_error(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    error = _fails(ErrorCode.OFFLINE, source=GGUF_REPO, output_dir=tmp_path, endpoint=hub.endpoint)
    assert "HF_HUB_OFFLINE" in str(error)
    assert hub.log == []


def test_unreachable_hub_is_offline(tmp_path: Path) -> None:
    with LocalHub() as gone:
        endpoint = gone.endpoint
    _fails(ErrorCode.OFFLINE, source=GGUF_REPO, output_dir=tmp_path, endpoint=endpoint)


def test_unknown_catalog_name_suggests_close_names(tmp_path: Path) -> None:
    error = _fails(ErrorCode.UNKNOWN_MODEL, source="bllossom-8", output_dir=tmp_path)
    assert "bllossom-8b" in str(error)


CATALOG = f"""
schema = 1
catalog_version = "test"

[[model]]
name = "tiny"
title = "Tiny Llama"
repo = "fixture/tiny-llama"
architecture = "LlamaForCausalLM"
params_b = 0.01
license = "mit"
status = "supported"

[[model.gguf]]
repo = "{GGUF_REPO}"
file = "{gguf_name("Q8_0")}"
quant = "Q8_0"
sha256 = "{{sha}}"

[[model]]
name = "vision"
title = "A vision model"
repo = "fixture/vision"
architecture = "LlavaNextForConditionalGeneration"
status = "unsupported"
status_reason = "image models are not supported"
"""


def test_catalog_name_resolves_to_pinned_gguf(hub: LocalHub, tmp_path: Path) -> None:
    sha = hashlib.sha256(_blob(hub, GGUF_REPO, gguf_name("Q8_0"))).hexdigest()
    catalog = parse_catalog(CATALOG.replace("{sha}", sha))
    plan = plan_pull(
        "tiny", quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint, catalog=catalog
    )
    assert (plan.repo_id, plan.kind, plan.files[0].path) == (GGUF_REPO, "gguf", gguf_name("Q8_0"))
    result = pull("tiny", quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint, catalog=catalog)
    assert load_registry()[0].catalog_name == "tiny" and result.model.name == "Tiny Llama"
    # no official GGUF of that type: the catalog's convertible checkpoint is planned instead
    plan = plan_pull(
        "tiny", quant="F16", output_dir=tmp_path, endpoint=hub.endpoint, catalog=catalog
    )
    assert (plan.repo_id, plan.kind) == ("fixture/tiny-llama", "checkpoint")
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= {f.path for f in plan.files}


def test_catalog_pin_mismatch_and_unsupported(hub: LocalHub, tmp_path: Path) -> None:
    catalog = parse_catalog(CATALOG.replace("{sha}", "0" * 64))
    with pytest.raises(BllossomError) as caught:
        plan_pull("tiny", quant="Q8_0", output_dir=tmp_path, endpoint=hub.endpoint, catalog=catalog)
    assert caught.value.code is ErrorCode.CHECKSUM_MISMATCH
    with pytest.raises(BllossomError) as caught:
        plan_pull("vision", output_dir=tmp_path, endpoint=hub.endpoint, catalog=catalog)
    assert caught.value.code is ErrorCode.MODEL_UNSUPPORTED
    assert "image models are not supported" in str(caught.value)


def test_split_gguf_downloads_every_part(hub: LocalHub, tmp_path: Path) -> None:
    parts = {
        "big-Q4_K_M-00001-of-00002.gguf": b"GGUF part one" + bytes(3000),
        "big-Q4_K_M-00002-of-00002.gguf": b"part two" + bytes(2000),
        "big-Q8_0.gguf": b"GGUF" + bytes(100),
    }
    hub.add_repo("fixture/split-GGUF", parts)
    result = pull("fixture/split-GGUF", output_dir=tmp_path, endpoint=hub.endpoint)
    assert result.path.name == "big-Q4_K_M-00001-of-00002.gguf"  # llama.cpp opens part 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(parts)[:2]
    for name in sorted(parts)[:2]:
        assert (tmp_path / name).read_bytes() == parts[name]
    assert result.model.size_bytes == sum(len(parts[n]) for n in sorted(parts)[:2])
