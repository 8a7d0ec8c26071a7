"""The technology library: memory technologies and devices as cited TOML data.

Files live under ``backends/data/``: ``tech/*.toml`` (schema ``nvmc.tech/1``: a memory
technology's cell and array figures) and ``devices/*.toml`` (schema ``nvmc.device/1``: a
compute device such as a GPU). Every number is an inline table that says where it comes
from, exactly one of::

    read_energy_j = { value = 1.0e-12, source = "NVS sample_STTRAM.cell @6e3d070" }
    peak_macs_per_s = { formula = "compute.cuda_cores * compute.boost_clock_hz",
                        derived = "one fused multiply-add per CUDA core per cycle" }
    l2_slices = { value = 22, assumed = "why this value is reasonable" }

A bare number, or a number with none of ``source`` / ``derived`` / ``assumed``, is a load
error: the library never holds a figure nobody can trace. ``formula`` (arithmetic over
other keys of the same file) computes a derived value, or checks a written one.

Array-level cache figures (area, per-access latency and energy, leakage at a capacity)
come from a circuit-level table (``[llc_array]`` names a CSV and its rows); see
:class:`ArrayTable` for how capacities between rows are interpolated.
"""

from __future__ import annotations

import ast
import csv
import math
import operator
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nvmc.ir.errors import did_you_mean
from nvmc.ir.files import note_input, read_input

from .errors import TechLibError
from nvmc.ir.units import format_capacity

DATA_DIR = Path(__file__).resolve().parent / "data"
PROVENANCE_KINDS = ("source", "derived", "assumed")
_SCHEMAS = {"nvmc.tech/1": "tech", "nvmc.device/1": "device"}
_PARAM_KEYS = {"value", "unit", "formula", *PROVENANCE_KINDS}


@dataclass(frozen=True)
class Param:
    """One number of the library with its provenance."""

    key: str                # "cell.area_f2"
    value: float | int
    kind: str               # "source" | "derived" | "assumed"
    note: str               # the citation, the derivation, or why it is assumed
    origin: str             # the file it was read from (relative to the data folder)
    formula: str = ""

    @property
    def assumed(self) -> bool:
        return self.kind == "assumed"


@dataclass
class DataFile:
    """A technology or a device: its cited numbers and its plain (string) settings."""

    name: str
    kind: str               # "tech" | "device"
    description: str
    path: Path
    params: dict[str, Param]
    settings: dict[str, Any] = field(default_factory=dict)   # non-numeric entries, e.g. llc_array.table

    def __getitem__(self, key: str) -> float:
        return self.param(key).value

    def param(self, key: str) -> Param:
        try:
            return self.params[key]
        except KeyError:
            raise TechLibError(f"no parameter '{key}'{did_you_mean(key, self.params)}",
                               where=_display(self.path)) from None

    def get(self, key: str, default=None):
        p = self.params.get(key)
        return default if p is None else p.value


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(DATA_DIR.parent.parent))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------ loading TOML
def load_data_file(path: Path) -> DataFile:
    where = _display(path)
    try:
        doc = tomllib.loads(read_input(path, "technology data file", error=TechLibError).decode("utf-8"))
    except ValueError as e:  # TOMLDecodeError, UnicodeDecodeError, an integer of more than 4300 digits
        raise TechLibError(f"not valid TOML: {e}", where=where) from None
    schema = doc.pop("schema", None)
    if schema not in _SCHEMAS:
        raise TechLibError(f"schema = {schema!r}: expected one of {', '.join(map(repr, _SCHEMAS))}", where=where)
    name, description = doc.pop("name", None), doc.pop("description", "")
    if not isinstance(name, str) or not name:
        raise TechLibError("missing 'name' (a string)", where=where)
    if name != path.stem:
        raise TechLibError(f"name = '{name}' differs from the file name '{path.stem}'", where=where)
    params: dict[str, Param] = {}
    settings: dict[str, Any] = {}
    formulas: dict[str, dict] = {}
    for section, entries in doc.items():
        if not isinstance(entries, dict):
            raise TechLibError(f"top-level key '{section}' must be a [section]", where=where)
        for key, raw in entries.items():
            dotted = f"{section}.{key}"
            if isinstance(raw, dict):
                unknown = set(raw) - _PARAM_KEYS
                if unknown:
                    bad = sorted(unknown)[0]
                    raise TechLibError(f"{dotted}: unknown field '{bad}'{did_you_mean(bad, _PARAM_KEYS)}", where=where)
                kinds = [k for k in PROVENANCE_KINDS if k in raw]
                if len(kinds) != 1:
                    raise TechLibError(f"{dotted}: a number needs exactly one of source / derived / assumed"
                                       f" (found {', '.join(kinds) or 'none'})", where=where,
                                       hint='e.g. { value = 1.2, source = "paper, table 3" }')
                if "formula" in raw:
                    formulas[dotted] = raw
                    continue
                value = raw.get("value")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TechLibError(f"{dotted}: 'value' must be a number, got {value!r}", where=where)
                if abs(value) > 1e300 or not math.isfinite(value):  # abs first: a huge int has no float
                    raise TechLibError(f"{dotted}: 'value' must be a finite number, got {value!r}", where=where)
                params[dotted] = Param(dotted, value, kinds[0], str(raw[kinds[0]]), where)
            elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
                raise TechLibError(f"{dotted} = {raw}: a number without a source", where=where,
                                   hint=f'write {key} = {{ value = {raw}, source = "..." }} or assumed = "why"')
            else:
                settings[dotted] = raw
    _evaluate_formulas(formulas, params, where)
    return DataFile(name, _SCHEMAS[schema], description, path, params, settings)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg}


def _evaluate_formulas(formulas: dict[str, dict], params: dict[str, Param], where: str) -> None:
    """Derived values may reference each other: evaluate until no progress."""
    pending = dict(formulas)
    while pending:
        progressed = False
        for key, raw in list(pending.items()):
            try:
                value = _eval(raw["formula"], params)
            except KeyError:
                continue
            except (SyntaxError, TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
                raise TechLibError(f"{key}: cannot evaluate formula {raw['formula']!r}: {e}", where=where) from None
            if not math.isfinite(value):
                raise TechLibError(f"{key}: formula {raw['formula']!r} gives {value}", where=where)
            written = raw.get("value")
            if written is not None and abs(written - value) > 5e-3 * abs(value):
                raise TechLibError(f"{key}: value {written} disagrees with its formula {raw['formula']!r} = "
                                   f"{value:.6g}", where=where)
            kind = next(k for k in PROVENANCE_KINDS if k in raw)
            params[key] = Param(key, value, kind, str(raw[kind]), where, formula=raw["formula"])
            del pending[key]
            progressed = True
        if not progressed:
            key, raw = next(iter(pending.items()))
            names = [n for n in _names(raw["formula"]) if n not in params]
            raise TechLibError(f"{key}: formula refers to unknown '{names[0] if names else '?'}'"
                               f"{did_you_mean(names[0], params) if names else ''}", where=where)


def _names(formula: str) -> list[str]:
    return [ast.unparse(n) for n in ast.walk(ast.parse(formula, mode="eval")) if isinstance(n, ast.Attribute)]


def _eval(formula: str, params: dict[str, Param]) -> float:
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Attribute) or isinstance(node, ast.Name):
            return params[ast.unparse(node)].value   # KeyError: not (yet) known
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"only numbers, section.key names and + - * / ** are allowed, not {ast.unparse(node)!r}")
    return float(walk(ast.parse(formula, mode="eval")))


# ------------------------------------------------------------- array tables
@dataclass(frozen=True)
class ArrayPoint:
    """A cache array at one capacity, SI units; ``note`` says how it was obtained."""

    capacity_bytes: int
    line_bytes: int
    area_mm2: float
    read_latency_s: float
    write_latency_s: float
    read_energy_j: float
    write_energy_j: float
    leakage_w: float
    note: str


_COMPOSED = re.compile(r"^\d+x:")
_TABLE_COLUMNS = {  # csv column -> (ArrayPoint field, factor to SI)
    "area_mm2": ("area_mm2", 1.0),
    "read_latency_ns": ("read_latency_s", 1e-9),
    "write_latency_ns": ("write_latency_s", 1e-9),
    "read_energy_nj": ("read_energy_j", 1e-9),
    "write_energy_nj": ("write_energy_j", 1e-9),
    "leakage_mw": ("leakage_w", 1e-3),
}


class ArrayTable:
    """Array-level figures of one technology at several capacities, from a circuit-level tool.

    Between two tabulated capacities every figure is interpolated linearly in
    log(capacity) -> log(figure) (power-law between neighbours: area and leakage grow
    nearly linearly with capacity, latency and energy sub-linearly). Capacities outside
    the table are refused rather than extrapolated.

    Rows composed of several identical slices (``config_file = "3x:..."``: NVSim only builds
    power-of-two capacities, so run_nvsim.py makes 3/6/12/24 MB from three slices, with one
    slice's latency and energy) are left out: mixing them with single arrays would make
    latency and energy jump up and down between neighbouring capacities. The table thus
    interpolates across NVSim's own single-array designs.
    """

    def __init__(self, technology: str, rows: list[dict[str, Any]], source: str, origin: str):
        if not rows:
            raise TechLibError(f"no rows for technology '{technology}'", where=origin)
        rows = sorted(rows, key=lambda r: r["capacity_bytes"])
        self.technology = technology
        self.source = source
        self.origin = origin
        self.line_bytes = int(rows[0]["line_bytes"])
        self.capacities = np.array([r["capacity_bytes"] for r in rows], dtype=np.float64)
        self.columns = {f: np.array([r[col] * factor for r in rows], dtype=np.float64)
                        for col, (f, factor) in _TABLE_COLUMNS.items()}
        self.rows = rows
        if np.any(np.diff(self.capacities) <= 0):
            raise TechLibError(f"'{technology}': duplicate capacities in the table", where=origin)

    @property
    def capacity_range(self) -> tuple[int, int]:
        return int(self.capacities[0]), int(self.capacities[-1])

    def covers(self, capacity: float) -> bool:
        lo, hi = self.capacity_range
        return lo * (1 - 1e-9) <= capacity <= hi * (1 + 1e-9)

    def at(self, capacity: float) -> ArrayPoint:
        if not self.covers(capacity):
            lo, hi = self.capacity_range
            raise TechLibError(f"no {self.technology} array data for {format_capacity(capacity)}: the table covers "
                               f"{format_capacity(lo)} to {format_capacity(hi)}", where=self.origin,
                               hint="choose a capacity inside the table, or add NVSim rows for it")
        x = np.log(capacity)
        xs = np.log(self.capacities)
        values = {f: float(np.exp(np.interp(x, xs, np.log(col)))) for f, col in self.columns.items()}
        exact = np.isclose(self.capacities, capacity, rtol=1e-9)
        if exact.any():
            row = self.rows[int(np.argmax(exact))]
            note = f"{self.technology} {format_capacity(capacity)} row of {self.origin} ({row.get('config_file', '')})"
        else:
            i = int(np.searchsorted(self.capacities, capacity))
            note = (f"{self.technology} {format_capacity(capacity)}: log-log interpolation between the "
                    f"{format_capacity(self.capacities[i - 1])} and {format_capacity(self.capacities[i])} rows "
                    f"of {self.origin}")
        return ArrayPoint(int(round(capacity)), self.line_bytes, note=note, **values)

    def capacity_for_area(self, area_mm2: float) -> float | None:
        """The capacity whose array area equals ``area_mm2`` (None outside the table)."""
        areas = self.columns["area_mm2"]
        if not (areas[0] <= area_mm2 <= areas[-1]) or np.any(np.diff(areas) <= 0):
            return None
        return float(np.exp(np.interp(np.log(area_mm2), np.log(areas), np.log(self.capacities))))


def _read_table(path: Path, technology: str, line_bytes: int, source: str) -> ArrayTable:
    where = _display(path)
    if not path.exists():
        raise TechLibError("array table not found", where=where)
    rows = []
    labels = set()
    note_input(path)
    with open(path, newline="") as f:
        for i, raw in enumerate(csv.DictReader(f), start=2):
            labels.add(raw.get("technology"))
            if raw.get("technology") != technology or int(raw.get("line_bytes", 0)) != line_bytes:
                continue
            if _COMPOSED.match(raw.get("config_file", "")):
                continue  # "3x:<slice>" rows: another organisation, see ArrayTable
            try:
                row = {k: (float(v) if k in _TABLE_COLUMNS else v) for k, v in raw.items()}
                row["capacity_bytes"] = int(raw["capacity_bytes"])
                row["line_bytes"] = int(raw["line_bytes"])
            except (KeyError, TypeError, ValueError) as e:
                raise TechLibError(f"line {i}: bad row ({e})", where=where) from None
            if any(row[c] <= 0 for c in _TABLE_COLUMNS):
                raise TechLibError(f"line {i}: non-positive figure in a {technology} row", where=where)
            rows.append(row)
    if not rows:
        raise TechLibError(f"no rows with technology = '{technology}' and line_bytes = {line_bytes}"
                           f"{did_you_mean(technology, labels)}", where=where)
    return ArrayTable(technology, rows, source, where)


# ------------------------------------------------------------------ library
class Library:
    """Every technology and device under a data folder, loaded and validated once."""

    def __init__(self, root: Path = DATA_DIR):
        self.root = root
        self.techs = {p.stem: load_data_file(p) for p in sorted((root / "tech").glob("*.toml"))}
        self.devices = {p.stem: load_data_file(p) for p in sorted((root / "devices").glob("*.toml"))}
        for name, tech in self.techs.items():
            if tech.kind != "tech":
                raise TechLibError("a file under tech/ must have schema = 'nvmc.tech/1'", where=_display(tech.path))
        for name, dev in self.devices.items():
            if dev.kind != "device":
                raise TechLibError("a file under devices/ must have schema = 'nvmc.device/1'", where=_display(dev.path))
        self._tables: dict[str, ArrayTable] = {}

    def tech(self, name: str) -> DataFile:
        if name not in self.techs:
            raise TechLibError(f"unknown memory technology '{name}'{did_you_mean(name, self.techs)}",
                               hint=f"the library has: {', '.join(self.techs)}")
        return self.techs[name]

    def device(self, name: str) -> DataFile:
        if name not in self.devices:
            raise TechLibError(f"unknown device '{name}'{did_you_mean(name, self.devices)}",
                               hint=f"the library has: {', '.join(self.devices)}")
        return self.devices[name]

    def array_table(self, tech_name: str) -> ArrayTable:
        """The cache-array table of a technology (its ``[llc_array]`` section)."""
        if tech_name in self._tables:
            return self._tables[tech_name]
        tech = self.tech(tech_name)
        table = tech.settings.get("llc_array.table")
        if table is None:
            raise TechLibError(f"technology '{tech_name}' has no cache-array data ([llc_array] table)",
                               where=_display(tech.path), hint="choose sram, stt-mram or sot-mram for an LLC")
        label = tech.settings.get("llc_array.row", tech_name)
        line = int(tech["llc_array.line_bytes"])
        source = tech.settings.get("llc_array.source", "")
        self._tables[tech_name] = _read_table(self.root / table, label, line, source)
        return self._tables[tech_name]


@lru_cache(maxsize=4)
def library(root: Path = DATA_DIR) -> Library:
    return Library(root)
