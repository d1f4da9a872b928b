# The converter's compiled kernels (converter/_kernels.c).
from typing_extensions import Buffer

def q8_0_16bit(
    bits: Buffer,
    bf16: bool,
    scales: Buffer,
    inverses: Buffer,
    f16_values: Buffer | None,
    out: Buffer,
    /,
) -> bool: ...
def lookup16(table: Buffer, bits: Buffer, out: Buffer, /) -> None: ...
