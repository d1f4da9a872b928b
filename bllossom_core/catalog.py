"""The Bllossom model catalog: which models exist, where, and in which files.

The data is ``bllossom_core/data/catalog.toml``, reviewed by hand and shipped with the
package (its comments say where every value comes from). Values the review could not
confirm are ``None`` here; :func:`refresh_entry` fills the GGUF sizes and hashes from the
hub when online.

    catalog = load_catalog()
    entry = find_entry("bllossom-8b")          # InputError UNKNOWN_MODEL, with close names
    entry.gguf_for("Q4_K_M")                    # CatalogFile or None
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bllossom_core.errors import ErrorCode, InputError

# tomllib from Python 3.11; on 3.10 the same parser as tomli (a huggingface_hub dependency).
tomllib: Any = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")

Status = Literal["supported", "gguf-only", "unsupported"]
CONVERTIBLE_ARCHITECTURES = ("LlamaForCausalLM",)
"""What :func:`converter.convert` accepts (it checks again, with its own message)."""

QUANT_QUALITY: tuple[str, ...] = (
    "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0",
    "Q4_K_M", "Q4_K_S", "Q4_1", "IQ4_NL", "Q4_0", "IQ4_XS", "Q3_K_L", "Q3_K_M",
    "IQ3_M", "Q3_K_S", "IQ3_S", "IQ3_XS", "Q2_K",
)  # fmt: skip
"""llama.cpp file types from most to least faithful to the original weights (by bits
per weight and llama.cpp's published perplexity order); picks "the best that fits"."""


def quant_rank(quant: str) -> int:
    """Lower is better quality; unknown types rank last."""
    try:
        return QUANT_QUALITY.index(quant.upper())
    except ValueError:
        return len(QUANT_QUALITY)


def quant_in_name(file_name: str) -> str | None:
    """The llama.cpp type named in a GGUF file name (``model-Q4_K_M.gguf`` -> Q4_K_M)."""
    upper = file_name.upper().replace("-", "_").replace(".", "_")
    # Longest names first, so Q4_K_M is not read as Q4_K or Q4.
    for quant in sorted(QUANT_QUALITY, key=len, reverse=True):
        if f"_{quant}_" in f"_{upper}_":
            return quant
    return None


@dataclass(frozen=True)
class CatalogFile:
    """One GGUF file on the hub."""

    repo: str
    revision: str
    file: str
    quant: str
    size_bytes: int | None
    """Exact size; None until read from the hub."""
    approx_bytes: int | None
    """The size the hub's file list shows (rounded to three digits)."""
    sha256: str | None

    @property
    def size_estimate(self) -> int | None:
        return self.size_bytes if self.size_bytes is not None else self.approx_bytes


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    repo: str
    revision: str
    architecture: str
    base: str
    params_b: float | None
    context_length: int | None
    layers: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    vocab_size: int | None
    license: str
    gated: bool
    template: str
    status: Status
    status_reason: str
    recommended: bool
    released: str
    checkpoint_bytes: int | None
    """Total size of the checkpoint files (exact if known, else the hub's rounded sizes)."""
    notes: str
    sources: tuple[str, ...]
    ggufs: tuple[CatalogFile, ...]

    @property
    def convertible(self) -> bool:
        return self.status == "supported" and self.architecture in CONVERTIBLE_ARCHITECTURES

    @property
    def downloadable(self) -> bool:
        return self.status != "unsupported" and (bool(self.ggufs) or self.convertible)

    def gguf_for(self, quant: str) -> CatalogFile | None:
        return next((f for f in self.ggufs if f.quant.upper() == quant.upper()), None)


@dataclass(frozen=True)
class Catalog:
    version: str
    entries: tuple[CatalogEntry, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def get(self, name: str) -> CatalogEntry | None:
        wanted = name.strip().lower()
        return next((e for e in self.entries if e.name == wanted), None)

    def by_repo(self, repo_id: str) -> CatalogEntry | None:
        wanted = repo_id.lower()
        return next((e for e in self.entries if e.repo.lower() == wanted), None)


CATALOG_RESOURCE = "catalog.toml"


def _unknown(value: Any) -> Any:
    """TOML has no null: the data file writes 0 / "" for unknown values."""
    return None if value in (0, 0.0, "") else value


def _gb(value: Any) -> int | None:
    gb = _unknown(value)
    return None if gb is None else int(float(gb) * 1e9)


def _file(raw: dict[str, Any]) -> CatalogFile:
    return CatalogFile(
        repo=str(raw["repo"]),
        revision=str(raw.get("revision") or "main"),
        file=str(raw["file"]),
        quant=str(raw["quant"]).upper(),
        size_bytes=_unknown(raw.get("size_bytes", 0)),
        approx_bytes=_gb(raw.get("approx_gb", 0)),
        sha256=_unknown(str(raw.get("sha256", "")).lower()),
    )


def _entry(raw: dict[str, Any]) -> CatalogEntry:
    status = str(raw.get("status", "supported"))
    if status not in ("supported", "gguf-only", "unsupported"):
        raise ValueError(f"catalog entry {raw.get('name')!r}: unknown status {status!r}")
    checkpoint = _unknown(raw.get("checkpoint_bytes", 0)) or _gb(raw.get("checkpoint_approx_gb"))
    return CatalogEntry(
        name=str(raw["name"]),
        title=str(raw["title"]),
        repo=str(raw["repo"]),
        revision=str(raw.get("revision") or "main"),
        architecture=str(raw["architecture"]),
        base=str(raw.get("base", "")),
        params_b=_unknown(raw.get("params_b", 0)),
        context_length=_unknown(raw.get("context_length", 0)),
        layers=_unknown(raw.get("layers", 0)),
        heads=_unknown(raw.get("heads", 0)),
        kv_heads=_unknown(raw.get("kv_heads", 0)),
        head_dim=_unknown(raw.get("head_dim", 0)),
        vocab_size=_unknown(raw.get("vocab_size", 0)),
        license=str(raw.get("license", "")),
        gated=bool(raw.get("gated", False)),
        template=str(raw.get("template", "llama3")),
        status=status,  # type: ignore[arg-type]
        status_reason=str(raw.get("status_reason", "")),
        recommended=bool(raw.get("recommended", False)),
        released=str(raw.get("released", "")),
        checkpoint_bytes=checkpoint,
        notes=str(raw.get("notes", "")),
        sources=tuple(str(s) for s in raw.get("sources", ())),
        ggufs=tuple(_file(f) for f in raw.get("gguf", ())),
    )


def parse_catalog(text: str) -> Catalog:
    data = tomllib.loads(text)
    if data.get("schema") != 1:
        raise ValueError(f"unsupported catalog schema {data.get('schema')!r}")
    entries = tuple(_entry(raw) for raw in data.get("model", ()))
    return Catalog(str(data.get("catalog_version", "")), entries)


@lru_cache(maxsize=4)
def _load(path: str | None) -> Catalog:
    if path is None:
        text = resources.files("bllossom_core.data").joinpath(CATALOG_RESOURCE).read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_catalog(text)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """The shipped catalog (or the one at ``path``), parsed once per process."""
    return _load(None if path is None else str(path))


def find_entry(name: str, catalog: Catalog | None = None) -> CatalogEntry:
    """The entry called ``name``; an :class:`InputError` naming the closest names if none."""
    catalog = catalog or load_catalog()
    entry = catalog.get(name)
    if entry is not None:
        return entry
    close = difflib.get_close_matches(name.lower(), catalog.names, n=3, cutoff=0.5)
    suggestion = f"Did you mean {', '.join(close)}?" if close else ""
    raise InputError(
        f"{name!r} is not in the Bllossom catalog. {suggestion}".strip(),
        hint="`bllossom pull --list` shows the catalog; a hub id such as ORG/NAME works too.",
        code=ErrorCode.UNKNOWN_MODEL,
    )


def refresh_entry(
    entry: CatalogEntry, *, endpoint: str | None = None, token: str | bool | None = None
) -> CatalogEntry:
    """The entry with exact sizes and LFS hashes of its GGUF files read from the hub.

    Needs a connection; hub errors propagate as huggingface_hub raises them (callers
    such as :mod:`bllossom_core.hub` translate them). A catalog sha256 that differs from
    the hub's is kept (the download check then reports the mismatch).
    """
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    refreshed = []
    for gguf in entry.ggufs:
        info = api.model_info(gguf.repo, revision=gguf.revision, files_metadata=True)
        sibling = next((s for s in info.siblings or () if s.rfilename == gguf.file), None)
        if sibling is None:
            refreshed.append(gguf)
            continue
        lfs_hash = sibling.lfs.sha256 if sibling.lfs is not None else None
        refreshed.append(
            replace(
                gguf,
                revision=info.sha or gguf.revision,
                size_bytes=sibling.size if sibling.size is not None else gguf.size_bytes,
                sha256=gguf.sha256 or lfs_hash,
            )
        )
    return replace(entry, ggufs=tuple(refreshed))
