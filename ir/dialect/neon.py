"""``nvmc.NeonApprox``: a scalar function applied per element by a tiny ReLU network (NEON; the
``neon`` pass, passes/neon.py, makes it).

After NEON (shared/reference/seeds.md, paper 11): on an RRAM accelerator, the non-MAC ops
(softmax, GELU, exp, sigmoid, ...) need digital logic beside the crossbars; NEON replaces
each by a small network whose weights sit in crossbar arrays, so the op runs as MVMs.

``nvmc.NeonApprox(x, w1, b1, w2, b2) {fn, lo, hi}`` applies, to every element of ``x``,
``y = w2^T relu(w1^T x + b1) + b2`` (w1 [1, H], b1 [H], w2 [H, 1], b2 [1]: constants fitted
by :mod:`nvmc.passes.neon_fit` to approximate ``fn`` on [lo, hi]). Its ONNX lowering is
``Reshape(x, [-1, 1]) -> Gemm(w1, b1) -> Relu -> Gemm(w2, b2) -> Reshape(Shape(x))``.

Workload (the OpDef's ``macs`` and ``counts``): the two layers are a batch of 2 GEMMs of the E
elements (M = E vectors), each an H-cell strip: ``gemm = (2, E, H, 1)``, MACs = 2 E H.
Layer 2 is H x 1; counting it as its transpose (1 x H) keeps its cells and MACs but makes
a crossbar model convert H columns for it instead of 1 (ADC energy errs high, against
NEON) and lets the two layers' arrays work on consecutive elements at once (pipelined).
Non-MAC counts: ``cmp`` = E H (the ReLUs) and ``add`` = E (H + 1) (the biases), which a
crossbar chip runs on its digital units, or, with the ``relu-net`` trait, in its arrays'
periphery (backends/crossbar.py).
"""

from __future__ import annotations

from ..graph import Graph, Node
from ..lowering import Lowering
from ..ops import Attr, Operand, OpDef
from ..types import TensorType

# the functions nvmc.passes.neon_fit fits nets for (its FUNCTIONS, in that order)
FUNCTIONS = ("exp", "erf", "gelu", "tanh", "sigmoid", "reciprocal", "rsqrt", "sqrt")
FLOATS = ("f32",)


def verify_neon(node: Node, graph: Graph) -> str | None:
    w1, b1, w2, b2 = (graph.consts[v] for v in node.inputs[1:])
    h = w1.shape[-1] if w1.ndim == 2 else -1
    if w1.shape != (1, h) or b1.shape != (h,) or w2.shape != (h, 1) or b2.shape != (1,):
        return (f"weights must be shaped [1,H], [H], [H,1], [1]; got {list(w1.shape)}, {list(b1.shape)}, "
                f"{list(w2.shape)}, {list(b2.shape)}")
    x, y = graph.values[node.inputs[0]].type, graph.values[node.outputs[0]].type
    if x.dtype not in FLOATS or y.dtype != x.dtype:
        return f"operand and result must be f32, not {x.dtype} -> {y.dtype}"
    if x.shape is not None and y.shape is not None and tuple(x.shape) != tuple(y.shape):
        return f"result {y} must have the operand's shape {x}"
    return None


def lower_neon(node: Node, graph: Graph) -> None:
    low = Lowering(node, graph)
    x, w1, b1, w2, b2 = node.inputs
    t = graph.values[x].type
    h = graph.consts[w1].shape[1]
    elems = t.numel()

    def typed(shape) -> TensorType:
        return TensorType(t.dtype, shape if elems else None)

    shape = low.add("Shape", [x], TensorType("i64", (t.rank,) if t.rank is not None else None))
    flat = low.add("Reshape", [x, low.i64("flat", [-1, 1])], typed((elems, 1)))
    hidden = low.add("Gemm", [flat, w1, b1], typed((elems, h)))
    act = low.add("Relu", [hidden], typed((elems, h)))
    out = low.add("Gemm", [act, w2, b2], typed((elems, 1)))
    low.finish("Reshape", [out, shape])


def _neon_gemm(a, node: Node) -> tuple[int, int, int, int]:
    return 2, a.numel(node, node.inputs[0]), int(a.g.consts[node.inputs[1]].shape[1]), 1


def _neon_counts(a, node: Node, out: int) -> dict[str, int]:
    h = int(a.g.consts[node.inputs[1]].shape[1])
    return {"cmp": out * h, "add": out * (h + 1)}


NEON_APPROX = OpDef(
    "NeonApprox", "a scalar function `fn` applied per element by a tiny ReLU network (w1, b1, w2, b2): NEON",
    operands=(Operand("x"), *(Operand(w, const=True) for w in ("w1", "b1", "w2", "b2"))),
    attrs=(Attr("fn", str, choices=FUNCTIONS), Attr("lo", float, None), Attr("hi", float, None)),
    verify=verify_neon, lower=lower_neon, macs=_neon_gemm, counts=_neon_counts,
    # its biases and ReLUs belong to the net: a crossbar runs them in the arrays' periphery
    traits=frozenset({"relu-net"}))
