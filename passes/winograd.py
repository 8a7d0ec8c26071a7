"""Winograd convolution F(2x2,3x3) and F(4x4,3x3) with tap-wise int8 quantisation.

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

Workload counts (registered with ``workload.register_count_rule``,
``register_mac_rule`` and ``register_precision_rule``): the element-wise stage
is ``gemm_batch`` = T*T taps, ``gemm_m`` = N * tiles, ``gemm_n`` = C_out, ``gemm_k`` = C_in,
so ``macs`` counts Winograd-domain MACs and a systolic or GPU backend maps them as batched
GEMMs. The transforms are non-MAC ops: the input transform computed separably (B^T d, then
(.) B) takes, per tile and input channel, 2 T x (additions of B^T's rows) ``add`` and
2 T x (entries of B^T other than 0, +-1) ``mul``; the output transform likewise with A^T
(T columns then m rows) per tile and output channel; a bias one ``add`` per output
element. Multiplies by 2, 4 or 8 (shifts in hardware) count as ``mul`` like the others. Quantised: a ``mul`` and two ``cmp`` (clip) per element of V (the requantisation)
and one ``mul`` per element of the tap products (the per-tap rescale), and the element-wise
MACs are ``bits``-bit on both sides (the node's ``act_bits``), whatever the op's input type. The weight
transform is done once by the pass and costs nothing at run time; its price is storage:
U holds T*T/9 times the weights of g (1.78x for F2, 4x for F4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.ops import NVMC_OPS, register_op
from nvmc.ir.types import TensorType

from . import workload
from .base import OptionError, PassResult, option, register_pass
from .rewrite import Const, Lowering, Match, Op, PatternPass, Rewriter, Var

DOMAIN = "nvmc"
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


def transform_weights(w: np.ndarray, tile: int) -> np.ndarray:
    """G g G^T of Conv weights [C_out, C_in, 3, 3], tap-major: [T*T, C_in, C_out] (float64)."""
    _, g, _ = matrices(tile)
    u = np.einsum("ia,ocab,jb->ijco", g, np.asarray(w, dtype=np.float64), g)
    t = tile + 2
    return u.reshape(t * t, w.shape[1], w.shape[0])


def quantize_taps(u: np.ndarray, mode: str, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, scale per tap [T*T] f32) of U [T*T, C_in, C_out]; ``mode`` tensor or tapwise."""
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(u).reshape(u.shape[0], -1).max(axis=1)
    if mode == "tensor":
        amax = np.full_like(amax, amax.max())
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    codes = np.clip(np.rint(u / scale.astype(np.float64)[:, None, None]), -qmax, qmax).astype(np.int8)
    return codes, scale


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


def _geometry_of(node: Node, graph: Graph) -> Geometry:
    return geometry(graph.values[node.inputs[0]].type.shape, graph.values[node.inputs[1]].type.shape,
                    int(node.attrs["tile"]), node.attrs["pads"])


def _optional(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


# ---------------------------------------------------------------- verify
def verify_winograd(node: Node, graph: Graph) -> str | None:
    if len(node.inputs) < 2 or len(node.inputs) > 4 or not node.inputs[0] or not node.inputs[1]:
        return f"takes (x, U, [bias], [u_scale]), has {len(node.inputs)} input(s)"
    if len(node.outputs) != 1:
        return f"has one output, not {len(node.outputs)}"
    tile, pads = node.attrs.get("tile"), node.attrs.get("pads")
    if tile not in (2, 4):
        return f"attribute 'tile' must be 2 or 4, not {tile!r}"
    if not isinstance(pads, (list, tuple)) or len(pads) != 4 or any(not isinstance(p, int) or p < 0 for p in pads):
        return f"attribute 'pads' must be 4 non-negative integers (top, left, bottom, right), not {pads!r}"
    quant = node.attrs.get("quant", "none")
    if quant not in QUANT_MODES:
        return f"attribute 'quant' must be one of {', '.join(QUANT_MODES)}, not {quant!r}"
    bits = node.attrs.get("bits", 8)
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        return f"attribute 'bits' must be an integer in [2, 8], not {bits!r}"
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
        g = _geometry_of(node, graph)
        expect = (g.n, g.c_out, g.h_out, g.w_out)
        if any(isinstance(a, int) and a != b for a, b in zip(out.shape, expect)) or len(out.shape) != 4:
            return f"result is typed {out}, expected shape {list(expect)}"
    return None


# ---------------------------------------------------------------- lowering
class _Lowering(Lowering):
    """Lowering of float tensors given by shape, with Pad/Slice/ReduceMax spelled per opset."""

    def add(self, op: str, inputs: Sequence[str], shape: Sequence[int] | None,  # type: ignore[override]
            attrs: dict[str, Any] | None = None, dtype: str = "f32") -> str:
        return super().add(op, inputs, TensorType(dtype, tuple(shape) if shape is not None else None), attrs)

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

    def reduce_max(self, x: str, axes: Sequence[int], shape: Sequence[int]) -> str:
        if self.opset >= 18:
            return self.add("ReduceMax", [x, self.i64("axes", axes)], shape, {"keepdims": 1})
        return self.add("ReduceMax", [x], shape, {"axes": list(axes), "keepdims": 1})


def lower_winograd(node: Node, graph: Graph) -> None:
    low = _Lowering(node, graph)
    g = _geometry_of(node, graph)
    bt, _, at = matrices(g.tile)
    t, m, nh, nw = g.t, g.tile, g.tiles_h, g.tiles_w
    quant, bits = node.attrs.get("quant", "none"), int(node.attrs.get("bits", 8))
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
        amax = low.reduce_max(low.add("Abs", [v], (t * t, g.tiles, g.c_in)),
                              [1, 2] if quant == "tapwise" else [0, 1, 2],
                              (t * t, 1, 1) if quant == "tapwise" else (1, 1, 1))
        sshape = (t * t, 1, 1) if quant == "tapwise" else (1, 1, 1)
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


if "WinogradConv" not in NVMC_OPS:  # importing this module twice (reload in tests) must not fail
    register_op("WinogradConv", verify=verify_winograd, lower=lower_winograd,
                doc="3x3 stride-1 convolution as Winograd F(tile x tile, 3x3): tap-wise GEMMs on "
                    "pre-transformed weights U (optionally int8 with per-tensor or per-tap scales)")


# ---------------------------------------------------------------- workload counts
def _count_macs(a, node: Node) -> tuple[int, int, int, int]:
    x = a.shape(node, node.inputs[0])
    u = a.shape(node, node.inputs[1])
    g = geometry(x, u, int(node.attrs["tile"]), node.attrs["pads"])
    return g.t * g.t, g.tiles, g.c_out, g.c_in


def _count_ops(a, node: Node, out: int) -> dict[str, int]:
    g = geometry(a.shape(node, node.inputs[0]), a.shape(node, node.inputs[1]), int(node.attrs["tile"]),
                 node.attrs["pads"])
    return g.transform_ops(node.attrs.get("quant", "none"), bool(_optional(node, 2)))


workload.register_count_rule("nvmc.WinogradConv", _count_ops)
workload.register_mac_rule("nvmc.WinogradConv", _count_macs)
# quantised, the element-wise stage multiplies bits-bit codes of V (the op requantises it) by U's codes
workload.register_precision_rule(
    "nvmc.WinogradConv", lambda node: int(node.attrs.get("bits", 8)) if node.attrs.get("quant", "none") != "none"
    else None)


# ---------------------------------------------------------------- the pass
@register_pass("winograd", exact=False)
@dataclass(frozen=True)
class Winograd(PatternPass):
    """Rewrite 3x3 stride-1 convolutions into Winograd F(tile x tile, 3x3) (nvmc.WinogradConv).

    Eligible: 2-D Conv with constant f32 weights [C_out, C_in, 3, 3], stride 1, dilation 1,
    group 1, any padding (auto_pad included), a static input shape. Others are left alone
    with the reason (``nvmc opt --explain-pass winograd``): 5x5 kernels, stride 2, grouped
    and depthwise convolutions (few MACs to save), dynamic shapes.

    The transformed weights U = G g G^T are computed here (float64, stored f32), tap-major
    [T*T, C_in, C_out]. With ``quant=tensor|tapwise`` U is stored as int codes of ``bits``
    bits with one scale for the tensor or one per tap, and the op quantises its transformed
    input V = B^T d B at the same granularity. F(4x4) with a single scale loses the small
    taps (G holds 1/24 next to 1, B^T holds 5 next to 1); tap-wise scales keep them
    (Andri et al., arXiv 2209.12982).

    Statistics: ``direct_macs``, ``winograd_macs`` (the element-wise stage),
    ``transform_adds``/``transform_muls``, ``elementwise_reduction`` = direct / Winograd
    MACs and ``end_to_end_reduction`` = direct / (Winograd MACs + transform adds and muls).
    ``error``: ``weight_sqnr_db``, the worst layer's SQNR of the quantised U (inf unquantised).

        %y = Conv(%x, %w, %b) {kernel_shape=[3,3], pads=[1,1,1,1]}
    becomes
        %y = nvmc.WinogradConv(%x, %w_wino, %b) {tile=4, pads=[1,1,1,1], quant="none", bits=8}
    """

    tile: int = option(4, min=2, max=4, help="output tile m of F(m x m, 3x3): 2 or 4")
    quant: str = option("none", choices=QUANT_MODES, help="Winograd-domain quantisation: none, "
                        "one scale per tensor, or one scale per tap")
    bits: int = option(8, min=2, max=8, help="bits of the quantised codes")

    pattern = Op("Conv", Var("x"), Const("w"), Const("b", optional=True))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tile not in (2, 4):
            raise OptionError(f"option 'tile' of 'winograd' takes 2 or 4, not {self.tile}")

    def check(self, m: Match, graph: Graph) -> str | None:
        conv = m.root
        w = m["w"]
        if w.ndim != 4:
            return f"a {w.ndim - 2}-D convolution; Winograd F(m,3x3) here is 2-D only"
        if tuple(w.shape[2:]) != (3, 3):
            return f"kernel {w.shape[2]}x{w.shape[3]}; Winograd F(m,3x3) needs a 3x3 kernel"
        if w.dtype != np.float32:
            return f"weights are {w.dtype}, not float32"
        if any(s != 1 for s in conv.attrs.get("strides", [1, 1])):
            return f"strides {conv.attrs['strides']}; Winograd tiles need stride 1"
        if any(d != 1 for d in conv.attrs.get("dilations", [1, 1])):
            return f"dilations {conv.attrs['dilations']}; Winograd tiles need dilation 1"
        group = int(conv.attrs.get("group", 1))
        if group != 1:
            return (f"group={group}: grouped/depthwise convolutions are not rewritten "
                    "(one GEMM per tap would have K = C_in/group; little to save)")
        t = graph.values[m.value("x")].type
        if not t.is_static or t.dtype != "f32":
            return f"input '%{m.value('x')}' is {t}; needs a static f32 shape"
        return None

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        conv, graph = m.root, rw.graph
        w = m["w"]
        pads = _pads(conv, graph.values[m.value("x")].type.shape)
        u = transform_weights(w, self.tile)
        inputs = [m.value("x"), "", m.value("b") or "", ""]
        if self.quant == "none":
            inputs[1] = rw.add_const(f"{conv.name}_wino_u", u.astype(np.float32))
            sqnr = float("inf")
        else:
            codes, scale = quantize_taps(u, self.quant, self.bits)
            err = u - codes.astype(np.float64) * scale.astype(np.float64)[:, None, None]
            sqnr = float(10 * np.log10(np.sum(u * u) / max(np.sum(err * err), 1e-300)))
            inputs[1] = rw.add_const(f"{conv.name}_wino_u", codes)
            inputs[3] = rw.add_const(f"{conv.name}_wino_scale", scale)
        while inputs and not inputs[-1]:
            inputs.pop()
        attrs = {"tile": self.tile, "pads": list(pads), "quant": self.quant, "bits": self.bits}
        rw.replace([conv], "WinogradConv", inputs, attrs, domain=DOMAIN)
        x_shape = graph.values[m.value("x")].type.shape
        g = geometry(x_shape, u.shape, self.tile, pads)
        ops = g.transform_ops(self.quant, bool(m.value("b")))
        self._layers.append((conv.name, g, ops, sqnr))

    def run(self, graph: Graph) -> PassResult:
        object.__setattr__(self, "_layers", [])
        if DOMAIN not in graph.opsets:
            graph.opsets[DOMAIN] = 1
        result = super().run(graph)
        layers = self._layers
        direct = sum(g.direct_macs for _, g, _, _ in layers)
        wino = sum(g.winograd_macs for _, g, _, _ in layers)
        adds = sum(o.get("add", 0) for _, _, o, _ in layers)
        muls = sum(o.get("mul", 0) for _, _, o, _ in layers)
        result.stats.update({"direct_macs": direct, "winograd_macs": wino, "transform_adds": adds,
                             "transform_muls": muls})
        if wino:
            result.stats["elementwise_reduction"] = direct / wino
            result.stats["end_to_end_reduction"] = direct / (wino + adds + muls)
        if layers:
            result.error["weight_sqnr_db"] = min(s for *_, s in layers)
        if not result.changed and graph.opsets.get(DOMAIN) == 1 and \
                not any(n.domain == DOMAIN for n in graph.nodes):
            graph.opsets.pop(DOMAIN, None)
        return result


def _pads(conv: Node, x_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a 3x3 stride-1 Conv, auto_pad resolved."""
    auto = conv.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return 1, 1, 1, 1  # total padding k - 1 = 2, split evenly
    if auto == "VALID":
        return 0, 0, 0, 0
    p = list(conv.attrs.get("pads", [0, 0, 0, 0]))
    return p[0], p[1], p[2], p[3]


# ---------------------------------------------------------------- reporting
def layer_report(graph: Graph) -> list[dict[str, Any]]:
    """Per nvmc.WinogradConv node: its tile, the MACs of the direct convolution it replaced,
    its Winograd-domain MACs and transform ops (from the workload analysis), and the
    reductions: element-wise stage, and end to end (MACs + transform adds and muls)."""
    from .analysis import get_analysis

    wl = get_analysis(graph, "workload")
    index = {name: i for i, name in enumerate(wl.names)}
    rows = []
    for node in graph.nodes:
        if node.qualified_op != "nvmc.WinogradConv":
            continue
        i = index[node.name]
        g = _geometry_of(node, graph)
        macs = int(wl["macs"][i])
        adds, muls = int(wl["add"][i]), int(wl["mul"][i])
        rows.append({"name": node.name, "tile": g.tile, "quant": node.attrs.get("quant", "none"),
                     "shape": [g.n, g.c_in, g.h, g.w], "c_out": g.c_out, "direct_macs": g.direct_macs,
                     "winograd_macs": macs, "transform_adds": adds, "transform_muls": muls,
                     "elementwise_reduction": g.direct_macs / macs,
                     "end_to_end_reduction": g.direct_macs / (macs + adds + muls),
                     "gemm": [int(wl[k][i]) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k")]})
    return rows
