"""nvmc-domain ops of hyperdimensional computing (HDC): Bind, Permute, Bundle, Similarity.

Dense binary HDC (binary spatter codes) computes on boolean hypervectors of D bits, the
last axis of a ``bool`` tensor. Four ops cover a whole classifier (encoding, training by
bundling, associative-memory search); ``hdc-recognize`` (passes/hdc_recognize.py) finds
them in plain ONNX and these registrations let the verifier check them and the exporter
lower them back, so a recognised model still runs in onnxruntime with identical outputs:

==============  ===========================================  ================================
op              meaning                                      ONNX lowering (what it matches)
==============  ===========================================  ================================
Bind(a, b, …)   element-wise XOR of k >= 2 hypervectors      Xor(…Xor(Xor(a, b), c)…)
                (numpy broadcasting)
Permute(x)      rotation by ``shift`` along ``axis``:        Concat(Slice(x, [D-s:D]),
                y[..., i] = x[..., (i - shift) mod D]          Slice(x, [0:D-s]), axis)
Bundle(x)       ones counted over ``axis`` (the bundled      ReduceSum(Cast(x, count_type),
                vectors), as ``count_type``; with              [axis], keepdims)
                ``threshold`` the majority count > t        [then Greater(., t)]
Similarity(q,m) Hamming distance: ones of q XOR m counted    ReduceSum(Cast(Xor(q, m),
                over the last (hypervector) axis               count_type), [-1], keepdims)
==============  ===========================================  ================================

Operands and results of Bind / Permute / Bundle-input / Similarity-inputs are ``bool``
(one bit of a hypervector per element); counts are integer tensors.

Workload counts (what ``nvmc.passes.workload`` puts in the non-MAC columns for these ops,
registered below): Bind counts ``other`` = (k - 1) x output elements (bit XORs); Permute
moves data and counts nothing; Bundle counts ``add`` = input - output elements (as
ReduceSum does) and, with a threshold, ``cmp`` = output elements; Similarity counts
``other`` = elements of q XOR m (bit XORs) and ``add`` = those minus the distances (the
popcount). A cost model recovers each node's geometry from these and the byte columns
(see backends/racetrack.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.ops import NVMC_OPS, register_op
from nvmc.ir.types import Dim, TensorType, numpy_dtype

from .rewrite import Lowering

DOMAIN = "nvmc"
COUNT_TYPES = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64")
HDC_OPS = ("Bind", "Permute", "Bundle", "Similarity")


# ------------------------------------------------------------------ shapes
def broadcast(shapes: Sequence[tuple[Dim, ...] | None]) -> tuple[Dim, ...] | None:
    """numpy broadcasting of (possibly symbolic) shapes; None when it cannot be decided."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            if any(d is None for d in dims):
                return None
            raise ValueError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def reduced(shape: tuple[Dim, ...] | None, axis: int, keepdims: int) -> tuple[Dim, ...] | None:
    if shape is None:
        return None
    axis %= len(shape)
    return tuple(1 if i == axis else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i != axis)


def _onnx_type(dtype: str) -> int:
    from onnx import helper  # lowering to ONNX: only when a graph is exported

    return helper.np_dtype_to_tensor_dtype(numpy_dtype(dtype))


def _types(node: Node, graph: Graph) -> list[TensorType]:
    return [graph.values[v].type for v in node.inputs]


def _expect(node: Node, graph: Graph, *, inputs: int | None = None, min_inputs: int = 1) -> str | None:
    n = len(node.inputs)
    if inputs is not None and n != inputs:
        return f"takes {inputs} input(s), has {n}"
    if n < min_inputs:
        return f"takes at least {min_inputs} inputs, has {n}"
    if any(not v for v in node.inputs):
        return "has an omitted input"
    if len(node.outputs) != 1:
        return f"has one output, not {len(node.outputs)}"
    bad = [f"'%{v}' ({t.dtype})" for v, t in zip(node.inputs, _types(node, graph)) if t.dtype != "bool"]
    if bad:
        return f"operands must be bool hypervectors; {', '.join(bad)} is not"
    return None


def _check_out(node: Node, graph: Graph, dtype: str, shape: tuple[Dim, ...] | None) -> str | None:
    out = graph.values[node.outputs[0]].type
    if out.dtype != dtype:
        return f"result is typed {out.dtype}, expected {dtype}"
    if shape is not None and out.shape is not None and len(out.shape) != len(shape):
        return f"result is typed {out}, expected rank {len(shape)}"
    if shape is not None and out.shape is not None:
        for a, b in zip(out.shape, shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                return f"result is typed {out}, expected shape {list(shape)}"
    return None


def _int_attr(node: Node, key: str, *, required: bool = True) -> tuple[int | None, str | None]:
    if key not in node.attrs:
        return None, (f"needs the attribute '{key}'" if required else None)
    value = node.attrs[key]
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"attribute '{key}' must be an integer, not {value!r}"
    return value, None


def _count_type(node: Node) -> tuple[str, str | None]:
    value = node.attrs.get("count_type", "i32")
    if value not in COUNT_TYPES:
        return "", f"count_type must be one of {', '.join(COUNT_TYPES)}, not {value!r}"
    return value, None


def _axis(node: Node, rank: int | None) -> tuple[int | None, str | None]:
    axis, why = _int_attr(node, "axis")
    if why:
        return None, why
    if rank is not None and not -rank <= axis < rank:
        return None, f"axis {axis} is out of range for rank {rank}"
    return axis, None


# ------------------------------------------------------------------ verify
def verify_bind(node: Node, graph: Graph) -> str | None:
    why = _expect(node, graph, min_inputs=2)
    if why:
        return why
    try:
        shape = broadcast([t.shape for t in _types(node, graph)])
    except ValueError as e:
        return str(e)
    return _check_out(node, graph, "bool", shape)


def verify_permute(node: Node, graph: Graph) -> str | None:
    why = _expect(node, graph, inputs=1)
    if why:
        return why
    t = graph.values[node.inputs[0]].type
    axis, why = _axis(node, t.rank)
    if why:
        return why
    shift, why = _int_attr(node, "shift")
    if why:
        return why
    if t.shape is None or not isinstance(t.shape[axis], int):
        return f"the rotated axis of '%{node.inputs[0]}' ({t}) must have a known length"
    if not 0 < shift < t.shape[axis]:
        return f"shift {shift} must lie in 1..{t.shape[axis] - 1} (the axis has {t.shape[axis]} elements)"
    return _check_out(node, graph, "bool", t.shape)


def verify_bundle(node: Node, graph: Graph) -> str | None:
    why = _expect(node, graph, inputs=1)
    if why:
        return why
    t = graph.values[node.inputs[0]].type
    axis, why = _axis(node, t.rank)
    if why:
        return why
    if t.rank is not None and axis % t.rank == t.rank - 1:
        return "bundling adds hypervectors: it reduces an axis other than the last (the hypervector bits)"
    keepdims, why = _int_attr(node, "keepdims", required=False)
    if why or keepdims not in (None, 0, 1):
        return why or "keepdims must be 0 or 1"
    count_type, why = _count_type(node)
    if why:
        return why
    threshold, why = _int_attr(node, "threshold", required=False)
    if why:
        return why
    shape = reduced(t.shape, axis, 1 if keepdims is None else keepdims)
    return _check_out(node, graph, "bool" if threshold is not None else count_type, shape)


def verify_similarity(node: Node, graph: Graph) -> str | None:
    why = _expect(node, graph, inputs=2)
    if why:
        return why
    if node.attrs.get("metric", "hamming") != "hamming":
        return f"metric must be 'hamming', not {node.attrs.get('metric')!r}"
    keepdims, why = _int_attr(node, "keepdims", required=False)
    if why or keepdims not in (None, 0, 1):
        return why or "keepdims must be 0 or 1"
    count_type, why = _count_type(node)
    if why:
        return why
    try:
        xor = broadcast([t.shape for t in _types(node, graph)])
    except ValueError as e:
        return str(e)
    if xor is not None and not xor:
        return "operands are scalars, not hypervectors"
    return _check_out(node, graph, count_type, reduced(xor, -1, 1 if keepdims is None else keepdims))


# ------------------------------------------------------------------ lowering
class _Lowering(Lowering):
    """Lowering with ReduceSum spelled for the graph's opset."""

    def reduce_sum(self, x: str, axis: int, keepdims: int) -> tuple[str, list[str], dict]:
        """ReduceSum's (op, inputs, attrs) for the graph's opset (axes an input from opset 13)."""
        if self.opset >= 13:
            return "ReduceSum", [x, self.const("axes", np.array([axis], dtype=np.int64))], {"keepdims": keepdims}
        return "ReduceSum", [x], {"axes": [axis], "keepdims": keepdims}


def lower_bind(node: Node, graph: Graph) -> None:
    low = _Lowering(node, graph)
    acc, shape = node.inputs[0], graph.values[node.inputs[0]].type.shape
    for x in node.inputs[1:-1]:
        shape = broadcast([shape, graph.values[x].type.shape])
        acc = low.add("Xor", [acc, x], TensorType("bool", shape))
    low.finish("Xor", [acc, node.inputs[-1]])


def lower_permute(node: Node, graph: Graph) -> None:
    low = _Lowering(node, graph)
    x = node.inputs[0]
    t = graph.values[x].type
    axis, shift = node.attrs["axis"] % t.rank, node.attrs["shift"]
    size = t.shape[axis]

    def piece(start: int, stop: int) -> str:
        ins = [x] + [low.const(k, np.array([v], dtype=np.int64)) for k, v in (("starts", start), ("ends", stop),
                                                                            ("axes", axis))]
        return low.add("Slice", ins, t.with_shape(tuple(stop - start if i == axis else d
                                                        for i, d in enumerate(t.shape))))

    low.finish("Concat", [piece(size - shift, size), piece(0, size - shift)], {"axis": axis})


def lower_bundle(node: Node, graph: Graph) -> None:
    low = _Lowering(node, graph)
    x = node.inputs[0]
    t = graph.values[x].type
    count_type = node.attrs.get("count_type", "i32")
    axis, keepdims = node.attrs["axis"] % t.rank, node.attrs.get("keepdims", 1)
    counts = low.add("Cast", [x], TensorType(count_type, t.shape), {"to": _onnx_type(count_type)})
    op, ins, attrs = low.reduce_sum(counts, axis, keepdims)
    if "threshold" not in node.attrs:
        low.finish(op, ins, attrs)
        return
    total = low.add(op, ins, TensorType(count_type, reduced(t.shape, axis, keepdims)), attrs)
    limit = low.const("threshold", np.array(node.attrs["threshold"], dtype=numpy_dtype(count_type)))
    low.finish("Greater", [total, limit])


def lower_similarity(node: Node, graph: Graph) -> None:
    low = _Lowering(node, graph)
    q, m = node.inputs
    count_type = node.attrs.get("count_type", "i32")
    shape = broadcast([graph.values[q].type.shape, graph.values[m].type.shape])
    xor = low.add("Xor", [q, m], TensorType("bool", shape))
    counts = low.add("Cast", [xor], TensorType(count_type, shape), {"to": _onnx_type(count_type)})
    op, ins, attrs = low.reduce_sum(counts, -1, node.attrs.get("keepdims", 1))
    low.finish(op, ins, attrs)


_DOCS = {
    "Bind": "XOR of k >= 2 bool hypervectors (binding)",
    "Permute": "rotation of a bool hypervector by `shift` along `axis` (permutation)",
    "Bundle": "ones counted over `axis` (bundling); with `threshold`, the majority count > threshold",
    "Similarity": "Hamming distance between bool hypervectors over the last axis (associative search)",
}
_FUNCTIONS = {"Bind": (verify_bind, lower_bind), "Permute": (verify_permute, lower_permute),
              "Bundle": (verify_bundle, lower_bundle), "Similarity": (verify_similarity, lower_similarity)}
for _name, (_verify, _lower) in _FUNCTIONS.items():
    if _name not in NVMC_OPS:  # importing this module twice (reload in tests) must not fail
        register_op(_name, verify=_verify, lower=_lower, doc=_DOCS[_name])


# ------------------------------------------------------------------ workload counts
def _count_bind(a, node: Node, out: int) -> dict[str, int]:
    return {"other": (len(node.inputs) - 1) * out}


def _count_bundle(a, node: Node, out: int) -> dict[str, int]:
    counts = {"add": max(0, a.numel(node, node.inputs[0]) - out)}
    if "threshold" in node.attrs:
        counts["cmp"] = out
    return counts


def _count_similarity(a, node: Node, out: int) -> dict[str, int]:
    shape = broadcast([a.shape(node, v) for v in node.inputs])
    xors = int(np.prod(shape, dtype=np.int64))
    return {"other": xors, "add": max(0, xors - out)}


def _register_counts() -> None:
    """Teach the workload analysis these ops' counts (module doc, "Workload counts")."""
    from .workload import register_count_rule

    register_count_rule("nvmc.Bind", _count_bind)
    register_count_rule("nvmc.Permute", {})
    register_count_rule("nvmc.Bundle", _count_bundle)
    register_count_rule("nvmc.Similarity", _count_similarity)


_register_counts()
