"""The ``neon`` pass: non-MAC ops as tiny neural networks (NEON, shared/reference/seeds.md, paper 11).

It replaces elementwise ops, softmax and layer norm by ``nvmc.NeonApprox`` nodes whose nets
it fits with :mod:`nvmc.passes.neon_fit`; the op (operands, ONNX lowering, workload counts)
is defined in nvmc.ir.dialect.neon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvmc.ir.dialect.neon import FLOATS
from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.ir.graph import Graph, Node
from nvmc.ir.lowering import Lowering
from nvmc.ir.types import TensorType

from .base import Pass, PassError, PassResult, option, register_pass
from .neon_fit import FUNCTIONS, Net, fit_net
from .rewrite import Rewriter

DOMAIN = "nvmc"
# op kind (the `ops` option) -> ONNX ops it covers
KINDS: dict[str, tuple[str, ...]] = {
    "softmax": ("Softmax",), "layernorm": ("LayerNormalization",), "gelu": ("Gelu", "Erf"),
    "erf": ("Erf",), "exp": ("Exp",), "tanh": ("Tanh",), "sigmoid": ("Sigmoid",),
    "reciprocal": ("Reciprocal",), "sqrt": ("Sqrt",),
}
_ELEMENTWISE = {"Erf": "erf", "Exp": "exp", "Tanh": "tanh", "Sigmoid": "sigmoid", "Reciprocal": "reciprocal",
                "Sqrt": "sqrt", "Gelu": "gelu"}
# non-MAC ops with transcendental work that NEON leaves alone (reported in why_not)
_NOT_COVERED = ("Log", "Pow", "Softplus", "Mish", "Elu", "Selu", "Celu", "LogSoftmax", "Sin", "Cos",
                "InstanceNormalization", "GroupNormalization", "LpNormalization", "LRN", "Div")


# ------------------------------------------------------------------ the pass
def parse_kinds(text: str) -> list[str]:
    """The op kinds of an ``ops`` option: 'all', or names separated by ',' or '+'."""
    words = [w.strip() for w in text.replace("+", ",").split(",") if w.strip()]
    if words == ["all"]:
        return list(KINDS)
    for w in words:
        if w not in KINDS:
            raise PassError(f"neon: unknown op kind '{w}'{did_you_mean(w, list(KINDS))}",
                            hint=f"ops takes 'all' or some of {', '.join(KINDS)} joined by '+'")
    if not words:
        raise PassError("neon: ops is empty", hint="ops=all, or e.g. ops=softmax+gelu")
    return words


@register_pass("neon", exact=False)
@dataclass(frozen=True)
class Neon(Pass):
    """Replace non-MAC ops by tiny ReLU networks that run on crossbar arrays (NEON).

    1. Elementwise ops (Exp, Erf, Gelu, Tanh, Sigmoid, Reciprocal, Sqrt) of f32 values become
       ``nvmc.NeonApprox`` with a 1 -> H -> 1 ReLU net fitted on the op's input range
       (``range=auto``: min/max over seeded calibration runs of the model in onnxruntime,
       widened by 10 %; ``range=default``: the function's stated range, nvmc.passes.neon_fit).
    2. Softmax is decomposed: ReduceMax, Sub, NEON exp on [-s, 0] (s: 1.1 x the calibrated
       row span, at most 16), a row sum, NEON reciprocal on [1, n] (n: the axis length), Mul.
    3. LayerNormalization is decomposed: mean, centred square, variance (two means), NEON
       rsqrt(var + eps) on the calibrated variance range, then scale and bias.
       The sums and means stay ReduceSum / ReduceMean (``reduce=digital``, default); with
       ``reduce=crossbar`` those over the last axis become MatMuls with a constant column of
       ones (or 1/n), so they too run on crossbar arrays (on nvmc's crossbar model a row sum
       read bit-serially is slower than the digital units' adds, hence not the default).
       ReduceMax, the subtractions and the products of two run-time tensors stay digital.
    4. Left alone, with the reason in why_not: ops outside ``ops``, non-f32 values, a
       LayerNormalization whose mean / inv-std outputs are read, a Softmax of opset < 13
       over a non-last axis or over one element, unknown axis lengths; and other transcendental ops (Log, Pow,
       Div, ...), which have no NEON function here.

    Reports: per function the fitted net's max and mean error on its range (``error``:
    ``<fn>.max_err``; abs functions relative to max |f|, rel functions elementwise) and, with
    ``check``, the end-to-end numerics of the model in onnxruntime (``cosine``,
    ``max_rel_err``); stats ``nodes_rewritten``, ``macs_added``.

    Before / after (tiny_transformer.onnx: an erf-GELU's Erf, and a softmax)::

        %g1 = Erf(%g0) : f32[1,16,128]  // gelu_erf
        %s2 = Softmax(%s1) {axis=-1} : f32[1,4,16,16]  // softmax

        %g1 = nvmc.NeonApprox(%g0, %gelu_erf_neon_w1, %gelu_erf_neon_b1, %gelu_erf_neon_w2,
                              %gelu_erf_neon_b2) {fn="erf", hi=3.1, lo=-3.1} : f32[1,16,128]
        %softmax_reducemax = ReduceMax(%s1) {axes=[3], keepdims=1} : f32[1,4,16,1]
        %softmax_sub = Sub(%s1, %softmax_reducemax) : f32[1,4,16,16]
        %softmax_exp = nvmc.NeonApprox(%softmax_sub, ...) {fn="exp", hi=0.0, lo=-7.1} : f32[1,4,16,16]
        %softmax_reducesum = ReduceSum(%softmax_exp, %softmax_axes) {keepdims=1} : f32[1,4,16,1]
        %softmax_reciprocal = nvmc.NeonApprox(%softmax_reducesum, ...) {fn="reciprocal", hi=16.0, lo=1.0}
        %s2 = Mul(%softmax_exp, %softmax_reciprocal) : f32[1,4,16,16]
    """

    ops: str = option("all", help="op kinds: all, or some of softmax, layernorm, gelu, erf, exp, tanh, sigmoid, "
                                  "reciprocal, sqrt joined by '+'")
    hidden: int = option(64, min=4, max=256, help="largest hidden layer; the smallest of 8, 16, ... meeting "
                                                  "`error` is used")
    act: str = option("relu", choices=("relu",), help="hidden activation (piecewise-linear nets)")
    error: float = option(1e-3, min=1e-7, max=1.0, help="target max error of each net on its range")
    range: str = option("auto", choices=("auto", "default"),
                        help="input ranges: calibrated on the model, or each function's default")
    reduce: str = option("digital", choices=("digital", "crossbar"),
                         help="softmax / layer-norm sums and means over the last axis: MatMul with a constant "
                              "column (crossbar) or ReduceSum / ReduceMean (digital)")
    samples: int = option(2, min=1, max=64, help="calibration runs (range=auto), seeded")
    check: bool = option(True, help="measure end-to-end numerics against the original in onnxruntime")

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_kinds(self.ops)

    def run(self, graph: Graph) -> PassResult:
        result = PassResult(False)
        kinds = parse_kinds(self.ops)
        chosen = {op for k in kinds for op in KINDS[k]}
        todo: list[Node] = []
        for node in graph.topo_nodes():
            if node.domain not in ("", "ai.onnx"):
                continue
            if node.op in chosen:
                why = self._why_not(node, graph)
                if why:
                    result.why_not.append((node.name, why))
                else:
                    todo.append(node)
            elif node.op in _NOT_COVERED or any(node.op in ops for ops in KINDS.values()):
                why = (f"{node.op} has no NEON function (functions: {', '.join(FUNCTIONS)})"
                       if node.op in _NOT_COVERED else f"{node.op} is not among ops={self.ops}")
                result.why_not.append((node.name, why))
        if not todo:
            if not result.why_not:  # said, so that "no change" is never a puzzle
                result.why_not.append(("(model)", f"the model has no node NEON would replace with ops={self.ops} "
                                                  f"({', '.join(sorted(chosen))})"))
            return result
        original = graph.copy() if self.check else None
        stats = self._calibrate(graph, todo, result) if self.range == "auto" else {}
        rw = Rewriter(graph, self.name)
        nets: dict[str, Net] = {}
        macs = 0
        for node in todo:
            macs += self._rewrite(node, graph, rw, stats, nets)
        for fn, net in sorted(nets.items()):
            result.error[f"{fn}.max_err"] = net.max_err
            result.error[f"{fn}.mean_err"] = net.mean_err
            result.stats[f"{fn}.hidden"] = net.hidden
        result.changed = rw.rewrites > 0
        result.stats["nodes_rewritten"] = len(todo)
        result.stats["macs_added"] = macs
        if original is not None:
            from nvmc.frontend.runtime import compare  # onnxruntime loads when the pass measures, not when listed

            try:
                report = compare(original, graph, seed=0)
            except NvmcError as e:  # the rewrite stands; only its measurement failed
                result.why_not.append(("numerics", f"not measured: {e}"))
            else:
                result.error["cosine"] = report.cosine
                result.error["max_rel_err"] = report.max_rel_err
        return result

    # ------------------------------------------------------------ checks
    def _why_not(self, node: Node, graph: Graph) -> str | None:
        x = graph.values[node.inputs[0]].type
        if x.dtype not in FLOATS:
            return f"operand '%{node.inputs[0]}' is {x.dtype}; NEON nets are fitted in f32"
        if node.op == "Softmax":
            opset = graph.opsets.get("", 17)
            axis = int(node.attrs.get("axis", -1 if opset >= 13 else 1))
            if x.rank is None or x.shape is None:
                return "the operand's rank is unknown"
            if opset < 13 and axis % x.rank != x.rank - 1:
                return f"opset {opset} Softmax over axis {axis} flattens the trailing axes; only the last is handled"
            if not isinstance(x.shape[axis % x.rank], int):
                return f"the length of axis {axis} is unknown (it bounds the reciprocal's range)"
            if x.shape[axis % x.rank] < 2:
                return f"axis {axis} has one element: the softmax is 1 (canonicalize folds it)"
        if node.op == "LayerNormalization":
            if any(o and (graph.users(o) or o in graph.outputs) for o in node.outputs[1:]):
                return "its mean / inv-std results are read"
            if x.rank is None:
                return "the operand's rank is unknown"
        return None

    # ------------------------------------------------------------ ranges
    def _calibrate(self, graph: Graph, todo: list[Node], result: PassResult) -> dict[str, tuple[float, float]]:
        """Per rewritten node, the range its NEON function sees, from seeded runs."""
        from nvmc.frontend.runtime import Session, random_inputs

        wanted = list(dict.fromkeys(n.inputs[0] for n in todo))
        try:
            runner = Session(graph, "calibration graph", extra_outputs=[v for v in wanted if v not in graph.inputs])
            rng = np.random.default_rng(0)
            seen: dict[str, list[np.ndarray]] = {v: [] for v in wanted}
            for _ in range(self.samples):
                feeds = random_inputs(runner.inputs, rng, {})
                outs = runner.run(feeds)
                for v in wanted:
                    seen[v].append(np.asarray(feeds[v] if v in feeds else outs[v], dtype=np.float64))
        except NvmcError as e:
            result.why_not.append(("calibration", f"{e}; default ranges used"))
            return {}
        ranges = {}
        for node in todo:
            arrays = seen[node.inputs[0]]
            rank = arrays[0].ndim
            if node.op == "Softmax":
                axis = int(node.attrs.get("axis", -1)) % rank
                span = max(float(np.max(a.max(axis=axis) - a.min(axis=axis))) for a in arrays)
                ranges[node.name] = (-min(16.0, max(1.0, 1.1 * span)), 0.0)
            elif node.op == "LayerNormalization":
                axes = tuple(range(int(node.attrs.get("axis", -1)) % rank, rank))
                var = [a.var(axis=axes) + float(node.attrs.get("epsilon", 1e-5)) for a in arrays]
                lo, hi = min(float(v.min()) for v in var), max(float(v.max()) for v in var)
                ranges[node.name] = (lo / 2.0, hi * 2.0)
            else:
                lo = min(float(a.min()) for a in arrays)
                hi = max(float(a.max()) for a in arrays)
                pad = 0.1 * max(hi - lo, 1e-3)
                lo, hi = lo - pad, hi + pad
                if FUNCTIONS[_ELEMENTWISE[node.op]].error_kind == "rel":  # positive domains
                    lo = max(lo, hi * 1e-3) if hi > 0 else FUNCTIONS[_ELEMENTWISE[node.op]].default_range[0]
                    hi = max(hi, lo * 2.0)
                ranges[node.name] = (lo, hi)
        return ranges

    # ------------------------------------------------------------ rewrites
    def _net(self, fn: str, rng: tuple[float, float] | None, nets: dict[str, Net]) -> Net:
        lo, hi = rng if rng else (None, None)
        net = fit_net(fn, lo, hi, hidden=self.hidden, error=self.error)
        old = nets.get(fn)
        if old is None or net.max_err > old.max_err:
            nets[fn] = net
        return net

    def _approx(self, graph: Graph, x: str, fn: str, rng, nets, base: str, *, rw: Rewriter | None = None,
                node: Node | None = None) -> tuple[str, int]:
        """A NeonApprox of ``x`` (a new value, or with ``rw`` the replacement of ``node``)."""
        net = self._net(fn, rng, nets)
        ws = [graph.fresh_name(f"{base}_neon_{k}") for k in ("w1", "b1", "w2", "b2")]
        for name, array in zip(ws, (net.w1, net.b1, net.w2, net.b2)):
            graph.add_const(name, array)
        attrs = {"fn": fn, "lo": float(net.lo), "hi": float(net.hi)}
        t = graph.values[x].type
        macs = 2 * net.hidden * (t.numel() or 0)
        if rw is not None:
            rw.replace([node], "NeonApprox", [x, *ws], attrs, domain=DOMAIN)
            return node.outputs[0], macs
        name = graph.fresh_name(f"{base}_{fn}")
        graph.add_node("NeonApprox", [x, *ws], [name], attrs, name=name, domain=DOMAIN, types=[t],
                       meta={"rewritten_by": [self.name], "neon_of": base})
        return name, macs

    def _rewrite(self, node: Node, graph: Graph, rw: Rewriter, ranges, nets) -> int:
        graph.opsets.setdefault(DOMAIN, 1)
        rng = ranges.get(node.name)
        if node.op in _ELEMENTWISE:
            return self._approx(graph, node.inputs[0], _ELEMENTWISE[node.op], rng, nets, node.name, rw=rw,
                                node=node)[1]
        x = node.inputs[0]
        t = graph.values[x].type
        add = _Adder(graph, node, self.name, self.reduce == "crossbar")
        if node.op == "Softmax":
            axis = int(node.attrs.get("axis", -1)) % t.rank
            kept = tuple(1 if i == axis else d for i, d in enumerate(t.shape))
            m = add.reduce("ReduceMax", x, [axis], TensorType(t.dtype, kept))
            d = add("Sub", [x, m], t)
            e, m1 = self._approx(graph, d, "exp", rng, nets, node.name)
            s = add.reduce("ReduceSum", e, [axis], TensorType(t.dtype, kept))
            r, m2 = self._approx(graph, s, "reciprocal", (1.0, float(t.shape[axis])), nets, node.name)
            rw.replace([node], "Mul", [e, r])
            return m1 + m2
        # LayerNormalization
        axis = int(node.attrs.get("axis", -1)) % t.rank
        axes = list(range(axis, t.rank))
        kept = TensorType(t.dtype, tuple(1 if i >= axis else dim for i, dim in enumerate(t.shape)))
        mean = add.reduce("ReduceMean", x, axes, kept)
        d = add("Sub", [x, mean], t)
        var = add.reduce("ReduceMean", add("Mul", [d, d], t), axes, kept)
        eps = add.const("eps", np.array(float(node.attrs.get("epsilon", 1e-5)), np.float32))
        r, macs = self._approx(graph, add("Add", [var, eps], kept), "rsqrt", rng, nets, node.name)
        y = add("Mul", [add("Mul", [d, r], t), node.inputs[1]], t)
        if len(node.inputs) > 2 and node.inputs[2]:
            rw.replace([node], "Add", [y, node.inputs[2]], outputs=node.outputs[:1])
        else:
            rw.replace([node], "Identity", [y], outputs=node.outputs[:1])
        return macs


class _Adder(Lowering):
    """Adds the ONNX nodes of a decomposition, named after the node they stand for."""

    def __init__(self, graph: Graph, node: Node, pass_name: str, matmul_reduce: bool = False):
        super().__init__(node, graph, meta={"rewritten_by": [pass_name], "neon_of": node.name})
        self.matmul_reduce = matmul_reduce

    __call__ = Lowering.add

    def reduce(self, op: str, x: str, axes: list[int], t: TensorType) -> str:
        """A keepdims reduction over ``axes``, or a MatMul with a constant [n, 1] column when it
        sums or averages the last axis only."""
        rank = len(t.shape)
        if self.matmul_reduce and op in ("ReduceSum", "ReduceMean") and axes == [rank - 1]:
            n = int(self.graph.values[x].type.shape[-1])
            column = np.full((n, 1), 1.0 if op == "ReduceSum" else 1.0 / n, np.float32)
            kind = "rowsum" if op == "ReduceSum" else "rowmean"
            name = self.graph.fresh_name(f"{self.node.name}_{kind}")
            self.graph.add_node("MatMul", [x, self.const("ones" if op == "ReduceSum" else "mean", column)], [name],
                                name=name, types=[t], meta=dict(self.meta))
            return name
        op, inputs, attrs = self.reduction(op, x, axes)
        return self(op, inputs, t, attrs)
