"""Quantities written by people and shown to them: one parser and one set of formatters for
the CLI, reports, targets, budgets, networks and sweeps.

A quantity is a number and a unit: ``5ms``, ``2 mJ``, ``25Gbit/s``, ``4MiB``, ``10mm2``. Each
use names the units it accepts as a table of spelling -> factor to its SI value
(``prefixed("s")`` gives s, ms, us, µs, ns, ...); capacities take binary (KiB = 1024 B) and SI
(kB = 1000 B) prefixes and are whole bytes.

    >>> parse_quantity("5ms", prefixed("s"), "latency")
    0.005
    >>> parse_capacity("2816KiB"), format_capacity(2883584), si(0.0123, "s"), binary(1536)
    (2883584, '2.75MiB', '12.3 ms', '1.5 KiB')
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

PREFIXES = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3, "": 1.0,
            "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
NUMBER = re.compile(r"\s*([-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(.*?)\s*\Z")


def prefixed(base: str, spellings: Iterable[str] = (), scale: float = 1.0) -> dict[str, float]:
    """``prefixed("J")`` -> {"J": 1, "mJ": 1e-3, "uJ": 1e-6, ...}: every SI prefix on every
    spelling of a unit, ``scale`` times (``prefixed("bit/s", scale=1/8)`` is in bytes/s)."""
    return {p + s: f * scale for s in (base, *spellings) for p, f in PREFIXES.items()}


def split_quantity(text: str) -> tuple[float, str] | None:
    """``"2 mJ"`` -> (2.0, "mJ"); None when it does not start with a number."""
    m = NUMBER.match(str(text))
    return (float(m.group(1)), m.group(2).replace(" ", "")) if m else None


def parse_quantity(text: str, units: Mapping[str, float], what: str, example: str = "") -> float:
    """The SI value of ``text`` in one of ``units``; ValueError saying what is accepted."""
    parts = split_quantity(text)
    if parts is None or parts[1] not in units:
        shown = f": write e.g. {example}" if example else f" (units: {', '.join(sorted(units))})"
        need = ("is not a number with a unit" if parts is None else "needs a unit" if not parts[1]
                else f"has an unknown unit '{parts[1]}'")
        raise ValueError(f"{what} '{text}' {need}{shown}")
    value = parts[0] * units[parts[1]]
    if not math.isfinite(value):  # more digits than a float holds
        raise ValueError(f"{what} '{str(text)[:40]}' is too large")
    return value


# ------------------------------------------------------------------ capacities (whole bytes)
CAPACITY_UNITS = {"": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
                  "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def parse_capacity(value) -> int:
    """'4MiB' -> 4194304; a bare int is bytes. Raises ValueError with a readable message."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        kind = "a whole number of bytes" if isinstance(value, float) else "a capacity such as '4MiB'"
        raise ValueError(f"expected a capacity such as '4MiB' or {kind}, got {value!r}")
    if isinstance(value, int):
        nbytes = float(value)
    else:
        parts = split_quantity(value)
        if parts is None or parts[1] not in CAPACITY_UNITS:
            raise ValueError(f"'{value}' is not a capacity: write e.g. '4MiB', '2816KiB' or a number of bytes")
        nbytes = parts[0] * CAPACITY_UNITS[parts[1]]
        if not math.isfinite(nbytes):  # more digits than a float holds
            raise ValueError(f"'{value[:40]}...' is too large a capacity")
    if nbytes <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    if abs(nbytes - round(nbytes)) > 1e-6 * nbytes:
        raise ValueError(f"'{value}' is not a whole number of bytes")
    return value if isinstance(value, int) else int(round(nbytes))


def format_capacity(nbytes: float) -> str:
    """4194304 -> '4MiB'; 2883584 -> '2.75MiB': the form a capacity is written in (no space)."""
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if nbytes >= scale:
            return f"{nbytes / scale:.4g}{unit}"
    return f"{nbytes:.0f}B"


# ------------------------------------------------------------------ shown to people
def si(value: float, unit: str, digits: int = 3) -> str:
    """12.3 ms, 4.56 mJ, 1.20 GMAC: a readable SI prefix."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"),
                          (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def binary(nbytes: float) -> str:
    """1.5 KiB, 1023 KiB, 3.2 GiB: never an exponent (1023.4 KiB is '1023 KiB', not '1.02e+03 KiB')."""
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if nbytes >= scale:
            x = nbytes / scale
            return f"{x:.0f} {prefix}" if x >= 100 else f"{x:.3g} {prefix}"
    return f"{nbytes:.0f} B"
