"""Dead-code elimination."""

from __future__ import annotations

from dataclasses import dataclass

from nvmc.ir.graph import Graph

from .base import Pass, PassResult, register_pass


@register_pass("dce", exact=True)
@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    """Remove nodes and constants that no graph output depends on.

    1. A node is dead when none of its outputs is read by a live node or is a graph output;
       removing one re-examines the producers of its inputs, so a whole dead chain goes in
       one pass (a worklist: linear time, no topological sort).
    2. A constant is dead when nothing reads it and it is not a graph output.
    3. Graph inputs stay, read or not: they are the model's interface.

    Before:
        %s = Shape(%x) : i64[4]
        %y = Relu(%x) : f32[1,8]
        return %y
    After:
        %y = Relu(%x) : f32[1,8]
        return %y
    """

    def run(self, graph: Graph) -> PassResult:
        outputs = set(graph.outputs)
        nodes = consts = bytes_saved = 0

        def dead(node) -> bool:
            return graph.has_node(node.name) and graph.node(node.name) is node and not any(
                o in outputs or graph.users(o) for o in node.outputs)

        work = [n for n in graph.nodes if dead(n)]
        while work:
            node = work.pop()
            if not dead(node):
                continue
            producers = [graph.producer(v) for v in node.inputs if v]
            graph.remove_node(node)
            nodes += 1
            work.extend(p for p in producers if p is not None and dead(p))
        for name in [c for c in graph.consts if c not in outputs and not graph.users(c)]:
            bytes_saved += graph.consts[name].size * graph.consts[name].itemsize
            graph.remove_value(name)
            consts += 1
        stats = {"nodes_removed": nodes, "consts_removed": consts, "bytes_saved": bytes_saved}
        return PassResult(bool(nodes or consts), stats)
