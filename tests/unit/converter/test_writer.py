"""converter._writer's bulk array packing against gguf's own writer, value by value."""

from __future__ import annotations

from typing import Any

import gguf
import pytest

from converter._writer import _Writer

ARRAYS: dict[str, list[Any]] = {
    "strings": ["a", "", "한국어", "\u0000x", "▁서울", b"\xff\xfe"] * 100,
    "floats": [0.5, -1e-3, float("inf"), float("nan"), 3.4028235e38, 1e-45, -0.0] * 100,
    "ints": [0, -1, 2**31 - 1, -(2**31), 7] * 100,
    "bools": [True, False] * 200,  # gguf's own code (not packed in bulk)
    "mixed": [1, 2.0] * 200,  # gguf refuses: ValueError
    "float beyond float32": [1.0] * 299 + [1e39],  # gguf refuses: OverflowError
    "int beyond int32": [1] * 299 + [2**31],  # struct.error
    "int beyond int64": [1] * 299 + [2**70],
    "short": ["x", "y"],
}


def _packed(writer_class: type[gguf.GGUFWriter], values: list[Any], add_vtype: bool) -> object:
    writer = writer_class(path=None, arch="llama")
    try:
        return writer._pack_val(values, gguf.GGUFValueType.ARRAY, add_vtype=add_vtype)
    except Exception as error:  # the same refusal is part of the contract
        return type(error)


@pytest.mark.parametrize("add_vtype", [True, False])
@pytest.mark.parametrize("name", list(ARRAYS))
def test_arrays_are_packed_as_gguf_packs_them(name: str, add_vtype: bool) -> None:
    values = ARRAYS[name]
    assert _packed(_Writer, values, add_vtype) == _packed(gguf.GGUFWriter, values, add_vtype)
