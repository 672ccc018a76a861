"""Which implementation the injection detector runs: the optional C accelerator or the Python reference.

`fast` is the `_fast` extension (built from _fast.c by setup.py when a compiler is there) or None, in which
case every caller runs its Python code. The Python code is the reference: the C functions must return
exactly what it returns (tests/unit/test_injection_fast.py). GATEWAY_INJECTION_PURE_PYTHON=1, read once at
import, forces the Python code for the whole process (to compare the two, or to rule the extension out).
"""

from __future__ import annotations

import os
from types import ModuleType

PURE_PYTHON_ENV = "GATEWAY_INJECTION_PURE_PYTHON"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None
    try:
        from . import _fast
    except ImportError:
        # Not built (no compiler at install time) or built for another interpreter: Python path.
        return None
    return _fast


fast: ModuleType | None = _load()
