"""nvmc-domain ops of hyperdimensional computing (HDC): Bind, Permute, Bundle, Similarity.

Dense binary HDC (binary spatter codes) computes on boolean hypervectors of D bits, the
last axis of a ``bool`` tensor. Four ops cover a whole classifier (encoding, training by
bundling, associative-memory search); ``hdc-recognize`` (passes/hdc_recognize.py) finds
them in plain ONNX and these definitions let the verifier check them and the exporter
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
the OpDefs' ``counts``): Bind counts ``other`` = (k - 1) x output elements (bit XORs); Permute
moves data and counts nothing; Bundle counts ``add`` = input - output elements (as
ReduceSum does) and, with a threshold, ``cmp`` = output elements; Similarity counts
``other`` = elements of q XOR m (bit XORs) and ``add`` = those minus the distances (the
popcount). A cost model recovers each node's geometry from these and the byte columns
(see backends/racetrack.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..graph import Graph, Node
from ..lowering import Lowering
from ..ops import Attr, Operand, OpDef
from ..types import Dim, TensorType, numpy_dtype

# count types -> their ONNX TensorProto.DataType codes (onnx.proto), for Cast's `to`
COUNT_TYPES = {"i8": 3, "i16": 5, "i32": 6, "i64": 7, "u8": 2, "u16": 4, "u32": 12, "u64": 13}


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


def _types(node: Node, graph: Graph) -> list[TensorType]:
    return [graph.values[v].type for v in node.inputs]


def _bool_operands(node: Node, graph: Graph) -> str | None:
    bad = [f"'%{v}' ({t.dtype})" for v, t in zip(node.inputs, _types(node, graph)) if t.dtype != "bool"]
    return f"operands must be bool hypervectors; {', '.join(bad)} is not" if bad else None


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


def _axis(node: Node, rank: int | None) -> str | None:
    axis = node.attrs["axis"]
    return f"axis {axis} is out of range for rank {rank}" if rank is not None and not -rank <= axis < rank else None


# ------------------------------------------------------------------ verify
def _xor_shape(node: Node, graph: Graph) -> tuple[tuple[Dim, ...] | None, str | None]:
    """The broadcast shape of bool operands XORed together (Bind, Similarity), or why there is none."""
    why = _bool_operands(node, graph)
    if why:
        return None, why
    try:
        return broadcast([t.shape for t in _types(node, graph)]), None
    except ValueError as e:
        return None, str(e)


def verify_bind(node: Node, graph: Graph) -> str | None:
    shape, why = _xor_shape(node, graph)
    return why or _check_out(node, graph, "bool", shape)


def verify_permute(node: Node, graph: Graph) -> str | None:
    t = graph.values[node.inputs[0]].type
    why = _bool_operands(node, graph) or _axis(node, t.rank)
    if why:
        return why
    axis, shift = node.attrs["axis"], node.attrs["shift"]
    if t.shape is None or not isinstance(t.shape[axis], int):
        return f"the rotated axis of '%{node.inputs[0]}' ({t}) must have a known length"
    if not 0 < shift < t.shape[axis]:
        return f"shift {shift} must lie in 1..{t.shape[axis] - 1} (the axis has {t.shape[axis]} elements)"
    return _check_out(node, graph, "bool", t.shape)


def verify_bundle(node: Node, graph: Graph) -> str | None:
    t = graph.values[node.inputs[0]].type
    why = _bool_operands(node, graph) or _axis(node, t.rank)
    if why:
        return why
    axis = node.attrs["axis"]
    if t.rank is not None and axis % t.rank == t.rank - 1:
        return "bundling adds hypervectors: it reduces an axis other than the last (the hypervector bits)"
    shape = reduced(t.shape, axis, BUNDLE.attr(node, "keepdims"))
    return _check_out(node, graph, "bool" if "threshold" in node.attrs else BUNDLE.attr(node, "count_type"), shape)


def verify_similarity(node: Node, graph: Graph) -> str | None:
    xor, why = _xor_shape(node, graph)
    if why:
        return why
    if xor is not None and not xor:
        return "operands are scalars, not hypervectors"
    return _check_out(node, graph, SIMILARITY.attr(node, "count_type"),
                      reduced(xor, -1, SIMILARITY.attr(node, "keepdims")))


# ------------------------------------------------------------------ lowering
def lower_bind(node: Node, graph: Graph) -> None:
    low = Lowering(node, graph)
    acc, shape = node.inputs[0], graph.values[node.inputs[0]].type.shape
    for x in node.inputs[1:-1]:
        shape = broadcast([shape, graph.values[x].type.shape])
        acc = low.add("Xor", [acc, x], TensorType("bool", shape))
    low.finish("Xor", [acc, node.inputs[-1]])


def lower_permute(node: Node, graph: Graph) -> None:
    low = Lowering(node, graph)
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
    low = Lowering(node, graph)
    x = node.inputs[0]
    t = graph.values[x].type
    count_type = BUNDLE.attr(node, "count_type")
    axis, keepdims = node.attrs["axis"] % t.rank, BUNDLE.attr(node, "keepdims")
    counts = low.add("Cast", [x], TensorType(count_type, t.shape), {"to": COUNT_TYPES[count_type]})
    op, ins, attrs = low.reduction("ReduceSum", counts, [axis], keepdims)
    if "threshold" not in node.attrs:
        low.finish(op, ins, attrs)
        return
    total = low.add(op, ins, TensorType(count_type, reduced(t.shape, axis, keepdims)), attrs)
    limit = low.const("threshold", np.array(node.attrs["threshold"], dtype=numpy_dtype(count_type)))
    low.finish("Greater", [total, limit])


def lower_similarity(node: Node, graph: Graph) -> None:
    low = Lowering(node, graph)
    q, m = node.inputs
    count_type = SIMILARITY.attr(node, "count_type")
    shape = broadcast([graph.values[q].type.shape, graph.values[m].type.shape])
    xor = low.add("Xor", [q, m], TensorType("bool", shape))
    counts = low.add("Cast", [xor], TensorType(count_type, shape), {"to": COUNT_TYPES[count_type]})
    op, ins, attrs = low.reduction("ReduceSum", counts, [-1], SIMILARITY.attr(node, "keepdims"))
    low.finish(op, ins, attrs)


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


# ------------------------------------------------------------------ definitions
_HV = (Operand("x"),)
_COUNTED = (Attr("keepdims", int, 1, choices=(0, 1)), Attr("count_type", str, "i32", choices=tuple(COUNT_TYPES)))
BIND = OpDef("Bind", "XOR of k >= 2 bool hypervectors (binding)",
             operands=(Operand("a"), Operand("b"), Operand("c", variadic=True)),
             verify=verify_bind, lower=lower_bind, counts=_count_bind)
PERMUTE = OpDef("Permute", "rotation of a bool hypervector by `shift` along `axis` (permutation)",
                operands=_HV, attrs=(Attr("axis", int), Attr("shift", int)),
                verify=verify_permute, lower=lower_permute, counts={})  # moves data: counts nothing
BUNDLE = OpDef("Bundle", "ones counted over `axis` (bundling); with `threshold`, the majority count > threshold",
               operands=_HV, attrs=(Attr("axis", int), *_COUNTED, Attr("threshold", int, None)),
               verify=verify_bundle, lower=lower_bundle, counts=_count_bundle)
SIMILARITY = OpDef("Similarity", "Hamming distance between bool hypervectors over the last axis (associative search)",
                   operands=(Operand("q"), Operand("m")), attrs=(Attr("metric", str, "hamming", choices=("hamming",)),
                                                                 *_COUNTED),
                   verify=verify_similarity, lower=lower_similarity, counts=_count_similarity)
