"""Data of the systolic family: on-chip buffer arrays (NVSim tables) and CMOS node scaling (SB17).

Buffer arrays: a technology that can be a systolic buffer has a ``[buffer_array]`` section in
its ``data/tech/<name>.toml`` naming a CSV (``nvsim_buffers/buffer_tables.csv``), its row label
and the node the table was made at; the CSV holds NVSim RAM designs per (roadmap, word width,
capacity), interpolated log-log between capacities (:class:`techlib.ArrayTable`), refused outside.

Node scaling: Stillmaker & Baas 2017 as tabulated in Accelergy's hwcomponents (the device's
``[node_scaling]`` section): energy ``a Vdd^2 + b Vdd + c`` of a node's row, area its 45 nm
row, both linear in node between table nodes; leakage scales like energy (hwcomponents'
``tech_node_leak``). A figure moves from node A to node B by ``factor(B) / factor(A)``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nvmc.ir.files import note_input

from .errors import TargetError, TechLibError
from .techlib import ArrayTable, Param, library
from nvmc.ir.units import format_capacity

_TABLE_FIELDS = ("area_mm2", "read_latency_ns", "write_latency_ns", "read_energy_nj", "write_energy_nj", "leakage_mw")


# ------------------------------------------------------------------ node scaling
@dataclass(frozen=True)
class NodeScaling:
    """SB17 per node: ``energy(n, m)`` moves an energy (or leakage) from m to n nm, ``area(n, m)``
    an area; the nodes are those the device's ``[node_scaling]`` section tabulates."""

    energy_at: dict[int, float]     # a Vdd^2 + b Vdd + c of each node's row
    area_at: dict[int, float]       # the 45 nm row of the area table

    @classmethod
    def from_params(cls, p, device_key: str = "array.device") -> "NodeScaling":
        """The device's SB17 table, each entry read through ``p`` (so ``nvmc explain`` lists them)."""
        prefix = "node_scaling.area_"
        nodes = [int(k[len(prefix):-len("nm")]) for k in p.data(device_key).params if k.startswith(prefix)]
        vdd = p.lib(device_key, "node_scaling.vdd_v")
        energy = {n: sum(p.lib(device_key, f"node_scaling.energy_{k}_{n}nm") * vdd ** power   # a Vdd^2 + b Vdd + c
                         for k, power in zip("abc", (2, 1, 0))) for n in nodes}
        return cls(energy, {n: p.lib(device_key, f"node_scaling.area_{n}nm") for n in nodes})

    @property
    def node_range(self) -> tuple[int, int]:
        return min(self.area_at), max(self.area_at)

    @staticmethod
    def _interp(table: dict[int, float], node_nm: float) -> float:
        nodes = sorted(table)  # the caller checks node_range: np.interp would clamp
        return float(np.interp(node_nm, nodes, [table[n] for n in nodes]))

    def energy(self, node_nm: float, from_nm: float) -> float:
        return self._interp(self.energy_at, node_nm) / self._interp(self.energy_at, from_nm)

    def area(self, node_nm: float, from_nm: float) -> float:
        return self._interp(self.area_at, node_nm) / self._interp(self.area_at, from_nm)


# ------------------------------------------------------------------ buffer arrays
@lru_cache(maxsize=8)
def _read_rows(path: Path) -> tuple[dict, ...]:
    if not path.exists():
        raise TechLibError("buffer table not found", where=str(path))
    rows = []
    note_input(path)
    with open(path, newline="") as f:
        for i, raw in enumerate(csv.DictReader(f), start=2):
            try:
                row = {**raw, **{k: float(raw[k]) for k in _TABLE_FIELDS},
                       "capacity_bytes": int(raw["capacity_bytes"]), "word_bytes": int(raw["word_bytes"])}
            except (KeyError, TypeError, ValueError) as e:
                raise TechLibError(f"line {i}: bad row ({e})", where=str(path)) from None
            if any(row[k] <= 0 for k in _TABLE_FIELDS):
                raise TechLibError(f"line {i}: non-positive figure", where=str(path))
            rows.append(row)
    return tuple(rows)


@lru_cache(maxsize=64)
def buffer_table(tech_name: str, roadmap: str, word_bytes: int) -> tuple[ArrayTable, float, str]:
    """The NVSim RAM designs of one technology (its ``[buffer_array]`` section), roadmap and word
    width, by capacity; the node they were made at; and the technology file."""
    lib = library()
    tech = lib.tech(tech_name)
    path = tech.settings.get("buffer_array.table")
    if path is None:
        usable = [n for n, t in lib.techs.items() if "buffer_array.table" in t.settings]
        raise TechLibError(f"technology '{tech_name}' has no on-chip buffer data ([buffer_array] section)",
                           where=str(tech.path), hint=f"choose one of: {', '.join(usable)}")
    label = tech.settings.get("buffer_array.row", tech_name)
    rows = [r for r in _read_rows(lib.root / path) if r["technology"] == label and r["roadmap"] == roadmap]
    widths = sorted({r["word_bytes"] for r in rows})
    if word_bytes not in widths:
        tabulated = ", ".join(f"{w * 8} bit" for w in widths) or "none (rerun nvsim_buffers/run_nvsim_buffers.py)"
        raise TechLibError(f"no NVSim buffer data for {word_bytes * 8}-bit words ({tech_name}, {roadmap})",
                           where=str(lib.root / path), hint=f"tabulated: {tabulated}")
    table = ArrayTable(tech_name, [dict(r, line_bytes=word_bytes) for r in rows if r["word_bytes"] == word_bytes],
                       tech.settings.get("buffer_array.source", ""), str(lib.root / path))
    return table, tech["buffer_array.node_nm"], str(tech.path)


# ------------------------------------------------------------------ a target's buffers
@dataclass
class Buffer:
    """One on-chip buffer resolved against its NVSim table (SI units, at the target's node)."""

    technology: str
    capacity: int
    word_bytes: int
    banks: int
    volatile: bool
    read_energy_j: float
    write_energy_j: float
    read_latency_s: float
    write_latency_s: float
    leakage_w: float
    area_mm2: float

    def info(self) -> dict:
        info = {k: v for k, v in vars(self).items() if k not in ("capacity", "word_bytes")}
        return {**info, "capacity_bytes": self.capacity, "word_bits": self.word_bytes * 8}


def resolve_buffer(p, role: str, roadmap: str, node: float, scaling: NodeScaling) -> Buffer:
    """The ``<role>_buffer`` keys of a target as a :class:`Buffer`: its NVSim row at the capacity,
    energy and leakage scaled to ``node`` like logic, area by the area factor, latencies kept."""
    sec = f"{role}_buffer"
    tech_name, capacity, word_bits = p[f"{sec}.technology"], int(p[f"{sec}.capacity"]), int(p[f"{sec}.word_bits"])
    where = p.target.source
    if word_bits % 8:
        raise TargetError(f"{sec}.word_bits = {word_bits}: must be a whole number of bytes", where=where)
    if capacity < word_bits // 8:
        raise TargetError(f"{sec}.capacity = {capacity} B is smaller than one {word_bits}-bit word", where=where,
                          hint="a buffer holds at least one word; give e.g. capacity = '64KiB'")
    try:
        table, table_nm, tech_file = buffer_table(tech_name, roadmap, word_bits // 8)
    except TechLibError as e:
        raise TargetError(f"{sec}: {e.message}", where=where, hint=e.hint) from None
    if not table.covers(capacity):
        lo, hi = (format_capacity(c) for c in table.capacity_range)
        raise TargetError(f"{sec}.capacity = {format_capacity(capacity)}: no {tech_name} buffer data at that "
                          f"capacity (the NVSim table covers {lo} to {hi})", where=where,
                          hint=f"choose a capacity between {lo} and {hi}")
    point = table.at(capacity)
    e = scaling.energy(node, table_nm)
    note = f"{point.note}, {roadmap}, {word_bits}-bit words, at {table_nm:g} nm"
    for name in ("area_mm2", "read_latency_s", "write_latency_s", "read_energy_j", "write_energy_j", "leakage_w"):
        p.add(Param(f"{sec}.array.{name}", getattr(point, name), "source", note, table.origin))
    p.add(Param(f"{sec}.energy_scale", e, "derived", f"Stillmaker & Baas energy (and leakage) factor "
                f"{table_nm:g} -> {node:g} nm; latencies are not scaled", tech_file))
    area = _scaled_area(p, sec, point.area_mm2, capacity, table_nm, node, scaling, tech_file)
    volatile = bool(library().tech(tech_name).settings.get("buffer_array.volatile", True))
    return Buffer(tech_name, capacity, word_bits // 8, int(p[f"{sec}.banks"]), volatile, point.read_energy_j * e,
                  point.write_energy_j * e, point.read_latency_s, point.write_latency_s, point.leakage_w * e, area)


def _scaled_area(p, sec: str, area_mm2: float, capacity: int, table_nm: float, node: float,
                 scaling: NodeScaling, tech_file: str) -> float:
    """The NVSim array's area moved from ``table_nm`` to ``node``.

    The periphery scales like logic (SB17). The bitcells (capacity x cell F^2 x F^2 at the table's
    node) do too, unless the technology cites its cell size per node (``[node_cell]``, SRAM:
    160 F^2 at 22 nm and above, 600 F^2 at 7 nm): then they scale by F^2 and that size."""
    a = scaling.area(node, table_nm)
    p.add(Param(f"{sec}.area_scale", a, "derived", f"Stillmaker & Baas area factor {table_nm:g} -> {node:g} nm",
                tech_file))
    tech = library().tech(p[f"{sec}.technology"])
    if tech.settings.get("buffer_array.cell_node_scaling", "logic") != "node_cell" or node == table_nm:
        return area_mm2 * a

    def cited(key: str) -> float:
        q = tech.param(key)
        p.add(Param(f"{tech.name}:{key}", q.value, q.kind, q.note, q.origin, q.formula))
        return q.value

    prefix = "node_cell.area_f2_"
    sizes = {float(k[len(prefix):-len("nm")]): cited(k) for k in tech.params if k.startswith(prefix)}
    nodes = sorted(sizes)
    f2 = [sizes[n] for n in nodes]
    growth = float(np.interp(node, nodes, f2) / np.interp(table_nm, nodes, f2))
    cells_mm2 = capacity * 8 * cited("buffer_array.cell_area_f2") * (table_nm * 1e-6) ** 2
    cell_scale = p.derive(f"{sec}.cell_area_scale", (node / table_nm) ** 2 * growth,
                          f"({node:g} / {table_nm:g})^2 x {growth:.3g} (the cell's F^2 at {node:g} nm / at "
                          f"{table_nm:g} nm, [node_cell])",
                          "bitcell area from the table's node to the target's: F^2 and the cited cell size in F^2")
    return cells_mm2 * cell_scale + (area_mm2 - cells_mm2) * a
