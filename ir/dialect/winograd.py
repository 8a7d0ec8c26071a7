"""``nvmc.WinogradConv``: convolution as Winograd F(2x2,3x3) or F(4x4,3x3), optionally quantised
per tensor or per tap (the ``winograd`` pass, passes/winograd.py, makes it).

A 3x3, stride-1 convolution computes each m x m output tile from a (m+2) x (m+2) input
tile. Winograd's minimal filtering algorithm (Lavin & Gray, arXiv 1509.09308) writes it as

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) = element-wise product

per tile d, filter g and channel pair; summed over input channels, the element-wise
product of every Winograd-domain *tap* (i, j) is a GEMM: tiles x C_in times C_in x C_out.
The multiplications of a tile drop from 9 m^2 to (m+2)^2: 36/16 = 2.25x for F2 and
144/36 = 4x for F4, before the transforms and the partial tiles at the edges.

``nvmc.WinogradConv(x, U, [bias], [u_scale])`` is the nvmc-domain op:

* ``x`` [N, C_in, H, W] f32; attributes ``tile`` (m = 2 or 4), ``pads`` [top, left, bottom,
  right]; output [N, C_out, H + top + bottom - 2, W + left + right - 2];
* ``U`` [T*T, C_in, C_out] (T = m + 2): the transformed weights G g G^T, computed once by the
  pass, tap-major; f32, or int codes (i8) when quantised, decoded as ``U * u_scale[tap]``;
* ``quant`` = ``none`` | ``tensor`` | ``tapwise`` with ``bits``: how the Winograd-domain
  operands are quantised (symmetric, zero point 0, codes in [-(2^(b-1)-1), 2^(b-1)-1]).
  Weights: per-tensor is one scale for all of U, tap-wise one scale per tap (Andri et al.,
  arXiv 2209.12982). Activations V = B^T d B: the same granularity, with the scale taken
  *dynamically* from max |V| of the current input (an emulation: a deployment calibrates
  static scales, which can only be worse than the dynamic max on the data it sees).

ONNX lowering (what the exporter emits, runnable in onnxruntime from opset 9 on):
Pad -> Transpose -> Gather rows / Gather columns of the overlapping tiles -> Transpose,
Reshape [T*T, tiles*C_in] -> MatMul by kron(B^T, B^T) (the input transform) -> Reshape
[T*T, tiles, C_in] -> [quantise] -> MatMul with U [T*T, C_in, C_out] (one GEMM per tap)
-> MatMul by kron(A^T, A^T) (the output transform) -> Reshape/Transpose to the image ->
Slice away the partial edge tiles' overhang -> Add bias.

Transform matrices: /work/shared/reference/params.md section 9, checked there numerically
against direct correlation. F(2,3): interpolation points 0, +1, -1, infinity (WG1 tinygrad
``_conv2d_winograd`` @1806a43; WG2 andravin/wincnn). F(4,3): points 0, +1, -1, +2, -2,
infinity (WG1, after Lavin & Gray).

Workload counts (the OpDef's ``macs``, ``counts`` and ``precision``): the element-wise stage
is ``gemm_batch`` = T*T taps, ``gemm_m`` = N * tiles, ``gemm_n`` = C_out, ``gemm_k`` = C_in,
so ``macs`` counts Winograd-domain MACs and a systolic or GPU backend maps them as batched
GEMMs. The transforms are non-MAC ops: the input transform computed separably (B^T d, then
(.) B) takes, per tile and input channel, 2 T x (additions of B^T's rows) ``add`` and
2 T x (entries of B^T other than 0, +-1) ``mul``; the output transform likewise with A^T
(T columns then m rows) per tile and output channel; a bias one ``add`` per output
element. Multiplies by 2, 4 or 8 (shifts in hardware) count as ``mul`` like the others.
Quantised: a ``mul`` and two ``cmp`` (clip) per element of V (the requantisation) and one
``mul`` per element of the tap products (the per-tap rescale), and the element-wise MACs are
``bits``-bit on both sides (the node's ``act_bits``), whatever the op's input type. The
weight transform is done once by the pass (passes/winograd.py) and costs nothing at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..graph import Graph, Node
from ..lowering import Lowering
from ..ops import Attr, Operand, OpDef

QUANT_MODES = ("none", "tensor", "tapwise")

# ---------------------------------------------------------------- transform matrices
# params.md section 9 (WG1 tinygrad _conv2d_winograd @1806a43, WG2 andravin/wincnn, WG3 Lavin & Gray).
_F2 = {  # F(2x2,3x3), interpolation points 0, 1, -1, infinity
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
_F4 = {  # F(4x4,3x3), interpolation points 0, 1, -1, 2, -2, infinity
    "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
           [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    "G": [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
          [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
}


def matrices(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(tile x tile, 3x3) in float64."""
    if tile not in (2, 4):
        raise ValueError(f"Winograd tile must be 2 or 4, not {tile}")
    f = _F2 if tile == 2 else _F4
    return (np.array(f["BT"], dtype=np.float64), np.array(f["G"], dtype=np.float64),
            np.array(f["AT"], dtype=np.float64))


def _transform_counts(mat: np.ndarray) -> tuple[int, int]:
    """(adds, non-trivial multiplies) of one product mat @ v for a vector v."""
    nz = np.count_nonzero(mat, axis=1)
    adds = int(np.sum(np.maximum(nz - 1, 0)))
    muls = int(np.count_nonzero((mat != 0) & (np.abs(mat) != 1)))
    return adds, muls


# ---------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    h_out: int
    w_out: int
    tile: int
    pads: tuple[int, int, int, int]  # top, left, bottom, right

    @property
    def t(self) -> int:
        return self.tile + 2

    @property
    def tiles_h(self) -> int:
        return -(-self.h_out // self.tile)

    @property
    def tiles_w(self) -> int:
        return -(-self.w_out // self.tile)

    @property
    def tiles(self) -> int:
        """Tiles of the whole batch: the GEMM's M."""
        return self.n * self.tiles_h * self.tiles_w

    @property
    def direct_macs(self) -> int:
        return self.n * self.c_out * self.c_in * 9 * self.h_out * self.w_out

    @property
    def winograd_macs(self) -> int:
        return self.t * self.t * self.tiles * self.c_in * self.c_out

    def transform_ops(self, quant: str = "none", bias: bool = False) -> dict[str, int]:
        bt, _, at = matrices(self.tile)
        t, m = self.t, self.tile
        b_add, b_mul = _transform_counts(bt)
        a_add, a_mul = _transform_counts(at)
        per_in = self.tiles * self.c_in
        per_out = self.tiles * self.c_out
        counts = {"add": 2 * t * b_add * per_in + (t + m) * a_add * per_out,
                  "mul": 2 * t * b_mul * per_in + (t + m) * a_mul * per_out}
        if bias:
            counts["add"] += self.n * self.c_out * self.h_out * self.w_out
        if quant != "none":
            counts["mul"] += t * t * per_in + t * t * per_out
            counts["cmp"] = 2 * t * t * per_in
        return counts


def geometry(x_shape: Sequence[int], u_shape: Sequence[int], tile: int, pads: Sequence[int]) -> Geometry:
    n, c_in, h, w = (int(d) for d in x_shape)
    top, left, bottom, right = (int(p) for p in pads)
    return Geometry(n, c_in, int(u_shape[2]), h, w, h + top + bottom - 2, w + left + right - 2, tile,
                    (top, left, bottom, right))


def geometry_of(node: Node, graph: Graph) -> Geometry:
    return geometry(graph.values[node.inputs[0]].type.shape, graph.values[node.inputs[1]].type.shape,
                    int(node.attrs["tile"]), node.attrs["pads"])


def _optional(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


# ---------------------------------------------------------------- verify
def verify_winograd(node: Node, graph: Graph) -> str | None:
    tile, pads, quant = node.attrs["tile"], node.attrs["pads"], WINOGRAD_CONV.attr(node, "quant")
    if len(pads) != 4 or any(not isinstance(p, int) or p < 0 for p in pads):
        return f"attribute 'pads' must be 4 non-negative integers (top, left, bottom, right), not {pads!r}"
    xt, ut = graph.values[node.inputs[0]].type, graph.values[node.inputs[1]].type
    if xt.dtype != "f32" or (xt.shape is not None and len(xt.shape) != 4):
        return f"input x must be f32 [N, C_in, H, W], not {xt}"
    t = tile + 2
    if ut.shape is None or len(ut.shape) != 3 or ut.shape[0] != t * t:
        return f"U must be [{t * t}, C_in, C_out] (one matrix per tap of F({tile}x{tile},3x3)), not {ut}"
    want = "f32" if quant == "none" else "i8"
    if ut.dtype != want:
        return f"U must be {want} with quant={quant}, not {ut.dtype}"
    if xt.shape is not None and isinstance(xt.shape[1], int) and isinstance(ut.shape[1], int) \
            and xt.shape[1] != ut.shape[1]:
        return f"x has {xt.shape[1]} channels, U expects {ut.shape[1]}"
    bias, scale = _optional(node, 2), _optional(node, 3)
    if bias and graph.values[bias].type.shape not in (None, (ut.shape[2],)):
        return f"bias must be [{ut.shape[2]}], not {graph.values[bias].type}"
    if (quant != "none") != bool(scale):
        return "u_scale (input 3) is required exactly when quant is not 'none'"
    if scale and graph.values[scale].type.shape not in (None, (t * t,)):
        return f"u_scale must be [{t * t}] (one scale per tap), not {graph.values[scale].type}"
    out = graph.values[node.outputs[0]].type
    if xt.is_static and out.shape is not None:
        g = geometry_of(node, graph)
        expect = (g.n, g.c_out, g.h_out, g.w_out)
        if any(isinstance(a, int) and a != b for a, b in zip(out.shape, expect)) or len(out.shape) != 4:
            return f"result is typed {out}, expected shape {list(expect)}"
    return None


# ---------------------------------------------------------------- lowering
def lower_winograd(node: Node, graph: Graph) -> None:
    low = Lowering(node, graph)
    g = geometry_of(node, graph)
    bt, _, at = matrices(g.tile)
    t, m, nh, nw = g.t, g.tile, g.tiles_h, g.tiles_w
    quant, bits = WINOGRAD_CONV.attr(node, "quant"), int(WINOGRAD_CONV.attr(node, "bits"))
    top, left, _, _ = g.pads
    hp, wp = nh * m + 2, nw * m + 2  # every tile whole: pad the overhang of the edge tiles too
    x = low.pad(node.inputs[0], [0, 0, top, left, 0, 0, hp - g.h - top, wp - g.w - left], (g.n, g.c_in, hp, wp))
    x = low.add("Transpose", [x], (hp, wp, g.n, g.c_in), {"perm": [2, 3, 0, 1]})
    rows = (np.arange(nh) * m)[:, None] + np.arange(t)[None, :]
    cols = (np.arange(nw) * m)[:, None] + np.arange(t)[None, :]
    x = low.add("Gather", [x, low.i64("rows", rows)], (nh, t, wp, g.n, g.c_in), {"axis": 0})
    x = low.add("Gather", [x, low.i64("cols", cols)], (nh, t, nw, t, g.n, g.c_in), {"axis": 2})
    x = low.add("Transpose", [x], (t, t, g.n, nh, nw, g.c_in), {"perm": [1, 3, 4, 0, 2, 5]})
    x = low.reshape(x, (t * t, g.tiles * g.c_in))
    v = low.add("MatMul", [low.const("BTxBT", np.kron(bt, bt).astype(np.float32)), x], (t * t, g.tiles * g.c_in))
    v = low.reshape(v, (t * t, g.tiles, g.c_in))
    u = node.inputs[1]
    if quant != "none":
        qmax = float(2 ** (bits - 1) - 1)
        u = low.add("Cast", [u], (t * t, g.c_in, g.c_out), {"to": 1})
        u = low.add("Mul", [u, low.reshape(node.inputs[3], (t * t, 1, 1))], (t * t, g.c_in, g.c_out))
        sshape = (t * t, 1, 1) if quant == "tapwise" else (1, 1, 1)
        op, ins, attrs = low.reduction("ReduceMax", low.add("Abs", [v], (t * t, g.tiles, g.c_in)),
                                       [1, 2] if quant == "tapwise" else [0, 1, 2])
        amax = low.add(op, ins, sshape, attrs)
        s = low.add("Div", [amax, low.const("qmax", np.array(qmax, dtype=np.float32))], sshape)
        s = low.add("Max", [s, low.const("tiny", np.array(1e-30, dtype=np.float32))], sshape)
        vshape = (t * t, g.tiles, g.c_in)
        q = low.add("Div", [v, s], vshape)
        q = low.add("Floor", [low.add("Add", [q, low.const("half", np.array(0.5, dtype=np.float32))], vshape)],
                    vshape)  # round half up (Round needs opset 11)
        q = low.add("Min", [q, low.const("hi", np.array(qmax, dtype=np.float32))], vshape)
        q = low.add("Max", [q, low.const("lo", np.array(-qmax, dtype=np.float32))], vshape)
        v = low.add("Mul", [q, s], vshape)
    mm = low.add("MatMul", [v, u], (t * t, g.tiles, g.c_out))  # one GEMM per tap
    mm = low.reshape(mm, (t * t, g.tiles * g.c_out))
    y = low.add("MatMul", [low.const("ATxAT", np.kron(at, at).astype(np.float32)), mm], (m * m, g.tiles * g.c_out))
    y = low.reshape(y, (m, m, g.n, nh, nw, g.c_out))
    y = low.add("Transpose", [y], (g.n, g.c_out, nh, m, nw, m), {"perm": [2, 5, 3, 0, 4, 1]})
    full = (g.n, g.c_out, nh * m, nw * m)
    y = low.reshape(y, full)
    if (nh * m, nw * m) != (g.h_out, g.w_out):  # the edge tiles' overhang
        y = low.crop(y, [g.h_out, g.w_out], [2, 3], (g.n, g.c_out, g.h_out, g.w_out))
    bias = _optional(node, 2)
    if bias:
        low.finish("Add", [y, low.reshape(bias, (1, g.c_out, 1, 1))])
    else:
        low.finish("Identity", [y])



# ---------------------------------------------------------------- workload counts
def _count_macs(a, node: Node) -> tuple[int, int, int, int]:
    x = a.shape(node, node.inputs[0])
    u = a.shape(node, node.inputs[1])
    g = geometry(x, u, int(node.attrs["tile"]), node.attrs["pads"])
    return g.t * g.t, g.tiles, g.c_out, g.c_in


def _count_ops(a, node: Node, out: int) -> dict[str, int]:
    g = geometry(a.shape(node, node.inputs[0]), a.shape(node, node.inputs[1]), int(node.attrs["tile"]),
                 node.attrs["pads"])
    return g.transform_ops(WINOGRAD_CONV.attr(node, "quant"), bool(_optional(node, 2)))


def _act_bits(node: Node) -> int | None:
    """Quantised, the element-wise stage multiplies bits-bit codes of V (the op requantises it)."""
    return int(WINOGRAD_CONV.attr(node, "bits")) if WINOGRAD_CONV.attr(node, "quant") != "none" else None


WINOGRAD_CONV = OpDef(
    "WinogradConv", "3x3 stride-1 convolution as Winograd F(tile x tile, 3x3): tap-wise GEMMs on "
    "pre-transformed weights U (optionally int8 with per-tensor or per-tap scales)",
    operands=(Operand("x"), Operand("U"), Operand("bias", optional=True), Operand("u_scale", optional=True)),
    attrs=(Attr("tile", int, choices=(2, 4)), Attr("pads", list), Attr("quant", str, "none", choices=QUANT_MODES),
           Attr("bits", int, 8, bounds=(2, 8))),
    verify=verify_winograd, lower=lower_winograd, macs=_count_macs, counts=_count_ops, precision=_act_bits)


