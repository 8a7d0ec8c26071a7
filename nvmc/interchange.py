"""A model's conv and GEMM layers for peer tools: a SCALE-Sim topology CSV and Timeloop problems.

    nvmc export model.onnx --scalesim-topology layers.csv [--scalesim-format conv|gemm]
    nvmc export model.onnx --timeloop-dir problems/

Every layer is the work nvmc's systolic family costs (nvmc.analyze's GEMM columns: ``repeat``
independent ``(M x K) @ (K x N)`` GEMMs per node), so SCALE-Sim's per-layer cycles summed over
a node's rows equal the family's cycles for that node on the same array and dataflow:

* **Conv** (also ConvInteger, QLinearConv; 1-D as height 1): one SCALE-Sim conv row per
  GEMM. SCALE-Sim has no padding and one stride, and sizes its output ``ceil((H - F + s) / s)``;
  the IFMAP size written per axis is the input plus its leading padding, moved into the
  sizes for which that rule gives nvmc's output size (``conv_ifmap_extent``), so M, N and K
  are nvmc's; a "same"-padded 3x3 stride-1 layer of 56 x 56 is written 58 x 58. A stride
  differing between axes or a dilation is written so that M, N, K still match (stride of the
  rows, undilated filter), and the note says SCALE-Sim's addresses are not the layer's then.
  **Depthwise** (one input channel per group): one row named with ``DP`` (SCALE-Sim's
  convention: it runs ``Channels`` single-channel layers); **grouped**: one row per group
  (``name_g0``, ...). Batch > 1 cannot be said in a conv row: use the GEMM format.
* **Gemm / MatMul** (also MatMulInteger, QLinearMatMul): conv format: the 1x1 conv
  ``IFMAP M x 1``, ``Channels K``, ``N`` filters; GEMM format: ``name, M, N, K``. A batched
  MatMul sharing one weight is one GEMM of batch x M rows (as the systolic family maps it);
  one with two run-time operands (attention) is one row per batch entry (``name_b0``, ...).
* Other MAC nodes (ConvTranspose, Einsum, RNNs, nvmc-domain ops such as a Winograd conv) are
  left out and named in a note.

The GEMM format is the default only for a model without convs (``--scalesim-format auto``).
A layer's name is text: commas and control characters become ``_`` (SCALE-Sim splits at
every comma and strips spaces) and, in a conv topology, ``DP`` in a non-depthwise name
becomes ``Dp``.

Timeloop: one CNN-Layer problem (``dimensions: [C, M, R, S, N, P, Q]``, the shape of
NVlabs/timeloop problem-shapes/cnn-layer.yaml with M for output channels, as in
timeloop-accelergy-exercises) per exported node, per group for a grouped conv (the file says
how many times it runs; ``layers.csv`` lists every file, node, repeat and MACs). The Inputs
projection pairs R and P with W (``R*Wdilation + P*Wstride``), S and Q with H. P and Q are
nvmc's output sizes; Timeloop's CNN-Layer has no padding field either, so the input a
problem implies is the padded input the windows read. A GEMM is ``C = K, M = N, N = M`` rows,
``R = S = P = Q = 1``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from nvmc.frontend.scalesim_topology import ConvRow, GemmRow, conv_ifmap_extent, format_topology, layer_name
from nvmc.ir import Graph
from nvmc.ir.dataout import csv_text
from nvmc.ir.errors import NvmcError
from nvmc.ir.files import check_folder, check_output, write_output

CONV_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}          # op -> index of the weight input
GEMM_OPS = {"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"}
FORMATS = ("auto", "conv", "gemm")


@dataclass(frozen=True)
class Conv:
    """A conv node's geometry (2-D; a 1-D conv as height 1), per group."""

    batch: int
    channels: int        # input channels per group
    filters: int         # output channels per group
    groups: int
    kernel: tuple[int, int]
    out: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    leading: tuple[int, int]       # input size plus leading padding, per axis


@dataclass(frozen=True)
class Layer:
    """One exported node: ``repeat`` independent (M x K) @ (K x N) GEMMs, and its conv geometry."""

    node: str
    op: str
    name: str            # the node's name in the file the model came from (text)
    repeat: int
    m: int
    n: int
    k: int
    conv: Conv | None = None

    @property
    def macs(self) -> int:
        return self.repeat * self.m * self.n * self.k


def layers(graph: Graph, workload=None) -> tuple[list[Layer], list[str]]:
    """The conv and GEMM nodes of ``graph`` as the systolic family maps them, and notes on
    the MAC nodes left out."""
    from nvmc.passes.workload import KIND, analyze

    w = workload if workload is not None else analyze(graph)
    c = w.columns
    out, skipped = [], []
    for i, (node_name, op) in enumerate(zip(w.names, w.ops)):
        if c["kind"][i] != KIND["mac"] or int(c["macs"][i]) == 0:
            continue
        node = graph.node(node_name)
        gb, gm, gn, gk, params = (int(c[k][i]) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k", "params"))
        if node.domain or (op not in CONV_OPS and op not in GEMM_OPS):
            skipped.append(f"'{node_name}' ({node.qualified_op})")
            continue
        shared = 0 < params < gb * gk * gn and gb > 1
        if shared:  # fewer weights than the GEMMs use (a batched MatMul sharing one): one GEMM of gb x M rows,
            gm, gb = gb * gm, 1   # as backends/systolic_traffic.py maps it
        geometry = _conv(graph, node) if op in CONV_OPS and not shared else None
        if op in CONV_OPS and not shared and geometry is None:
            skipped.append(f"'{node_name}' ({op} with {len(_shape(graph, node.inputs[0])) - 2} spatial dimensions)")
            continue
        name = node.meta.get("layer_name", node.name)
        out.append(Layer(node.name, op, name, gb, gm, gn, gk, geometry))
    notes = [f"left out (not a conv or GEMM layer SCALE-Sim and Timeloop describe): {', '.join(skipped)}"] \
        if skipped else []
    return out, notes


def _shape(graph: Graph, value: str) -> tuple[int, ...]:
    shape = graph.values[value].type.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        raise NvmcError(f"value '%{value}' has no static shape", hint="bind the model's dynamic dimensions "
                        "(--input-shape, --dim) before exporting its layers")
    return shape


def _conv(graph: Graph, node) -> Conv | None:
    x = _shape(graph, node.inputs[0])
    wshape = _shape(graph, node.inputs[CONV_OPS[node.op]])
    y = _shape(graph, node.outputs[0])
    spatial = len(x) - 2
    if spatial not in (1, 2):
        return None
    a = node.attrs
    kernel = list(a.get("kernel_shape") or wshape[2:])
    stride = list(a.get("strides") or [1] * spatial)
    dilation = list(a.get("dilations") or [1] * spatial)
    pads = list(a.get("pads") or [0] * (2 * spatial))
    auto = a.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    size, out = list(x[2:]), list(y[2:])
    if auto in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        total = [max(0, (o - 1) * s + (k - 1) * d + 1 - n)
                 for o, s, k, d, n in zip(out, stride, kernel, dilation, size)]
        begin = [0 if auto == "VALID" else t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        begin = pads[:spatial]
    leading = [n + b for n, b in zip(size, begin)]
    if spatial == 1:  # a 1-D conv is a 2-D one of height 1
        kernel, stride, dilation, out, leading = ([1, *v] for v in (kernel, stride, dilation, out, leading))
    groups = int(a.get("group", 1))
    return Conv(y[0], wshape[1], y[1] // groups, groups, tuple(kernel), tuple(out), tuple(stride), tuple(dilation),
                tuple(leading))


# ------------------------------------------------------------------ SCALE-Sim
@dataclass(frozen=True)
class Row:
    """One topology row and the node it belongs to (SCALE-Sim runs a DP row as ``expands`` layers)."""

    node: str
    row: ConvRow | GemmRow
    expands: int = 1


def scalesim_rows(graph: Graph, fmt: str = "auto", workload=None) -> tuple[str, list[Row], list[str]]:
    """(format, rows, notes) of the model's conv/GEMM layers as a SCALE-Sim topology."""
    if fmt not in FORMATS:
        raise NvmcError(f"--scalesim-format {fmt!r}: expected one of {', '.join(FORMATS)}", where="--scalesim-format")
    found, notes = layers(graph, workload)
    if not found:
        raise NvmcError("the model has no conv or GEMM layer to write as a SCALE-Sim topology", where=graph.name)
    if fmt == "auto":
        fmt = "conv" if any(layer.conv is not None for layer in found) else "gemm"
    rows: list[Row] = []
    renamed, approximate = [], []
    for layer in found:
        rows += _conv_rows(layer, approximate) if fmt == "conv" else _gemm_rows(layer)
        if layer_name(layer.name, depthwise=_depthwise(layer) if fmt == "conv" else None) != layer.name:
            renamed.append(layer.name)
    if renamed:
        notes.append(f"{len(renamed)} layer names written otherwise (SCALE-Sim splits rows at commas, strips spaces "
                     "and runs a conv row named 'DP' channel-wise: commas and control characters -> '_'; in a conv "
                     "topology depthwise layers get '_DP', others 'Dp' for 'DP'): "
                     + ", ".join(json.dumps(n) for n in renamed[:5]) + (" ..." if len(renamed) > 5 else ""))
    if approximate:
        notes.append("strides differing between axes or dilations written so that SCALE-Sim's M, N, K (and cycles) "
                     "are nvmc's; SCALE-Sim's addresses are not those layers' own: " + ", ".join(approximate[:5])
                     + (" ..." if len(approximate) > 5 else ""))
    if fmt == "conv":
        notes.append("IFMAP sizes include the padding the windows read (SCALE-Sim has no padding field): "
                     "see docs/interchange.md")
    return fmt, rows, notes


def _depthwise(layer: Layer) -> bool:
    return layer.conv is not None and layer.conv.groups > 1 and layer.conv.channels == 1


def _conv_rows(layer: Layer, approximate: list[str]) -> list[Row]:
    g = layer.conv
    if g is None:  # a GEMM as a 1x1 conv over an M x 1 IFMAP of K channels
        return [Row(layer.node, ConvRow(layer_name(_gemm_name(layer, i), depthwise=False), layer.m, 1, 1, 1, layer.k,
                                        layer.n, 1))
                for i in range(layer.repeat)]
    if g.batch != 1:
        raise NvmcError(f"node '{layer.node}' ({layer.op}) has batch {g.batch}: a SCALE-Sim conv row has batch 1",
                        hint="export with --scalesim-format gemm, or bind batch 1 (--input-shape NAME=1x...)")
    (kh, kw), (oh, ow), (sh, sw) = g.kernel, g.out, g.stride
    if sw != sh or g.dilation != (1, 1):
        approximate.append(f"'{layer.node}'")
    height = conv_ifmap_extent(g.leading[0], oh, kh, sh)
    width = conv_ifmap_extent(g.leading[1] if sw == sh else 0, ow, kw, sh)
    if _depthwise(layer):  # depthwise: one DP row, run by SCALE-Sim as one layer per channel
        row = ConvRow(layer_name(layer.name, depthwise=True), height, width, kh, kw, g.groups, g.filters, sh)
        return [Row(layer.node, row, expands=g.groups)]
    rows = []
    for i in range(g.groups):
        name = layer_name(f"{layer.name}_g{i}" if g.groups > 1 else layer.name, depthwise=False)
        rows.append(Row(layer.node, ConvRow(name, height, width, kh, kw, g.channels, g.filters, sh)))
    return rows


def _gemm_name(layer: Layer, i: int) -> str:
    """The name of GEMM ``i`` of ``layer``: per group (``_g``) of a conv, per batch entry (``_b``) of a MatMul."""
    return f"{layer.name}{'_g' if layer.conv is not None else '_b'}{i}" if layer.repeat > 1 else layer.name


def _gemm_rows(layer: Layer) -> list[Row]:
    return [Row(layer.node, GemmRow(layer_name(_gemm_name(layer, i)), layer.m, layer.n, layer.k))
            for i in range(layer.repeat)]


def write_scalesim_topology(graph: Graph, path: str | Path, fmt: str = "auto") -> tuple[list[Row], list[str]]:
    """Write the topology file; returns its rows (with their nodes) and the notes to show."""
    kind, rows, notes = scalesim_rows(graph, fmt)
    write_output(path, format_topology(kind, [r.row for r in rows]))
    return rows, [f"SCALE-Sim {kind} topology ({'-i ' + kind}): {len(rows)} rows", *notes]


# ------------------------------------------------------------------ Timeloop
_SHAPE = """\
problem:
  shape:
    name: CNN-Layer
    dimensions: [ C, M, R, S, N, P, Q ]
    coefficients:
      - name: Wstride
        default: 1
      - name: Hstride
        default: 1
      - name: Wdilation
        default: 1
      - name: Hdilation
        default: 1
    data-spaces:
      - name: Weights
        projection:
          - [ [C] ]
          - [ [M] ]
          - [ [R] ]
          - [ [S] ]
      - name: Inputs
        projection:
          - [ [N] ]
          - [ [C] ]
          - [ [R, Wdilation], [P, Wstride] ] # SOP form: R*Wdilation + P*Wstride
          - [ [S, Hdilation], [Q, Hstride] ] # SOP form: S*Hdilation + Q*Hstride
      - name: Outputs
        projection:
          - [ [N] ]
          - [ [M] ]
          - [ [Q] ]
          - [ [P] ]
        read-write: True
"""
TIMELOOP_DIMS = ("C", "M", "R", "S", "N", "P", "Q", "Wstride", "Hstride", "Wdilation", "Hdilation")


def timeloop_instance(layer: Layer) -> dict[str, int]:
    """The CNN-Layer instance of one group / one GEMM of ``layer`` (module docstring)."""
    g = layer.conv
    if g is None:
        return dict(C=layer.k, M=layer.n, R=1, S=1, N=layer.m, P=1, Q=1, Wstride=1, Hstride=1, Wdilation=1,
                    Hdilation=1)
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = g.kernel, g.out, g.stride, g.dilation
    return dict(C=g.channels, M=g.filters, R=kw, S=kh, N=g.batch, P=ow, Q=oh, Wstride=sw, Hstride=sh, Wdilation=dw,
                Hdilation=dh)


def timeloop_problem(layer: Layer, model: str) -> str:
    inst = timeloop_instance(layer)
    runs = (f"runs {layer.repeat} times ({'groups' if layer.conv is not None else 'independent GEMMs'}: "
            "Timeloop's CNN-Layer has no such dimension)") if layer.repeat > 1 else "runs once"
    head = [f"# nvmc export of model {json.dumps(model)}, node {json.dumps(layer.node)} ({layer.op}): {runs}",
            "# R, P pair with the width (Wstride, Wdilation), S, Q with the height; P, Q are nvmc's output sizes",
            "# (Timeloop's CNN-Layer has no padding: the input it implies is the padded input the windows read)"]
    body = "\n".join(f"    {k}: {inst[k]}" for k in TIMELOOP_DIMS)
    return "\n".join(head) + "\n" + _SHAPE + "  instance:\n" + body + "\n"


def _file_name(i: int, text: str) -> str:
    return f"{i:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('._')[:60] or 'layer'}.yaml"


def write_timeloop_dir(graph: Graph, folder: str | Path) -> tuple[list[Path], list[str]]:
    """One problem YAML per exported node in ``folder`` (made if missing), plus ``layers.csv``."""
    folder = Path(folder)
    found, notes = layers(graph)
    if not found:
        raise NvmcError("the model has no conv or GEMM layer to write as Timeloop problems", where=graph.name)
    if folder.exists() and not folder.is_dir():
        raise NvmcError("--timeloop-dir names a file, not a directory", where=str(folder), hint="give a directory")
    if not folder.exists():
        check_folder(folder)  # its parent must exist: one level is made, never a tree
        try:
            folder.mkdir()
        except OSError as e:
            raise NvmcError(f"cannot make the directory: {e.strerror}", where=str(folder)) from None
    names = [folder / _file_name(i, layer.node) for i, layer in enumerate(found)] + [folder / "layers.csv"]
    for path in names:  # every name checked before the first is written: a refusal leaves nothing half done
        check_output(path, (), option="--timeloop-dir")
    written, index = [], []
    for i, layer in enumerate(found):
        path = names[i]
        write_output(path, timeloop_problem(layer, graph.name))
        written.append(path)
        inst = timeloop_instance(layer)
        index.append([path.name, layer.node, layer.op, layer.repeat, *(inst[k] for k in TIMELOOP_DIMS), layer.macs])
    write_output(folder / "layers.csv", csv_text(["file", "node", "op", "repeat", *TIMELOOP_DIMS, "macs"], index))
    written.append(folder / "layers.csv")
    return written, [f"Timeloop CNN-Layer problems: {len(found)} files and layers.csv in {folder}", *notes]
