"""Terminal rendering with rich. Data structures never print themselves; this module does.

Colours follow rich's rules: off when the stream is not a terminal, off with NO_COLOR.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.console import Console
from rich.table import Table


@lru_cache(maxsize=None)
def console() -> Console:
    return Console(highlight=False)


@lru_cache(maxsize=None)
def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_notices(notices) -> None:
    for notice in notices:
        err_console().print(f"note: {notice}", markup=False, soft_wrap=True)


def progress(text: str, *, quiet: bool = False):
    """A spinner on stderr while long work runs; nothing when quiet or stderr is not a terminal."""
    from contextlib import nullcontext

    if quiet or not err_console().is_terminal:
        return nullcontext()
    return err_console().status(text, spinner="dots")


def si(value: float, unit: str, digits: int = 3) -> str:
    """12.3 ms, 4.56 mJ, 1.20 GMAC: a readable SI prefix."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g} {unit}"
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"),
                (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def binary(nbytes: float) -> str:
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {prefix}"
    return f"{nbytes:.0f} B"


def workload_table(workload, title: str, top: int = 10) -> Table:
    totals = workload.totals
    table = Table(title=f"{title}: {totals['nodes']} nodes, {si(totals['macs'], 'MAC')}, "
                        f"{si(totals['params'], 'params')}, weights {binary(totals['weight_bytes'])}",
                  title_justify="left")
    for col in ("node", "op", "MACs", "share", "non-MAC ops", "params", "weights", "out act."):
        table.add_column(col, justify="left" if col in ("node", "op") else "right")
    c = workload.columns
    macs = c["macs"]
    nonmac = sum(workload.nonmac.values())
    order = np.argsort(-(macs + nonmac), kind="stable")[:top]
    total = max(1, totals["macs"])
    for i in order:
        table.add_row(workload.names[i], workload.ops[i], si(int(macs[i]), ""), f"{100 * macs[i] / total:.1f}%",
                      si(int(nonmac[i]), ""), si(int(c["params"][i]), ""), binary(c["weight_bytes"][i]),
                      binary(c["output_bytes"][i]))
    return table
