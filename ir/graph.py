"""The graph IR: named SSA values, nodes, graph inputs/outputs and constants.

Storage is deliberately small:

* ``values``: every value by name (graph inputs, constants, node outputs), each a
  :class:`Value` with a :class:`TensorType`;
* ``consts``: the numpy array of every constant (ONNX initializer) by value name;
* the nodes, in insertion order, each owning tuples of input and output value names.

The def-use index (``producer``/``users``) is maintained by the mutation methods, and the
networkx view (:meth:`Graph.nx`) is derived from it and rebuilt when the graph's version
changes, so nothing can drift: a pass changes the graph only through ``Graph``/``Node``
methods and every one of them bumps the version.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from typing import Any, Callable, Iterator, Sequence

import networkx as nx
import numpy as np

from .errors import VerifyError
from .types import TensorType, dtype_of_array

ONNX_DOMAIN = ""
NVMC_DOMAIN = "nvmc"


class Value:
    """An SSA value. ``type`` may be replaced by passes (which bumps the graph's version);
    the name is fixed once added."""

    __slots__ = ("name", "_type", "_graph")

    def __init__(self, name: str, type: TensorType, graph: "Graph | None" = None):
        self.name = name
        self._type = type
        self._graph = graph

    @property
    def type(self) -> TensorType:
        return self._type

    @type.setter
    def type(self, new: TensorType) -> None:
        self._type = new
        if self._graph is not None:
            self._graph._touch()

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node:
    """One operation. ``op`` keeps its ONNX name; ``domain`` is '' for ONNX, 'nvmc' for ours.

    ``inputs`` may contain '' for an omitted optional input (ONNX convention).
    ``meta`` holds provenance (the original ONNX node name, doc string, source line) and is
    carried over by rewrite helpers rather than by hand.
    """

    __slots__ = ("name", "op", "domain", "_inputs", "outputs", "attrs", "meta", "_graph", "implicit_inputs")

    def __init__(self, name: str, op: str, inputs: Sequence[str], outputs: Sequence[str],
                 attrs: dict[str, Any] | None = None, domain: str = ONNX_DOMAIN,
                 meta: dict[str, Any] | None = None):
        self.name = name
        self.op = op
        self.domain = domain
        self._inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.attrs = dict(attrs or {})
        self.meta = dict(meta or {})
        self._graph: Graph | None = None
        # Outer-scope values read inside subgraph attributes (If/Loop/Scan bodies): they are
        # uses too, for ordering and dead-code decisions.
        self.implicit_inputs: tuple[str, ...] = _outer_refs(self.attrs)

    @property
    def qualified_op(self) -> str:
        """'Conv' for ONNX ops, 'nvmc.WinogradConv' for others."""
        return self.op if self.domain in ("", "ai.onnx") else f"{self.domain}.{self.op}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return self._inputs

    @property
    def uses(self) -> tuple[str, ...]:
        """Explicit inputs, then outer-scope values its subgraphs read."""
        return self._inputs + self.implicit_inputs if self.implicit_inputs else self._inputs

    @inputs.setter
    def inputs(self, new: Sequence[str]) -> None:
        new = tuple(new)
        if self._graph is not None:
            self._graph._relink(self, self._inputs, new)
        self._inputs = new

    def __repr__(self) -> str:
        ins = ", ".join(f"%{i}" if i else "_" for i in self.inputs)
        outs = ", ".join(f"%{o}" for o in self.outputs)
        return f"<Node {self.name}: {outs} = {self.qualified_op}({ins})>"


class Graph:
    def __init__(self, name: str = "main", opsets: dict[str, int] | None = None):
        self.name = name
        self.opsets: dict[str, int] = dict(opsets or {ONNX_DOMAIN: 17})
        self.values: dict[str, Value] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.meta: dict[str, Any] = {}  # model-level: producer, doc string, ir_version, metadata
        self._nodes: dict[str, Node] = {}
        self._producer: dict[str, Node] = {}
        # readers of each value -> how many of their input slots read it (a dict: O(1) edits)
        self._users: dict[str, dict[Node, int]] = {}
        self._version = 0
        self._nx_cache: tuple[int, nx.DiGraph] | None = None
        self._topo_cache: tuple[int, list[Node]] | None = None
        self._counter = itertools.count()
        self.analysis_cache: dict[str, tuple[int, Any]] = {}

    # ------------------------------------------------------------------ queries
    @property
    def version(self) -> int:
        """Bumped by every structural change; analyses cache against it."""
        return self._version

    @property
    def nodes(self) -> list[Node]:
        """Nodes in insertion order (use :meth:`topo_nodes` when order matters)."""
        return list(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, name: str) -> Node:
        return self._nodes[name]

    def has_node(self, name: str) -> bool:
        return name in self._nodes

    def producer(self, value: str) -> Node | None:
        return self._producer.get(value)

    def users(self, value: str) -> list[Node]:
        """The nodes that read ``value``, each once, in the order they started reading it."""
        return list(self._users.get(value, ()))

    def has_users(self, value: str) -> bool:
        return bool(self._users.get(value))

    def type_of(self, value: str) -> TensorType:
        return self.values[value].type

    def is_const(self, value: str) -> bool:
        return value in self.consts

    def nx(self) -> nx.DiGraph:
        """A networkx DiGraph over node names; edge (a, b) carries the values a passes to b."""
        if self._nx_cache and self._nx_cache[0] == self._version:
            return self._nx_cache[1]
        g = nx.DiGraph()
        g.add_nodes_from(self._nodes)
        for node in self._nodes.values():
            for v in node.uses:
                src = self._producer.get(v)
                if src is not None:
                    if g.has_edge(src.name, node.name):
                        g.edges[src.name, node.name]["values"].append(v)
                    else:
                        g.add_edge(src.name, node.name, values=[v])
        self._nx_cache = (self._version, g)
        return g

    def topo_nodes(self) -> list[Node]:
        """Nodes in a topological order, stable: insertion order wherever that is valid."""
        if self._topo_cache is not None and self._topo_cache[0] == self._version:
            return list(self._topo_cache[1])
        nodes = self.nodes
        producer, seen = self._producer, set()
        for n in nodes:  # insertion order is valid when every producer comes first
            for v in n.uses:
                p = producer.get(v)
                if p is not None and p not in seen:
                    break
            else:
                seen.add(n)
                continue
            break
        if len(seen) == len(nodes):
            self._topo_cache = (self._version, nodes)
            return list(nodes)
        position = {n.name: i for i, n in enumerate(nodes)}
        try:
            order = nx.lexicographical_topological_sort(self.nx(), key=position.__getitem__)
            nodes = [self._nodes[name] for name in order]
            self._topo_cache = (self._version, nodes)
            return list(nodes)
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(self.nx())
            raise VerifyError(f"graph has a cycle through nodes {[e[0] for e in cycle]}") from None

    # --------------------------------------------------------------- mutations
    def _touch(self) -> None:
        self._version += 1

    def fresh_name(self, base: str) -> str:
        """A value or node name not yet used, derived from ``base``."""
        base = base or "v"
        if base not in self.values and base not in self._nodes:
            return base
        while True:
            name = f"{base}_{next(self._counter)}"
            if name not in self.values and name not in self._nodes:
                return name

    def _define(self, name: str, type: TensorType) -> Value:
        if not name:
            raise VerifyError("a value needs a non-empty name")
        if name in self.values:
            raise VerifyError(f"value '%{name}' is defined more than once (SSA)")
        value = Value(name, type, self)
        self.values[name] = value
        return value

    def add_input(self, name: str, type: TensorType) -> Value:
        value = self._define(name, type)
        self.inputs.append(name)
        self._touch()
        return value

    def add_const(self, name: str, array: np.ndarray, annotations=()) -> Value:
        array = np.asarray(array)
        value = self._define(name, TensorType(dtype_of_array(array), tuple(array.shape), tuple(annotations)))
        self.consts[name] = array
        self._touch()
        return value

    def set_const(self, name: str, array: np.ndarray) -> None:
        """Replace a constant's data (same name); its type follows the new array."""
        array = np.asarray(array)
        old = self.values[name].type
        self.values[name].type = TensorType(dtype_of_array(array), tuple(array.shape), old.annotations)
        self.consts[name] = array
        self._touch()

    def add_node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | Sequence[tuple[str, TensorType]],
                 attrs: dict[str, Any] | None = None, *, name: str | None = None, domain: str = ONNX_DOMAIN,
                 types: Sequence[TensorType] | None = None, meta: dict[str, Any] | None = None) -> Node:
        """Append a node; ``types`` gives the output types (defaults: unknown f32 shape)."""
        outputs = list(outputs)
        if types is None:
            types = [TensorType("f32", None)] * len(outputs)
        node_name = name if name is not None else self.fresh_name(outputs[0] if outputs else op)
        if node_name in self._nodes:
            raise VerifyError(f"node name '{node_name}' is used twice")
        node = Node(node_name, op, inputs, outputs, attrs, domain, meta)
        for out, t in zip(outputs, types):
            self._define(out, t)
            self._producer[out] = node
        self._nodes[node_name] = node
        node._graph = self
        self._link(node, node.uses)
        self._touch()
        return node

    def remove_node(self, node: Node) -> None:
        """Remove a node and its output values (which must have no users left)."""
        for out in node.outputs:
            if self._users.get(out):
                users = ", ".join(u.name for u in self._users[out])
                raise VerifyError(f"cannot remove node '{node.name}': '%{out}' is still used by {users}")
            if out in self.outputs:
                raise VerifyError(f"cannot remove node '{node.name}': '%{out}' is a graph output")
        self._unlink(node, node.uses)
        for out in node.outputs:
            del self.values[out]
            self._producer.pop(out, None)
            self._users.pop(out, None)
        del self._nodes[node.name]
        node._graph = None
        self._touch()

    def remove_value(self, name: str) -> None:
        """Remove an unused graph input or constant."""
        if self._users.get(name) or name in self.outputs or name in self._producer:
            raise VerifyError(f"cannot remove '%{name}': it is still used or produced")
        del self.values[name]
        self.consts.pop(name, None)
        if name in self.inputs:
            self.inputs.remove(name)
        self._touch()

    def replace_all_uses(self, old: str, new: str) -> int:
        """Point every use of ``old`` (including graph outputs) at ``new``; returns the count.

        The node that produces ``new`` keeps reading ``old`` (``new = f(old)`` is the usual
        reason to replace, and a node cannot read its own output)."""
        count = 0
        source = self._producer.get(new)
        for user in list(self._users.get(old, ())):
            if user is source:
                continue
            if old in user.implicit_inputs:
                _rename_in_subgraphs(user.attrs, old, new)
                self._relink(user, user.implicit_inputs, ())
                user.implicit_inputs = _outer_refs(user.attrs)
                self._relink(user, (), user.implicit_inputs)
            if old in user.inputs:
                user.inputs = tuple(new if v == old else v for v in user.inputs)
            count += 1
        if old in self.outputs:
            self.outputs = [new if v == old else v for v in self.outputs]
            count += 1
            self._touch()
        return count

    def _link(self, node: Node, values: Sequence[str]) -> None:
        for v in values:
            if v:
                readers = self._users.setdefault(v, {})
                readers[node] = readers.get(node, 0) + 1

    def _unlink(self, node: Node, values: Sequence[str]) -> None:
        for v in values:
            readers = self._users.get(v) if v else None
            if readers and node in readers:
                readers[node] -= 1
                if not readers[node]:
                    del readers[node]

    def _relink(self, node: Node, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        self._unlink(node, old)
        self._link(node, new)
        self._touch()

    # ----------------------------------------------------------------- helpers
    def copy(self) -> "Graph":
        """A structural copy; constant arrays are shared (they are treated as immutable)."""
        g = Graph(self.name, self.opsets)
        g.meta = dict(self.meta)
        for name in self.inputs:
            g.add_input(name, self.values[name].type)
        for name, array in self.consts.items():
            g.add_const(name, array)
            g.values[name].type = self.values[name].type
        for node in self.topo_nodes():
            g.add_node(node.op, node.inputs, node.outputs, _copy_attrs(node.attrs), name=node.name,
                       domain=node.domain, types=[self.values[o].type for o in node.outputs], meta=node.meta)
        g.outputs = list(self.outputs)
        return g

    def summary(self) -> str:
        return f"graph @{self.name}: {len(self._nodes)} nodes, {len(self.consts)} constants"

    def to_text(self, sidecar: str = "weights.npz", inline_limit: int | None = None) -> str:
        """The .nvir text form (large constants referenced in ``sidecar``; see ir.printer)."""
        from .printer import print_graph

        return print_graph(self, sidecar=sidecar, inline_limit=inline_limit)[0]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large graph is built: each of its full
    collections walks every live object, so building 100k nodes with it on costs ~20 % more
    per node than building 1k. Reference counting still frees memory; cycles wait."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _copy_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, list):
            v = list(v)
        elif type(v).__name__ == "GraphProto":  # mutable protobuf: copies must not share it
            v = type(v).FromString(v.SerializeToString())
        out[k] = v
    return out


# Subgraph attributes (If/Loop/Scan bodies) are ONNX GraphProtos: the IR handles them by duck
# typing and never imports onnx. A .nvir file stores them as bytes in its sidecar; turning
# bytes back into a GraphProto is the frontend's job, which it registers here when imported.
SUBGRAPH_DECODERS: list[Callable[[bytes], Any]] = []


def decode_subgraph(data: bytes) -> Any:
    if not SUBGRAPH_DECODERS:
        raise ValueError("a subgraph attribute needs nvmc.frontend (ONNX) to be read: import nvmc.frontend first")
    return SUBGRAPH_DECODERS[0](data)


def _subgraphs(attrs: dict[str, Any]) -> list[Any]:
    if not attrs:
        return []
    return [v for v in attrs.values() if type(v).__name__ == "GraphProto"]


def _outer_refs(attrs: dict[str, Any]) -> tuple[str, ...]:
    """Names a subgraph (ONNX GraphProto, nested ones included) reads but does not define."""
    if not attrs or not _subgraphs(attrs):
        return ()
    found: dict[str, None] = {}

    def walk(g, outer_defined: set[str]) -> None:
        defined = set(outer_defined) | {i.name for i in g.input} | {t.name for t in g.initializer}
        for n in g.node:
            for v in n.input:
                if v and v not in defined:
                    found.setdefault(v, None)
            for a in n.attribute:
                if a.HasField("g"):
                    walk(a.g, defined)
                for sub in a.graphs:
                    walk(sub, defined)
            defined.update(n.output)

    for sub in _subgraphs(attrs):
        walk(sub, set())
    return tuple(found)


def _rename_in_subgraphs(attrs: dict[str, Any], old: str, new: str) -> None:
    def walk(g) -> None:
        for n in g.node:
            for k, v in enumerate(n.input):
                if v == old:
                    n.input[k] = new
            for a in n.attribute:
                if a.HasField("g"):
                    walk(a.g)
                for sub in a.graphs:
                    walk(sub)

    for sub in _subgraphs(attrs):
        walk(sub)
