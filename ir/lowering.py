"""Building the ONNX nodes that stand for one nvmc node (an ``OpDef.lower``), and the graph
edit underneath every rewrite: define values again under the same names (``redefine``)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .graph import Graph, Node
from .types import TensorType


def redefine(graph: Graph, values: list[str], old: list[Node], remove: Callable[[], None],
             define: Callable[[dict[str, TensorType]], Any]) -> Any:
    """Let ``remove`` take the nodes ``old`` away and ``define`` define ``values`` again under
    the same names. Readers of ``values`` are detached for that moment (their input set to ''),
    so they never see the values undefined."""
    removing = {id(n) for n in old}
    wanted = set(values)
    types = {v: graph.values[v].type for v in values}
    readers: dict[int, tuple[Node, tuple[str, ...]]] = {}
    for v in values:
        for user in graph.users(v):
            if id(user) not in removing:
                readers.setdefault(id(user), (user, user.inputs))
    outputs = list(graph.outputs)
    for user, inputs in readers.values():
        user.inputs = tuple("" if x in wanted else x for x in inputs)
    graph.outputs = ["" if x in wanted else x for x in outputs]
    try:
        remove()
        result = define(types)
    finally:
        for user, inputs in readers.values():
            user.inputs = inputs
        graph.outputs = outputs
    return result


class Lowering:
    """Builds the ONNX nodes of one nvmc node's lowering, named after it. ``finish`` makes the
    last node define the nvmc node's results -- same value names, types and metadata -- and
    removes the nvmc node. Ops whose spelling changed across opsets take the graph's."""

    def __init__(self, node: Node, graph: Graph, meta: dict[str, Any] | None = None):
        self.node, self.graph = node, graph
        self.opset = graph.opsets.get("", 17)
        self.meta = meta if meta is not None else {"lowered_from": node.name}  # of every node added

    def const(self, base: str, array: np.ndarray) -> str:
        name = self.graph.fresh_name(f"{self.node.name}_{base}")
        self.graph.add_const(name, array)
        return name

    def i64(self, base: str, values: Sequence[int]) -> str:
        return self.const(base, np.array(values, dtype=np.int64))

    def add(self, op: str, inputs: Sequence[str], type: TensorType | Sequence[int] | None,
            attrs: dict[str, Any] | None = None) -> str:
        """A node with one result of ``type``: a TensorType, or the shape of an f32 tensor."""
        if not isinstance(type, TensorType):
            type = TensorType("f32", tuple(type) if type is not None else None)
        name = self.graph.fresh_name(f"{self.node.name}_{op.lower()}")
        self.graph.add_node(op, inputs, [name], attrs, name=name, types=[type], meta=dict(self.meta))
        return name

    def finish(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None) -> None:
        node, g = self.node, self.graph
        meta = {**node.meta, "rewritten_by": [*node.meta.get("rewritten_by", []), "lower-nvmc"]}

        def define(types: dict[str, TensorType]) -> Node:
            return g.add_node(op, list(inputs), list(node.outputs), attrs, name=node.name,
                              types=[types[o] for o in node.outputs], meta=meta)

        redefine(g, list(node.outputs), [node], lambda: g.remove_node(node), define)

    # ------------------------------------------------------------ spelled per opset
    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.add("Reshape", [x, self.i64("shape", shape)], shape)

    def pad(self, x: str, pads: Sequence[int], shape: Sequence[int]) -> str:
        if self.opset >= 11:
            return self.add("Pad", [x, self.i64("pads", pads)], shape, {"mode": "constant"})
        return self.add("Pad", [x], shape, {"pads": list(pads), "mode": "constant"})

    def crop(self, x: str, ends: Sequence[int], axes: Sequence[int], shape: Sequence[int]) -> str:
        starts = [0] * len(ends)
        if self.opset >= 10:
            return self.add("Slice", [x, self.i64("starts", starts), self.i64("ends", ends), self.i64("axes", axes)],
                            shape)
        return self.add("Slice", [x], shape, {"starts": starts, "ends": list(ends), "axes": list(axes)})

    def reduction(self, op: str, x: str, axes: Sequence[int], keepdims: int = 1) -> tuple[str, list[str], dict]:
        """(op, inputs, attrs) of a Reduce* over ``axes``; axes are an input from opset 13 for
        ReduceSum, from 18 for the others."""
        if self.opset >= (13 if op == "ReduceSum" else 18):
            return op, [x, self.i64("axes", axes)], {"keepdims": keepdims}
        return op, [x], {"axes": list(axes), "keepdims": keepdims}
