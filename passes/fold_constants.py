"""Constant folding, evaluated by onnxruntime or the ONNX reference evaluator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvmc.ir.errors import first_line
from nvmc.ir.graph import Graph, Node
from nvmc.ir.types import dtype_of_array

from .base import Pass, PassResult, option, register_pass
from .cse import NONDETERMINISTIC
from .rewrite import Rewriter

# Folding these would change what the model means: quantised weights must stay quantised.
KEEP_OPS = NONDETERMINISTIC | {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
CHUNK = 4000  # nodes evaluated by one onnxruntime session


@register_pass("fold-constants", exact=True)
@dataclass(frozen=True)
class FoldConstants(Pass):
    """Evaluate every node whose inputs are all constants, and replace it by its result.

    1. Shape arithmetic: Shape(x) and Size(x) of a value whose type has a static shape are
       constants, whatever x holds; what is computed from them (Gather, Concat, Unsqueeze,
       Reshape targets, ...) then folds too.
    2. The foldable nodes are evaluated together, once, by ``engine`` (onnxruntime, with
       graph optimisations off, or onnx's reference evaluator if onnxruntime cannot run them):
       no hand-written kernels, so a folded value is what the runtime would compute.
    3. A result becomes a constant of the same name (its type and annotations kept) when it
       has at most ``max-elements`` elements or no more than the node's constant inputs;
       otherwise the node stays (folding must not blow the model up).
    4. Left alone: random ops, Quantize/DequantizeLinear (quantised weights stay quantised),
       ops of other domains (nvmc ops included) and ops with subgraphs (If, Loop, Scan).
    Folded nodes and the intermediate results only they read are removed.

    Before:
        %s = Shape(%x) : i64[4]
        %n = Gather(%s, %zero) {axis=0} : i64[]
        %n1 = Unsqueeze(%n, %zero1) : i64[1]
        %shape = Concat(%n1, %minus1) {axis=0} : i64[2]
        %y = Reshape(%x, %shape) : f32[1,1024]
    After:
        %shape = const i64[2] [1, -1]
        %y = Reshape(%x, %shape) : f32[1,1024]
    """

    max_elements: int = option(1 << 20, min=0, help="largest result stored as a new constant, in elements")
    engine: str = option("onnxruntime", choices=("onnxruntime", "reference"), help="what evaluates the nodes")

    def run(self, graph: Graph) -> PassResult:
        result = PassResult(False)
        rw = Rewriter(graph, self.name)
        known = set(graph.consts)
        shapes: dict[str, np.ndarray] = {}  # results of Shape/Size read off static types
        batch: list[Node] = []
        for node in graph.topo_nodes():
            if node.domain == "" and node.op in ("Shape", "Size") and node.inputs:
                t = graph.type_of(node.inputs[0])
                if t.is_static:
                    shapes[node.outputs[0]] = _shape_of(node, t.shape)
                    known.add(node.outputs[0])
                    continue
            if not all(not v or v in known for v in node.inputs):
                continue
            reason = _why_not_foldable(node) or self._too_large(node, graph)
            if reason:
                result.why_not.append((node.name, reason))
                continue
            batch.append(node)
            known.update(o for o in node.outputs if o)

        in_batch = {id(n) for n in batch}
        frontier = [n for n in batch if any(_read_outside(graph, o, in_batch) for o in n.outputs if o)]
        wanted = [o for n in frontier for o in n.outputs if o]
        values = _evaluate(batch, graph, shapes, wanted, self.engine, result) if wanted else {}

        for node in [graph.producer(v) for v in shapes]:
            rw.replace_by_consts(node, {node.outputs[0]: shapes[node.outputs[0]]})
        for node in frontier:
            arrays = {o: values.get(o) for o in node.outputs if o}
            reason = self._check(node, arrays, graph)
            if reason:
                result.why_not.append((node.name, reason))
                continue
            rw.replace_by_consts(node, arrays)
        removed = rw.rewrites
        for node in reversed(batch):  # intermediate results read by nothing any more
            if graph.has_node(node.name) and graph.node(node.name) is node and not any(
                    o in graph.outputs or graph.users(o) for o in node.outputs):
                graph.remove_node(node)
                removed += 1
        result.changed = removed > 0
        result.stats.update(nodes_folded=removed, consts_created=rw.rewrites)
        return result

    def _too_large(self, node: Node, graph: Graph) -> str | None:
        """Refuse before evaluating what could not be kept anyway (an Expand to 2**40 elements)."""
        inputs = sum(graph.consts[v].size for v in node.inputs if v and graph.is_const(v))
        for name in node.outputs:
            size = graph.type_of(name).numel() if name else None
            if size is not None and size > max(self.max_elements, inputs):
                return (f"'%{name}' would have {size} elements, more than max-elements={self.max_elements} "
                        f"and than the node's constant inputs")
        return None

    def _check(self, node: Node, arrays: dict[str, np.ndarray | None], graph: Graph) -> str | None:
        inputs = sum(graph.consts[v].size for v in node.inputs if v and graph.is_const(v))
        for name, array in arrays.items():
            if array is None:
                return f"'%{name}' could not be evaluated"
            try:
                dtype = dtype_of_array(array)
            except ValueError:
                return f"'%{name}' evaluates to numpy {array.dtype}, which nvmc cannot hold"
            t = graph.type_of(name)
            if dtype != t.dtype or (t.shape is not None and t.is_static and tuple(array.shape) != t.shape):
                return f"'%{name}' evaluates to {dtype}{list(array.shape)}, but is typed {t}"
            if array.size > max(self.max_elements, inputs):
                return (f"'%{name}' has {array.size} elements, more than max-elements={self.max_elements} "
                        f"and than the node's constant inputs")
        return None


def _why_not_foldable(node: Node) -> str | None:
    if node.domain not in ("", "ai.onnx"):
        return f"{node.qualified_op} is not an ONNX op"
    if node.op in KEEP_OPS:
        return f"{node.op} is never folded"
    if any(type(v).__name__ == "GraphProto" for v in node.attrs.values()):
        return f"{node.op} has a subgraph"
    return None


def _read_outside(graph: Graph, value: str, in_batch: set[int]) -> bool:
    return value in graph.outputs or any(id(u) not in in_batch for u in graph.users(value))


def _shape_of(node: Node, shape: tuple[int, ...]) -> np.ndarray:
    if node.op == "Size":
        return np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return np.array(shape[start:end], dtype=np.int64)


# ------------------------------------------------------------------------- evaluation
def _evaluate(batch: list[Node], graph: Graph, shapes: dict[str, np.ndarray], wanted: list[str],
              engine: str, result: PassResult) -> dict[str, np.ndarray]:
    """Run the batch as ONNX models whose inputs are the constants they read, in chunks of
    CHUNK nodes (onnxruntime's session set-up grows faster than linearly beyond that). A chunk
    that fails is evaluated node by node, so one unsupported node does not stop the others."""
    values: dict[str, np.ndarray] = {}
    for start in range(0, len(batch), CHUNK):
        chunk = batch[start:start + CHUNK]
        in_chunk = {id(n) for n in chunk}
        produced = {o for n in chunk for o in n.outputs if o}
        feeds = {}
        for v in {v for n in chunk for v in n.inputs if v and v not in produced}:
            if v in values or v in shapes:
                feeds[v] = values[v] if v in values else shapes[v]
            else:
                feeds[v] = np.asarray(graph.consts[v], order="C")  # keeps a 0-d array 0-d
        needed = [o for n in chunk for o in n.outputs if o and _read_outside(graph, o, in_chunk)]
        try:
            values.update(zip(needed, _run(chunk, graph, feeds, needed, engine)))
        except Exception:
            _evaluate_nodes(chunk, graph, feeds, values, engine, result)
    return {v: values[v] for v in wanted if v in values}


def _evaluate_nodes(chunk: list[Node], graph: Graph, feeds: dict[str, np.ndarray], values: dict[str, np.ndarray],
                    engine: str, result: PassResult) -> None:
    local: dict[str, np.ndarray] = {}
    for node in chunk:
        if any(v not in local and v not in feeds for v in node.inputs if v):
            continue  # an input could not be evaluated
        ins = {v: local[v] if v in local else feeds[v] for v in node.inputs if v}
        outs = [o for o in node.outputs if o]
        try:
            local.update(zip(outs, _run([node], graph, ins, outs, engine)))
        except Exception as e:
            first = first_line(e)
            result.why_not.append((node.name, f"evaluation failed: {first[:200]}"))
    values.update(local)


def _run(nodes: list[Node], graph: Graph, feeds: dict[str, np.ndarray], wanted: list[str], engine: str):
    from onnx import helper

    from nvmc.frontend.onnx_types import attr_to_proto, onnx_elem_type
    from nvmc.frontend.runtime import evaluate

    opsets = {d: v for d, v in graph.opsets.items() if d in ("", "ai.onnx")} or {"": 17}
    protos = []
    for n in nodes:
        proto = helper.make_node(n.op, list(n.inputs), list(n.outputs), name=n.name)
        proto.attribute.extend(attr_to_proto(k, v, n.op, "", opsets.get("", 17)) for k, v in n.attrs.items())
        protos.append(proto)
    return evaluate(protos, feeds, wanted, opsets=opsets, engine=engine,
                    output_types={v: onnx_elem_type(graph.type_of(v).dtype) for v in wanted})
