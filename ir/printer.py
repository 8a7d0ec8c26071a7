"""The .nvir text form: printer.

    // nvmc.ir 1  opset=17
    graph @tiny(%x: f32[1,3,8,8]) -> (%y: f32[1,4,8,8]) {
      %w = const f32[4,3,3,3] @weights.npz:w
      %b = const f32[4] [0.5, 0.25, 0.0, -1.0]
      %y = Conv(%x, %w, %b) {kernel_shape=[3,3], pads=[1,1,1,1]} : f32[1,4,8,8]  // conv1
      return %y
    }

One node a line; its output types after ':'; its name as the trailing '// name' (which the
parser reads back: it is the node's name, not a free comment). Constants with more than
``inline_limit`` elements are stored in a sidecar .npz and referenced as ``@file:key``.
Grammar: ``nvir.lark``. Invariant: ``print(parse(text)) == text``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .graph import Graph, Node
from .types import Annotation, TensorType, dtype_of_array

FORMAT_VERSION = 1
INLINE_LIMIT = 8
_BARE_NAME = re.compile(r"[A-Za-z0-9_.$/\-]+\Z")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A sidecar file name as '@file:key' writes it (nvir.lark SIDECAR): no whitespace, ':', '@', '<', '>'.
SIDECAR_FILE = re.compile(r"[^\s:@<>]+\Z")
_SHOWN_SIDECAR = re.compile(r"[^\s:@<>\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+\Z")


def sidecar_for(model) -> str:
    """The sidecar name a .nvir printed from ``model`` (a path) refers to: MODEL.npz, or
    weights.npz where the model's file name could not be written in a .nvir or would reach a
    terminal as control characters (a file name may hold ESC, CR, ':' or spaces)."""
    name = f"{Path(model).stem}.npz"
    return name if _SHOWN_SIDECAR.match(name) else "weights.npz"


def print_graph(graph: Graph, sidecar: str = "weights.npz", inline_limit: int | None = None
                ) -> tuple[str, dict[str, np.ndarray]]:
    """Return (text, sidecar arrays by key). Keys are value names (or attr paths)."""
    p = _Printer(graph, sidecar, INLINE_LIMIT if inline_limit is None else inline_limit)
    return p.run(), p.arrays


def _name(name: str) -> str:
    """A value, node, graph or sidecar key name: bare where the grammar allows, else quoted."""
    return name if _BARE_NAME.match(name) else json.dumps(name)


def value_ref(name: str) -> str:
    return "%" + _name(name)


def format_type(t: TensorType) -> str:
    return " ".join([str(t), *map(format_annotation, t.annotations)])


def format_annotation(ann: Annotation) -> str:
    inner = ", ".join(f"{_key(k)}={format_scalar_or_list(v)}" for k, v in ann.params)
    return f"#{ann.name}<{inner}>"


def format_float(x: float, dtype: str = "f32") -> str:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    # Shortest text that reads back to the same value at the element's precision.
    text = {"f32": lambda: str(np.float32(x)), "f16": lambda: str(np.float16(x))}.get(dtype, lambda: repr(float(x)))()
    if not any(c in text for c in ".e"):
        text += ".0"
    return text


def format_scalar_or_list(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_scalar_or_list(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_float(float(v), "f32" if isinstance(v, np.float32) else "f64")
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(f"cannot print attribute value of type {type(v).__name__}")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def format_array_data(array: np.ndarray) -> str:
    dtype = dtype_of_array(array)
    flat = array.reshape(-1)
    if dtype in ("f16", "f32", "f64"):
        items = [format_float(float(x), dtype) for x in flat]
    elif dtype == "bool":
        items = ["true" if x else "false" for x in flat]
    elif dtype == "str":
        items = [json.dumps(x.decode("utf-8", "surrogateescape") if isinstance(x, bytes) else str(x)) for x in flat]
    elif dtype in ("c64", "c128"):
        raise TypeError("complex constants are stored in the sidecar only")
    else:
        items = [str(int(x)) for x in flat]
    return "[" + ", ".join(items) + "]"


class _Printer:
    def __init__(self, graph: Graph, sidecar: str, inline_limit: int):
        self.g = graph
        self.sidecar = sidecar
        self.inline_limit = inline_limit
        self.arrays: dict[str, np.ndarray] = {}

    def _payload(self, key: str, array: np.ndarray) -> str:
        if array.size <= self.inline_limit and array.dtype.kind not in "cV":
            return format_array_data(array)
        return self._store(key, array)

    def _store(self, key: str, array: np.ndarray) -> str:
        """Put ``array`` in the sidecar under ``key`` (made unique) and return its ``@file:key``."""
        base, i = key, 1
        while key in self.arrays:
            key, i = f"{base}#{i}", i + 1
        self.arrays[key] = array
        return f"@{self.sidecar}:{_name(key)}"

    def _attr(self, node: Node, name: str, v: Any) -> str:
        if isinstance(v, np.ndarray):
            dtype = dtype_of_array(v)
            return f"dense<{TensorType(dtype, tuple(v.shape))} {self._payload(f'{node.name}.{name}', v)}>"
        if type(v).__name__ == "GraphProto":  # subgraphs (If/Loop/Scan) stay opaque ONNX
            data = np.frombuffer(v.SerializeToString(), dtype=np.uint8)
            return f"graph<{self._store(f'{node.name}.{name}', data)}>"
        return format_scalar_or_list(v)

    def run(self) -> str:
        g = self.g
        opsets = ",".join(str(v) if d in ("", "ai.onnx") else f"{d}:{v}" for d, v in sorted(g.opsets.items()))
        lines = [f"// nvmc.ir {FORMAT_VERSION}  opset={opsets}"]
        ins = ", ".join(f"{value_ref(n)}: {format_type(g.values[n].type)}" for n in g.inputs)
        outs = ", ".join(f"{value_ref(n)}: {format_type(g.values[n].type)}" for n in g.outputs)
        lines.append(f"graph @{_name(g.name)}({ins}) -> ({outs}) {{")
        for name, array in g.consts.items():
            t = g.values[name].type
            lines.append(f"  {value_ref(name)} = const {format_type(t)} {self._payload(name, array)}")
        for node in g.topo_nodes():
            lines.append("  " + self._node(node))
        lines.append("  return " + ", ".join(value_ref(o) for o in g.outputs))
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _node(self, node: Node) -> str:
        g = self.g
        outs = ", ".join(value_ref(o) for o in node.outputs)
        ins = ", ".join(value_ref(i) if i else "_" for i in node.inputs)
        text = f"{outs} = {node.qualified_op}({ins})"
        if node.attrs:
            attrs = ", ".join(f"{_key(k)}={self._attr(node, k, v)}" for k, v in sorted(node.attrs.items()))
            text += " {" + attrs + "}"
        if node.outputs:
            text += " : " + ", ".join(format_type(g.values[o].type) for o in node.outputs)
        return text + f"  // {_name(node.name)}"


def json_string(text: str) -> str:
    """A JSON string literal's value; ValueError unless it is text that UTF-8 can write."""
    value = json.loads(text)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("an escape names no character (a lone surrogate such as \\ud800)") from None
    return value
