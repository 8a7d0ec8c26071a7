"""Common-subexpression elimination."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from nvmc.ir.graph import Graph, Node

from .base import Pass, PassResult, register_pass
from .rewrite import Rewriter

# Ops whose two evaluations on the same inputs may differ.
NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                    "Bernoulli"}


@register_pass("cse", exact=True)
@dataclass(frozen=True)
class CommonSubexpressionElimination(Pass):
    """Merge nodes that compute the same thing, and constants that hold the same data.

    1. Two nodes are the same when op, domain, inputs (in order), attributes and output
       count are equal; the later one's readers are pointed at the earlier one's results.
    2. Two constants are the same when element type, shape and bytes are equal.
    3. Left alone: random ops, nodes with subgraph attributes (If, Loop, Scan), and a value
       that is a graph output (its name is part of the model's interface).
    4. The merged copies are removed.

    Before:
        %a = Relu(%x) : f32[1,8]
        %b = Relu(%x) : f32[1,8]
        %y = Add(%a, %b) : f32[1,8]
    After:
        %a = Relu(%x) : f32[1,8]
        %y = Add(%a, %a) : f32[1,8]
    """

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, self.name)
        consts = _merge_consts(graph, rw)
        nodes = 0
        seen: dict[tuple, Node] = {}
        for node in graph.topo_nodes():
            key = _node_key(node)
            if key is None:
                continue
            first = seen.setdefault(key, node)
            if first is node:
                continue
            if any(o in graph.outputs for o in node.outputs):
                continue
            for old, new in zip(node.outputs, first.outputs):
                if old:
                    rw.replace_uses(old, new)
            graph.remove_node(node)
            nodes += 1
        return PassResult(bool(nodes or consts), {"nodes_merged": nodes, "consts_merged": consts})


def _node_key(node: Node) -> tuple | None:
    if node.op in NONDETERMINISTIC or not node.outputs:
        return None
    attrs = []
    for k, v in sorted(node.attrs.items()):
        frozen = _freeze(v)
        if frozen is None:
            return None
        attrs.append((k, frozen))
    return (node.domain, node.op, node.inputs, tuple(attrs), len(node.outputs))


def _freeze(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest())
    if isinstance(v, list):
        items = tuple(_freeze(x) for x in v)
        return None if any(x is None for x in items) else ("list", items)
    if isinstance(v, (int, float, str, bool)):
        return (type(v).__name__, v)
    return None  # subgraphs and anything else: not merged


def _merge_consts(graph: Graph, rw: Rewriter) -> int:
    """Point readers of duplicate constants at the first copy. Bytes are hashed only for
    constants that share element type and shape with another one."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for name, array in graph.consts.items():
        if array.dtype.kind != "O":
            groups[(array.dtype.str, array.shape)].append(name)
    merged = 0
    outputs = set(graph.outputs)
    for names in groups.values():
        if len(names) < 2:
            continue
        first_of: dict[str, str] = {}
        for name in names:
            digest = hashlib.sha1(np.ascontiguousarray(graph.consts[name]).tobytes()).hexdigest()
            first = first_of.setdefault(digest, name)
            if first != name and name not in outputs:
                rw.replace_uses(name, first)
                graph.remove_value(name)
                merged += 1
    return merged
