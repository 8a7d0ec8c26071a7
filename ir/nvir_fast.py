"""A fast path for the .nvir parser: the statement lines in the printer's own form.

The grammar (nvir.lark, LALR) costs ~200 µs a line; the lines ``print_graph`` writes for
plain nodes and constants are read here with regular expressions at ~10x less. Only the
run of such lines right after the graph header is read this way, each line only when it
is in exactly the printer's form (bare names, no annotations, no dense or subgraph
attributes, the node name at the end); those lines are blanked (line numbers kept) and the
rest of the text (header, graph line, any other statements, return) goes through the
grammar as before, so every token the grammar sees keeps its line and column.

Nothing here raises a user-facing error: a line it cannot read in full is left to the
grammar, and a statement it reads but that breaks a rule (an unknown or redefined value,
a wrong element count, a sidecar that cannot be read, ...) raises :class:`Fallback`, on
which the caller parses the whole text with the grammar, whose messages (file:line:col
and caret) are the reference.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from .graph import Graph
from .printer import json_string
from .types import TensorType, numpy_dtype


class Fallback(Exception):
    """The fast path gives up: parse the text with the grammar."""


_NAME = r"[A-Za-z0-9_.$/\-]+"
_DTYPE = (r"(?:f16|f32|f64|bf16|i8|i16|i32|i64|u8|u16|u32|u64|bool|c64|c128|str|f8e4m3fnuz|f8e4m3fn|"
          r"f8e5m2fnuz|f8e5m2|f8e8m0|f6e2m3|f6e3m2|u4|i4|u2|i2|f4e2m1)")
_DIM = r"(?:-?[0-9]+|[A-Za-z][A-Za-z0-9_]*|_[A-Za-z0-9_]+|\?)"
_TYPE = rf"{_DTYPE}\[(?:\*|(?:{_DIM}(?:,{_DIM})*)?)\]"
_INT = r"-?[0-9]+"
_FLOAT = r"-?(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)|-?inf|nan"
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_SCALAR = rf"(?:{_FLOAT}|{_INT}|true|false|{_STRING})"
_LIST = rf"\[(?:{_SCALAR}(?:, {_SCALAR})*)?\]"
_VALUE = rf"(?:{_SCALAR}|{_LIST})"
_ATTRS = rf"(?:[A-Za-z_][A-Za-z0-9_]*|{_STRING})={_VALUE}(?:, (?:[A-Za-z_][A-Za-z0-9_]*|{_STRING})={_VALUE})*"

NODE_LINE = re.compile(
    rf"  (%{_NAME}(?:, %{_NAME})*) = ([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    rf"\(((?:%{_NAME}|_)(?:, (?:%{_NAME}|_))*)?\)(?: \{{({_ATTRS})\}})? : ({_TYPE}(?:, {_TYPE})*)  // ({_NAME})")
CONST_LINE = re.compile(rf"  %({_NAME}) = const ({_TYPE}) (?:@([^\s:@<>]+):([A-Za-z0-9_.$/\-#]+)|\[((?:{_SCALAR}(?:, {_SCALAR})*)?)\])")
_SKIP = re.compile(r"[\t ]*(?://.*)?")  # blank or comment-only: the grammar's _NL takes it
_GRAPH = re.compile(r"[\t ]*graph\b.*\{[\t ]*")
_HEADER = re.compile(r"// *nvmc\.ir.*")
_ONE_TYPE = re.compile(rf"({_DTYPE})\[(\*|(?:{_DIM}(?:,{_DIM})*)?)\]")
_ATTR = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*|{_STRING})=({_LIST}|{_SCALAR})(?:, |$)")
_ITEM = re.compile(rf"({_FLOAT})|({_INT})|(true|false)|({_STRING})")
_KEYWORDS = {"const", "graph", "return", "dense", "true", "false", "nan", "inf"}


def split(text: str) -> tuple[str, list[Callable[[Graph, Callable], None]]]:
    """(the text with the lines read here blanked, one action per such line, in order).

    The lines read are those of the printer's form that follow the graph line directly
    (blank and comment lines between them allowed); the first other line ends the run."""
    lines = text.split("\n")
    i = 0
    if lines and _HEADER.fullmatch(lines[0]):
        i = 1
    while i < len(lines) and _SKIP.fullmatch(lines[i]):
        i += 1
    if i >= len(lines) or not _GRAPH.fullmatch(lines[i]) or "//" in lines[i]:
        return text, []
    actions = []
    types: dict[str, TensorType] = {}
    for j in range(i + 1, len(lines)):
        line = lines[j]
        m = NODE_LINE.fullmatch(line)
        if m is not None and m.group(2) not in _KEYWORDS:
            actions.append(_node_action(m, types))
        else:
            m = CONST_LINE.fullmatch(line)
            if m is not None:
                actions.append(_const_action(m, types))
            elif _SKIP.fullmatch(line):
                continue
            else:
                break
        lines[j] = ""
    if not actions:
        return text, []
    return "\n".join(lines), actions


def _type(text: str, cache: dict[str, TensorType]) -> TensorType:
    t = cache.get(text)
    if t is None:
        dtype, dims = _ONE_TYPE.fullmatch(text).groups()
        if dims == "*":
            shape = None
        else:
            shape = tuple(int(d) if d[-1].isdigit() and (d[0].isdigit() or d[0] == "-") else None if d == "?" else d
                          for d in dims.split(",")) if dims else ()
        t = cache[text] = TensorType(dtype, shape)
    return t


def _scalar(tok: str) -> Any:
    m = _ITEM.fullmatch(tok)
    if m.group(1) is not None:
        return float(tok)
    if m.group(2) is not None:
        return int(tok)
    if m.group(3) is not None:
        return tok == "true"
    return json_string(tok)


def _items(text: str) -> list[Any]:
    return [_scalar(m.group(0)) for m in _ITEM.finditer(text)]


def _attrs(text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not text:
        return out
    pos = 0
    for m in _ATTR.finditer(text):
        key, value = m.groups()
        key = json_string(key) if key[0] == '"' else key
        if key in out or key in _KEYWORDS or m.start() != pos:
            raise Fallback
        pos = m.end()
        out[key] = _items(value[1:-1]) if value[0] == "[" else _scalar(value)
    if pos != len(text):
        raise Fallback
    return out


def _node_action(m: re.Match, types: dict[str, TensorType]) -> Callable[[Graph, Callable], None]:
    outs_text, op_text, ins_text, attrs_text, types_text, name = m.groups()

    def apply(g: Graph, load: Callable) -> None:
        values = g.values
        inputs = []
        if ins_text:
            for v in ins_text.split(", "):
                if v == "_":
                    inputs.append("")
                elif v[1:] in values:
                    inputs.append(v[1:])
                else:
                    raise Fallback
        outs = [v[1:] for v in outs_text.split(", ")]
        if len(set(outs)) != len(outs) or any(o in values for o in outs):
            raise Fallback
        out_types = [_type(t, types) for t in _TYPES.findall(types_text)]
        if len(out_types) != len(outs) or g.has_node(name):
            raise Fallback
        domain, _, op = op_text.rpartition(".")
        try:
            g.add_node(op, inputs, outs, _attrs(attrs_text), name=name, domain=domain, types=out_types)
        except Exception:
            raise Fallback from None

    return apply


_TYPES = re.compile(_TYPE)


def _const_action(m: re.Match, types: dict[str, TensorType]) -> Callable[[Graph, Callable], None]:
    name, type_text, file, key, items = m.groups()

    def apply(g: Graph, load: Callable) -> None:
        t = _type(type_text, types)
        if name in g.values or not t.is_static:
            raise Fallback
        try:
            if file is not None:
                array = np.asarray(load(file, key, t))
                if array.shape != t.shape:
                    raise Fallback
            else:
                values = _items(items)
                if len(values) != t.numel():
                    raise Fallback
                with np.errstate(over="raise", invalid="raise"):
                    array = np.array(values, dtype=numpy_dtype(t.dtype)).reshape(t.shape)
            g.add_const(name, array, t.annotations)
        except Exception:
            raise Fallback from None

    return apply
