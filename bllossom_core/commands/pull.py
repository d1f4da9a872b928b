"""``bllossom pull SOURCE`` and ``bllossom pull --list``: get a Bllossom model."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bllossom_core.catalog import Catalog

LIST_COLUMNS = ("NAME", "TYPE", "SIZE", "NEEDS", "FIT", "LICENCE", "HOW")
FIT_LABELS = {
    "gpu": "GPU",
    "partial_gpu": "part GPU",
    "cpu": "CPU only",
    "too_big": "too big",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pull",
        help="Download a Bllossom model (catalog name or hub id) into the models folder.",
        description=(
            "Download a model into Bllossom's models folder and register it for the app. "
            "SOURCE is a catalog name (see --list) or a Hugging Face id ORG/NAME: a GGUF "
            "repository gives one file, a checkpoint repository is downloaded and converted. "
            "Interrupted downloads continue where they stopped when run again."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", nargs="?", help="catalog name or hub id")
    parser.add_argument("--list", action="store_true", help="show the catalog and what fits here")
    parser.add_argument("--quant", metavar="TYPE", help="quantization type to get (default Q4_K_M)")
    parser.add_argument("--file", metavar="NAME", help="exact GGUF file name in the repository")
    parser.add_argument("-o", "--output-dir", metavar="DIR", help="folder for the GGUF file")
    parser.add_argument("--revision", metavar="REV", help="branch, tag or commit on the hub")
    parser.add_argument(
        "--context-size",
        type=int,
        metavar="N",
        help="context used for the memory estimates of --list (default: the app's)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="with --list: read exact file sizes and hashes from the hub (needs a connection)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bllossom_core.errors import InputError

    if args.list:
        if args.source:
            raise InputError("Give either SOURCE or --list, not both.")
        return list_catalog(args.context_size, refresh=args.refresh)
    if not args.source:
        raise InputError(
            "Name the model to pull, e.g. `bllossom pull bllossom-8b`.",
            hint="`bllossom pull --list` shows the catalog.",
        )
    return pull_model(args)


def _size(n: int | None, exact: bool = True) -> str:
    if n is None:
        return "?"
    return f"{'' if exact else '~'}{n / 1e9:.1f} GB"


def _refreshed(catalog: Catalog) -> Catalog:
    """The catalog with exact sizes and hashes from the hub; on any hub error, the
    shipped values with a note saying why."""
    from bllossom_core.catalog import refresh_entry
    from bllossom_core.hub import translate_hub_error

    entries = []
    for entry in catalog.entries:
        try:
            entries.append(refresh_entry(entry) if entry.ggufs else entry)
        except Exception as exc:  # every hub failure is worded by translate_hub_error
            error = translate_hub_error(exc, entry.ggufs[0].repo)
            print(f"Not refreshed ({entry.name}): {error}")
            entries.append(entry)
    return dataclasses.replace(catalog, entries=tuple(entries))


def list_catalog(context_size: int | None, *, refresh: bool = False) -> int:
    from bllossom_core import hardware
    from bllossom_core.catalog import load_catalog
    from bllossom_core.engine import DEFAULT_CONTEXT
    from bllossom_core.paths import models_dir

    n_ctx = context_size or DEFAULT_CONTEXT
    catalog = _refreshed(load_catalog()) if refresh else load_catalog()
    machine = hardware.probe_hardware(models_dir())
    print(f"This machine: {machine.describe()}.")
    print(f"Memory estimates for a {n_ctx}-token context; catalog {catalog.version}.\n")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for entry in catalog.entries:
        best = hardware.best_for_entry(entry, machine, n_ctx)
        if best is None:
            reason = entry.status_reason or "size unknown"
            rows.append((entry.name, "-", "-", "-", "-", entry.license, "unsupported"))
            notes.append(f"  {entry.name}: {reason}")
            continue
        option = best.option
        fit = FIT_LABELS[best.fit.fit]
        if best.fit.fit == "partial_gpu":
            fit += f" {best.fit.gpu_share:.0%}"
        if best.disk_ok is False:
            fit += ", disk full"
        how = "download" if option.action == "download" else "convert"
        rows.append((
            entry.name, option.quant, _size(option.size_bytes, option.exact),
            _size(best.fit.estimate.total, False), fit, entry.license, how,
        ))  # fmt: skip
        notes.append(f"  {entry.name}: {best.fit.reason}")
    widths = [max(len(r[i]) for r in (LIST_COLUMNS, *rows)) for i in range(len(LIST_COLUMNS))]
    for row in (LIST_COLUMNS, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("\nWhy:")
    print("\n".join(notes))
    choice = hardware.recommend(catalog, machine, n_ctx)
    if choice is None:
        print("\nNo catalog model fits this machine.")
    else:
        option = choice.assessment.option
        print(
            f"\nRecommended: {option.entry.name} ({option.entry.title}, {option.quant}, "
            f"{_size(option.size_bytes, option.exact)}): {choice.why}."
        )
        print(f"Get it with: bllossom pull {option.entry.name} --quant {option.quant}")
    sys.stdout.flush()
    return 0


class _Bars:
    """One tqdm bar per phase and file."""

    def __init__(self) -> None:
        self.bars: dict[tuple[str, str], Any] = {}
        self.finished: set[tuple[str, str]] = set()

    def __call__(self, event: Any) -> None:
        from tqdm import tqdm

        from bllossom_core.hub import PullPhase

        if event.phase in (PullPhase.RESOLVING, PullPhase.DONE):
            return
        key = (event.phase.value, event.file)
        if key in self.finished:
            return
        bar = self.bars.get(key)
        if bar is None:
            label = event.phase.value.capitalize()
            if event.file_count > 1:
                label += f" {event.file_index}/{event.file_count}"
            bar = self.bars[key] = tqdm(
                desc=f"{label} {event.file}",
                total=event.total_bytes,
                initial=event.done_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=True,
            )
        if event.total_bytes is not None and bar.total != event.total_bytes:
            bar.total = event.total_bytes
        bar.update(event.done_bytes - bar.n)
        if event.total_bytes is not None and event.done_bytes >= event.total_bytes:
            bar.close()
            self.bars.pop(key, None)
            self.finished.add(key)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def pull_model(args: argparse.Namespace) -> int:
    import logging

    from bllossom_core.errors import Cancelled
    from bllossom_core.hub import pull

    logging.getLogger("gguf").setLevel(logging.ERROR)
    bars = None if args.quiet else _Bars()
    try:
        result = pull(
            args.source,
            quant=args.quant,
            file=args.file,
            revision=args.revision,
            output_dir=Path(args.output_dir).expanduser() if args.output_dir else None,
            progress=bars,
        )
    except KeyboardInterrupt:
        raise Cancelled(
            "Download interrupted; what was downloaded is kept, and the same command "
            "continues from there."
        ) from None
    finally:
        if bars is not None:
            bars.close()
    model = result.model
    how = "converted" if model.source == "convert" else "downloaded"
    print(
        f"Saved {result.path} ({model.quant}, {model.size_bytes / 1e9:.2f} GB, {how} from "
        f"{model.repo_id}@{model.revision[:12]}); registered for the app."
    )
    sys.stdout.flush()
    return 0
