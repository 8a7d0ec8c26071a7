"""Sweep specs: a TOML file naming models, targets, pipelines and parameter grids, expanded
into points, each with a stable identity.

    schema = "nvmc.sweep/1"
    name = "llc-capacity"
    models = ["../models/tiny_cnn.onnx", {path = "big.onnx", input_shapes = {input = [1, 3, 224, 224]}}]
    targets = ["sram", "stt-mram", "sot-mram"]      # names, .toml paths, "family:gpu-llc", "*" (all shipped)
    pipelines = ["", "canonicalize", "quantize{bits=8}"]
    batch = [1, 8]                                  # optional; default: the model's leading input dimension
    set = ["gpu.utilization=0.6"]                   # optional overrides for every target that has the key

    [grid]                                          # --set keys with lists or ranges
    "llc.capacity" = {from = "1MiB", to = "16MiB", factor = 2}
    "llc.iso" = ["capacity", "area"]
    "tiling.block_m" = {from = 64, to = 256, step = 64}
    "gpu.clock_hz" = {from = 1.0e9, to = 2.0e9, num = 5}

    [costing]                                       # optional: how every point is costed (nvmc.compile's options)
    mode = "train"                                  # a training iteration ...
    devices = 8                                     # ... data-parallel on 8 devices
    interconnect = "pcie3"                          # (or net = ["net.bandwidth=25Gbit/s"])
    grid = "europe"                                 # carbon: use-phase grid, lifetime_years, utilisation

    [accuracy]                                      # optional: the gate a point's measured error must pass
    min_cosine = 0.99                               # (also min_sqnr_db, min_top1); a point below it is
                                                    # 'rejected': off the Pareto front, nvmc sweep exits 4

    [generate]                                      # optional: cost a generation, not one forward pass
    prompt = 128                                    # (nvmc.generate: a prefill of 128 tokens, then decode
    tokens = 128                                    # steps up to 128 generated tokens; samples = 9 contexts)

    [[points]]                                      # listed points: run besides (or instead of) the product
    model = "../models/tiny_cnn.onnx"
    target = "sot-mram"
    pipeline = "canonicalize"
    set = {"llc.capacity" = "8MiB"}

Rules:
1. The product is models x targets x pipelines x batch x grid; ``[[points]]`` adds listed
   points. A spec with ``[[points]]`` only runs just those.
2. A grid or ``set`` key applies to the targets whose family has it (``llc.capacity`` to
   gpu-llc targets, not to a systolic one); for the others that dimension collapses to one
   point. A key no target of the spec has is an error (with a close match).
3. Values are checked against the target's schema when the spec is expanded, so a bad value
   stops the sweep before it starts; capacities are stored as bytes, so "4MiB" and
   "4096KiB" are the same point.
4. A point's identity (``Point.id``) is a hash of the model file's bytes (and input
   shapes), the target's name, file hash and library values (every number ``nvmc explain``
   lists for it, so editing a cited number re-runs the points it affects), the canonical
   pipeline, the parameters, the batch, the ``[costing]`` and the nvmc version: the key of
   its row in the results database.
5. Paths in the spec (models, target files) are relative to the spec file.
6. ``[accuracy]`` judges points, it does not change them: it is not part of a point's identity,
   so tightening it re-runs nothing (``nvmc results`` applies it again, or ``--min-cosine``).
7. ``[generate]`` makes every point a generation (``nvmc.generate`` at the point's target,
   pipeline, parameters and batch): its settings are part of every point's identity, and the
   row's figures cover the whole generation (see docs/sweeps.md, "Generation sweeps").
8. Size limits (a typo must not hang the expansion): a range has at most MAX_RANGE_VALUES
   values, a spec at most MAX_POINTS points, a batch at most MAX_BATCH.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.ir.files import read_input
from nvmc.ir.limits import MAX_BATCH, MAX_TOML_KEY_PARTS, toml_key_problem
from nvmc.ir.options import MAX_MAGNITUDE, Option, OptionValueError

SPEC_SCHEMA = "nvmc.sweep/1"
_TOP_KEYS = ("schema", "name", "description", "models", "targets", "pipelines", "batch", "set", "grid", "points",
             "costing", "accuracy", "generate")
_POINT_KEYS = ("model", "target", "pipeline", "batch", "set")
_RANGE_KEYS = frozenset({"from", "to", "step", "num", "factor", "scale"})
MAX_RANGE_VALUES = 10_000   # values of one grid range
MAX_POINTS = 100_000        # points of one spec (each is a row of the results database)
MAX_SPEC_BYTES = 16 << 20   # a spec is a hand-written TOML file
_BATCH = Option("int", minimum=1, maximum=MAX_BATCH)
# a range's from, to and step: finite numbers in nvmc's magnitude (each value it makes meets its key's own check)
_RANGE_BOUND = Option("float", minimum=-MAX_MAGNITUDE, maximum=MAX_MAGNITUDE)
_RANGE_CAPACITY = Option("capacity")
_RANGE_NUM = Option("int", minimum=1, maximum=MAX_RANGE_VALUES)
_RANGE_SCALE = Option("choice", choices=("linear", "log"))


class SpecError(NvmcError):
    """A sweep spec that cannot be read or expanded."""


@dataclass(frozen=True)
class ModelRef:
    """A model of the sweep: its file, the sha256 of its bytes and bound input shapes."""

    path: str                                     # absolute path
    label: str                                    # as written in the spec (shown in tables)
    sha256: str
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class TargetRef:
    """A target file of the sweep, carried as bytes so remote workers need no copy of it."""

    name: str
    family: str
    path: str
    data: bytes = field(repr=False)
    sha256: str = ""                              # of the file
    library_sha256: str = ""                      # of every number its cost model reads (nvmc explain)


@dataclass(frozen=True)
class Point:
    """One design point: indexes into the spec's models and targets, plus what varies."""

    id: str
    model: int
    target: int
    pipeline: str                                 # canonical text ('' = no passes)
    params: tuple[tuple[str, Any], ...]           # checked --set values, sorted by key
    batch: int | None                             # None: the model's leading input dimension


@dataclass
class SweepSpec:
    name: str
    description: str
    path: str
    sha256: str
    models: list[ModelRef]
    targets: list[TargetRef]
    points: list[Point]
    version: str
    costing: tuple[tuple[str, Any], ...] = ()     # the [costing] table: nvmc.pipeline.Costing's options
    gate: Any = None                              # the [accuracy] table: a nvmc.pipeline.Gate
    generate: tuple[tuple[str, int], ...] = ()    # the [generate] table (prompt, samples, tokens); () = forward pass

    def groups(self) -> dict[tuple[int, str], list[Point]]:
        """Points by (model, pipeline): import and analysis happen once per group."""
        out: dict[tuple[int, str], list[Point]] = {}
        for p in self.points:
            out.setdefault((p.model, p.pipeline), []).append(p)
        return out


# ------------------------------------------------------------------ hashing
def file_sha256(path: str | Path) -> str:
    """sha256 of a model file's bytes (for .nvir also its .npz sidecar, which holds the constants)."""
    path = Path(path)
    h = hashlib.sha256(read_input(path, "model file", error=SpecError))
    sidecar = path.with_suffix(".npz")
    if path.suffix == ".nvir" and sidecar.exists():
        h.update(read_input(sidecar, "sidecar", error=SpecError))
    return h.hexdigest()


def point_id(model: ModelRef, target: TargetRef, pipeline: str, params, batch, version: str,
             costing: tuple = (), generate: tuple = ()) -> str:
    # the (key, value) tuples hash as JSON arrays: [["llc.capacity", 4194304]]
    key = {"model": model.sha256, "input_shapes": model.input_shapes, "target": target.name,
           "target_file": target.sha256, "target_library": target.library_sha256, "pipeline": pipeline,
           "params": params, "batch": batch, "nvmc": version}
    if costing:  # an inference point keeps the identity it had before [costing] existed
        key["costing"] = costing
    if generate:  # likewise: a forward-pass point's identity does not change
        key["generate"] = generate
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


# ------------------------------------------------------------------ loading
def load_spec(path: str | Path, *, version: str | None = None) -> SweepSpec:
    """Read, check and expand a sweep spec; raises SpecError (or TargetError/ParseError) on bad input."""
    import nvmc

    path = Path(path)
    where = str(path)
    data = read_input(path, "sweep spec", limit=MAX_SPEC_BYTES, error=SpecError)
    try:
        text = data.decode("utf-8")
        deep = toml_key_problem(text)  # tomllib would take hours over a key of a million parts
        if deep is not None:
            raise SpecError(f"line {deep}: a dotted key of more than {MAX_TOML_KEY_PARTS} parts (a.b.c...)",
                            where=where, hint="a sweep spec's keys nest a few levels: check for a runaway repetition")
        doc = tomllib.loads(text)
    except ValueError as e:  # UnicodeDecodeError, TOMLDecodeError, an integer of more than 4300 digits
        raise SpecError(f"not a valid TOML file: {e}", where=where) from None
    if doc.get("schema") != SPEC_SCHEMA:
        raise SpecError(f"schema = {doc.get('schema')!r}: expected '{SPEC_SCHEMA}'", where=where,
                        hint=f'a sweep spec starts with schema = "{SPEC_SCHEMA}"')
    _known_keys(doc, _TOP_KEYS, where)
    generation = _generate(doc, text, where)
    builder = _Builder(path, version or nvmc.__version__, _costing(doc.get("costing", {}), where), generation)
    listed = doc.get("points", [])
    if not isinstance(listed, list) or not all(isinstance(p, dict) for p in listed):
        raise SpecError("'points' must be a list of tables ([[points]])", where=where)
    if not listed or "models" in doc or "targets" in doc:
        builder.product(doc)
    listed_count = sum(len(builder.expand_targets(e.get("target", ""))) for e in listed if "target" in e)
    if len(builder.points) + listed_count > MAX_POINTS:  # counted after expansion, before any point is built
        raise SpecError(f"the spec expands to {len(builder.points) + listed_count} points, more than {MAX_POINTS}",
                        where=where, hint="split it into several specs, or list fewer points")
    for i, entry in enumerate(listed, 1):
        builder.listed(entry, f"{where}: [[points]] #{i}")
    if not builder.points:
        raise SpecError("the spec expands to no points", where=where)
    return SweepSpec(name=str(doc.get("name") or path.stem), description=str(doc.get("description", "")),
                     path=str(path.resolve()), sha256=hashlib.sha256(data).hexdigest(), models=builder.models,
                     targets=builder.targets, points=builder.points, version=builder.version,
                     costing=builder.costing, gate=_gate(doc.get("accuracy", {}), where), generate=generation)


_COSTING_KEYS = ("mode", "devices", "parallel", "interconnect", "batch_per_device", "net", "grid", "lifetime_years",
                 "utilisation")
_ACCURACY_KEYS = ("min_cosine", "min_sqnr_db", "min_top1")


def _known_keys(keys, known: tuple[str, ...], where: str, table: str = "") -> None:
    """Refuse the first of ``keys`` not in ``known``, with a close match."""
    for key in keys:
        if key not in known:
            raise SpecError(f"{table}unknown key '{key}'{did_you_mean(key, known)}", where=where,
                            hint=f"keys: {', '.join(known)}")


def _options_table(table, name: str, keys: tuple[str, ...], build, where: str):
    """A spec table of options (``[costing]``, ``[accuracy]``) checked by what it builds: the
    same object, with the same checks, as nvmc.compile's and the CLI's options."""
    if not isinstance(table, dict):
        raise SpecError(f"'{name}' must be a table ([{name}])", where=where)
    _known_keys(table, keys, where, f"[{name}] ")
    try:
        return build(table)
    except NvmcError as e:
        raise SpecError(f"[{name}] {e.message}", where=where, hint=e.hint) from None
    except TypeError as e:  # a value of the wrong kind (a table where a number goes, ...)
        raise SpecError(f"[{name}] {e}", where=where) from None


def _costing(table, where: str) -> tuple[tuple[str, Any], ...]:
    """The ``[costing]`` table (nvmc.pipeline.Costing's options), as sorted items."""
    from nvmc.pipeline import Costing

    def build(t):
        items = {k: tuple(v) if isinstance(v, list) else v for k, v in t.items()}
        Costing(**items)
        return tuple(sorted(items.items()))

    return _options_table(table, "costing", _COSTING_KEYS, build, where)


def _gate(table, where: str):
    """The ``[accuracy]`` table as a nvmc.pipeline.Gate (the one ``--min-cosine`` ... build)."""
    from nvmc.pipeline import Gate

    return _options_table(table, "accuracy", _ACCURACY_KEYS, lambda t: Gate(**t), where)


_GENERATE_KEYS = ("prompt", "tokens", "samples")
_GENERATE_VALUE = Option("int")  # each key's range is GenerateSpec's to check (one message for all three)


def _generate(doc: dict, text: str, where: str) -> tuple[tuple[str, int], ...]:
    """The ``[generate]`` table: nvmc.generate's ``prompt``, ``tokens`` and ``samples`` (checked
    as ``nvmc compile --generate`` checks them), as sorted items; () when the spec has none."""
    from nvmc.generation import GenerateSpec

    if "generate" not in doc:
        return ()
    table = doc["generate"]
    at = f"{where}:{_line_of(text, 'generate')}"
    fix = "write [generate] with prompt = 128 and tokens = 128 (whole numbers; optionally samples = 9)"
    if not isinstance(table, dict):
        raise SpecError(f"'generate' must be a table ([generate]), got {table!r}", where=at, hint=fix)
    for key, value in table.items():
        line = f"{where}:{_line_of(text, 'generate', key)}"
        _known_keys([key], _GENERATE_KEYS, line, "[generate] ")
        try:
            _GENERATE_VALUE.check(value)
        except OptionValueError as e:
            raise SpecError(f"[generate] {key} = {value!r}: {e}", where=line, hint=fix) from None
    missing = [k for k in ("prompt", "tokens") if k not in table]
    if missing:
        raise SpecError(f"[generate] needs {' and '.join(missing)}", where=at, hint=fix)
    if doc.get("costing"):
        raise SpecError("[generate] does not combine with [costing] yet: a generation is costed as nvmc.generate "
                        "costs it (inference, one device)", where=at,
                        hint="remove [costing], or cost the generation in a spec of its own")
    try:
        spec = GenerateSpec(**table).checked()
    except NvmcError:
        raise SpecError(f"[generate] prompt = {table['prompt']}, tokens = {table['tokens']}"
                        + (f", samples = {table['samples']}" if "samples" in table else "")
                        + ": prompt and tokens must be at least 1 and samples at least 2", where=at,
                        hint=fix) from None
    if spec.tokens + spec.prompt > 1 << 24:
        raise SpecError(f"[generate] prompt + tokens = {spec.prompt + spec.tokens}: more than {1 << 24} positions",
                        where=at, hint="a generation sweep costs up to a few thousand tokens")
    return tuple(sorted({"prompt": spec.prompt, "tokens": spec.tokens, "samples": spec.samples}.items()))


def _line_of(text: str, table: str, key: str | None = None) -> int | str:
    """The 1-based line of ``[table]`` (or of ``key`` inside it) in the spec's text, for messages;
    '?' when it is written in a form this does not find (an inline table, a dotted key)."""
    lines = text.splitlines()
    head = next((i for i, line in enumerate(lines) if re.match(rf"\s*\[\s*{table}\s*\]", line)), None)
    if head is None:
        head = next((i for i, line in enumerate(lines) if re.match(rf"\s*{table}\s*[=.]", line)), None)
        return "?" if head is None else head + 1
    if key is None:
        return head + 1
    for i in range(head + 1, len(lines)):
        if re.match(r"\s*\[", lines[i]):
            break
        if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", lines[i]):
            return i + 1
    return head + 1


class _Builder:
    """Expands a spec document into points, caching resolved models and targets."""

    def __init__(self, path: Path, version: str, costing: tuple = (), generate: tuple = ()):
        self.generate = generate
        self.costing = costing
        self.where = str(path)
        self.base = path.resolve().parent
        self.version = version
        self.models: list[ModelRef] = []
        self.targets: list[TargetRef] = []
        self.points: list[Point] = []
        self._model_index: dict[tuple, int] = {}
        self._target_index: dict[str, int] = {}
        self._loaded: list = []                   # Target objects, aligned with self.targets
        self._seen: set[str] = set()
        self._expanded: dict[str, list[int]] = {}

    # ---------------------------------------------------------- product
    def product(self, doc: dict) -> None:
        for key in ("models", "targets"):
            if key not in doc:
                raise SpecError(f"missing required key '{key}'", where=self.where,
                                hint="a spec lists models = [...] and targets = [...] (or only [[points]])")
        models = [self.model(m, f"{self.where}: models") for m in _as_list(doc["models"], "models", self.where)]
        targets = [t for spec in _as_list(doc["targets"], "targets", self.where)
                   for t in self.expand_targets(spec)]
        pipelines = _as_list(doc.get("pipelines", [""]), "pipelines", self.where)  # parsed once counted: 2 ms each
        batches = [_batch(b, self.where) for b in _as_list(doc.get("batch", [None]), "batch", self.where)]
        fixed = _set_items(doc.get("set", []), f"{self.where}: set")
        grid = _grid(doc.get("grid", {}), f"{self.where}: [grid]")
        self._check_keys([k for k, _ in fixed] + list(grid), targets, self.where)
        count = len(models) * len(pipelines) * len(batches) * sum(
            math.prod(len(grid[k]) for k in grid if _has(self._schema(t), k)) for t in targets)
        if count > MAX_POINTS:
            raise SpecError(f"the spec expands to {count} points, more than {MAX_POINTS}", where=self.where,
                            hint="split it into several specs, or use fewer grid values")
        pipelines = [self.pipeline(p) for p in pipelines]
        for m, t in itertools.product(models, targets):
            schema = self._schema(t)
            keys = [k for k in grid if _has(schema, k)]
            mine = [(k, v) for k, v in fixed if _has(schema, k)]
            for values in itertools.product(*(grid[k] for k in keys)):
                params = self.params(t, mine + list(zip(keys, values)), self.where)
                for p, b in itertools.product(pipelines, batches):
                    self.add(m, t, p, params, b)

    def listed(self, entry: dict, where: str) -> None:
        _known_keys(entry, _POINT_KEYS, where)
        for key in ("model", "target"):
            if key not in entry:
                raise SpecError(f"missing required key '{key}'", where=where)
        m = self.model(entry["model"], where)
        targets = self.expand_targets(entry["target"])
        sets = _set_items(entry.get("set", []), f"{where}: set")
        self._check_keys([k for k, _ in sets], targets, where)
        for t in targets:
            schema = self._schema(t)
            params = self.params(t, [(k, v) for k, v in sets if _has(schema, k)], where)
            self.add(m, t, self.pipeline(entry.get("pipeline", "")), params, _batch(entry.get("batch"), where))

    def add(self, m: int, t: int, pipeline: str, params, batch) -> None:
        pid = point_id(self.models[m], self.targets[t], pipeline, params, batch, self.version, self.costing,
                       self.generate)
        if pid not in self._seen:  # (MAX_POINTS was checked on the counts, before any point was built)
            self._seen.add(pid)
            self.points.append(Point(pid, m, t, pipeline, params, batch))

    # ---------------------------------------------------------- parts
    def model(self, entry, where: str) -> int:
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise SpecError(f"a model is a path or a table {{path = ..., input_shapes = {{...}}}}, got {entry!r}",
                            where=where)
        unknown = set(entry) - {"path", "input_shapes"}
        if unknown:
            raise SpecError(f"unknown model key '{sorted(unknown)[0]}'", where=where, hint="keys: path, input_shapes")
        path = (self.base / entry["path"]).resolve()
        shapes = entry.get("input_shapes", {})
        if not isinstance(shapes, dict) or not all(
                isinstance(v, list) and v and all(isinstance(d, int) and d > 0 for d in v) for v in shapes.values()):
            raise SpecError("input_shapes must map input names to lists of positive dims, e.g. {input = [1, 3, 224, "
                            "224]}", where=where)
        if shapes and self.generate:
            raise SpecError(f"{entry['path']}: input_shapes does not combine with [generate]: a generation binds the "
                            "model's sequence dims at every step", where=where,
                            hint="give the model as a plain path (its batch with batch = [...])")
        key = (str(path), tuple(sorted((k, tuple(v)) for k, v in shapes.items())))
        if key not in self._model_index:
            if not path.is_file():
                raise SpecError(f"model file not found: {entry['path']}", where=where,
                                hint=f"paths are relative to the spec file ({self.base})")
            self._model_index[key] = len(self.models)
            self.models.append(ModelRef(str(path), entry["path"], file_sha256(path), key[1]))
        return self._model_index[key]

    def expand_targets(self, spec) -> list[int]:
        from nvmc.backends import shipped_targets

        if not isinstance(spec, str) or not spec:
            raise SpecError(f"a target is a name, a .toml path, 'family:NAME' or '*', got {spec!r}", where=self.where)
        if spec in self._expanded:
            return self._expanded[spec]
        if spec == "*" or spec.startswith("family:"):
            family = spec.partition(":")[2] or None
            found = [i for i in map(self.target, shipped_targets())
                     if family is None or self.targets[i].family == family]
            if not found:
                from nvmc.backends import families
                raise SpecError(f"no shipped target of family '{family}'{did_you_mean(family, families())}",
                                where=self.where, hint=f"families: {', '.join(families())}")
        else:
            found = [self.target(spec)]
        self._expanded[spec] = found
        return found

    def target(self, spec: str) -> int:
        from nvmc.backends import load_target, shipped_targets

        local = self.base / spec
        if spec not in shipped_targets() and (spec.endswith(".toml") or "/" in spec) and local.is_file():
            spec = str(local.resolve())
        if spec not in self._target_index:
            t = load_target(spec)
            data = read_input(t.path, "target file", error=SpecError) if t.path else b""
            self._target_index[spec] = len(self.targets)
            self.targets.append(TargetRef(t.name, t.family, t.source, data, t.file_sha256, _library_sha256(t)))
            self._loaded.append(t)
        return self._target_index[spec]

    def pipeline(self, text) -> str:
        from nvmc.passes import parse_pipeline

        if not isinstance(text, str):
            raise SpecError(f"a pipeline is a string such as 'canonicalize,quantize{{bits=8}}', got {text!r}",
                            where=self.where)
        return str(parse_pipeline(text, filename=f"{self.where}: pipeline")) if text.strip() else ""

    def params(self, t: int, items, where: str) -> tuple[tuple[str, Any], ...]:
        from nvmc.backends.errors import TargetError

        try:
            checked = self._loaded[t].with_overrides(items)
        except TargetError as e:
            raise SpecError(f"target '{self.targets[t].name}': {e.message}", where=where, hint=e.hint) from None
        return tuple(sorted(dict(checked.overrides).items()))

    def _schema(self, t: int) -> dict:
        from nvmc.backends import family_module

        return family_module(self.targets[t].family).SCHEMA

    def _check_keys(self, keys, targets: list[int], where: str) -> None:
        known = sorted({f"{s}.{k}" for t in targets for s, ks in self._schema(t).items() for k in ks})
        for key in keys:
            if key not in known:
                raise SpecError(f"parameter '{key}' belongs to none of the spec's targets{did_you_mean(key, known)}",
                                where=where, hint=f"keys: {', '.join(known)}")


def _library_sha256(target) -> str:
    """A hash of the values ``nvmc explain`` lists for the target: editing a number of the
    technology library (or a device file) changes the identity of the points it affects."""
    from nvmc.backends import family_module

    try:
        rows = [[p.key, p.value] for p in family_module(target.family).parameters(target)]
    except Exception as e:  # noqa: BLE001 - the points will record the error when they run
        rows = [["error", f"{type(e).__name__}: {e}"]]
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def _has(schema: dict, key: str) -> bool:
    section, _, name = key.partition(".")
    return name in schema.get(section, {})


def _as_list(value, key: str, where: str) -> list:
    value = value if isinstance(value, list) else [value]
    if not value:
        raise SpecError(f"'{key}' is empty", where=where)
    return value


def _batch(value, where: str) -> int | None:
    if value is None:
        return None
    try:
        return _BATCH.check(value)
    except OptionValueError:
        raise SpecError(f"batch must be a whole number in [1, {MAX_BATCH}], got {value!r}", where=where) from None


def _set_items(value, where: str) -> list[tuple[str, Any]]:
    """``["k=v", ...]`` or ``{k = v}`` -> [(k, v)] (strings parsed as --set does)."""
    from nvmc.backends.target import _split_set

    if isinstance(value, dict):
        return list(_flatten(value, where).items())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise SpecError(f"expected a list of 'section.key=value' strings or a table, got {value!r}", where=where)
    out = []
    for item in value:
        if not isinstance(item, str):
            raise SpecError(f"expected 'section.key=value' strings, got {item!r}", where=where)
        try:
            key, raw, _ = _split_set(item)
        except NvmcError as e:
            raise SpecError(e.message, where=where) from None
        out.append((key, raw))
    return out


def _flatten(table: dict, where: str) -> dict[str, Any]:
    """{"llc.capacity": x} or {"llc": {"capacity": x}} -> {"llc.capacity": x}."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict) and "." not in key and not (set(value) <= _RANGE_KEYS and value):
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
        if "." not in key and not isinstance(value, dict):
            raise SpecError(f"'{key}': keys are 'section.key', e.g. \"llc.capacity\"", where=where)
    return out


def _grid(table, where: str) -> dict[str, list]:
    if not isinstance(table, dict):
        raise SpecError("[grid] must be a table of 'section.key' = [values] or {from, to, step|num|factor}",
                        where=where)
    grid = {}
    for key, value in _flatten(table, where).items():
        values = expand_range(value, f"{where} {key}") if isinstance(value, dict) else value
        if not isinstance(values, list) or not values:
            raise SpecError(f"'{key}': expected a non-empty list or a range table", where=where)
        grid[key] = values
    return grid


def expand_range(r: dict, where: str) -> list:
    """``{from, to, step}`` (inclusive), ``{from, to, num[, scale="log"]}``, ``{from, to, factor}``.

    ``from``/``to`` may be capacities ("1MiB"); values then come out as whole bytes. Whole-number
    bounds and steps give whole numbers.
    """
    unknown = set(r) - _RANGE_KEYS
    modes = [k for k in ("step", "num", "factor") if k in r]
    if unknown or "from" not in r or "to" not in r or len(modes) != 1:
        raise SpecError(f"a range is {{from, to}} and one of step, num, factor; got {r!r}", where=where)
    lo, hi, mode = r["from"], r["to"], modes[0]
    capacity = isinstance(lo, str) or isinstance(hi, str)
    try:
        if capacity:
            lo, hi = _RANGE_CAPACITY.check(lo), _RANGE_CAPACITY.check(hi)
        for x in (lo, hi, r[mode]):
            try:
                _RANGE_BOUND.check(x)
            except OptionValueError:
                raise ValueError(f"expected finite numbers of magnitude at most 1e30, got {x!r}") from None
        whole = isinstance(lo, int) and isinstance(hi, int)
        if mode == "step":
            step = r["step"]
            if step <= 0 or hi < lo:
                raise ValueError("need from <= to and step > 0")
            n = _range_count((hi - lo) / step + 1e-9)
            values = [lo + i * step for i in range(n)]
            whole = whole and isinstance(step, int)
        elif mode == "num":
            try:
                n = _RANGE_NUM.check(r["num"])
            except OptionValueError:
                raise ValueError(f"num must be a whole number in [1, {MAX_RANGE_VALUES}]") from None
            try:
                scale = _RANGE_SCALE.check(r.get("scale", "linear"))
            except OptionValueError:
                raise ValueError("scale is 'linear' or 'log'") from None
            if scale == "log":
                if lo <= 0 or hi <= 0:
                    raise ValueError("a log range needs positive bounds")
                values = [lo * (hi / lo) ** (i / max(1, n - 1)) for i in range(n)]
            else:
                values = [lo + (hi - lo) * i / max(1, n - 1) for i in range(n)]
        else:
            f = r["factor"]
            if f <= 1 or lo <= 0 or hi < lo:
                raise ValueError("need 0 < from <= to and factor > 1")
            _range_count(math.log(hi / lo) / math.log(f))
            values, x = [], lo
            while x <= hi * (1 + 1e-12):
                values.append(x)
                x = x * f
            whole = whole and isinstance(f, int)
    except ValueError as e:
        raise SpecError(f"bad range {r!r}: {e}", where=where) from None
    if whole:
        return [int(round(v)) for v in values]
    return [float(f"{v:.12g}") for v in values]


def _range_count(steps: float) -> int:
    """1 + the whole number of steps a range takes; ValueError beyond MAX_RANGE_VALUES."""
    if not steps + 1 <= MAX_RANGE_VALUES:  # also catches NaN and inf
        raise ValueError(f"it has more than {MAX_RANGE_VALUES} values")
    return int(math.floor(steps)) + 1
