"""The machine-readable formats nvmc writes: standard JSON and CSV that a spreadsheet cannot run.

* :func:`json_text` writes JSON that every parser reads: a value that is not a finite number
  (NaN, an infinite SQNR) becomes ``null`` -- its meaning is carried by a field beside it
  where a report defines one -- and numpy scalars and arrays become numbers and lists.
* :func:`csv_text` neutralises cells that a spreadsheet would evaluate as a formula (text
  starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, e.g. a node named
  ``=HYPERLINK(...)``) by prefixing a single quote, as OWASP recommends; numbers stay numbers.

Both live in the IR layer because analyses, reports and sweeps all write them and the IR
imports nothing of nvmc.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["csv_cell", "csv_text", "finite_or_none", "json_text"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None, numpy types by
    Python ones."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, np.generic):
        return finite_or_none(value.item())
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    return value


def json_text(value: Any, *, indent: int | None = 1, **kwargs) -> str:
    """Standard JSON (RFC 8259): never NaN or Infinity."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False, **kwargs)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell value a spreadsheet shows as written: text that would start a formula gets a
    leading single quote; numbers (also written as text, such as ``-1.5e-3``) and empty cells are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with one header line; every text cell passes :func:`csv_cell`."""
    out = io.StringIO(newline="")
    w = csv.writer(out)  # RFC 4180: CRLF rows, so a CR or LF inside a name is quoted, never a row break
    w.writerow([csv_cell(h) for h in header])
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return out.getvalue()
