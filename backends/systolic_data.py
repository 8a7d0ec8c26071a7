"""Data of the systolic family: on-chip buffer arrays (NVSim tables) and CMOS node scaling (SB17).

Buffer arrays: a technology that can be a systolic buffer has a ``[buffer_array]`` section
in its ``data/tech/<name>.toml`` naming a CSV (``nvsim_buffers/buffer_tables.csv``), its
row label and the node the table was made at. The table holds NVSim RAM designs per
(device roadmap, word width, capacity); between two capacities the figures are
interpolated log-log (:class:`techlib.ArrayTable`), outside the table they are refused.

Node scaling: Stillmaker & Baas 2017 as tabulated in Accelergy's hwcomponents (the
``[node_scaling]`` section of the device file). Energy at a node is ``a Vdd^2 + b Vdd + c``
of its table row; area is the 45 nm row of the area table; both are interpolated linearly
in node between table nodes. Leakage power scales like energy (hwcomponents'
``tech_node_leak``). A figure at node A moves to node B by ``factor(B) / factor(A)``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nvmc.ir.files import note_input

from .errors import TechLibError
from .techlib import ArrayTable, DataFile, library
from .units import format_capacity

SB17_NODES_NM = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)
_TABLE_FIELDS = ("area_mm2", "read_latency_ns", "write_latency_ns", "read_energy_nj", "write_energy_nj",
                 "leakage_mw")


# ------------------------------------------------------------------ node scaling
@dataclass(frozen=True)
class NodeScaling:
    """SB17 factors relative to 45 nm; ``energy(n) / energy(m)`` moves an energy from m to n nm."""

    energy_45: dict[int, float]
    area_45: dict[int, float]

    @classmethod
    def from_device(cls, dev: DataFile) -> "NodeScaling":
        vdd = dev["node_scaling.vdd_v"]
        energy = {}
        for n in SB17_NODES_NM:
            a, b, c = (dev[f"node_scaling.energy_{k}_{n}nm"] for k in "abc")
            energy[n] = a * vdd ** 2 + b * vdd + c
        ref = energy[45]
        return cls({n: e / ref for n, e in energy.items()},
                   {n: dev[f"node_scaling.area_{n}nm"] for n in SB17_NODES_NM})

    @property
    def node_range(self) -> tuple[int, int]:
        return min(SB17_NODES_NM), max(SB17_NODES_NM)

    def _interp(self, table: dict[int, float], node_nm: float) -> float:
        lo, hi = self.node_range
        if not lo <= node_nm <= hi:
            raise ValueError(f"node {node_nm:g} nm is outside the Stillmaker & Baas table ({lo}-{hi} nm)")
        nodes = sorted(table)
        return float(np.interp(node_nm, nodes, [table[n] for n in nodes]))

    def energy(self, node_nm: float, from_nm: float = 45) -> float:
        return self._interp(self.energy_45, node_nm) / self._interp(self.energy_45, from_nm)

    def area(self, node_nm: float, from_nm: float = 45) -> float:
        return self._interp(self.area_45, node_nm) / self._interp(self.area_45, from_nm)


# ------------------------------------------------------------------ buffer arrays
@dataclass(frozen=True)
class BufferSpec:
    """Where a technology's buffer figures live (its ``[buffer_array]`` section)."""

    technology: str
    table: Path
    row: str
    node_nm: float
    source: str
    origin: str


def buffer_spec(tech_name: str) -> BufferSpec:
    lib = library()
    tech = lib.tech(tech_name)
    table = tech.settings.get("buffer_array.table")
    if table is None:
        usable = [n for n, t in lib.techs.items() if "buffer_array.table" in t.settings]
        raise TechLibError(f"technology '{tech_name}' has no on-chip buffer data ([buffer_array] section)",
                           where=str(tech.path), hint=f"choose one of: {', '.join(usable)}")
    return BufferSpec(tech_name, lib.root / table, tech.settings.get("buffer_array.row", tech_name),
                      tech["buffer_array.node_nm"], tech.settings.get("buffer_array.source", ""), str(tech.path))


@lru_cache(maxsize=8)
def _read_rows(path: Path) -> tuple[dict, ...]:
    if not path.exists():
        raise TechLibError("buffer table not found", where=str(path))
    rows = []
    note_input(path)
    with open(path, newline="") as f:
        for i, raw in enumerate(csv.DictReader(f), start=2):
            try:
                row = dict(raw)
                for k in _TABLE_FIELDS:
                    row[k] = float(raw[k])
                row["capacity_bytes"] = int(raw["capacity_bytes"])
                row["word_bytes"] = int(raw["word_bytes"])
            except (KeyError, TypeError, ValueError) as e:
                raise TechLibError(f"line {i}: bad row ({e})", where=str(path)) from None
            if any(row[k] <= 0 for k in _TABLE_FIELDS):
                raise TechLibError(f"line {i}: non-positive figure", where=str(path))
            rows.append(row)
    return tuple(rows)


def word_widths(spec: BufferSpec, roadmap: str) -> list[int]:
    """Word widths (bytes) tabulated for a technology and roadmap."""
    return sorted({r["word_bytes"] for r in _read_rows(spec.table)
                   if r["technology"] == spec.row and r["roadmap"] == roadmap})


@lru_cache(maxsize=64)
def buffer_table(tech_name: str, roadmap: str, word_bytes: int) -> ArrayTable:
    """The NVSim RAM designs of one technology, roadmap and word width, by capacity."""
    spec = buffer_spec(tech_name)
    rows = [dict(r, line_bytes=r["word_bytes"]) for r in _read_rows(spec.table)
            if r["technology"] == spec.row and r["roadmap"] == roadmap and r["word_bytes"] == word_bytes]
    if not rows:
        widths = word_widths(spec, roadmap)
        raise TechLibError(f"no {tech_name} buffer data for {roadmap} devices with {word_bytes * 8}-bit words",
                           where=str(spec.table),
                           hint=f"tabulated word widths: {', '.join(str(w * 8) for w in widths) or 'none'} bit")
    return ArrayTable(tech_name, rows, spec.source, str(spec.table))


def capacity_range_text(table: ArrayTable) -> str:
    lo, hi = table.capacity_range
    return f"{format_capacity(lo)} to {format_capacity(hi)}"
