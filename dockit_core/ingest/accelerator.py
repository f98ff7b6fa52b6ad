"""The compiled line splitter (`_linesplit.c`), when it was built and not refused.

Optional: `pip install -e .` builds it when a C compiler is there, and the parser reads every line in
Python without it. `DOCKIT_PURE_PYTHON=1` refuses it, so both paths can run on one machine (the tests
compare their outputs byte for byte); `dockit -v` says which one read the log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

from dockit_core.ingest.events import Call

PURE_PYTHON_VARIABLE = "DOCKIT_PURE_PYTHON"

SplitCall = Callable[[str, int, int, bool, bool], Call | None]


def _load() -> tuple[ModuleType | None, str]:
    """The module (or None) and why: said by `dockit -v`."""
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        return None, f"pure Python ({PURE_PYTHON_VARIABLE} is set)"
    try:
        from dockit_core.ingest import _linesplit  # type: ignore[attr-defined]
    except ImportError:
        return None, "pure Python (the C line splitter is not built)"
    try:
        _linesplit.init(Call)
    except TypeError as error:  # Call's fields changed shape: the C code no longer fits it
        return None, f"pure Python (the C line splitter does not fit: {error})"
    return _linesplit, "the C line splitter"


MODULE, STATE = _load()
split_call: SplitCall | None = MODULE.split_call if MODULE is not None else None
