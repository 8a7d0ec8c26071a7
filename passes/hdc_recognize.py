"""``hdc-recognize``: find hyperdimensional-computing patterns in ONNX and name them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvmc.ir.dialect.hdc import COUNT_TYPES
from nvmc.ir.graph import NVMC_DOMAIN, Graph, Node

from .base import Pass, PassResult, option, register_pass
from .rewrite import Const, Match, Op, PatternPass, Rewriter, Var

_COUNT_TYPE_OF_CODE = {code: t for t, code in COUNT_TYPES.items()}  # Cast's `to` -> count type


@register_pass("hdc-recognize", exact=True)
@dataclass(frozen=True)
class HdcRecognize(Pass):
    """Rewrite the ONNX form of binary HDC into nvmc.Bind / Permute / Bundle / Similarity.

    Hypervectors are bool tensors whose last axis (the D bits) has at least ``min-dim``
    elements. The rules run in this order, each once over the graph (a rule's rewrites
    never create another match of an earlier rule); matched nodes below a root must be
    read by the pattern only:

    1. Similarity: ReduceSum(Cast(Xor(q, m), int), axes=[last]) -> nvmc.Similarity(q, m):
       the Hamming distance of an associative-memory search.
    2. Bundle with majority: Greater(ReduceSum(Cast(x, int), axes=[a]), t), a not the last
       axis, t an integer constant with one element -> nvmc.Bundle(x) {threshold=t}.
    3. Bundle: ReduceSum(Cast(x, int), axes=[a]), a not the last axis -> nvmc.Bundle(x).
    4. Permute: Concat(Slice(x, [D-s:D]), Slice(x, [0:D-s])) on the same axis of length D
       (step 1) -> nvmc.Permute(x) {shift=s}: numpy.roll(x, s, axis).
    5. Bind: a tree of Xor (and earlier nvmc.Bind) nodes whose inner results are read by
       the tree only -> one nvmc.Bind of its k leaves, in left-to-right order.

    Everything else is left alone (``--explain-pass hdc-recognize`` says why): integer
    BitwiseXor (packed hypervectors), a popcount over the last axis without an Xor, slices
    that are not a rotation. Every rule is exact: export lowers the ops back to the
    matched ONNX form, so onnxruntime computes the same bits and counts.

    Before:
        %r1 = Concat(%x_hi, %x_lo) {axis=2} : bool[1,97,10000]
        %g = Xor(%a, %r1) : bool[1,97,10000]
        %c = Cast(%g) {to=6} : i32[1,97,10000]
        %s = ReduceSum(%c, %axes1) {keepdims=0} : i32[1,10000]
        %q = Greater(%s, %half) : bool[1,10000]
        %d = ReduceSum(%dc, %axes2) {keepdims=0} : i32[1,6]      // from Cast(Xor(%q3, %am))
    After:
        %r1 = nvmc.Permute(%x) {axis=2, shift=1} : bool[1,97,10000]
        %g = nvmc.Bind(%a, %r1) : bool[1,97,10000]
        %q = nvmc.Bundle(%g) {axis=1, count_type="i32", keepdims=0, threshold=48} : bool[1,10000]
        %d = nvmc.Similarity(%q3, %am) {count_type="i32", keepdims=0, metric="hamming"} : i32[1,6]
    """

    min_dim: int = option(64, min=1, help="smallest last-axis length treated as a hypervector")

    def run(self, graph: Graph) -> PassResult:
        total = PassResult(False)
        for rule in (_Similarity(self.min_dim), _Majority(self.min_dim), _Bundle(self.min_dim),
                     _Permute(self.min_dim), _BindTrees(self.min_dim)):
            result = rule.run(graph)
            stats, result.stats = result.stats, {}
            total.merge(result)
            key = f"{rule.op.lower()}_rewritten"
            total.stats[key] = total.stats.get(key, 0) + stats.get("nodes_rewritten", 0)
        total.stats["nodes_rewritten"] = sum(v for k, v in total.stats.items() if k.endswith("_rewritten"))
        # a node one rule declined and a later rule rewrote is no longer a "why not"
        total.why_not = [(name, why) for name, why in total.why_not
                         if graph.has_node(name) and graph.node(name).domain != NVMC_DOMAIN]
        return total


# ---------------------------------------------------------------- helpers
def _hypervector(graph: Graph, value: str, min_dim: int) -> str | None:
    """Why ``value`` is not a bool hypervector of at least ``min_dim`` bits, or None."""
    t = graph.values[value].type
    if t.dtype != "bool":
        return f"'%{value}' is {t.dtype}, not a bool hypervector"
    if not t.shape or not isinstance(t.shape[-1], int) or t.shape[-1] < min_dim:
        return f"'%{value}' ({t}) has no last axis of at least {min_dim} bits (min-dim)"
    return None


def _reduce_axis(node: Node, graph: Graph, axes_value: str) -> tuple[int | None, str | None]:
    """The single axis a ReduceSum reduces (normalised), or why not."""
    rank = graph.values[node.inputs[0]].type.rank
    if axes_value:
        axes = graph.consts[axes_value].reshape(-1).tolist()
    else:
        axes = node.attrs.get("axes")
        if axes is None:
            return None, f"ReduceSum '{node.name}' reduces every axis"
    if node.attrs.get("noop_with_empty_axes", 0) or len(axes) != 1 or rank is None:
        return None, f"ReduceSum '{node.name}' does not reduce exactly one axis"
    return int(axes[0]) % rank, None


def _count_type(cast: Node) -> tuple[str | None, str | None]:
    ct = _COUNT_TYPE_OF_CODE.get(cast.attrs.get("to"))
    return (ct, None) if ct else (None, f"Cast '{cast.name}' does not produce integer counts")


@dataclass(frozen=True)
class _Rule(PatternPass):
    """One rule of hdc-recognize (module doc); not registered on its own."""

    min_dim: int = 64
    op = ""
    name = "hdc-recognize"  # rewrites and reasons are recorded under the pass's name

    def nvmc(self, rw: Rewriter, m: Match, old: list[Node], inputs: list[str], attrs: dict) -> None:
        rw.replace(old, self.op, inputs, attrs, domain=NVMC_DOMAIN, keep=m.root)


@dataclass(frozen=True)
class _Similarity(_Rule):
    op = "Similarity"
    pattern = Op("ReduceSum", Op("Cast", Op("Xor", Var("q"), Var("m"), name="xor"), name="cast"),
                 Const("axes", optional=True), name="sum")

    def check(self, m: Match, graph: Graph) -> str | None:
        for v in ("q", "m"):
            why = _hypervector(graph, m.value(v), 1)
            if why:
                return why
        xor = graph.values[m["xor"].outputs[0]].type
        if not xor.shape or not isinstance(xor.shape[-1], int) or xor.shape[-1] < self.min_dim:
            return f"Xor '{m['xor'].name}' ({xor}) is shorter than min-dim {self.min_dim}"
        axis, why = _reduce_axis(m["sum"], graph, m.value("axes"))
        if why:
            return why
        if axis != len(xor.shape) - 1:
            return f"ReduceSum '{m['sum'].name}' counts over axis {axis}, not the hypervector (last) axis"
        return _count_type(m["cast"])[1]

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        attrs = {"count_type": _count_type(m["cast"])[0], "keepdims": int(m["sum"].attrs.get("keepdims", 1)),
                 "metric": "hamming"}
        self.nvmc(rw, m, [m["xor"], m["cast"], m["sum"]], [m.value("q"), m.value("m")], attrs)


def _bundle_check(rule: _Rule, m: Match, graph: Graph) -> str | None:
    why = _hypervector(graph, m.value("x"), rule.min_dim)
    if why:
        return why
    axis, why = _reduce_axis(m["sum"], graph, m.value("axes"))
    if why:
        return why
    if axis == graph.values[m.value("x")].type.rank - 1:
        return f"ReduceSum '{m['sum'].name}' counts the bits of each hypervector (a popcount), not bundling"
    return _count_type(m["cast"])[1]


def _bundle_attrs(m: Match, graph: Graph) -> dict:
    axis, _ = _reduce_axis(m["sum"], graph, m.value("axes"))
    return {"axis": axis, "count_type": _count_type(m["cast"])[0], "keepdims": int(m["sum"].attrs.get("keepdims", 1))}


@dataclass(frozen=True)
class _Majority(_Rule):
    op = "Bundle"
    pattern = Op("Greater", Op("ReduceSum", Op("Cast", Var("x"), name="cast"), Const("axes", optional=True),
                               name="sum"), Const("t"), name="gt")

    def check(self, m: Match, graph: Graph) -> str | None:
        why = _bundle_check(self, m, graph)
        if why:
            return why
        t, counts = m["t"], graph.values[m["sum"].outputs[0]].type
        if t.size != 1 or t.dtype.kind not in "iu" or (counts.rank is not None and t.ndim > counts.rank):
            return f"the threshold of Greater '{m['gt'].name}' is not one integer ({t.dtype}{list(t.shape)})"
        if int(t.reshape(-1)[0]) < 0:
            return f"the threshold of Greater '{m['gt'].name}' is negative"
        return None

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        attrs = _bundle_attrs(m, rw.graph) | {"threshold": int(m["t"].reshape(-1)[0])}
        self.nvmc(rw, m, [m["cast"], m["sum"], m["gt"]], [m.value("x")], attrs)


@dataclass(frozen=True)
class _Bundle(_Rule):
    op = "Bundle"
    pattern = Op("ReduceSum", Op("Cast", Var("x"), name="cast"), Const("axes", optional=True), name="sum")

    def check(self, m: Match, graph: Graph) -> str | None:
        return _bundle_check(self, m, graph)

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        self.nvmc(rw, m, [m["cast"], m["sum"]], [m.value("x")], _bundle_attrs(m, rw.graph))


def _slice_range(graph: Graph, node: Node, size: int, rank: int, starts: str, ends: str, axes: str,
                 steps: str) -> tuple[int, int, int] | None:
    """(axis, start, stop) of a one-axis, step-1 Slice, clamped as ONNX does; None otherwise."""
    s, e = graph.consts[starts].reshape(-1), graph.consts[ends].reshape(-1)
    a = graph.consts[axes].reshape(-1) if axes else np.arange(len(s))
    if len(s) != 1 or len(e) != 1 or len(a) != 1 or (steps and graph.consts[steps].reshape(-1).tolist() != [1]):
        return None
    axis = int(a[0]) % rank
    start, stop = (int(v) + size if int(v) < 0 else int(v) for v in (s[0], e[0]))
    return axis, min(max(start, 0), size), min(max(stop, 0), size)


@dataclass(frozen=True)
class _Permute(_Rule):
    op = "Permute"
    pattern = Op("Concat",
                 Op("Slice", Var("x"), Const("s1"), Const("e1"), Const("a1", optional=True), Const("p1", optional=True),
                    name="hi"),
                 Op("Slice", Var("x2"), Const("s2"), Const("e2"), Const("a2", optional=True), Const("p2", optional=True),
                    name="lo"),
                 name="cat")

    def _shift(self, m: Match, graph: Graph) -> tuple[int, int] | str:
        cat, x = m["cat"], m.value("x")
        if len(cat.inputs) != 2:
            return f"Concat '{cat.name}' joins {len(cat.inputs)} pieces, not two"
        if m.value("x2") != x:
            return f"Concat '{cat.name}' joins slices of different values"
        t = graph.values[x].type
        if t.shape is None or any(not isinstance(d, int) for d in t.shape):
            return f"'%{x}' ({t}) has no static shape"
        axis = int(cat.attrs.get("axis", 0)) % len(t.shape)
        size = t.shape[axis]
        hi = _slice_range(graph, m["hi"], size, len(t.shape), m.value("s1"), m.value("e1"), m.value("a1"),
                          m.value("p1"))
        lo = _slice_range(graph, m["lo"], size, len(t.shape), m.value("s2"), m.value("e2"), m.value("a2"),
                          m.value("p2"))
        if hi is None or lo is None or hi[0] != axis or lo[0] != axis:
            return f"the slices joined by Concat '{cat.name}' do not each cut one piece of axis {axis} with step 1"
        shift = hi[2] - hi[1]
        if hi[2] != size or lo[1] != 0 or lo[2] != size - shift or not 0 < shift < size:
            return f"Concat '{cat.name}' does not rotate axis {axis}: pieces [{hi[1]}:{hi[2]}] + [{lo[1]}:{lo[2]}]"
        return axis, shift

    def check(self, m: Match, graph: Graph) -> str | None:
        why = _hypervector(graph, m.value("x"), self.min_dim)
        if why:
            return why
        found = self._shift(m, graph)
        return found if isinstance(found, str) else None

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        axis, shift = self._shift(m, rw.graph)
        self.nvmc(rw, m, [m["hi"], m["lo"], m["cat"]], [m.value("x")], {"axis": axis, "shift": shift})


@dataclass(frozen=True)
class _BindTrees(_Rule):
    """Rule 5: not a fixed pattern (a tree of any shape), so it overrides ``run``."""

    op = "Bind"
    pattern = Op("Xor")

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, self.name)
        result = PassResult(False)
        xors = [n for n in graph.nodes if n.qualified_op in ("Xor", "nvmc.Bind")]
        inner = {n.name for n in xors if self._absorbed(graph, n)}
        for root in xors:
            if root.name in inner:
                continue
            why = _hypervector(graph, root.outputs[0], self.min_dim)
            if why:
                result.why_not.append((root.name, why))
                continue
            tree, leaves = self._flatten(graph, root, inner)
            if all(n.qualified_op == "nvmc.Bind" for n in tree):
                continue  # already one Bind: nothing to do (the pass is idempotent)
            rw.replace(tree, "Bind", leaves, {}, domain=NVMC_DOMAIN, keep=root)
        for node in graph.nodes:
            if node.op == "BitwiseXor" and node.domain in ("", "ai.onnx"):
                result.why_not.append((node.name, "BitwiseXor of integers (packed hypervectors) is not an HDC Bind "
                                                  "of bool hypervectors"))
        result.changed = rw.rewrites > 0
        result.stats["nodes_rewritten"] = rw.rewrites
        return result

    @staticmethod
    def _absorbed(graph: Graph, node: Node) -> bool:
        """True when ``node``'s result is read only by one Xor/Bind (which absorbs it)."""
        out = node.outputs[0]
        users = graph.users(out)
        return (out not in graph.outputs and len(users) == 1 and users[0].qualified_op in ("Xor", "nvmc.Bind")
                and users[0].inputs.count(out) == 1)

    @staticmethod
    def _flatten(graph: Graph, root: Node, inner: set[str]) -> tuple[list[Node], list[str]]:
        """(the tree's nodes, producers first and the root last; its leaves in order)."""
        nodes: list[Node] = []
        leaves: list[str] = []

        def walk(node: Node) -> None:
            for v in node.inputs:
                p = graph.producer(v)
                if p is not None and p.name in inner:
                    walk(p)
                else:
                    leaves.append(v)
            nodes.append(node)

        walk(root)
        return nodes, leaves
