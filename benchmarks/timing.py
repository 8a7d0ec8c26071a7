"""Shared by the benchmarks (run as ``python benchmarks/bench_*.py``, so this folder is on sys.path)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import onnx

# the zoo models the onnx wheel ships (weights stripped to ConstantOfShape)
ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The shortest wall time of ``repeat`` calls of ``fn`` and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
