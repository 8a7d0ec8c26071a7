"""Pattern rewriting: match a small tree of nodes, check it, replace it.

Most passes are a pattern + a check + a rewrite::

    @register_pass("fuse-conv-bn", exact=True)
    @dataclass(frozen=True)
    class FuseConvBn(PatternPass):
        pattern = Op("BatchNormalization", Op("Conv", name="conv"), Const("scale"), ..., name="bn")

        def check(self, m, graph):          # None, or why this match is left alone
            return None if m["conv"].attrs.get("group", 1) == 1 else "grouped conv"

        def rewrite(self, m, rw):           # build the replacement through the Rewriter
            rw.replace([m["conv"], m["bn"]], "Conv", [m.value("x"), w, b], m["conv"].attrs)

The ``Rewriter`` keeps what users of the graph rely on, so a pass does not copy it by hand:

1. the replaced root's output values keep their names and types (annotations included), so
   readers of the graph, graph outputs and the printed IR are unaffected;
2. the new node takes the name and ``meta`` (ONNX name, doc, source) of the matched node
   it stands for, and ``meta["fused"]`` lists the names of the others it absorbed;
3. ``meta["rewritten_by"]`` records the passes that rewrote it.

Why a match is left alone (a pattern that fails below its root, or a check that says no) is
collected in ``PassResult.why_not`` for ``nvmc opt --explain-pass NAME``.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.lowering import redefine
from nvmc.ir.types import TensorType

from .base import Pass, PassError, PassResult


# --------------------------------------------------------------------------- patterns
class Pattern:
    def match_value(self, value: str, graph: Graph, m: "Match", where: str) -> str | None:
        """Bind ``value`` into ``m``; return why it does not match, or None."""
        raise NotImplementedError


class Op(Pattern):
    """A node whose op is one of ``ops`` and whose first inputs match ``inputs`` in order.

    ``None`` as an input pattern matches anything (an omitted optional input included);
    inputs beyond the patterns given are unconstrained. Below the root, the node's result
    must be read by the pattern only (``one_use``), since the rewrite removes the node.
    """

    def __init__(self, ops: str | Sequence[str], *inputs: Pattern | None, name: str | None = None,
                 one_use: bool = True):
        self.ops = (ops,) if isinstance(ops, str) else tuple(ops)
        self.inputs = inputs
        self.name = name
        self.one_use = one_use

    def match(self, node: Node, graph: Graph) -> "Match | str | None":
        """A Match; or why not (str) when the root op matches but the rest does not; or None."""
        if node.qualified_op not in self.ops:
            return None
        m = Match(node, graph)
        reason = self._match_node(node, graph, m)
        return reason if reason else m

    def _match_node(self, node: Node, graph: Graph, m: "Match") -> str | None:
        for i, p in enumerate(self.inputs):
            if p is None:
                continue
            v = node.inputs[i] if i < len(node.inputs) else ""
            reason = p.match_value(v, graph, m, f"input {i} of {node.op} '{node.name}'")
            if reason:
                return reason
        if self.name:
            m.nodes_by_name[self.name] = node
        m.nodes.append(node)
        return None

    def match_value(self, value: str, graph: Graph, m: "Match", where: str) -> str | None:
        producer = graph.producer(value) if value else None
        want = "/".join(self.ops)
        if producer is None:
            kind = "missing" if not value else "a constant" if graph.is_const(value) else "a graph input"
            return f"{where} is {kind}, not the result of {want}"
        if producer.qualified_op not in self.ops:
            return f"{where} is computed by {producer.op} '{producer.name}', not {want}"
        if self.one_use:
            for out in producer.outputs:
                users = graph.users(out)
                if out in graph.outputs:
                    return f"the result of {producer.op} '{producer.name}' is a graph output"
                if out == value and len(users) > 1:
                    return f"the result of {producer.op} '{producer.name}' has {len(users)} readers"
                if out != value and users:
                    return f"output '%{out}' of {producer.op} '{producer.name}' is read elsewhere"
        return self._match_node(producer, graph, m)


class Const(Pattern):
    """A constant input; ``m[name]`` is its array and ``m.value(name)`` its value name."""

    def __init__(self, name: str | None = None, *, optional: bool = False):
        self.name = name
        self.optional = optional

    def match_value(self, value: str, graph: Graph, m: "Match", where: str) -> str | None:
        if not value:
            if self.optional:
                if self.name:
                    m.values[self.name] = ""
                return None
            return f"{where} is missing"
        if not graph.is_const(value):
            return f"{where} ('%{value}') is not a constant"
        if self.name:
            m.values[self.name] = value
        return None


class Var(Pattern):
    """Any present value; ``m.value(name)`` is its name."""

    def __init__(self, name: str):
        self.name = name

    def match_value(self, value: str, graph: Graph, m: "Match", where: str) -> str | None:
        if not value:
            return f"{where} is missing"
        m.values[self.name] = value
        return None


class Match:
    """The nodes a pattern matched (producers first, the root last) and what it bound."""

    def __init__(self, root: Node, graph: Graph):
        self.root = root
        self.graph = graph
        self.nodes: list[Node] = []
        self.nodes_by_name: dict[str, Node] = {}
        self.values: dict[str, str] = {}

    def __getitem__(self, name: str) -> Any:
        """A bound node, or the array of a bound constant."""
        if name in self.nodes_by_name:
            return self.nodes_by_name[name]
        value = self.values[name]
        return self.graph.consts[value] if value and self.graph.is_const(value) else None

    def value(self, name: str) -> str:
        """The value name bound by a ``Const`` or ``Var`` pattern ('' for an absent optional one)."""
        return self.values[name]


# --------------------------------------------------------------------------- rewriter
class Rewriter:
    """Graph edits that keep value names, types and node metadata (see the module doc)."""

    def __init__(self, graph: Graph, pass_name: str):
        self.graph = graph
        self.pass_name = pass_name
        self.rewrites = 0
        self.nodes_removed = 0
        self.nodes_added = 0

    def replace(self, old: Sequence[Node], op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None,
                *, domain: str = "", keep: Node | None = None, outputs: Sequence[str] | None = None) -> Node:
        """Replace the nodes ``old`` (root last) by one node ``op(inputs)`` defining the root's outputs.

        ``outputs`` picks fewer of the root's outputs (the others must be unread). The new
        node is named after ``keep`` (default: the first of ``old`` with the same op, else
        the root) and carries its metadata.
        """
        root = old[-1]
        if keep is None:
            keep = next((n for n in old if n.op == op and n.domain == domain), root)
        meta = self._merged_meta(old, keep)
        outputs = list(root.outputs if outputs is None else outputs)
        name = keep.name

        def define(types: dict[str, TensorType]) -> Node:
            return self.graph.add_node(op, inputs, outputs, attrs, name=name, domain=domain,
                                       types=[types[o] for o in outputs], meta=meta)

        node = self._redefine(outputs, list(old), define)
        self.rewrites += 1
        self.nodes_added += 1
        return node

    def replace_by_consts(self, node: Node, arrays: dict[str, np.ndarray]) -> None:
        """Turn every output of ``node`` into a constant of the same name, and remove the node."""
        if set(arrays) != {o for o in node.outputs if o}:
            raise PassError(f"{self.pass_name}: node '{node.name}' needs an array for each output")

        def define(types: dict[str, TensorType]) -> None:
            for name, array in arrays.items():
                self.graph.add_const(name, array, types[name].annotations)

        self._redefine(list(arrays), [node], define)
        self.rewrites += 1

    def add_const(self, base: str, array: np.ndarray) -> str:
        """A new constant named after ``base``; returns its name."""
        name = self.graph.fresh_name(base)
        self.graph.add_const(name, array)
        return name

    def replace_uses(self, old: str, new: str) -> bool:
        """Point the readers of ``old`` at ``new``. Refused (False) for a graph output, whose
        name is part of the model's interface."""
        if old in self.graph.outputs:
            return False
        self.graph.replace_all_uses(old, new)
        return True

    def bypass(self, node: Node, value: str) -> bool:
        """Point the readers of ``node``'s single result at ``value`` and remove the node
        (e.g. an Identity). Refused (False) when the result is a graph output."""
        if len(node.outputs) != 1 or not self.replace_uses(node.outputs[0], value):
            return False
        self.erase(node)
        self.rewrites += 1
        return True

    def erase(self, node: Node) -> None:
        self.graph.remove_node(node)
        self.nodes_removed += 1

    def annotate(self, value: str, annotation) -> bool:
        """Add or replace an annotation on a value's type; False when it was already there."""
        v = self.graph.values[value]
        new = v.type.with_annotation(annotation)
        if new == v.type:
            return False
        v.type = new  # the setter bumps the graph's version
        return True

    # ------------------------------------------------------------------ internals
    def _merged_meta(self, old: Sequence[Node], keep: Node) -> dict[str, Any]:
        meta = dict(keep.meta)
        fused = list(keep.meta.get("fused", []))
        for n in old:
            if n is not keep:
                fused += [n.name, *n.meta.get("fused", [])]
        if fused:
            meta["fused"] = fused
        meta["rewritten_by"] = [*keep.meta.get("rewritten_by", []), self.pass_name]
        return meta

    def _redefine(self, values: list[str], remove: list[Node], define: Callable[[dict[str, TensorType]], Any]):
        """Remove ``remove`` and let ``define`` define ``values`` again under the same names."""
        return redefine(self.graph, values, remove, lambda: self._remove_all(remove), define)

    def _remove_all(self, nodes: list[Node]) -> None:
        g = self.graph
        pending = list(nodes)
        while pending:
            free = [n for n in pending if not any(g.users(o) for o in n.outputs)]
            if not free:
                n = pending[0]
                busy = next(o for o in n.outputs if g.users(o))
                raise PassError(f"{self.pass_name}: cannot remove node '{n.name}': '%{busy}' is still read by "
                                f"{', '.join(u.name for u in g.users(busy))}")
            for n in free:
                g.remove_node(n)
                self.nodes_removed += 1
            pending = [n for n in pending if all(n is not f for f in free)]


class PatternPass(Pass):
    """A pass made of one ``pattern``, a ``check`` and a ``rewrite``, applied to every node
    whose op is the pattern's root op, in the graph's node order. One sweep: matches must be
    independent (a rewrite does not create or need another match of the same pattern);
    a pattern whose rewrites chain belongs in a pass that iterates, like canonicalize."""

    pattern: ClassVar[Op]

    def check(self, m: Match, graph: Graph) -> str | None:
        """Why this match must be left alone, or None to rewrite it."""
        return None

    def rewrite(self, m: Match, rw: Rewriter) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, self.name)
        result = PassResult(False)
        roots = set(self.pattern.ops)
        for node in [n for n in graph.nodes if n.qualified_op in roots]:
            if not graph.has_node(node.name) or graph.node(node.name) is not node:  # rewritten already
                continue
            m = self.pattern.match(node, graph)
            if m is None:
                continue
            reason = m if isinstance(m, str) else self.check(m, graph)
            if reason:
                result.why_not.append((node.name, reason))
                continue
            self.rewrite(m, rw)
        result.changed = rw.rewrites > 0
        result.stats["nodes_rewritten"] = rw.rewrites
        return result
