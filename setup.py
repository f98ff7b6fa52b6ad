"""The optional accelerator: dockit_core/ingest/_linesplit.c, built when a C compiler is there.

Everything else is in pyproject.toml. `optional=True`: without a compiler (or Python's headers) the build
says so and goes on, and dockit runs its pure-Python parser. The source's SHA-256 is compiled in, so
tests/test_accelerator.py can tell a module built from an older source (a stale in-place build).
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "dockit_core/ingest/_linesplit.c"
DIGEST = hashlib.sha256(
    Path(__file__).with_name("dockit_core").joinpath("ingest", "_linesplit.c").read_bytes()
)

setup(
    ext_modules=[
        Extension(
            "dockit_core.ingest._linesplit",
            [SOURCE],
            define_macros=[("DOCKIT_SOURCE_SHA256", f'"{DIGEST.hexdigest()}"')],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
