# The compiled part of the converter (converter/_q8_0.c).
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
