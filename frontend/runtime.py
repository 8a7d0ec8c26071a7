"""Running graphs in onnxruntime, the one way nvmc does it (the numerics harness, calibration,
constant folding, the compression passes, NEON), and comparing two models' outputs.

    Session(graph).run({"x": x})          # {output name: array}; large constants are fed, not serialised
    report = compare(original_graph, transformed_graph, seed=0)
    report.max_rel_err, report.sqnr_db, report.top1_agreement

A model is a ``Graph`` (exported with the real exporter), an ``onnx.ModelProto``, or a path
to an ``.onnx`` (run as is) or ``.nvir`` file. Both run with onnxruntime's graph
optimisations off, so each computes what it says rather than what ORT's own fusions make
of it. Inputs are seeded random draws (floats ~ N(0, 1), integers in [0, 8), booleans fair
coins) or the arrays of a user ``.npz``. Per output:

* ``max_abs_err`` = max |ref - out|;
* ``max_rel_err`` = max |ref - out| / max |ref|: the error relative to the output's range
  (an elementwise ratio would blow up wherever the reference is near zero);
* ``sqnr_db`` = 10 log10(sum ref^2 / sum (ref - out)^2), inf when equal;
* ``cosine`` similarity of the flattened outputs;
* ``top1_agreement``: for a classifier output (floating, [N, C] once trailing 1s are
  dropped, C >= 2) the fraction of rows whose argmax agrees; None for other outputs.

For tests, nvmc/harness.py adds ``assert_numerics_close(ref, out, rel=1e-5)`` and
``check_pipeline(graph, "dce")``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
import onnx

from nvmc.ir.errors import NvmcError, did_you_mean, first_line
from nvmc.ir.files import INPUTS_NPZ_BYTES, load_npz, read_input
from nvmc.ir.graph import Graph
from nvmc.ir.types import dtype_of_array
from nvmc.ir.parser import parse_text

from .onnx_export import lower_nvmc_ops, to_onnx

ModelLike = Union[Graph, onnx.ModelProto, str, os.PathLike]
INLINE_WEIGHTS = 4096  # constants larger than this are fed to onnxruntime, not serialised

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
              "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
              "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_}


@dataclass
class OutputComparison:
    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    sqnr_db: float
    cosine: float
    top1_agreement: float | None = None
    note: str = ""          # why the arrays could not be compared (shape mismatch)
    caveat: str = ""        # why the figures say little (a constant reference)


def _sqnr_fields(sqnr: float) -> dict[str, Any]:
    if np.isfinite(sqnr):
        return {"sqnr_db": sqnr}
    return {"sqnr_db": None, "sqnr_note": "identical outputs: the noise is 0, SQNR is infinite" if sqnr > 0
            else "the reference is 0 and the outputs differ: SQNR is minus infinity"}


@dataclass
class NumericsReport:
    outputs: list[OutputComparison]
    samples: int
    inputs_from: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def max_abs_err(self) -> float:
        return max((o.max_abs_err for o in self.outputs), default=0.0)

    @property
    def max_rel_err(self) -> float:
        return max((o.max_rel_err for o in self.outputs), default=0.0)

    @property
    def sqnr_db(self) -> float:
        return min((o.sqnr_db for o in self.outputs), default=float("inf"))

    @property
    def cosine(self) -> float:
        return min((o.cosine for o in self.outputs), default=1.0)

    @property
    def top1_agreement(self) -> float | None:
        values = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return min(values) if values else None

    def within(self, rel: float) -> bool:
        """True when every output's max_rel_err is at most ``rel`` (and no output mismatched)."""
        return all(o.max_rel_err <= rel and not o.note for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """Standard JSON: an infinite SQNR (identical outputs) is null with ``sqnr_note`` saying so."""
        return {"schema": "nvmc.numerics/1", "samples": self.samples, "inputs": self.inputs_from,
                "max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err,
                **_sqnr_fields(self.sqnr_db), "cosine": self.cosine, "top1_agreement": self.top1_agreement,
                "outputs": [{**asdict(o), **_sqnr_fields(o.sqnr_db), "shape": list(o.shape)} for o in self.outputs]}

    def __str__(self) -> str:
        lines = [f"numerics over {self.samples} sample(s), inputs: {self.inputs_from}"]
        for o in self.outputs:
            top1 = "" if o.top1_agreement is None else f"  top-1 {100 * o.top1_agreement:.1f}%"
            lines.append(f"  {o.name} {list(o.shape)}: max abs {o.max_abs_err:.3g}  max rel {o.max_rel_err:.3g}  "
                         f"SQNR {o.sqnr_db:.1f} dB  cosine {o.cosine:.6f}{top1}"
                         + "".join(f"  ({n})" for n in (o.note, o.caveat) if n))
        return "\n".join(lines)


# ------------------------------------------------------------------------------ running
class Session:
    """An onnxruntime session on a model: a ``Graph`` (exported with nvmc's exporter, its large
    constants fed as inputs instead of serialised), an ``onnx.ModelProto`` or an .onnx/.nvir
    path. ``inputs`` are those the caller provides; ``extra_outputs`` exposes intermediate
    values of a Graph. Graph optimisations are off, so the model computes what it says.
    Failures are ``error`` (an NvmcError class) naming ``label``."""

    def __init__(self, model: ModelLike, label: str = "model", *, extra_outputs: Sequence[str] = (),
                 error: type[NvmcError] = NvmcError):
        self.label, self.error = label, error
        self.fixed: dict[str, np.ndarray] = {}
        if isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".nvir":
            model = parse_text(read_input(model, "model file").decode("utf-8"), filename=str(model))
        if isinstance(model, Graph):
            g = model
            if extra_outputs:
                g = g.copy()
                g.outputs = list(g.outputs) + [v for v in extra_outputs if v not in g.outputs]
            lowered = lower_nvmc_ops(g)  # the constants the exported model reads are the lowered graph's
            proto = to_onnx(lowered, large_consts_as_inputs=INLINE_WEIGHTS)
            self.fixed = {n: np.ascontiguousarray(a) for n, a in lowered.consts.items() if a.size > INLINE_WEIGHTS}
            source: Any = proto.SerializeToString()
        elif isinstance(model, onnx.ModelProto):
            source = model.SerializeToString()
        else:
            path = Path(model)
            if not path.exists():
                raise error("file not found", where=str(path), hint="check the path")
            source = str(path)
        self._start(source, where=str(model) if isinstance(model, (str, os.PathLike)) else None)

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto, fixed: Mapping[str, np.ndarray] | None = None, *,
                   label: str = "model", error: type[NvmcError] = NvmcError) -> "Session":
        """A session on an exported model whose ``fixed`` inputs are fed on every run."""
        self = cls.__new__(cls)
        self.label, self.error, self.fixed = label, error, dict(fixed or {})
        self._start(proto.SerializeToString(), where=None)
        return self

    def _start(self, source, where: str | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 4  # errors reach the user as exceptions, not as log lines
        ort.set_default_logger_severity(4)  # also the load-time messages of the default logger
        try:
            self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise self.error(f"onnxruntime cannot load the {self.label}: {first_line(e)}", where=where) from None
        self.inputs = [i for i in self.session.get_inputs() if i.name not in self.fixed]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """{output name: array} for ``feeds`` (the caller's inputs; extra names are ignored)."""
        wanted = list(outputs) if outputs is not None else self.output_names
        try:
            given = {i.name: feeds[i.name] for i in self.inputs if i.name in feeds}
            return dict(zip(wanted, self.session.run(wanted, {**self.fixed, **given})))
        except Exception as e:
            raise self.error(f"onnxruntime failed to run the {self.label}: {first_line(e)}") from None


INLINE_LIMIT = 4096  # constants up to this many elements are serialised into the model, larger ones fed


def evaluate(nodes: Sequence[onnx.NodeProto], feeds: Mapping[str, np.ndarray], wanted: Sequence[str], *,
             opsets: Mapping[str, int], engine: str = "onnxruntime",
             output_types: Mapping[str, int] | None = None) -> list[np.ndarray]:
    """The ``wanted`` values that ONNX ``nodes`` compute from the constant ``feeds``: how nvmc
    evaluates constant expressions (the fold-constants pass, the importer's If conditions and
    shape arithmetic), so a folded value is what the runtime computes. ``engine`` onnxruntime
    (graph optimisations off) falls back to onnx's reference evaluator for an op or type it
    lacks; "reference" runs the reference evaluator only (no session set-up: a few tiny nodes).
    ``output_types`` (ONNX element types) where known; raises what the engine raises."""
    from onnx import helper, numpy_helper

    from .onnx_types import onnx_elem_type

    # Small constants go into the model as initializers: onnxruntime checks its feeds in
    # quadratic time, and a batch of shape arithmetic reads thousands of tiny constants.
    inline = {k: np.asarray(a) for k, a in feeds.items() if np.size(a) <= INLINE_LIMIT}
    fed = {k: np.asarray(a, order="C") for k, a in feeds.items() if k not in inline}
    inputs = [helper.make_tensor_value_info(k, onnx_elem_type(dtype_of_array(a)), list(a.shape)) for k, a in fed.items()]
    outputs = [helper.make_tensor_value_info(v, output_types[v], None) if output_types
               else helper.make_empty_tensor_value_info(v) for v in wanted]
    model = helper.make_model(
        helper.make_graph(list(nodes), "evaluate", inputs, outputs,
                          [numpy_helper.from_array(a, k) for k, a in inline.items()]),
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = max(4, helper.find_min_ir_version_for(model.opset_import, ignore_unknown=True))
    if engine == "onnxruntime":
        try:
            results = Session.from_proto(model, label="constant expressions").run(fed, list(wanted))
            return [results[w] for w in wanted]
        except NvmcError:
            pass  # e.g. an op or type onnxruntime lacks: the reference evaluator may have it
    from onnx.reference import ReferenceEvaluator

    return [np.asarray(a) for a in ReferenceEvaluator(model).run(list(wanted), fed)]


def random_inputs(runner_inputs, rng: np.random.Generator, input_shapes: Mapping[str, Sequence[int]],
                  dims: Mapping[str, int] | None = None) -> dict:
    feeds = {}
    for i in runner_inputs:
        if i.type not in _ORT_TYPES:
            raise NvmcError(f"input '{i.name}' has type {i.type}, which the harness cannot draw",
                            hint="give the inputs in an .npz file")
        dtype = np.dtype(_ORT_TYPES[i.type])
        named = dims or {}
        shape = tuple(input_shapes.get(i.name, [d if isinstance(d, int) and d > 0 else named.get(d, 1)
                                                for d in i.shape]))
        feeds[i.name] = draw(rng, shape, dtype)
    return feeds


def draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """One seeded random input: floats ~ N(0, 1), integers in [0, 8), booleans fair coins."""
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 2 if dtype.kind == "b" else 8, shape).astype(dtype)


def load_inputs(path: str | os.PathLike, runner_inputs) -> dict[str, np.ndarray]:
    path = Path(path)
    arrays = load_npz(path, "inputs file", max_bytes=INPUTS_NPZ_BYTES)

    names = [i.name for i in runner_inputs]
    for name in arrays:
        if name not in names:
            raise NvmcError(f"array '{name}' is not an input of the model{did_you_mean(name, names)}", where=str(path),
                            hint=f"inputs are: {', '.join(names)}")
    for i in runner_inputs:
        if i.name not in arrays:
            raise NvmcError(f"no array for input '{i.name}'", where=str(path))
        want = _ORT_TYPES.get(i.type)
        if want is not None and arrays[i.name].dtype != np.dtype(want):
            raise NvmcError(f"array '{i.name}' is {arrays[i.name].dtype}, the input is {i.type}", where=str(path))
    return arrays


# ------------------------------------------------------------------------------ metrics
def compare_arrays(name: str, ref: np.ndarray, out: np.ndarray) -> OutputComparison:
    if ref.shape != out.shape:
        inf = float("inf")
        return OutputComparison(name, tuple(ref.shape), inf, inf, -inf, 0.0, None,
                                note=f"shape {list(ref.shape)} vs {list(out.shape)}")
    a = ref.astype(np.float64).reshape(-1)
    b = out.astype(np.float64).reshape(-1)
    both_nan = np.isnan(a) & np.isnan(b)
    a, b = np.where(both_nan, 0.0, a), np.where(both_nan, 0.0, b)
    with np.errstate(all="ignore"):
        d = a - b
        d[(a == b)] = 0.0  # equal infinities
        max_abs = float(np.max(np.abs(d))) if d.size else 0.0
        scale = float(np.max(np.abs(a[np.isfinite(a)]))) if np.isfinite(a).any() else 0.0
        max_rel = 0.0 if max_abs == 0 else (max_abs / scale if scale > 0 else float("inf"))
        noise, signal = float(np.sum(d * d)), float(np.sum(a * a))
        sqnr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        cosine = 1.0 if na == nb == 0 else (float(np.dot(a, b) / (na * nb)) if na and nb else 0.0)
    finite = a[np.isfinite(a)]
    flat = finite.size > 1 and float(finite.max()) == float(finite.min())
    caveat = ("the reference output is constant: the errors hold, but SQNR, cosine and top-1 say little "
              "(weights stripped to a fill value?)" if flat else "")
    return OutputComparison(name, tuple(ref.shape), max_abs, max_rel,
                            sqnr, cosine, None if flat else _top1(ref, out), caveat=caveat)


def _top1(ref: np.ndarray, out: np.ndarray) -> float | None:
    if ref.dtype.kind != "f" or ref.ndim < 2:
        return None
    shape = list(ref.shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape.pop()
    if len(shape) != 2 or shape[1] < 2:
        return None
    a, b = ref.reshape(shape), out.reshape(shape)
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


# ------------------------------------------------------------------------------- public
def compare(reference: ModelLike, candidate: ModelLike, *, inputs: str | os.PathLike | Mapping | None = None,
            seed: int = 0, samples: int = 1, input_shapes: Mapping[str, Sequence[int]] | None = None,
            dims: Mapping[str, int] | None = None) -> NumericsReport:
    """Run both models on the same inputs and compare every output (see the module doc)."""
    if samples < 1:
        raise NvmcError(f"samples must be at least 1, not {samples}")
    ref, cand = Session(reference, "reference model"), Session(candidate, "transformed model")
    ref_in, cand_in = sorted(i.name for i in ref.inputs), sorted(i.name for i in cand.inputs)
    if ref_in != cand_in:
        raise NvmcError(f"the models have different inputs: {ref_in} vs {cand_in}",
                        hint="compare a model with a transformed version of itself")
    pairs = _pair_outputs(ref.output_names, cand.output_names)
    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {r: [] for r, _ in pairs}
    if inputs is not None and not isinstance(inputs, Mapping):
        draws, label = [load_inputs(inputs, ref.inputs)], str(inputs)
    elif inputs is not None:
        draws, label = [dict(inputs)], "given arrays"
    else:
        rng = np.random.default_rng(seed)
        draws = [random_inputs(ref.inputs, rng, input_shapes or {}, dims) for _ in range(samples)]
        label = f"random, seed {seed}"
    for feeds in draws:
        ref_out, cand_out = ref.run(feeds), cand.run(feeds)
        for r, c in pairs:
            results[r].append((np.asarray(ref_out[r]), np.asarray(cand_out[c])))
    comparisons = []
    for r, c in pairs:
        a = np.concatenate([x.reshape(1, *x.shape) for x, _ in results[r]]) if len(draws) > 1 else results[r][0][0]
        b = np.concatenate([y.reshape(1, *y.shape) for _, y in results[r]]) if len(draws) > 1 else results[r][0][1]
        if len(draws) > 1 and a.ndim >= 3:  # samples x batch x ... -> (samples*batch) x ...
            a, b = a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:])
        comparisons.append(compare_arrays(r, a, b))
    return NumericsReport(comparisons, len(draws), label)


def _pair_outputs(ref: list[str], cand: list[str]) -> list[tuple[str, str]]:
    if set(ref) == set(cand):
        return [(n, n) for n in ref]
    if len(ref) == len(cand):
        return list(zip(ref, cand))
    raise NvmcError(f"the models have different outputs: {ref} vs {cand}")
