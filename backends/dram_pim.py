"""What the DRAM-PIM families (``upmem``, ``mensa``, ``simdram``) and the ``roofline`` baselines share.

* :class:`Knobs` resolves a target's keys: a value written in the target (or ``--set``) wins,
  else the family takes the cited number of a data file of the technology library; every value
  used lands in ``params`` with its provenance, for ``nvmc explain``.
* :func:`node_kinds` sorts the workload's rows: MAC nodes, pure views (free), data-movement ops,
  folded nodes (free) and the rest (non-MAC compute).
* :func:`precisions` gives each node's operand widths in bits, from the workload's bytes:

  - ``w_bits``: 8 x weight bytes / weight elements (a ``#quant<bits=..>`` annotation or a
    codebook changes the bytes, so binarised weights give 1);
  - ``a_bits`` of a MAC node: 8 x input bytes / input elements for Gemm/MatMul (exact: the A
    operand has gemm_batch x M x K elements, or both operands of an activation x activation
    MatMul). For convolutions and recurrent layers the workload does not hold the input's element
    count, so ``a_bits`` is taken equal to ``w_bits`` (the quantize pass gives weights and
    activations the same width); a family may let the target override it;
  - ``out_bits`` of a MAC node: 8 x output bytes / output elements (gemm_batch x M x N);
  - ``bits`` of every node: for a MAC node max(w, a); for an elementwise op of one operation per
    output element (Add, Sub, Mul, Relu, Max, Min, Abs, Neg, And, Or, Xor, Not and the Bitwise
    ops) 8 x output bytes / its operation count, exact; for any other node the ``out_bits`` of the
    nearest MAC node before it in topological order (elementwise work after a layer processes
    that layer's outputs); before the first MAC node, that node's ``a_bits`` (32 if none).

  Widths are snapped to the nearest of 1, 2, 4, 8, 16, 32, 64. A width of 32 or more is
  floating point (ONNX float); 16 and less are integers (fixed point).
"""

from __future__ import annotations

import numpy as np

from .errors import TargetError
from .support import op_mask
from .target import Target
from .techlib import DataFile, Param, library

VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
                      "Constant", "Optional", "OptionalGetElement"})
MOVE_OPS = frozenset({"Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Pad", "Tile",
                      "Expand", "Cast", "CastLike", "DepthToSpace", "SpaceToDepth", "ConstantOfShape", "Range",
                      "ScatterND", "ScatterElements", "Resize", "Upsample", "NonZero", "OneHot", "Where", "Trilu",
                      "EyeLike", "Compress", "ReverseSequence"})
MATMUL_OPS = frozenset({"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"})
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
ONE_OP_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Relu", "Max", "Min", "Abs", "Neg", "And", "Or", "Xor", "Not",
                                "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot"})
SIMPLE_KINDS = ("add", "cmp", "other")
TRANSCENDENTAL_KINDS = ("div", "exp", "log", "sqrt", "pow", "tanh", "erf")
_WIDTHS = np.array([1, 2, 4, 8, 16, 32, 64], dtype=np.float64)


class Knobs:
    """Resolves target keys against library data files, recording each value's provenance."""

    def __init__(self, target: Target):
        self.target = target
        self.params: list[Param] = []
        self._seen: set[str] = set()

    def __call__(self, key: str, source: DataFile | None = None, param: str | None = None):
        """The target's ``key``; when unset, ``source[param]`` (cited) — recorded once."""
        t = self.target
        value, origin = t[key], t.origins.get(key, "default")
        if value is None:
            if source is None or param is None:
                raise TargetError(f"{key}: no value and no library default", where=t.source)
            p = source.param(param)
            self._add(Param(key, p.value, p.kind, f"= {source.name} {param}: {p.note}", p.origin, p.formula))
            return p.value
        kind = "--set" if origin == "--set" else ("default" if origin == "default" else "target")
        note = {"--set": f"--set {key}={t.describe(key)}", "default": "family default"}.get(kind, origin)
        self._add(Param(key, value, kind, note, t.source))
        return value

    def lib(self, source: DataFile, key: str):
        """A library number used as it is (listed under the file's name)."""
        p = source.param(key)
        self._add(Param(f"{source.name}:{p.key}", p.value, p.kind, p.note, p.origin, p.formula))
        return p.value

    def derived(self, key: str, value, note: str) -> None:
        self._add(Param(key, value, "derived", note, self.target.source))

    def _add(self, p: Param) -> None:
        if p.key not in self._seen:
            self._seen.add(p.key)
            self.params.append(p)

    def assumptions(self) -> list[str]:
        return [f"{p.key} = {_fmt(p.value)}: {p.note}" for p in self.params if p.kind == "assumed"]


def device(target: Target, key: str) -> DataFile:
    """The library data file named by the target's ``key`` (errors say where)."""
    try:
        return library().device(target[key])
    except TargetError as e:
        raise TargetError(f"{key}: {e.message}", where=target.source, hint=e.hint) from None


def tech(name: str, where: str) -> DataFile:
    try:
        return library().tech(name)
    except TargetError as e:
        raise TargetError(e.message, where=where, hint=e.hint) from None


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------ the workload, sorted
def node_kinds(workload) -> dict[str, np.ndarray]:
    c = workload.columns
    ops = np.asarray(workload.ops, dtype=object)
    macs = c["macs"].astype(np.float64)
    folded = c["folded"].astype(bool) if "folded" in c else np.zeros(len(ops), dtype=bool)
    is_mac = (macs > 0) & ~folded
    view = op_mask(ops, list(VIEW_OPS)) & ~is_mac
    move = op_mask(ops, list(MOVE_OPS)) & ~is_mac
    free = view | folded
    return {"mac": is_mac, "view": view, "move": move & ~free, "folded": folded,
            "nonmac": ~is_mac & ~free & ~move, "work": ~free}



def snap_bits(bits: np.ndarray) -> np.ndarray:
    """Nearest of 1, 2, 4, ..., 64 (in log2)."""
    b = np.clip(np.nan_to_num(bits, nan=32.0), 1.0, 64.0)
    idx = np.abs(np.log2(b)[:, None] - np.log2(_WIDTHS)[None, :]).argmin(axis=1)
    return _WIDTHS[idx]


def precisions(workload, kinds: dict[str, np.ndarray], conv_activation_bits: float = 0.0) -> dict[str, np.ndarray]:
    """Operand widths per node in bits (module docstring). ``conv_activation_bits`` > 0 sets the
    activation width of convolutions and recurrent layers instead of taking the weights'."""
    c = workload.columns
    f = np.float64
    n = len(workload.names)
    ops = np.asarray(workload.ops, dtype=object)
    params, w_bytes = c["params"].astype(f), c["weight_bytes"].astype(f)
    inp, out = c["input_bytes"].astype(f), c["output_bytes"].astype(f)
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    is_mac = kinds["mac"]
    has_w = params > 0
    w_bits = np.where(has_w, 8.0 * w_bytes / np.maximum(params, 1.0), np.nan)
    a_el = np.where(has_w, gb * gm * gk, gb * gm * gk + gb * gk * gn)
    a_exact = 8.0 * inp / a_el
    matmul = op_mask(ops, list(MATMUL_OPS))
    other_mac = is_mac & ~matmul
    fallback = conv_activation_bits if conv_activation_bits > 0 else np.nan
    a_bits = np.where(matmul & (inp > 0), a_exact, np.where(other_mac, fallback, np.nan))
    a_bits = np.where(is_mac & np.isnan(a_bits), w_bits, a_bits)
    w_bits = np.where(is_mac & np.isnan(w_bits), a_bits, w_bits)          # activation x activation
    out_bits = np.where(is_mac, 8.0 * out / (gb * gm * gn), np.nan)
    w_bits, a_bits, out_bits = snap_bits(w_bits), snap_bits(a_bits), snap_bits(out_bits)
    # non-MAC nodes: the output width of the nearest MAC node before them
    idx = np.arange(n)
    last_mac = np.maximum.accumulate(np.where(is_mac, idx, -1)) if n else idx
    first = int(np.argmax(is_mac)) if is_mac.any() else -1
    before = a_bits[first] if first >= 0 else 32.0
    inherited = np.where(last_mac >= 0, out_bits[np.maximum(last_mac, 0)], before)
    ops_count = sum(c[k].astype(f) for k in ("add", "mul", "div", "cmp", "exp", "log", "sqrt", "pow", "tanh", "erf",
                                               "other"))
    one_op = op_mask(ops, list(ONE_OP_ELEMENTWISE)) & (ops_count > 0) & ~is_mac
    own = snap_bits(np.where(one_op, 8.0 * out / np.maximum(ops_count, 1.0), np.nan))
    bits = np.where(is_mac, np.maximum(w_bits, a_bits), np.where(one_op, own, inherited))
    return {"w_bits": np.where(is_mac, w_bits, bits), "a_bits": np.where(is_mac, a_bits, bits),
            "out_bits": np.where(is_mac, out_bits, bits), "bits": bits}


def precision_class(bits: np.ndarray) -> np.ndarray:
    """0: binary (1 bit), 1: integer <= 8 bits, 2: integer 16 bits, 3: float (>= 32 bits)."""
    return np.select([bits <= 1, bits <= 8, bits <= 16], [0, 1, 2], default=3)


def nonmac_counts(workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(simple ops: add/cmp/other, multiplies, transcendental ops: div/exp/...) per node."""
    c = workload.columns
    f = np.float64
    simple = sum(c[k].astype(f) for k in SIMPLE_KINDS)
    mul = c["mul"].astype(f)
    trans = sum(c[k].astype(f) for k in TRANSCENDENTAL_KINDS)
    return simple, mul, trans


def gemm_dims(workload, kinds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(batch, M, N, K) of every node's GEMMs, each at least 1. A batched MatMul whose weight is
    shared by the whole batch (``gemm_batch x K x N`` > its parameters) is one GEMM of
    ``batch x M`` rows; recurrent layers keep their time steps as a batch (each step needs the
    previous one)."""
    c = workload.columns
    f = np.float64
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    params = c["params"].astype(f)
    ops = np.asarray(workload.ops, dtype=object)
    shared = kinds["mac"] & (params > 0) & (gb > 1) & (gb * gk * gn > 1.5 * params) \
        & ~op_mask(ops, list(RECURRENT_OPS))
    return np.where(shared, 1.0, gb), np.where(shared, gb * gm, gm), gn, gk

