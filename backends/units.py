"""Parsing quantities written by people: capacities such as "4MiB", "2816KiB", "512 kB".

Binary prefixes (KiB, MiB, GiB) are powers of 1024, SI prefixes (kB, MB, GB) powers of 1000;
a bare integer is a number of bytes. Inside nvmc every capacity is an int of bytes.
"""

from __future__ import annotations

import re

_CAPACITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGT]i?B|kB|B)?\s*$")
_FACTORS = {
    None: 1, "B": 1,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
}


def parse_capacity(value) -> int:
    """'4MiB' -> 4194304. Raises ValueError with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"expected a capacity such as '4MiB', got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"must be positive, got {value}")
        return value
    if isinstance(value, float):
        raise ValueError(f"expected a capacity such as '4MiB' or a whole number of bytes, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"expected a capacity such as '4MiB', got {value!r}")
    m = _CAPACITY.match(value)
    if not m:
        raise ValueError(f"'{value}' is not a capacity: write e.g. '4MiB', '2816KiB' or a number of bytes")
    nbytes = float(m.group(1)) * _FACTORS[m.group(2)]
    if nbytes == float("inf"):  # more digits than a float holds
        raise ValueError(f"'{value[:40]}...' is too large a capacity")
    if nbytes <= 0:
        raise ValueError(f"must be positive, got '{value}'")
    if abs(nbytes - round(nbytes)) > 1e-6 * nbytes:
        raise ValueError(f"'{value}' is not a whole number of bytes")
    return int(round(nbytes))


def format_capacity(nbytes: float) -> str:
    """4194304 -> '4MiB'; 2883584 -> '2.75MiB'; non-round values keep 4 significant digits."""
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if nbytes >= scale:
            return f"{nbytes / scale:.4g}{unit}"
    return f"{nbytes:.0f}B"
