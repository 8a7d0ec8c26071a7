"""The .nvir text form: parser (grammar in nvir.lark).

``parse_text(text, sidecar=...)`` builds a :class:`Graph`. Errors carry file:line:col, the
line and a caret. Values must be defined before they are used (one block, SSA).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import lark
import numpy as np

from . import nvir_fast
from .errors import NvmcError, ParseError, SourceSpan, did_you_mean
from .files import read_input
from .graph import Graph, decode_subgraph, gc_paused
from .printer import json_string
from .types import Annotation, TensorType, numpy_dtype

_READABLE = {
    "VALUE": "%value", "GRAPH_NAME": "@name", "SIDECAR": "@file:key", "OP": "op name",
    "DTYPE": "element type (f32, i64, ...)", "IDENT": "identifier", "INT": "integer",
    "FLOAT": "float", "STRING": "string", "NODE_NAME": "// node name", "_NL": "end of line",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "MORETHAN": "'>'", "LESSTHAN": "'<'",
    "HOLE": "'_'", "BOOL": "true/false", "$END": "end of file", "QMARK": "'?'", "STAR": "'*'",
}


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = (Path(__file__).with_name("nvir.lark")).read_text()
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=True)


SidecarLoader = Callable[[str, str], np.ndarray]


def parse_text(text: str, *, filename: str = "<text>",
               sidecar: Mapping[str, np.ndarray] | SidecarLoader | str | Path | None = None) -> Graph:
    """Parse .nvir text into a Graph.

    ``sidecar`` resolves ``@file:key`` references: a mapping key -> array, a callable
    (file, key) -> array, or a directory in which the named .npz files are opened.
    """
    load = _loader(sidecar, filename)
    with gc_paused():
        graph = _parse_fast(text, filename, load)
    if graph is None:
        _check_nesting(text, filename)
        try:
            tree = _parser().parse(text)
        except lark.exceptions.UnexpectedInput as e:
            raise _syntax_error(e, text, filename) from None
        graph = _Builder(text, filename, load).build(tree)
    # What a later save must not overwrite (ir/files.py): this file and the sidecars it read.
    graph.meta["files"] = [filename, *map(str, getattr(load, "read", ()))] if filename != "<text>" else []
    return graph


def _parse_fast(text: str, filename: str, load: SidecarLoader) -> Graph | None:
    """The graph, reading the printer's plain node and const lines without the grammar
    (ir/nvir_fast.py); None when anything goes wrong: the grammar then reads the whole
    text and reports the error."""
    skeleton, actions = nvir_fast.split(text)
    if not actions:
        return None
    try:
        _check_nesting(skeleton, filename)
        return _Builder(text, filename, load, actions).build(_parser().parse(skeleton))
    except Exception:
        return None


MAX_NESTING = 64  # lists, dense<> values and annotations in one statement (a printed graph nests 3 deep)
_NESTING_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|->|[\[\]{}<>\n]')


def _check_nesting(text: str, filename: str) -> None:
    """Refuse nesting deeper than MAX_NESTING before the grammar reads the text: the LALR
    parser takes seconds a megabyte, and the tree of a line nested 200,000 deep is then too
    deep to build. Linear, and cheaper than the grammar over the same text."""
    if text.count("[") + text.count("{") + text.count("<") <= MAX_NESTING:
        return
    depth, line, start = 0, 1, 0
    for m in _NESTING_TOKEN.finditer(text):
        token = m.group()
        if token == "\n":
            depth, line, start = 0, line + 1, m.end()
        elif token in ("[", "{", "<"):
            depth += 1
            if depth > MAX_NESTING:
                raise ParseError(f"nested more than {MAX_NESTING} deep (lists, dense<> values, annotations)",
                                 where=SourceSpan(filename, line, m.start() - start + 1),
                                 hint="a .nvir statement nests a few levels: check for a runaway repetition")
        elif token in ("]", "}", ">"):
            depth = max(0, depth - 1)


def _syntax_error(e: lark.exceptions.UnexpectedInput, text: str, filename: str) -> ParseError:
    lines = text.splitlines() or [""]
    line = max(1, getattr(e, "line", 1) or 1)
    col = max(1, getattr(e, "column", 1) or 1)
    if isinstance(e, lark.exceptions.UnexpectedEOF) or line > len(lines):
        line, col = len(lines), len(lines[-1]) + 1
    src = lines[line - 1] if line <= len(lines) else ""
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        got = "end of line" if tok.type == "_NL" else "end of file" if tok.type == "$END" else repr(str(tok))
        expected = sorted({_READABLE.get(t, repr(t.strip('"').lower()) if t.isupper() else t) for t in e.expected})
        msg = f"unexpected {got}; expected {', '.join(expected[:6])}{' ...' if len(expected) > 6 else ''}"
        length = 1 if tok.type in ("_NL", "$END") else len(str(tok))
    elif isinstance(e, lark.exceptions.UnexpectedCharacters):
        msg, length = f"unexpected character {src[col - 1:col]!r}" if col <= len(src) else "unexpected input", 1
    else:
        msg, length = "unexpected end of input", 1
    return ParseError(msg, where=SourceSpan(filename, line, col, src, length))


def _loader(sidecar, filename: str) -> SidecarLoader:
    if callable(sidecar):  # every loader takes the declared type; a user's callable ignores it
        return lambda file, key, expect=None: sidecar(file, key)
    if isinstance(sidecar, Mapping):
        return lambda file, key, expect=None: sidecar[key]
    base = Path(sidecar) if sidecar is not None else (Path(filename).parent if filename != "<text>" else Path("."))
    opened: dict[str, zipfile.ZipFile] = {}

    def load(file: str, key: str, expect: TensorType | None = None) -> np.ndarray:
        """The array ``key`` of ``file``; with ``expect``, the stored header must declare that
        shape and dtype before anything is unpacked (a zip bomb costs nothing)."""
        if file not in opened:
            path = (base / file).resolve()
            if base.resolve() not in path.parents and path.parent != base.resolve():
                raise ValueError(f"it lies outside {base}")
            try:
                data = read_input(path, "sidecar")
            except NvmcError as e:  # reported at the reference, with line and caret, by _fetch
                raise OSError(e.message) from None
            if data[:4] != b"PK\x03\x04":  # else np.load tries it as a pickle and says so
                raise ValueError("not an .npz archive")
            opened[file] = zipfile.ZipFile(io.BytesIO(data))
            load.read.append(path)
        z = opened[file]
        member = z.getinfo(key + ".npy")
        with z.open(member) as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not supported")
            shape, _, dtype = read_header(f, max_header_size=10000)
            if dtype.hasobject:
                raise ValueError("it holds Python objects (a pickle), which nvmc does not load")
            nbytes = math.prod(shape) * dtype.itemsize
            if expect is not None and (tuple(shape) != expect.shape or dtype.itemsize > 16):
                raise ValueError(f"it holds {dtype}{list(shape)}, not the declared {expect}")
            if member.file_size > nbytes + 65536:  # more than the header declares: not numpy's writing
                raise ValueError(f"its stored size ({member.file_size:,} bytes) does not match its header")
            f.seek(0)
            array = np.lib.format.read_array(f, allow_pickle=False)
        if expect is not None and array.dtype.kind == "V":  # numpy stores bfloat16, int4 ... as raw bytes
            array = array.view(numpy_dtype(expect.dtype))
        return array

    load.read = []  # type: ignore[attr-defined]
    return load


class _Builder:
    def __init__(self, text: str, filename: str, load: SidecarLoader, fast: Sequence[Callable] = ()):
        self.lines = text.splitlines()
        self.filename = filename
        self.load = load
        self.g = Graph()
        self.fast = fast  # statements read by ir/nvir_fast.py: they come first, in order

    def error(self, tok: lark.Token, msg: str, hint: str | None = None) -> ParseError:
        line = getattr(tok, "line", 1) or 1
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        span = SourceSpan(self.filename, line, getattr(tok, "column", 1) or 1, src, len(str(tok)))
        return ParseError(msg, where=span, hint=hint)

    # ----------------------------------------------------------------- walk
    def build(self, tree: lark.Tree) -> Graph:
        for child in tree.children:
            if isinstance(child, lark.Token):
                self._header(child)
            else:
                graph = child
        name_tok, ins, outs, *stmts = graph.children
        self.g.name = self._unquote(name_tok, str(name_tok)[1:])
        for value_tok, t in self._params(ins):
            self.g.add_input(self._name(value_tok), t)
        for apply in self.fast:
            apply(self.g, self.load)
        returned: list[lark.Token] | None = None
        for stmt in stmts:
            if stmt.data == "const_stmt":
                self._const(stmt)
            elif stmt.data == "node_stmt":
                self._node(stmt)
            else:
                returned = [t for t in stmt.children if t is not None]
        declared = self._params(outs)
        if returned is None:
            raise self.error(name_tok, f"graph @{self.g.name} has no 'return' statement")
        if [self._name(v) for v, _ in declared] != [self._name(v) for v in returned]:
            raise self.error(returned[0] if returned else name_tok,
                             "the 'return' values differ from the outputs declared in the graph header")
        for tok in returned:
            self._use(tok)
        for tok, t in declared:
            actual = self.g.values[self._name(tok)].type
            if actual.dtype != t.dtype or actual.shape != t.shape:
                raise self.error(tok, f"output {tok} is declared {t} but defined as {actual}")
        self.g.outputs = [self._name(v) for v in returned]
        return self.g

    def _header(self, tok: lark.Token) -> None:
        for part in str(tok).split()[2:]:
            key, _, val = part.partition("=")
            if key == "opset":
                opsets: dict[str, int] = {}
                for item in val.split(","):
                    domain, _, version = item.rpartition(":")
                    if not version.isdigit():
                        raise self.error(tok, f"bad opset '{item}' in header", "write opset=17 or opset=17,nvmc:1")
                    opsets[domain] = int(version)
                self.g.opsets = opsets

    def _params(self, tree: lark.Tree) -> list[tuple[lark.Token, TensorType]]:
        return [(p.children[0], self._type(p.children[1])) for p in tree.children if p is not None]

    def _name(self, tok: lark.Token) -> str:
        return self._unquote(tok, str(tok)[1:])

    def _unquote(self, tok: lark.Token, text: str) -> str:
        """A bare name as is; a quoted one decoded (JSON string syntax), or an error at ``tok`` on
        a bad escape or on one that is not a character (a lone UTF-16 surrogate such as \\ud800)."""
        try:
            return json_string(text) if text.startswith('"') else text
        except ValueError as e:  # json's message says which escape; the caret says where
            raise self.error(tok, f"bad string: {getattr(e, 'msg', e)}",
                             "strings use JSON escapes: \\\\, \\\", \\n, \\uXXXX") from None

    def _use(self, tok: lark.Token) -> str:
        name = self._name(tok)
        if name not in self.g.values:
            raise self.error(tok, f"unknown value '{tok}'{did_you_mean(name, self.g.values)}",
                             "values must be defined (as input, const or node result) before use")
        return name

    def _defining(self, tok: lark.Token) -> str:
        name = self._name(tok)
        if name in self.g.values:
            raise self.error(tok, f"value '{tok}' is defined twice (SSA: one definition per value)")
        return name

    def _const(self, stmt: lark.Tree) -> None:
        results, type_tree, payload, _ = stmt.children
        value_tok = results.children[0]
        if len(results.children) != 1:
            raise self.error(results.children[1], "a const defines exactly one value")
        name = self._defining(value_tok)
        t = self._type(type_tree)
        array = self._payload(payload, t, value_tok)
        self.g.add_const(name, array, t.annotations)

    def _node(self, stmt: lark.Tree) -> None:
        results, op_tok, operands, attrs, types, name_tok = stmt.children
        inputs = ["" if o.children[0].type == "HOLE" else self._use(o.children[0])
                  for o in operands.children if o is not None]
        outs = [self._defining(t) for t in results.children]
        if len(set(outs)) != len(outs):
            raise self.error(results.children[0], "a node defines the same value twice")
        out_types = ([self._type(t) for t in types.children] if types is not None
                     else [TensorType("f32", None)] * len(outs))
        if len(out_types) != len(outs):
            raise self.error(op_tok, f"{len(outs)} results but {len(out_types)} types")
        attr_map = self._kvs(attrs.children if attrs is not None else [], op_tok)
        domain, _, op = str(op_tok).rpartition(".")
        node_name = self._unquote(name_tok, str(name_tok)[2:].strip()) if name_tok is not None else ""
        if node_name and self.g.has_node(node_name):
            raise self.error(name_tok, f"node name '{node_name}' is used twice")
        self.g.add_node(op, inputs, outs, attr_map, name=node_name or None, domain=domain, types=out_types)

    def _type(self, tree: lark.Tree) -> TensorType:
        dtype_tok, dims_tree, *anns = tree.children
        dims = dims_tree.children
        if len(dims) == 1 and isinstance(dims[0], lark.Token) and dims[0].type == "STAR":
            shape = None
        else:
            shape = tuple(self._dim(d.children[0]) for d in dims if d is not None)
        annotations = tuple(sorted((self._annotation(a) for a in anns), key=lambda a: a.name))
        return TensorType(str(dtype_tok), shape, annotations)

    @staticmethod
    def _dim(tok: lark.Token):
        if tok.type == "INT":
            return int(tok)
        return None if tok.type == "QMARK" else str(tok)

    def _annotation(self, tree: lark.Tree) -> Annotation:
        name_tok, *kvs = tree.children
        return Annotation.of(str(name_tok), self._kvs(kvs, name_tok))

    def _kvs(self, kvs, where_tok) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kv in kvs:
            if kv is None:
                continue
            key_tok, value = kv.children
            key = self._unquote(key_tok, str(key_tok))
            if key in out:
                raise self.error(key_tok, f"'{key}' is given twice")
            out[key] = self._value(value)
        return out

    def _value(self, v):
        if isinstance(v, lark.Tree):
            if v.data == "scalar":
                return self._scalar(v.children[0])
            if v.data == "list":
                return [self._value(c) for c in v.children if c is not None]
            if v.data == "dense":
                t = self._type(v.children[0])
                return self._payload(v.children[1], t, None)
            if v.data == "subgraph":
                file, key = self._sidecar_ref(v.children[0])
                try:
                    return decode_subgraph(self._fetch(v.children[0], file, key).tobytes())
                except ValueError as e:  # including protobuf's DecodeError
                    raise self.error(v.children[0], f"subgraph '{key}' cannot be read: {e}") from None
        raise AssertionError(f"unhandled value {v!r}")

    def _scalar(self, tok: lark.Token):
        if tok.type == "INT":
            return int(tok)
        if tok.type == "FLOAT":
            return float(tok)
        if tok.type == "BOOL":
            return tok == "true"
        return self._unquote(tok, str(tok))

    def _sidecar_ref(self, tok: lark.Token) -> tuple[str, str]:
        file, _, key = str(tok)[1:].partition(":")
        return file, self._unquote(tok, key)

    def _fetch(self, tok: lark.Token, file: str, key: str, expect: TensorType | None = None) -> np.ndarray:
        try:
            return np.asarray(self.load(file, key, expect))
        except (KeyError, IndexError, OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            reason = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
            raise self.error(tok, f"cannot read tensor '{key}' from sidecar '{file}': {reason}",
                             "keep the .npz written beside the .nvir file") from None

    def _payload(self, payload, t: TensorType, tok) -> np.ndarray:
        if not t.is_static:
            raise self.error(tok, f"a constant needs a static shape, not {t}")
        if isinstance(payload, lark.Token):
            array = self._fetch(payload, *self._sidecar_ref(payload), t)
            if array.shape != t.shape:
                raise self.error(payload, f"sidecar tensor has shape {list(array.shape)}, declared {t}")
            return array
        items = [self._value(c) for c in payload.children if c is not None]
        if tok is None:  # a dense<> attribute: errors point at its first element
            tok = next(payload.scan_values(lambda x: isinstance(x, lark.Token)), None)
        if len(items) != t.numel():
            raise self.error(tok, f"constant of type {t} needs {t.numel()} elements, got {len(items)}")
        try:
            with np.errstate(over="raise", invalid="raise"):
                return np.array(items, dtype=numpy_dtype(t.dtype)).reshape(t.shape)
        except (ValueError, TypeError, OverflowError, FloatingPointError) as e:
            raise self.error(tok, f"the values of this constant do not fit {t.dtype}: {e}",
                             f"write {t.dtype} values in range, or change the element type") from None
