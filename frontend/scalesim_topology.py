"""SCALE-Sim topology CSVs: read one as an nvmc workload, and write layers in its format.

SCALE-Sim v3 (scalesim 3.0.0, ``scalesim/topology_utils.py``: ``load_arrays_conv`` and
``load_arrays_gemm``) reads two formats, chosen on its command line (``-i conv|gemm``)::

    Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
    Conv1,224,224,7,7,3,64,2,

    Layer, M, N, K,
    QKT,1024,1024,64,

nvmc reads a file the way SCALE-Sim does, so a topology means the same layers to both:

1. the first line is a header and is skipped whatever it says; blank lines are skipped;
2. a row is split at every comma (no quoting) and its **last field is dropped**, so every row
   ends with a comma (a row without one would lose its stride in SCALE-Sim: an error here);
3. one more field may follow the sizes: an ``N:M`` sparsity ratio, which SCALE-Sim applies
   only with ``[sparsity] SparsitySupport = true`` (nvmc reads every layer dense and says so);
4. conv rows have **no padding** (IFMAP sizes are the padded sizes) and one stride for both
   axes; the output is ``E = ceil((H - F + s) / s)`` (SCALE-Sim's rule: one more than
   ``floor((H - F) / s) + 1`` when ``(H - F) % s != 0``, its last window hanging over the edge);
5. a conv row whose name contains ``DP`` is depthwise: SCALE-Sim runs it as ``Channels``
   layers of one channel and ``Num Filter`` filters each;
6. a GEMM row ``M, N, K`` is ``(M x K) @ (K x N)`` (N: output columns, K: the reduction), which
   SCALE-Sim runs as the conv ``H=M, W=K, Fh=1, Fw=K, C=1, N filters, stride 1``.

The format is detected from the header (``M, N, K`` in columns 2-4: GEMM; else conv), or
given (``kind=``). Each row becomes one independent node reading its own graph input, so
the systolic family's per-layer cycles are SCALE-Sim's for the same array and dataflow:

* conv row: ``Conv`` of ``[1, C, H, W]`` by ``[Num Filter, C, Fh, Fw]``, strides ``[s, s]``,
  padded at the bottom/right only by ``(E - 1) * s + F - H`` (< s: zero unless rule 4 adds a
  window hanging over the edge, which SCALE-Sim reads as address -1: zeros); output E x E;
* ``DP`` row: one grouped ``Conv`` (group = C, ``Num Filter`` filters per channel): C GEMMs
  of the split layers' shape, costed as their sum;
* GEMM row: ``MatMul`` of ``[M, K]`` by a ``[K, N]`` constant.

Weights are broadcast constants (no memory; dense). SCALE-Sim counts words, not bytes: nvmc
reads one word as one operand element, and a topology has no precision, so every operand is
annotated ``#quant<bits=word_bits>`` (default 8: SCALE-Sim's one-byte word), which is what the
cost models count bytes by. ``format_topology`` writes rows back in the same format
(nvmc/interchange.py builds them from any model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nvmc.ir.errors import ModelError, ParseError, SourceSpan
from nvmc.ir.files import read_input
from nvmc.ir.graph import Graph
from nvmc.ir.limits import MAX_COUNT, MAX_ELEMENTS
from nvmc.ir.types import Annotation, TensorType

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
GEMM_HEADER = "Layer, M, N, K,"
CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")
KINDS = ("conv", "gemm")
MAX_TOPOLOGY_BYTES = 16 << 20   # a hand-written or generated table of layers
MAX_ROWS = 100_000
WEIGHT_FILL = np.float32(0.01)  # the broadcast weights' value: dense, small (a run stays in range)


@dataclass(frozen=True)
class ConvRow:
    """One row of a conv topology, as SCALE-Sim reads it (rules 4 and 5)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    num_filt: int
    stride: int
    line: int = 0

    @property
    def depthwise(self) -> bool:
        return "DP" in self.name

    @property
    def ofmap(self) -> tuple[int, int]:
        """SCALE-Sim's output size: ``ceil((H - F + s) / s)`` per axis (no padding)."""
        s = self.stride
        return -(-(self.ifmap_h - self.filt_h + s) // s), -(-(self.ifmap_w - self.filt_w + s) // s)

    def fields(self) -> tuple:
        return (self.name, self.ifmap_h, self.ifmap_w, self.filt_h, self.filt_w, self.channels, self.num_filt,
                self.stride)


@dataclass(frozen=True)
class GemmRow:
    """One row of a GEMM topology: ``(M x K) @ (K x N)``."""

    name: str
    m: int
    n: int
    k: int
    line: int = 0

    def fields(self) -> tuple:
        return (self.name, self.m, self.n, self.k)


@dataclass(frozen=True)
class Topology:
    kind: str                               # "conv" | "gemm"
    rows: tuple                             # ConvRow | GemmRow
    notices: tuple[str, ...] = ()


# ------------------------------------------------------------------ reading
def read_topology(path: str | Path, *, kind: str = "auto") -> Topology:
    """Parse a SCALE-Sim topology file (module docstring); errors name file:line:column."""
    path = Path(path)
    data = read_input(path, "topology file", limit=MAX_TOPOLOGY_BYTES, error=ModelError)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelError("not a UTF-8 text file (a SCALE-Sim topology is a CSV text)", where=str(path)) from None
    return parse_topology(text, str(path), kind=kind)


def parse_topology(text: str, source: str = "<topology>", *, kind: str = "auto") -> Topology:
    lines = re.split(r"\r\n|\r|\n", text)   # the line ends Python's text files (SCALE-Sim's reader) accept
    if kind not in ("auto", *KINDS):
        raise ModelError(f"topology kind {kind!r}: expected auto, conv or gemm", where=source)
    if kind == "auto":
        kind = _detect(lines[0] if lines else "")
    rows, notices, dense = [], [], []
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        if len(rows) >= MAX_ROWS:
            raise ModelError(f"more than {MAX_ROWS:,} layers; nvmc reads at most that many", where=source)
        row, ratio = _parse_row(kind, raw, source, number)
        rows.append(row)
        if ratio is not None and ratio != (1, 1):
            dense.append(f"line {number} ({ratio[0]}:{ratio[1]})")
    if not rows:
        raise ModelError(f"no layers: a SCALE-Sim {kind} topology is a header line and then one row per layer",
                         where=source, hint=f"e.g. {CONV_HEADER if kind == 'conv' else GEMM_HEADER}")
    if dense:
        notices.append(f"{source}: sparsity ratios read as dense (nvmc costs the layer's dense MACs; SCALE-Sim "
                       f"applies them only with SparsitySupport = true): {', '.join(dense[:5])}"
                       + (f" and {len(dense) - 5} more" if len(dense) > 5 else ""))
    return Topology(kind, tuple(rows), tuple(notices))


def _detect(header: str) -> str:
    names = [f.strip().upper() for f in header.split(",")]
    return "gemm" if names[1:4] == ["M", "N", "K"] else "conv"


def _fields(raw: str) -> list[tuple[str, int]]:
    """(text, 1-based column) of each comma-separated field of a line."""
    out, col = [], 1
    for text in raw.split(","):
        out.append((text, col))
        col += len(text) + 1
    return out


def _parse_row(kind: str, raw: str, source: str, number: int):
    columns = CONV_COLUMNS if kind == "conv" else GEMM_COLUMNS

    def fail(message: str, col: int, length: int = 1, hint: str | None = None):
        raise ParseError(message, where=SourceSpan(source, number, col, raw, max(1, length)), hint=hint)

    fields = _fields(raw)
    last_text, last_col = fields[-1]
    if last_text.strip():  # SCALE-Sim drops the last field: it must be the empty one after a comma
        fail(f"the row does not end with a comma: SCALE-Sim drops every row's last field (here "
             f"{last_text.strip()!r}, the {columns[len(fields) - 1] if len(fields) <= len(columns) else 'last'} "
             "column)", last_col + len(last_text), hint="end every row with ','")
    fields = fields[:-1]
    if len(fields) not in (len(columns), len(columns) + 1):
        col = fields[min(len(fields), len(columns) + 1) - 1][1] if fields else 1
        fail(f"{len(fields)} fields; a SCALE-Sim {kind} row has {len(columns)} ({', '.join(columns)}), an optional "
             "N:M sparsity ratio and a trailing comma", col,
             hint="keep the first fields of each row" if len(fields) > len(columns) else
             f"is this a {'GEMM' if kind == 'conv' else 'conv'} topology? Its header decides the format")
    name = fields[0][0].strip()
    values = []
    for (text, col), column in zip(fields[1:len(columns)], columns[1:]):
        try:
            value = int(text.strip())
        except ValueError:
            fail(f"{column} = {text.strip()!r}: expected a whole number", col, len(text))
        if value < 1 or value > MAX_ELEMENTS:
            fail(f"{column} = {value}: must be at least 1" + (f" and at most {MAX_ELEMENTS}" if value > 1 else ""),
                 col, len(text))
        values.append(value)
    ratio = None
    if len(fields) > len(columns):
        text, col = fields[-1]
        m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
        if not m or int(m.group(2)) == 0:
            fail(f"sparsity ratio {text.strip()!r}: expected N:M, e.g. 2:4", col, len(text))
        ratio = (int(m.group(1)), int(m.group(2)))
    if kind == "gemm":
        row = GemmRow(name, *values, line=number)
        sizes = {"M x K": row.m * row.k, "K x N": row.k * row.n, "M x N": row.m * row.n}
        macs = row.m * row.n * row.k
    else:
        row = ConvRow(name, *values, line=number)
        for fi, ii in ((3, 1), (4, 2)):
            if values[fi - 1] > values[ii - 1]:
                fail(f"{columns[fi]} = {values[fi - 1]} is larger than {columns[ii]} = {values[ii - 1]} "
                     "(SCALE-Sim refuses it: no padding, IFMAP sizes include any)", fields[fi][1], len(fields[fi][0]))
        eh, ew = row.ofmap
        groups = row.channels if row.depthwise else 1   # a DP row has Num Filter filters per channel
        sizes = {"the IFMAP": row.channels * row.ifmap_h * row.ifmap_w,
                 "the filters": row.num_filt * row.channels * row.filt_h * row.filt_w,
                 "the OFMAP": row.num_filt * groups * eh * ew}
        macs = eh * ew * row.filt_h * row.filt_w * row.channels * row.num_filt
    big = next((what for what, n in sizes.items() if n > MAX_ELEMENTS), None)
    if big is not None or macs > MAX_COUNT:
        fail(f"layer {name!r} is too large for nvmc: " + (f"{big} has more than 2**40 elements" if big else
                                                         "more than 2**53 MACs"), 1, len(raw))
    return row, ratio


# ------------------------------------------------------------------ lowering
def load_topology(path: str | Path, *, kind: str = "auto", word_bits: int = 8) -> Graph:
    """A SCALE-Sim topology file as a Graph of independent layers (module docstring)."""
    path = Path(path)
    topology = read_topology(path, kind=kind)
    graph = topology_graph(topology, name=path.stem or "topology", word_bits=word_bits)
    graph.meta["source"] = str(path)
    graph.meta["files"] = [str(path)]
    return graph


def topology_graph(topology: Topology, *, name: str = "topology", word_bits: int = 8) -> Graph:
    if isinstance(word_bits, bool) or not isinstance(word_bits, int) or not 1 <= word_bits <= 64:
        raise ModelError(f"word_bits = {word_bits!r}: expected a whole number of bits from 1 to 64")
    ann = (Annotation.of("quant", {"bits": word_bits}),) if word_bits != 32 else ()
    graph = Graph(name=name)
    graph.meta["notices"] = list(topology.notices)
    graph.meta["topology_kind"] = topology.kind
    for row in topology.rows:
        node = graph.fresh_name(row.name or f"layer_line{row.line}")
        meta = {"layer_name": row.name} if node != row.name else {}
        if isinstance(row, GemmRow):
            x = _input(graph, node, "ifmap", (row.m, row.k), ann)
            w = _weights(graph, node, (row.k, row.n), ann)
            out = graph.fresh_name(f"{node}.ofmap")
            graph.add_node("MatMul", [x, w], [out], name=node, types=[TensorType("f32", (row.m, row.n), ann)],
                           meta=meta)
        else:
            eh, ew = row.ofmap
            s = row.stride
            pads = [0, 0, (eh - 1) * s + row.filt_h - row.ifmap_h, (ew - 1) * s + row.filt_w - row.ifmap_w]
            groups = row.channels if row.depthwise else 1
            out_channels = row.num_filt * groups
            x = _input(graph, node, "ifmap", (1, row.channels, row.ifmap_h, row.ifmap_w), ann)
            w = _weights(graph, node, (out_channels, row.channels // groups, row.filt_h, row.filt_w), ann)
            attrs = {"kernel_shape": [row.filt_h, row.filt_w], "strides": [s, s]}
            if any(pads):
                attrs["pads"] = pads
            if groups > 1:
                attrs["group"] = groups
            out = graph.fresh_name(f"{node}.ofmap")
            graph.add_node("Conv", [x, w], [out], attrs, name=node,
                           types=[TensorType("f32", (1, out_channels, eh, ew), ann)], meta=meta)
        graph.outputs.append(out)
    return graph


def _input(graph: Graph, node: str, role: str, shape: tuple[int, ...], ann) -> str:
    name = graph.fresh_name(f"{node}.{role}")
    graph.add_input(name, TensorType("f32", shape, ann))
    return name


def _weights(graph: Graph, node: str, shape: tuple[int, ...], ann) -> str:
    name = graph.fresh_name(f"{node}.filter")
    graph.add_const(name, np.broadcast_to(WEIGHT_FILL, shape), annotations=ann)
    return name


# ------------------------------------------------------------------ writing
def layer_name(text: str, *, depthwise: bool | None = None) -> str:
    """``text`` as a SCALE-Sim layer name: no commas or control characters (SCALE-Sim splits
    rows at commas, without quoting), no surrounding spaces (it strips them), and, in a conv
    topology (``depthwise`` True or False), ``DP`` in it exactly when the layer is depthwise
    (SCALE-Sim splits conv rows named ``DP`` channel-wise; its GEMM reader does not: None)."""
    name = re.sub(r"[,\x00-\x1f\x7f]", "_", text).strip() or "layer"
    if depthwise is None:
        return name
    if depthwise:
        return name if "DP" in name else f"{name}_DP"
    return name.replace("DP", "Dp")


def format_topology(kind: str, rows) -> str:
    """The text of a SCALE-Sim topology of ``rows`` (ConvRow or GemmRow, names as written)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected conv or gemm")
    lines = [CONV_HEADER if kind == "conv" else GEMM_HEADER]
    for row in rows:
        if not isinstance(row, ConvRow if kind == "conv" else GemmRow):
            raise TypeError(f"a {kind} topology holds {'ConvRow' if kind == 'conv' else 'GemmRow'}s, not {row!r}")
        if row.name != layer_name(row.name, depthwise=row.depthwise if kind == "conv" else None):
            raise ValueError(f"layer name {row.name!r} cannot be written as it is (see layer_name)")
        lines.append(",".join(str(f) for f in row.fields()) + ",")
    return "\n".join(lines) + "\n"


def conv_ifmap_extent(size_with_leading_pad: int, out: int, kernel: int, stride: int) -> int:
    """The IFMAP size to write for one axis of a conv whose output has ``out`` positions:
    the input plus its leading padding, moved into the sizes ``[lo, hi]`` for which SCALE-Sim's
    ``ceil((H - F + s) / s)`` equals ``out`` (``lo = (out - 2) * s + F + 1`` (at least F),
    ``hi = (out - 1) * s + F``, the rows the windows read). Trailing padding and input rows no
    window reads are left out; a read-back topology row keeps its size (it is in the range)."""
    hi = (out - 1) * stride + kernel
    lo = max(kernel, (out - 2) * stride + kernel + 1)
    return min(max(size_with_leading_pad, lo), hi)

