"""What every cost-model family shares: its parameters as data, one resolver, count then price.

A family is a module with the model only and a data file with everything else
(``data/families/<family>.toml``, schema ``nvmc.family/1``)::

    # backends/gpu_llc.py
    FAMILY = "gpu-llc"
    SPEC = FamilySpec.load(FAMILY)        # keys, defaults with provenance, scope, precision, energy labels
    SCHEMA = SPEC.schema                  # section -> key -> Field: what target files and --set may say

    def count(workload, p: Params) -> Counts: ...   # per node: actions, their prices, busy time, latency
    estimate, parameters = SPEC.entry_points(count, resolve)   # what registry.py calls

The split is Timeloop/Accelergy's: ``count`` says how many of each action a node does (L2
reads, DRAM bits, MACs by precision, ADC conversions, hops ...) and how long each unit is
busy; every number it uses comes from :class:`Params` (``p["llc.capacity"]``,
``p.lib("gpu.device", "compute.sm_count")``, ``p.derive(...)``), each with its provenance.
:meth:`FamilySpec.estimate` then prices the counts the same way for every family: energy =
count x price per action, plus static power x node latency for every component that leaks,
area summed; it states the estimate's scope and the precision it costed, and reports area
that is not modelled as ``None``, never 0.

The data file::

    schema = "nvmc.family/1"
    family = "gpu-llc"
    [scope]                                   # what the energy and latency cover, in words
    label = "GPU L2, DRAM and arithmetic"
    excludes = "the rest of the GPU's static power"
    [precision]
    native = "model"                          # or e.g. ["int8"]: the precisions it computes in
    [keys.gpu.device]                         # one table per target key
    type = "str"                              # str, choice, int, float, capacity
    data = "devices"                          # a name of a data/<folder>/ file
    default = "gtx-1080-ti"
    help = "..."
    [keys.gpu.clock_hz]
    type = "float"
    unit = "Hz"
    default = { from = "gpu.device", key = "compute.boost_clock_hz" }    # a cited library number
    [keys.tiling.block_m]
    type = "int"
    default = { value = 128, assumed = "why 128" }                       # or source = / derived =

A number a target file writes may carry its provenance the same way
(``rows = { value = 16, assumed = "..." }``); a plain number is the target's design choice.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nvmc.ir.errors import did_you_mean
from nvmc.ir.kinds import KIND, SIMPLE_KINDS, TRANSCENDENTAL_KINDS  # noqa: F401 (KIND: for families)
from nvmc.ir.files import read_input

from .errors import TargetError, TechLibError
from .estimate import MAPPING_FIELDS, Estimate
from .support import check_supported
from .target import Field, Target
from .techlib import DATA_DIR, PROVENANCE_KINDS, DataFile, Param, library, load_data_file

FAMILY_SCHEMA = "nvmc.family/1"
FAMILIES_DIR = DATA_DIR / "families"
_KEY_FIELDS = {"type", "help", "default", "unit", "choices", "minimum", "maximum", "required", "data"}
# What a parameter's ``kind`` says about where its number came from.
CITED_KINDS = frozenset(PROVENANCE_KINDS)          # source, derived, assumed: traceable
SET_KINDS = frozenset({"target", "--set"})         # written by the target file or on the command line


@dataclass(frozen=True)
class Counts:
    """What a family's ``count`` found, per node (arrays aligned with the workload's rows).

    ``actions``: energy label -> (count per node, J per count): the price is a number from
    :class:`Params` or an array derived from them per node. ``busy``: unit -> s per node.
    ``latency``: s per node (the family's rule, usually the busiest unit plus a fixed
    overhead). ``static``: energy label -> W of a component that draws power for as long as
    the node runs. ``area``: component -> mm^2 (``None``: the family models no area).
    ``bits``: the precision each node's arithmetic was costed at (bits per operand)."""

    actions: dict[str, tuple[np.ndarray, Any]]
    busy: dict[str, np.ndarray]
    latency: np.ndarray
    static: dict[str, float] = field(default_factory=dict)
    area: dict[str, float] | None = None
    bits: np.ndarray | None = None
    events: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    macs: np.ndarray | None = None
    scope: dict[str, str] | None = None  # replaces the family's scope when the target widens or narrows it
    mapping: dict[str, Any] = field(default_factory=dict)   # estimate.MAPPING_FIELDS name -> per node (or one value)


def per(num, den) -> np.ndarray:
    """``num / den`` element-wise, NaN where ``den`` is not positive (a ratio a node does not have)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


class NotFitting(Exception):
    """``count`` raises it when the model does not fit the target: a result, not an error."""


class Params:
    """Every number a target's cost model uses, resolved once, each with its provenance.

    ``p[key]``: a target key's value (the target file, ``--set``, or the family's default:
    a library number or a value with its source or reason). ``p.lib(field, key)``: a number
    of the data file a target key names (a device, a technology). ``p.derive(key, value,
    formula)``: a number computed from others. Each lands in ``p.params`` once, in the order
    first used, which is what ``nvmc explain`` prints. ``p.read``: the target keys the cost model
    asked for, so a ``--set`` it never read can be said to have changed nothing (``unread_sets``)."""

    def __init__(self, target: Target, spec: "FamilySpec"):
        self.target = target
        self.spec = spec
        self.params: list[Param] = []
        self._by_key: dict[str, Param] = {}
        self.cache: dict[str, Any] = {}
        # Every read counts, not only those of the first resolution: a key the model reads again
        # is still read; FamilySpec.parameters takes back its listing of every key.
        self.read: set[str] = set()

    # ----------------------------------------------------------- reading
    def __getitem__(self, key: str) -> Any:
        return self.param(key).value

    def param(self, key: str) -> Param:
        self.read.add(key)
        if key not in self._by_key:
            self._add(self._resolve(key))
        return self._by_key[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value, or ``default`` when neither the target nor the family gives one."""
        field_ = self.spec.field(key)
        if self.target.values.get(key) is None and field_.default_ref is None and field_.default is None:
            return default
        return self[key]

    def data(self, key: str) -> DataFile:
        """The data file a string key names (a device, a technology, a preset)."""
        name = self[key]
        folder = self.spec.field(key).data
        if not folder:  # pragma: no cover - a family data bug
            raise TargetError(f"{key} does not name a data file", where=self.spec.path)
        try:
            return _data_file(folder, name)
        except (TargetError, TechLibError) as e:
            raise TargetError(f"{key}: {e.message}", where=self.target.where(key), hint=e.hint) from None

    def lib(self, key: str, name: str) -> Any:
        """Number ``name`` of the data file the target key ``key`` names, used as it is."""
        return self._number(self.data(key), name)

    def file(self, folder: str, name: str, key: str) -> Any:
        """Number ``key`` of the fixed data file ``data/<folder>/<name>.toml``."""
        return self._number(_data_file(folder, name), key)

    def _number(self, source: DataFile, name: str) -> Any:
        """Number ``name`` of ``source``, listed as ``<file>:<key>`` with its own provenance."""
        p = source.param(name)
        shown = f"{source.name}:{p.key}"
        if shown not in self._by_key:
            self._add(Param(shown, p.value, p.kind, p.note, p.origin, p.formula))
        return p.value

    def derive(self, key: str, value: Any, formula: str, note: str = "") -> Any:
        """Record a number computed from others (``formula`` says how) and return it."""
        if key not in self._by_key:
            self._add(Param(key, value, "derived", note or formula, self.target.source, formula))
        return value

    def add(self, param: Param) -> Any:
        """Record a number the family looked up itself (a table row, a data file entry)."""
        self._add(param)
        return param.value

    def assumptions(self) -> list[str]:
        if self.cache.get("assumptions", (None,))[0] != len(self.params):  # recomputed when a number is added
            self.cache["assumptions"] = (len(self.params), [f"{p.key} = {_fmt(p.value)}: {p.note}"
                                                            for p in self.params if p.kind == "assumed"])
        return list(self.cache["assumptions"][1])

    def unread_sets(self) -> list[str]:
        """A note for each key the user set (``--set``, ``sets=``, a sweep's parameters) that the
        model has not read: a value it cannot see changes nothing, and a sweep over it is flat."""
        t = self.target
        return [f"--set {key}={t.describe(key)}: not read by {t.name}'s model in this configuration; "
                "it changed nothing" for key, origin in t.origins.items() if origin == "--set" and key not in self.read]

    # ----------------------------------------------------------- resolving
    def _resolve(self, key: str) -> Param:
        t = self.target
        field_ = self.spec.field(key)
        value = t.values.get(key)
        if value is not None:
            origin = t.origins.get(key, "default")
            if origin == "--set":
                return Param(key, value, "--set", f"--set {key}={t.describe(key)}", t.source)
            if origin != "default":
                kind, note = t.provenance.get(key, ("target", f"set by {origin}"))
                return Param(key, value, kind, note, origin)
        if field_.default_ref is not None:
            return self._from_library(key, field_.default_ref)
        if field_.default is None:
            raise TargetError(f"{key}: no value, and family '{self.spec.family}' has no default for it",
                              where=t.source, hint=f"set [{key.partition('.')[0]}] {key.partition('.')[2]} in the "
                                                   "target file, or --set it")
        kind, note = field_.default_provenance or ("default", f"family default ({self.spec.display})")
        return Param(key, field_.check(field_.default), kind, note, self.spec.display)

    def _from_library(self, key: str, refs: tuple[tuple[str, str, str], ...]) -> Param:
        """The first of ``refs`` (field or fixed file, data folder, key) that exists."""
        for kind, where, name in refs:
            source = self.data(where) if kind == "field" else _data_file(*where.split("/", 1))
            if name in source.params:
                p = source.params[name]
                return Param(key, p.value, p.kind, f"= {source.name} {name}: {p.note}", p.origin, p.formula)
        shown = ", ".join(f"{w} {n}" for _, w, n in refs)
        raise TargetError(f"{key}: none of its library defaults exists ({shown})", where=self.target.source,
                          hint=f"set {key} in the target file")

    def _add(self, p: Param) -> None:
        if p.key not in self._by_key:
            self._by_key[p.key] = p
            self.params.append(p)


@dataclass
class FamilySpec:
    """A family's data file, loaded: its keys (with defaults and provenance), scope and precision."""

    family: str
    path: Path
    description: str
    schema: dict[str, dict[str, Field]]
    scope_system: str
    scope_label: str
    scope_excludes: str
    native: tuple[str, ...] | None        # None: computes at the model's precision
    area_modelled: bool

    @staticmethod
    @lru_cache(maxsize=None)
    def load(family: str, folder: Path = FAMILIES_DIR) -> "FamilySpec":
        return _load_spec(folder / f"{family}.toml", family)

    @property
    def display(self) -> str:
        return f"data/families/{self.path.name}" if self.path.parent == FAMILIES_DIR else str(self.path)

    def field(self, key: str) -> Field:
        section, _, name = key.partition(".")
        try:
            return self.schema[section][name]
        except KeyError:
            raise TargetError(f"family '{self.family}' has no key '{key}'", where=self.display) from None

    # ----------------------------------------------------------- the shared steps
    def params(self, target: Target) -> Params:
        """The target's resolved parameters (cached on the target)."""
        key = f"params:{self.family}"
        if key not in target.cache:
            target.cache[key] = Params(target, self)
        return target.cache[key]

    def parameters(self, target: Target, resolve: Callable | None = None) -> list[Param]:
        """Every number the cost model uses, for ``nvmc explain``: the target's keys, then what
        the family's ``resolve(p)`` reads (library numbers, table rows, derived values)."""
        p = self.params(target)
        read = set(p.read)
        try:
            for section, keys in self.schema.items():
                for name in keys:
                    if p.get(f"{section}.{name}") is not None:
                        p.param(f"{section}.{name}")
        finally:
            p.read = read  # listing every key is not the model reading it (an estimate after explain)
        if resolve is not None:
            try:
                resolve(p)
            except NotFitting as e:
                raise TargetError(str(e), where=target.source) from None
        return p.params

    def entry_points(self, count: Callable, resolve: Callable, *, batched: bool = False):
        """The ``estimate`` and ``parameters`` a family module exports (registry.py), over its
        ``count(workload, p)`` (``batched``: ``count(workload, p, batch=...)``) and ``resolve(p)``."""
        def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
            return self.estimate(workload, target, partial(count, batch=batch) if batched else count, batch=batch)

        def parameters(target: Target) -> list[Param]:
            """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
            return self.parameters(target, resolve)

        return estimate, parameters

    def estimate(self, workload, target: Target, count: Callable, *, batch: int = 1) -> Estimate:
        """Count, then price: the one way every family turns a workload into an Estimate."""
        check_supported(workload, target, self.family)
        p = self.params(target)
        names, ops = list(workload.names), list(workload.ops)
        try:
            counts = count(workload, p)
        except NotFitting as e:
            return Estimate.not_fitting(target, str(e), names=names, ops=ops, scope=self.scope(),
                                        precision=self.precision(workload, None))
        latency = counts.latency
        energy: dict[str, np.ndarray] = {}
        for label, (n, price) in counts.actions.items():
            energy[label] = energy.get(label, 0.0) + np.asarray(n, dtype=np.float64) * price
        for label, watts in counts.static.items():
            energy[label] = energy.get(label, 0.0) + latency * watts
        area = counts.area if self.area_modelled else None
        macs = counts.macs if counts.macs is not None else workload.columns["macs"].astype(np.float64)
        events = {label: np.asarray(n, dtype=np.float64) for label, (n, _) in counts.actions.items()
                  if not np.isscalar(n)}
        events.update(counts.events)
        mapping = {}
        work = workload.columns["kind"] != KIND["view"]   # a view is mapped onto nothing
        for key, value in counts.mapping.items():
            if key not in MAPPING_FIELDS:  # pragma: no cover - a family bug: one vocabulary for every family
                raise KeyError(f"family {self.family}: mapping field {key!r} is not one of estimate.MAPPING_FIELDS")
            mapping[key] = np.where(work, np.broadcast_to(np.asarray(value, dtype=np.float64), latency.shape), np.nan)
        return Estimate(
            target=target.name, family=self.family, target_hash=target.hash, names=names, ops=ops, macs=macs,
            node_latency=latency, latency=counts.busy, energy=energy, area=area, events=events, batch=batch,
            notes=[*counts.notes, *p.unread_sets()], assumptions=p.assumptions(), info=counts.info,
            target_file=target.source, scope=self.scope(counts.scope), precision=self.precision(workload, counts.bits),
            mapping=mapping)

    def scope(self, override: dict[str, str] | None = None) -> dict[str, str]:
        """What the estimate's energy covers: {system, label, excludes} (the family's, or the override)."""
        base = {"system": self.scope_system, "label": self.scope_label, "excludes": self.scope_excludes}
        return {**base, **override} if override else base

    def precision(self, workload, bits: np.ndarray | None) -> dict[str, Any]:
        """The model's precision and the one it was costed at, by MAC-weighted majority."""
        c = workload.columns
        macs = c["macs"].astype(np.float64)
        model = workload.__dict__.get("_model_precision")  # once per workload: every target reads it
        if model is None:
            model_bits = np.maximum(c["act_bits"], c["weight_bits"]) if "act_bits" in c else np.full(len(macs), 32.0)
            model = workload.__dict__["_model_precision"] = precision_name(_majority(model_bits, macs))
        costed = model if bits is None else precision_name(_majority(np.asarray(bits, dtype=np.float64), macs))
        if costed == "none":  # nothing was costed at a precision (a model of views only)
            costed = model
        out = {"model": model, "costed": costed, "native": list(self.native) if self.native else ["model"]}
        if costed != model and "none" not in (costed, model):
            out["note"] = (f"{model} model costed at {costed}, the target's native precision; "
                           f"--passes 'quantize{{bits={_bits_of(costed)}}}' measures the error of running it so")
        return out


def element_slots(workload, transcendental_cost: float) -> np.ndarray:
    """Non-MAC ops per node as ALU lane slots: a simple op (add, mul, cmp, other) one slot, a
    transcendental one (div, exp, log, sqrt, pow, tanh, erf) ``transcendental_cost`` slots;
    the same rule on every family that runs them on lanes."""
    c = workload.columns
    f = np.float64
    return (sum(c[k].astype(f) for k in SIMPLE_KINDS)
            + transcendental_cost * sum(c[k].astype(f) for k in TRANSCENDENTAL_KINDS))


def fill_scope_and_precision(estimate: Estimate, workload) -> Estimate:
    """Give an estimate of a family that does not state them its family's scope and precision."""
    if not isinstance(estimate, Estimate):  # a plug-in's own result: passed on as it is
        return estimate
    spec = FamilySpec.load(estimate.family) if (FAMILIES_DIR / f"{estimate.family}.toml").is_file() else None
    if spec is not None and not estimate.scope:
        estimate.scope = spec.scope()
    if not estimate.precision:
        bits = estimate.events.get("bits")
        estimate.precision = (spec or _GENERIC).precision(workload, bits)
    return estimate


def precision_name(bits: float) -> str:
    """16 -> 'int16'; 32 -> 'fp32': 32 bits and more are floating point, 16 and fewer integers
    (nvmc's convention, as in the quantize pass), 1 bit is 'binary'."""
    if not bits:
        return "none"
    if bits <= 1:
        return "binary"
    return f"fp{int(bits)}" if bits >= 32 else f"int{int(round(bits))}"


def _bits_of(name: str) -> int:
    """'int8' -> 8, 'fp32' -> 32, 'binary' -> 1."""
    return 1 if name == "binary" else int(name.removeprefix("fp").removeprefix("int"))


def _majority(bits: np.ndarray, weights: np.ndarray) -> float:
    """The width with the most MACs (the most nodes when there are no MACs); 0 when none."""
    bits = np.asarray(bits, dtype=np.float64)
    if bits.size and bits.min() == bits.max():  # one width for every node (most families)
        return float(bits.flat[0])
    width = np.clip(np.round(bits), 0, 128).astype(np.int64)
    if not width.any():
        return 0.0
    w = np.where(width > 0, weights, 0.0)
    if not w.any():
        w = (width > 0).astype(np.float64)
    return float(np.argmax(np.bincount(width, weights=w)))


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@lru_cache(maxsize=64)
def _data_file(folder: str, name: str) -> DataFile:
    """``data/<folder>/<name>.toml`` (devices and tech come from the library, checked once)."""
    if folder == "devices":
        return library().device(name)
    if folder == "tech":
        return library().tech(name)
    path = DATA_DIR / folder / f"{name}.toml"
    if not path.is_file():
        known = sorted(q.stem for q in (DATA_DIR / folder).glob("*.toml"))
        raise TargetError(f"no data file '{name}' in data/{folder}/{did_you_mean(name, known)}",
                          hint=f"data/{folder}/ has: {', '.join(known)}")
    return load_data_file(path)


def _load_spec(path: Path, family: str) -> FamilySpec:
    where = f"data/families/{path.name}"
    try:
        doc = tomllib.loads(read_input(path, "family data file", error=TargetError).decode("utf-8"))
    except ValueError as e:  # pragma: no cover - a data bug
        raise TargetError(f"not valid TOML: {e}", where=where) from None
    if doc.get("schema") != FAMILY_SCHEMA or doc.get("family") != family:
        raise TargetError(f"expected schema = '{FAMILY_SCHEMA}' and family = '{family}'", where=where)
    schema: dict[str, dict[str, Field]] = {}
    for section, keys in doc.get("keys", {}).items():
        schema[section] = {name: _field(f"{section}.{name}", raw, where) for name, raw in keys.items()}
    scope = doc.get("scope", {})
    native = doc.get("precision", {}).get("native", "model")
    return FamilySpec(family, path, doc.get("description", ""), schema, scope.get("system", family),
                      scope.get("label", ""), scope.get("excludes", ""), None if native == "model" else tuple(native),
                      bool(doc.get("area", {}).get("modelled", True)))


def _field(key: str, raw: dict, where: str) -> Field:
    unknown = set(raw) - _KEY_FIELDS
    if unknown:  # pragma: no cover - a data bug
        raise TargetError(f"keys.{key}: unknown field '{sorted(unknown)[0]}'", where=where)
    default, ref, provenance = raw.get("default"), None, None
    if isinstance(default, (dict, list)):
        entries = default if isinstance(default, list) else [default]
        if all("from" in e or "file" in e for e in entries):
            ref = tuple(("field", e["from"], e["key"]) if "from" in e else ("file", e["file"], e["key"])
                        for e in entries)
            default = None
        else:
            kinds = [k for k in PROVENANCE_KINDS if k in default]
            if len(kinds) != 1 or "value" not in default:  # pragma: no cover - a data bug
                raise TargetError(f"keys.{key}: a default number needs a value and one of source / derived / "
                                  "assumed", where=where)
            provenance = (kinds[0], str(default[kinds[0]]))
            default = default["value"]
    elif isinstance(default, (int, float)) and not isinstance(default, bool) and raw.get("type") != "choice":
        raise TargetError(f"keys.{key}: the default {default!r} needs a source or a reason", where=where,
                          hint='write default = { value = ..., assumed = "why" } (or source = "...")')
    return Field(raw.get("type", "str"), raw.get("help", ""), default=default, required=bool(raw.get("required")),
                 choices=tuple(raw.get("choices", ())), minimum=raw.get("minimum"), maximum=raw.get("maximum"),
                 unit=raw.get("unit", ""), data=raw.get("data", ""), default_ref=ref,
                 default_provenance=provenance)


_GENERIC = FamilySpec("?", FAMILIES_DIR, "", {}, "", "", "", None, True)


def target_or_data(p: Params, key: str, source: DataFile, name: str) -> Any:
    """``p[key]`` where the target file or --set gives it, else number ``name`` of the data file
    ``source``, listed under ``key`` with that number's provenance. For a key whose default the
    family data file cannot name: it exists on some devices only (a second accelerator, a GPU's
    host link), or it sits in a section another key chooses (``tech/dram.toml [<simdram.dram>]``)."""
    if p.get(key) is not None:
        return p[key]
    q = source.param(name)
    return p.add(Param(key, q.value, q.kind, f"= {source.name} {name}: {q.note}", q.origin, q.formula))
