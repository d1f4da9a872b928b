"""The one compiled part of the package: converter/_kernels.c (see there for why).

Optional: where it cannot be built (no C compiler), the converter writes the same bytes
with numpy, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "converter._kernels",
            ["converter/_kernels.c"],
            # A fused multiply-add would round the quants differently from gguf-py.
            extra_compile_args=["-O3", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
