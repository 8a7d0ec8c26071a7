"""Workload analysis: a target-independent per-node table of work and bytes.

``analyze(graph) -> Workload`` with one row per node and these columns:

* ``macs``: multiply-accumulates of the op's main contraction, **without** bias:
  - Conv / ConvInteger / QLinearConv: N * C_out * H_out * W_out * (C_in / group) * k_h * k_w
    (any number of spatial dims; depthwise is the case group = C_in);
  - ConvTranspose: N * C_in * H_in * W_in * (C_out / group) * k_h * k_w (each input pixel
    scatters into a k_h x k_w window of every output channel of its group);
  - Gemm: M * N * K; MatMul (batched, broadcast): batch * M * N * K; a 1-D operand counts as
    M = 1 or N = 1; Einsum with two operands: the product of all index extents;
  - RNN / GRU / LSTM: gates x hidden x (input + hidden) per step and direction.
* ``gemm_batch, gemm_m, gemm_n, gemm_k``: the same work as a batch of GEMMs (for Conv,
  M = N * H_out * W_out output pixels, N = C_out / group, K = C_in / group * k_h * k_w and
  batch = group), so ``macs == gemm_batch * gemm_m * gemm_n * gemm_k``;
* non-MAC operations by kind (``add``, ``mul``, ``div``, ``cmp``, ``exp``, ``log``,
  ``sqrt``, ``pow``, ``tanh``, ``erf``, ``other``), counted per element by the rules in
  ``_NONMAC``; a Conv/Gemm bias counts one ``add`` per output element. Ops that only move
  data (Reshape, Transpose, Concat, ...) count none. An op without a rule counts one
  ``other`` per output element and is listed in ``Workload.notices``;
* ``params``: elements of the node's constant inputs that are weights: floating point or
  8/4-bit integer tensors (64/32-bit integer constants are shapes and indices);
* ``weight_bytes``: those weights as stored: at their precision (a ``#quant<bits=..>``
  annotation overrides the element type's size), or for a weight shared through a
  ``#codebook<..>`` (share-weights) its indices at ``index_bits`` plus the codebook, in the
  annotated ``format``: ``dense`` (one index per element) or ``csc`` (EIE's compressed
  sparse columns, defined in nvmc/ir/csc.py);
  ``weight_density``: their non-zero fraction; ``codebook_bytes``: the codebooks' share
  of ``weight_bytes``;
* ``input_bytes`` (non-constant inputs) and ``output_bytes`` (outputs that are read) at
  their element types (or ``#quant`` bits);
* ``cache_bytes``: the part of ``input_bytes`` that is a KV cache: a graph input whose name
  says so (``past_key_values.0.key``, ``past_value``, ``kv_cache``: :data:`CACHE_INPUT`), and
  what data movement (a Concat with the new token's keys, a Transpose, ...) makes of it. A
  decoder step reads it like a weight stream; a family may keep it resident;
* ``folded``: 1 for a node the rules below fold into its neighbours (it counts nothing, and
  a cost model should charge it nothing, not even a kernel launch), else 0;
* ``kind``: the node's class, a code into ``NODE_KINDS`` (view, move, gather, mac,
  elementwise, reduction, control, other; see the table below ``MOVE_OPS``). It is the one op
  classification of nvmc: every cost-model family reads it instead of keeping op sets;
* ``weight_read_bytes``: the weight bytes the node reads per inference: ``weight_bytes``,
  except a lookup (Gather of a constant table) reads only the rows it selects, output
  elements x the table's bytes per element (an embedding of 30522 x 384 read for 128
  tokens moves 128 rows, not the table);
* ``act_bits``, ``weight_bits``, ``out_bits``: the precision the node computes at, in bits
  per element: of its first run-time input, of its largest weight as stored (codes plus
  their share of scales, zero points, codebooks and sparse indices), of its first output as
  written; 0 where it has none. QDQ casts and ``#quant<bits=..>`` annotations set them.

Quantised graphs (the ``quantize`` pass, or a QDQ model from another tool) are costed as
integer hardware runs them, not as onnxruntime emulates them:

* a ``DequantizeLinear`` of a constant decodes a stored weight: the constant (the integer
  codes, at their precision, plus the scale and zero-point constants) counts as a weight of
  every node that reads the decoded value, its density is that of the codes that differ
  from the zero point, and the decode itself counts no ops and no bytes;
* a ``QuantizeLinear`` -> [``Clip`` of its integer result] -> ``DequantizeLinear`` chain is
  a precision cast of an activation: its nodes count no ops and no bytes; readers of the
  chain's result read it at the chain's precision (the ``QuantizeLinear`` result's
  ``#quant`` bits, else its element type), and a value read only by such chains is written
  by its producer at their precision (the producer's epilogue quantises it).

With these conventions onnx-tool's count of a model equals nvmc's MACs + bias adds + its
own weighting of non-MAC ops, and ZigZag's equals nvmc's MACs (see tests).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from nvmc.ir import csc
from nvmc.ir.dataout import json_text
from nvmc.ir.dialect import op_def
from nvmc.ir.kinds import (CONTROL_OPS, GATHER_OPS, KIND, NODE_KINDS, NONMAC_KINDS, REDUCTION_OPS,  # noqa: F401
                           SIMPLE_KINDS, TRANSCENDENTAL_KINDS, VIEW_OPS)
from nvmc.ir.errors import ShapeError, VerifyError
from nvmc.ir.graph import Graph, Node
from nvmc.ir.limits import MAX_COUNT
from nvmc.ir.types import TensorType, dtype_size

_WEIGHT_DTYPES = {"f16", "bf16", "f32", "f64", "i8", "u8", "i4", "u4", "f8e4m3fn", "f8e4m3fnuz",
                  "f8e5m2", "f8e5m2fnuz", "f4e2m1"}
CACHE_INPUT = re.compile(r"past|cache", re.IGNORECASE)   # a graph input that holds a KV cache
_METADATA_OPS = {"Shape", "Size"}                         # read a tensor's shape, not its data
MOVE_OPS = {
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
    "GatherElements", "GatherND", "Identity", "Dropout", "Pad", "Tile", "Expand", "Shape", "Size",
    "Cast", "CastLike", "DepthToSpace", "SpaceToDepth", "ConstantOfShape", "Constant", "Range",
    "ScatterND", "ScatterElements", "Resize", "Upsample", "NonZero", "OneHot", "Where", "Trilu",
    "EyeLike", "Compress", "ReverseSequence", "If", "Loop", "Scan",
}


@dataclass
class Workload:
    """Per-node columns (numpy arrays aligned with ``names``) and model totals."""

    names: list[str]
    ops: list[str]
    columns: dict[str, np.ndarray]
    notices: list[str] = field(default_factory=list)

    SCHEMA = "nvmc.analysis/1"

    def __post_init__(self) -> None:
        """A workload built by hand (tests, tools) gets the derived columns it leaves out."""
        c, n = self.columns, len(self.names)
        if "kind" not in c:
            macs = c.get("macs", np.zeros(n))
            c["kind"] = np.array([_node_kind(op, "." not in op, bool(m > 0)) for op, m in zip(self.ops, macs)],
                                 dtype=np.int8)
        if "weight_read_bytes" not in c and "weight_bytes" in c:
            c["weight_read_bytes"] = c["weight_bytes"]
        for key in ("act_bits", "weight_bits", "out_bits"):
            c.setdefault(key, np.full(n, 32.0))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    @property
    def nonmac(self) -> dict[str, np.ndarray]:
        return {k: self.columns[k] for k in NONMAC_KINDS}

    @property
    def totals(self) -> dict[str, int]:
        c = self.columns
        return {
            "macs": _exact_sum(c["macs"]),
            "nonmac_ops": sum(_exact_sum(c[k]) for k in NONMAC_KINDS),
            "params": _exact_sum(c["params"]),
            "weight_bytes": int(np.ceil(c["weight_bytes"].sum())),
            "codebook_bytes": int(np.ceil(c["codebook_bytes"].sum())),
            "activation_bytes": int(np.ceil(c["output_bytes"].sum())),
            "nodes": len(self.names),
        }

    def row(self, i: int) -> dict[str, Any]:
        c = self.columns
        return {
            "name": self.names[i], "op": self.ops[i], "macs": int(c["macs"][i]), "params": int(c["params"][i]),
            "weight_bytes": float(c["weight_bytes"][i]), "input_bytes": float(c["input_bytes"][i]),
            "output_bytes": float(c["output_bytes"][i]), "weight_density": float(c["weight_density"][i]),
            "codebook_bytes": float(c["codebook_bytes"][i]), "folded": bool(c["folded"][i]),
            "gemm": [int(c[k][i]) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k")],
            "nonmac_ops": {k: int(c[k][i]) for k in NONMAC_KINDS if c[k][i]},
        }

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "totals": self.totals, "nodes": [self.row(i) for i in range(len(self))],
                "notices": self.notices}

    def to_json(self, **kw) -> str:
        return json_text(self.to_dict(), **kw)

    def op_totals(self) -> dict[str, dict[str, int]]:
        """MACs and node counts per op type."""
        out: dict[str, dict[str, int]] = {}
        for op, macs in zip(self.ops, self.columns["macs"]):
            entry = out.setdefault(op, {"nodes": 0, "macs": 0})
            entry["nodes"] += 1
            entry["macs"] += int(macs)
        return out


def _exact_sum(column: np.ndarray) -> int:
    """The sum of an int64 column as a Python int, exact where numpy's would wrap around."""
    if not len(column) or int(np.abs(column).max()) * len(column) < 2**63:
        return int(column.sum())
    return sum(int(x) for x in column)


def analyze(graph: Graph) -> Workload:
    """The workload table of ``graph`` (cached on the graph until it changes)."""
    cached = graph.analysis_cache.get("workload")
    if cached and cached[0] == graph.version:
        return cached[1]
    workload = _Analyzer(graph).run()
    graph.analysis_cache["workload"] = (graph.version, workload)
    return workload


# A node's count of MACs or of one kind of op is at most MAX_COUNT (ir/limits.py). Beyond, the
# model's attributes are not a network anyone runs (a kernel of 2**40): an error, never a
# wrapped-around number.


def _check_count(node: Node, what: str, count: int) -> int:
    if not 0 <= count <= MAX_COUNT:
        raise VerifyError(f"node '{node.name}' ({node.qualified_op}): its {what} is {count:.3g}, outside the "
                          f"0 .. 2**53 nvmc counts", hint="check the node's shapes and attributes (kernel_shape, "
                          "pads, strides): a network with this much work cannot be run")
    return count


def binding_hint(g: Graph) -> str:
    """How to bind what the model's inputs leave open, ready to paste: the named dimensions as
    ``--dim``, inputs with unnamed ones as ``--input-shape`` (N: a value only the user knows)."""
    named: list[str] = []
    unnamed: list[str] = []
    for name in g.inputs:
        shape = g.values[name].type.shape
        if shape is None:
            unnamed.append(f"--input-shape {name}=N")
            continue
        named += [d for d in shape if isinstance(d, str) and d not in named]
        if any(d is None for d in shape):
            unnamed.append(f"--input-shape {name}=" + "x".join(str(d) if isinstance(d, int) else "N" for d in shape))
    flags = [f"--dim {d}=N" for d in named] + unnamed
    shown = ", ".join(f"{n} {g.values[n].type}" for n in g.inputs)
    if not flags:
        return f"the model's inputs are static ({shown}); the dimension is computed inside the model"
    return f"bind the inputs' open dimensions: {' '.join(flags)}  (inputs: {shown}; Python: dims={{...}})"


class _Analyzer:
    def __init__(self, graph: Graph):
        self.g = graph
        self.notices: list[str] = []
        self._no_rule: dict[str, int] = {}

    # ------------------------------------------------------------ helpers
    def shape(self, node: Node, value: str) -> tuple[int, ...]:
        t = self.g.values[value].type
        if t.is_static:
            return t.shape  # type: ignore[return-value]
        if t.shape is None:
            what = "an unknown shape"
        else:
            bad = next(d for d in t.shape if not isinstance(d, int))
            what = f"the unbound dimension '{bad}'" if bad is not None else "an unknown dimension"
        if node.op in ("If", "Loop", "Scan") or node.domain not in ("", "ai.onnx", "nvmc"):
            why = ("its shape depends on the control flow taken at run time" if node.domain in ("", "ai.onnx")
                   else f"ONNX has no shape rule for it and no nvmc target costs domain '{node.domain}'")
            raise ShapeError(f"node '{node.name}' ({node.qualified_op}): value '%{value}' has {what}: {why}",
                             hint="nvmc cannot cost this op; lower or remove it before compiling "
                                  "(--input-shape does not help)")
        raise ShapeError(f"node '{node.name}' ({node.qualified_op}): value '%{value}' has {what} ({t})",
                         hint=binding_hint(self.g))

    def numel(self, node: Node, value: str) -> int:
        n = self.g.values[value].type.numel()
        return n if n is not None else math.prod(self.shape(node, value))

    def run(self) -> Workload:
        g = self.g
        nodes = g.topo_nodes()
        n = len(nodes)
        values, consts, users = g.values, g.consts, g._users
        graph_outputs = set(g.outputs)
        folded, decoded, stored = _quant_folding(g)
        density_cache: dict[str, tuple[int, int]] = {}
        storage_cache: dict[str, tuple[float, float]] = {}
        gemm = np.zeros((n, 4), dtype=np.int64)
        special = np.zeros((n, len(NONMAC_KINDS)), dtype=np.int64)  # rules that are not per element
        out_numel = np.zeros(n, dtype=np.int64)
        scale = np.ones(n, dtype=np.int64)  # variadic ops: (inputs - 1) ops per element
        params, weight_bytes, input_bytes, output_bytes, codebook_bytes, cache_bytes = ([0.0] * n for _ in range(6))
        cache = {v for v in g.inputs if CACHE_INPUT.search(v) and len(values[v].type.shape) >= 3}
        density = [1.0] * n
        is_folded = np.zeros(n, dtype=np.int64)
        node_kind = np.full(n, KIND["other"], dtype=np.int8)
        act_bits, weight_bits, out_bits = (np.zeros(n) for _ in range(3))
        weight_read = [0.0] * n
        op_keys = [""] * n
        for i, node in enumerate(nodes):
            onnx_op = node.domain in ("", "ai.onnx")
            op = node.op if onnx_op else node.qualified_op
            op_keys[i] = op
            if node.name in folded:  # a weight decode or an activation's precision cast: free
                if cache.intersection(node.inputs):   # a quantised KV cache is still the cache
                    cache.update(o for o in node.outputs if o)
                is_folded[i] = 1
                node_kind[i] = KIND["view"]
                continue
            if node.outputs and node.outputs[0] in values:
                out_bits[i] = 8 * stored.get(node.outputs[0], _elem_bytes(values[node.outputs[0]].type))
            ob = 0.0
            for o in node.outputs:
                # an output nobody reads (Dropout's mask, ...) is not materialised at inference
                if o and (users.get(o) or o in graph_outputs):
                    t = values[o].type
                    ob += self.numel(node, o) * stored.get(o, _elem_bytes(t))
            output_bytes[i] = ob
            if node.outputs and node.outputs[0] and op not in MOVE_OPS:
                out_numel[i] = self.numel(node, node.outputs[0])
            nnz = total = largest = 0
            for v in node.inputs:
                if not v:
                    continue
                t = values[v].type
                if v in decoded or (v in consts and t.dtype in _WEIGHT_DTYPES):
                    if v not in density_cache:
                        density_cache[v] = self._weight_density(node, v, decoded.get(v))
                        storage_cache[v] = self._weight_storage(node, v, decoded.get(v))
                    nz, size = density_cache[v]
                    params[i] += size
                    weight_bytes[i] += storage_cache[v][0]
                    codebook_bytes[i] += storage_cache[v][1]
                    nnz, total = nnz + nz, total + size
                    if size > largest:  # the weight's precision: that of its largest constant
                        largest, weight_bits[i] = size, 8 * storage_cache[v][0] / max(size, 1)
                elif v not in consts:
                    read = self.numel(node, v) * stored.get(v, _elem_bytes(t))
                    input_bytes[i] += read
                    if v in cache and op not in _METADATA_OPS:
                        cache_bytes[i] += read
                    if not act_bits[i]:  # the activation: the first input computed at run time
                        act_bits[i] = 8 * stored.get(v, _elem_bytes(t))
            if op in MOVE_OPS and op not in _METADATA_OPS and cache.intersection(node.inputs):   # moved, appended to
                cache.update(o for o in node.outputs if o)
            opdef = None if onnx_op else op_def(op)  # an nvmc op: its counting rules are on its definition
            precision = opdef.precision if opdef is not None else None
            if precision is not None and (bits := precision(node)):
                act_bits[i] = bits  # the op requantises its activations itself (nvmc.WinogradConv quant=...)
            if total:
                density[i] = nnz / total
            weight_read[i] = weight_bytes[i]
            if node.op in GATHER_OPS and onnx_op and weight_bytes[i] and total:
                # a lookup reads the rows its indices select, at the table's precision
                weight_read[i] = min(weight_bytes[i], self.numel(node, node.outputs[0]) * weight_bytes[i] / total)
            rule = _MAC_RULES.get(op) if opdef is None else opdef.macs
            if rule is not None:
                dims = [int(d) for d in rule(self, node)]
                _check_count(node, "MAC count", math.prod(dims))
                gemm[i] = dims
            node_kind[i] = _node_kind(op, onnx_op, rule is not None and math.prod(gemm[i]) > 0)
            if op in _VARIADIC:
                scale[i] = max(1, sum(1 for v in node.inputs if v) - 1)
            elif op in _BIAS_OPS:
                b = _BIAS_OPS[op]
                scale[i] = 1 if len(node.inputs) > b and node.inputs[b] else 0
            elif callable(count_rule := _count_rule(op)):
                for kind, count in count_rule(self, node, int(out_numel[i])).items():
                    special[i, _KIND_INDEX[kind]] += _check_count(node, f"'{kind}' op count", int(count))
            elif count_rule is None and op not in MOVE_OPS and rule is None:
                self._no_rule[op] = self._no_rule.get(op, 0) + 1
        # per-element rules, vectorised: coefficient row of each node's op x elements x scale
        unique_ops = sorted(set(op_keys))
        coeffs = np.array([_coefficients(op, op in self._no_rule) for op in unique_ops], dtype=np.int64)
        index = {op: j for j, op in enumerate(unique_ops)}
        op_index = np.fromiter((index[op] for op in op_keys), dtype=np.int64, count=n)
        nonmac = special + coeffs.reshape(-1, len(NONMAC_KINDS))[op_index] * (out_numel * scale)[:, None]

        cols = {"macs": gemm.prod(axis=1), "gemm_batch": gemm[:, 0], "gemm_m": gemm[:, 1], "gemm_n": gemm[:, 2],
                "gemm_k": gemm[:, 3], "params": np.array(params, dtype=np.int64),
                "weight_bytes": np.array(weight_bytes), "input_bytes": np.array(input_bytes),
                "output_bytes": np.array(output_bytes), "cache_bytes": np.array(cache_bytes),
                "weight_density": np.array(density),
                "codebook_bytes": np.array(codebook_bytes), "folded": is_folded,
                "kind": node_kind, "weight_read_bytes": np.array(weight_read), "act_bits": act_bits,
                "weight_bits": weight_bits, "out_bits": out_bits}
        cols.update({kind: nonmac[:, j] for j, kind in enumerate(NONMAC_KINDS)})
        if self._no_rule:
            listed = ", ".join(f"{op} ({c})" for op, c in sorted(self._no_rule.items()))
            self.notices.append(f"no op-count rule for {listed}: counted as 1 'other' op per output element")
        return Workload([nd.name for nd in nodes], [nd.qualified_op for nd in nodes], cols, self.notices)


    # ------------------------------------------------------------ weights
    def _weight_density(self, node: Node, v: str, decode: tuple[str, str, str, int] | None) -> tuple[int, int]:
        """(non-zeros, elements) of the weight ``v``: a constant, or a decoded constant
        (``decode`` = codes, scale, zero point, axis), whose zeros are codes equal to the
        zero point."""
        if decode is None:
            return _count_nonzero(self.g.consts[v]), self.numel(node, v)
        codes, _, zp, axis = decode
        array = self.g.consts[codes]
        if not zp:
            return _count_nonzero(array), array.size
        z = self.g.consts[zp]
        if z.ndim == 1 and array.ndim > 1:  # per-axis zero points
            z = z.reshape([-1 if d == axis % array.ndim else 1 for d in range(array.ndim)])
        return int(np.count_nonzero(array != z)), array.size

    def _weight_storage(self, node: Node, v: str, decode: tuple[str, str, str, int] | None) -> tuple[float, float]:
        """(bytes as stored, of which codebook bytes) of the weight ``v`` (see the module doc)."""
        if decode is not None:
            codes, scale, zp, _ = decode
            side = sum(self.g.consts[c].size * _elem_bytes(self.g.values[c].type) for c in (scale, zp) if c)
            stored, book = self._weight_storage(node, codes, None)
            return stored + side, book
        t = self.g.values[v].type
        array = self.g.consts[v]
        cb = t.annotation("codebook") if t.annotations else None
        if cb is None:
            return self.numel(node, v) * _elem_bytes(t), 0.0
        index_bits, clusters = float(cb.get("index_bits")), int(cb.get("clusters"))
        book = clusters * _elem_bytes(t)
        if cb.get("format") != "csc":
            return array.size * index_bits / 8 + book, book
        rel_bits = int(cb.get("rel_bits", 4))
        entries, columns = csc_entries(array, int(cb.get("axis", 0)), rel_bits)
        return csc.storage_bits(entries, columns, index_bits, rel_bits) / 8 + book, book


def csc_entries(array: np.ndarray, axis: int, rel_bits: int) -> tuple[int, int]:
    """(entries, columns) of the weight ``array`` in EIE's CSC format (nvmc/ir/csc.py), its
    output channels on ``axis``."""
    matrix = csc.as_matrix(array, axis)
    return csc.entries(matrix, rel_bits), matrix.shape[1]


def weight_columns(graph: Graph, workload: Workload, pes: Iterable[int] = ()) -> dict[str, np.ndarray]:
    """The columns a sparse engine reads off a MAC node's weight values (0 where it has none):

    * ``weight_index_bits``: bits of a stored weight's code: the ``#codebook`` index bits of a
      shared weight, else its ``#quant`` bits, else its element bits;
    * ``csc_rel_bits``: the ``#codebook`` relative-index bits (EIE: 4; 4 when not annotated);
    * ``weight_nonzeros``: non-zeros of the weight matrix (bias excluded);
    * per P in ``pes``, the :func:`nvmc.ir.csc.pe_columns` pair: the weight in EIE's CSC format
      over P PEs (nvmc/ir/csc.py), the busiest PE's entries and all PEs' entries. Counted on the
      actual weights, so load imbalance and padding are the data's, not an assumption.
    """
    from .compression_common import find_weights

    n = len(workload)
    index = {name: i for i, name in enumerate(workload.names)}
    bits, rel = np.zeros(n), np.full(n, 4.0)
    matrices: dict[int, np.ndarray] = {}
    for w in find_weights(graph)[0]:
        i = index.get(w.node.name)
        if i is None:
            continue
        t = graph.values[w.const].type
        cb = t.annotation("codebook") if t.annotations else None
        quant = t.annotation("quant") if t.annotations else None
        if cb is not None:
            bits[i] = float(cb.get("index_bits"))
            rel[i] = float(cb.get("rel_bits", 4))
        elif quant is not None and quant.get("bits") is not None:
            bits[i] = float(quant.get("bits"))
        else:
            bits[i] = 8.0 * graph.consts[w.const].dtype.itemsize
        matrices[i] = csc.as_matrix(graph.consts[w.const], w.out_axis)
    columns = {"weight_index_bits": bits,
               "weight_nonzeros": np.array([_nonzeros(matrices[i]) if i in matrices else 0 for i in range(n)],
                                           dtype=np.float64),
               "csc_rel_bits": rel}
    for p in sorted(set(pes)):
        top, total = np.zeros(n), np.zeros(n)
        for i, per_pe in _pe_entries_batched(matrices, rel, p).items():
            top[i], total[i] = per_pe.max(), per_pe.sum()
        columns.update(zip(csc.pe_columns(p), (top, total)))
    return columns


def _fill(matrix: np.ndarray) -> float | None:
    """The value of a weight stored as one value broadcast over its shape (a ConstantOfShape fill of
    the onnx zoo's light models: every stride 0), else None."""
    return float(matrix.flat[0]) if matrix.size and not any(matrix.strides) else None


def _nonzeros(matrix: np.ndarray) -> int:
    value = _fill(matrix)
    return int(np.count_nonzero(matrix)) if value is None else (matrix.size if value != 0 else 0)


def _pe_entries_batched(matrices: dict[int, np.ndarray], rel: np.ndarray, pes: int,
                        batch_elements: int = 1 << 14) -> dict[int, np.ndarray]:
    """:func:`nvmc.ir.csc.pe_entries` of every matrix (node index -> matrix): a dense one (no zeros,
    so no gaps) holds one entry per element, rows dealt round-robin to the PEs; sparse ones are
    stacked by shape, in batches that stay in cache."""
    groups: dict[tuple, list[int]] = {}
    out: dict[int, np.ndarray] = {}
    for i, m in matrices.items():
        rows, cols = m.shape
        if _fill(m) == 0:
            out[i] = np.zeros(pes, dtype=np.int64)
        elif _nonzeros(m) == m.size:
            out[i] = (rows // pes + (np.arange(pes) < rows % pes)).astype(np.int64) * cols
        else:
            groups.setdefault((m.shape, int(rel[i])), []).append(i)
    for (shape, rel_bits), members in groups.items():
        step = max(1, batch_elements // max(1, math.prod(shape)))
        for s in range(0, len(members), step):
            chunk = members[s:s + step]
            out.update(zip(chunk, csc.pe_entries(np.stack([matrices[i] for i in chunk]), pes, rel_bits)))
    return out


def _quant_folding(g: Graph) -> tuple[set[str], dict[str, tuple[str, str, str, int]], dict[str, float]]:
    """The QDQ rules of the module doc: (names of nodes that count nothing, decoded weight
    value -> (codes, scale, zero point, axis), activation value -> bytes per element)."""
    folded: set[str] = set()
    decoded: dict[str, tuple[str, str, str, int]] = {}
    stored: dict[str, float] = {}
    casts: dict[str, float] = {}  # value quantised by a cast chain -> the chain's bytes per element
    outputs = set(g.outputs)

    def private(value: str, reader: Node) -> bool:  # read by `reader` only
        return value not in outputs and all(u is reader for u in g.users(value))

    for node in g.nodes:
        if node.op != "DequantizeLinear" or node.domain not in ("", "ai.onnx") or not node.inputs:
            continue
        ins = list(node.inputs) + ["", ""]
        if g.is_const(ins[0]):
            decoded[node.outputs[0]] = (ins[0], ins[1], ins[2], int(node.attrs.get("axis", 1)))
            folded.add(node.name)
            continue
        chain, value = [node], ins[0]
        p = g.producer(value)
        if p is not None and p.op == "Clip" and p.domain in ("", "ai.onnx") and private(value, node):
            chain.append(p)
            value = p.inputs[0]
            p = g.producer(value)
        if p is None or p.op != "QuantizeLinear" or p.domain not in ("", "ai.onnx") or not private(value, chain[-1]):
            continue
        chain.append(p)
        folded.update(n.name for n in chain)
        precision = _elem_bytes(g.values[value].type)
        stored[node.outputs[0]] = precision
        source = p.inputs[0]
        casts[source] = max(casts.get(source, 0.0), precision)
    for source, precision in casts.items():
        readers = g.users(source)
        if source not in outputs and readers and all(u.name in folded and u.op == "QuantizeLinear" for u in readers):
            stored[source] = precision
    return folded, decoded, stored


def _node_kind(op: str, onnx_op: bool, has_macs: bool) -> int:
    """The ``kind`` code of a node (see NODE_KINDS): ``op`` is its ONNX name, or its qualified
    name in another domain (an nvmc op with a count rule is elementwise)."""
    if has_macs:
        return KIND["mac"]
    if not onnx_op:
        return KIND["elementwise"] if _count_rule(op) is not None else KIND["other"]
    onnx_op = op
    if onnx_op in VIEW_OPS:
        return KIND["view"]
    if onnx_op in GATHER_OPS:
        return KIND["gather"]
    if onnx_op in CONTROL_OPS:
        return KIND["control"]
    if onnx_op in MOVE_OPS:
        return KIND["move"]
    if onnx_op in REDUCTION_OPS:
        return KIND["reduction"]
    if onnx_op in _NONMAC or onnx_op in _BIAS_OPS or onnx_op in _MAC_RULES:
        return KIND["elementwise"]
    return KIND["other"]


def _elem_bytes(t: TensorType) -> float:
    if t.annotations:
        quant = t.annotation("quant")
        if quant is not None and quant.get("bits"):
            return quant.get("bits") / 8
    return dtype_size(t.dtype)


def _coefficients(op: str, unknown: bool) -> list[int]:
    """Per-output-element op counts of ``op`` as a row over NONMAC_KINDS."""
    if unknown:
        rule = {"other": 1}
    elif op in _BIAS_OPS:
        rule = {"add": 1}
    else:
        rule = _count_rule(op)
        rule = rule if isinstance(rule, dict) else {}
    return [rule.get(kind, 0) for kind in NONMAC_KINDS]


def _count_nonzero(array: np.ndarray) -> int:
    if array.size and all(s == 0 for s in array.strides):  # a filled (broadcast) constant
        return array.size if array.reshape(-1)[0] != 0 else 0
    return int(np.count_nonzero(array))


# ------------------------------------------------------------- MAC rules
def _group(node: Node) -> int:
    group = node.attrs.get("group", 1)
    if not isinstance(group, int) or group < 1:
        raise VerifyError(f"node '{node.name}' ({node.qualified_op}): group={group!r}; it must be a positive integer",
                         hint="fix the model's 'group' attribute")
    return group


def _conv(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    w = node.inputs[3 if node.op == "QLinearConv" else 1]
    out = a.shape(node, node.outputs[0])
    wshape = a.shape(node, w)
    group = _group(node)
    c_in_per_group, kernel = wshape[1], math.prod(wshape[2:])
    pixels = math.prod(out[2:]) * out[0]
    return group, pixels, out[1] // group, c_in_per_group * kernel


def _conv_transpose(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    xs, ws = a.shape(node, node.inputs[0]), a.shape(node, node.inputs[1])
    group = _group(node)
    # weight [C_in, C_out/group, k...]; each input pixel multiplies a (C_out/group x k) block
    pixels = xs[0] * math.prod(xs[2:])
    kernel = math.prod(ws[2:])
    return group, pixels, ws[1] * kernel, ws[0] // group


def _gemm(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    sa, sb = a.shape(node, node.inputs[0]), a.shape(node, node.inputs[1])
    m, k = (sa[1], sa[0]) if node.attrs.get("transA", 0) else (sa[0], sa[1])
    n = sb[0] if node.attrs.get("transB", 0) else sb[1]
    return 1, m, n, k


def _matmul(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    sa = a.shape(node, node.inputs[0])
    sb = a.shape(node, node.inputs[3 if node.op == "QLinearMatMul" else 1])
    out = a.shape(node, node.outputs[0])
    k = sa[-1]
    m = sa[-2] if len(sa) >= 2 else 1  # a 1-D operand is a single row / column (numpy rules)
    n = sb[-1] if len(sb) >= 2 else 1
    batch_dims = out[:-2] if len(sa) >= 2 and len(sb) >= 2 else out[:-1] if len(sa) + len(sb) > 2 else ()
    return math.prod(batch_dims), m, n, k


def _einsum(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    if len(node.inputs) != 2:
        return 0, 0, 0, 0
    lhs = node.attrs.get("equation", "").replace(" ", "").split("->")[0]
    extents: dict[str, int] = {}
    for term, v in zip(lhs.split(","), node.inputs):
        shape = a.shape(node, v)
        letters = [c for c in term if c.isalpha()]
        if "..." in term:  # ellipsis: leading broadcast dims count once
            ell = len(shape) - len(letters)
            extents["..."] = max(extents.get("...", 1), math.prod(shape[:ell]))
            shape = shape[ell:]
        for c, d in zip(letters, shape):
            extents[c] = max(extents.get(c, 1), d)
    return 1, math.prod(extents.values()), 1, 1


def _rnn(a: _Analyzer, node: Node) -> tuple[int, int, int, int]:
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[node.op]
    seq, batch, inp = a.shape(node, node.inputs[0])[:3]
    if node.attrs.get("layout", 0):
        batch, seq = seq, batch
    hidden = int(node.attrs["hidden_size"])
    directions = 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1
    return seq * directions, batch, gates * hidden, inp + hidden


_MAC_RULES: dict[str, Callable[[_Analyzer, Node], tuple[int, int, int, int]]] = {
    "Conv": _conv, "ConvInteger": _conv, "QLinearConv": _conv, "ConvTranspose": _conv_transpose,
    "Gemm": _gemm, "MatMul": _matmul, "MatMulInteger": _matmul, "QLinearMatMul": _matmul,
    "Einsum": _einsum, "RNN": _rnn, "GRU": _rnn, "LSTM": _rnn,
}
_BIAS_OPS = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2, "QLinearConv": 8}


# ---------------------------------------------------------- non-MAC rules
def _per_elem(**kinds: int) -> dict[str, int]:
    return kinds


def _window(node: Node) -> int:
    return math.prod(node.attrs.get("kernel_shape", [1]))


def _per_input(**kinds: int):
    def rule(a, node, out):
        n_in = a.numel(node, node.inputs[0])
        return {k: v * n_in for k, v in kinds.items()}
    return rule


def _global_pool(kind: str):
    def rule(a, node, out):
        n_in = a.numel(node, node.inputs[0])
        counts = {kind: n_in - out}
        if kind == "add":
            counts["div"] = out
        return counts
    return rule


def _reduce(kind: str, divide: bool = False):
    def rule(a, node, out):
        counts = {kind: max(0, a.numel(node, node.inputs[0]) - out)}
        if divide:
            counts["div"] = out
        return counts
    return rule


def _lrn(a, node, out):
    size = int(node.attrs.get("size", 1))
    # sum of squares over `size` channels, then (bias + alpha/size * sum)^beta and a divide
    return {"mul": out * (size + 1), "add": out * size, "pow": out, "div": out}


def _norm(a, node, out):
    # mean and variance over the normalised axes, then (x - mean) * rsqrt(var + eps) * scale + bias
    return {"add": 4 * out, "mul": 3 * out, "div": out, "sqrt": out}


_VARIADIC = {"Add", "Sub", "Sum", "Mul", "Max", "Min"}
_KIND_INDEX = {kind: j for j, kind in enumerate(NONMAC_KINDS)}
# op -> ops per output element (a dict), or a function (analyzer, node, output elements) -> counts
_NONMAC: dict[str, dict[str, int] | Callable[[_Analyzer, Node, int], dict[str, int]]] = {
    # variadic (_VARIADIC): the counts are per element and per extra input
    "Add": _per_elem(add=1), "Sub": _per_elem(add=1), "Sum": _per_elem(add=1), "Mul": _per_elem(mul=1),
    "Max": _per_elem(cmp=1), "Min": _per_elem(cmp=1),
    "Div": _per_elem(div=1), "Mod": _per_elem(div=1),
    "Mean": lambda a, node, out: {"add": out * (len(node.inputs) - 1), "div": out},
    "Relu": _per_elem(cmp=1), "LeakyRelu": _per_elem(cmp=1, mul=1), "PRelu": _per_elem(cmp=1, mul=1),
    "Elu": _per_elem(cmp=1, exp=1, add=1, mul=1), "Selu": _per_elem(cmp=1, exp=1, add=1, mul=2),
    "Celu": _per_elem(cmp=1, exp=1, add=1, mul=1, div=1), "ThresholdedRelu": _per_elem(cmp=1),
    "Clip": _per_elem(cmp=2), "Abs": _per_elem(cmp=1), "Neg": _per_elem(mul=1), "Sign": _per_elem(cmp=2),
    "Floor": _per_elem(other=1), "Ceil": _per_elem(other=1), "Round": _per_elem(other=1),
    "Sigmoid": _per_elem(exp=1, add=1, div=1), "HardSigmoid": _per_elem(mul=1, add=1, cmp=2),
    "HardSwish": _per_elem(mul=2, add=1, cmp=2), "Softplus": _per_elem(exp=1, add=1, log=1),
    "Softsign": _per_elem(cmp=1, add=1, div=1), "Mish": _per_elem(exp=1, add=1, log=1, tanh=1, mul=1),
    "Tanh": _per_elem(tanh=1), "Exp": _per_elem(exp=1), "Log": _per_elem(log=1), "Sqrt": _per_elem(sqrt=1),
    "Reciprocal": _per_elem(div=1), "Pow": _per_elem(pow=1), "Erf": _per_elem(erf=1),
    "Gelu": _per_elem(erf=1, mul=3, add=1),
    "Sin": _per_elem(other=1), "Cos": _per_elem(other=1),
    "Equal": _per_elem(cmp=1), "Less": _per_elem(cmp=1), "Greater": _per_elem(cmp=1),
    "LessOrEqual": _per_elem(cmp=1), "GreaterOrEqual": _per_elem(cmp=1), "Not": _per_elem(other=1),
    "And": _per_elem(other=1), "Or": _per_elem(other=1), "Xor": _per_elem(other=1),
    "BitwiseAnd": _per_elem(other=1), "BitwiseOr": _per_elem(other=1), "BitwiseXor": _per_elem(other=1),
    "BitwiseNot": _per_elem(other=1), "BitShift": _per_elem(other=1), "IsNaN": _per_elem(cmp=1),
    "Softmax": _per_elem(cmp=1, add=2, exp=1, div=1), "LogSoftmax": _per_elem(cmp=1, add=3, exp=1, log=1),
    "Hardmax": _per_elem(cmp=1),
    "BatchNormalization": _per_elem(mul=1, add=1),  # inference: a per-channel affine
    "InstanceNormalization": _norm, "LayerNormalization": _norm, "GroupNormalization": _norm,
    "LpNormalization": _per_elem(mul=2, add=1, sqrt=1, div=1),
    "LRN": _lrn,
    "MaxPool": lambda a, node, out: {"cmp": out * (_window(node) - 1)},
    "AveragePool": lambda a, node, out: {"add": out * (_window(node) - 1), "div": out},
    "LpPool": lambda a, node, out: {"mul": out * _window(node), "add": out * (_window(node) - 1), "pow": out},
    "GlobalAveragePool": _global_pool("add"), "GlobalMaxPool": _global_pool("cmp"),
    "ReduceSum": _reduce("add"), "ReduceMean": _reduce("add", divide=True), "ReduceMax": _reduce("cmp"),
    "ReduceMin": _reduce("cmp"), "ReduceProd": _reduce("mul"), "ReduceL1": _reduce("add"),
    "ReduceL2": _reduce("add"), "ReduceSumSquare": _reduce("add"), "ReduceLogSumExp": _reduce("add"),
    "ArgMax": _per_input(cmp=1), "ArgMin": _per_input(cmp=1), "TopK": _per_input(cmp=1),
    "CumSum": _per_elem(add=1),
    "QuantizeLinear": _per_elem(div=1, add=1, cmp=2), "DequantizeLinear": _per_elem(add=1, mul=1),
    "DynamicQuantizeLinear": _per_elem(div=1, add=1, cmp=4),
}


# ------------------------------------------------------- nvmc ops
def _count_rule(op: str):
    """The non-MAC rule of ``op``: an ONNX op's from ``_NONMAC``, an nvmc op's (qualified name)
    from its definition (nvmc.ir.dialect), None where there is none."""
    opdef = op_def(op)
    return _NONMAC.get(op) if opdef is None else opdef.counts


def has_mac_rule(op: str) -> bool:
    """Whether ``op`` (qualified: ``nvmc.WinogradConv``) has a rule for its MACs."""
    opdef = op_def(op)
    return op in _MAC_RULES if opdef is None else opdef.macs is not None
