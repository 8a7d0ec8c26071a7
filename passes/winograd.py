"""The ``winograd`` pass: 3x3 stride-1 convolutions as Winograd F(2x2,3x3) or F(4x4,3x3), with
tap-wise int8 quantisation. It computes the transformed weights U = G g G^T (and their int
codes) and rewrites the convolutions into ``nvmc.WinogradConv``, whose algorithm, transform
matrices, ONNX lowering and workload counts nvmc.ir.dialect.winograd defines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nvmc.ir.dialect.winograd import QUANT_MODES, geometry, geometry_of, matrices
from nvmc.ir.graph import Graph, Node

from .base import OptionError, PassResult, option, register_pass
from .rewrite import Const, Match, Op, PatternPass, Rewriter, Var

DOMAIN = "nvmc"


# ---------------------------------------------------------------- weights
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
        g = geometry_of(node, graph)
        macs = int(wl["macs"][i])
        adds, muls = int(wl["add"][i]), int(wl["mul"][i])
        rows.append({"name": node.name, "tile": g.tile, "quant": node.attrs.get("quant", "none"),
                     "shape": [g.n, g.c_in, g.h, g.w], "c_out": g.c_out, "direct_macs": g.direct_macs,
                     "winograd_macs": macs, "transform_adds": adds, "transform_muls": muls,
                     "elementwise_reduction": g.direct_macs / macs,
                     "end_to_end_reduction": g.direct_macs / (macs + adds + muls),
                     "gemm": [int(wl[k][i]) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k")]})
    return rows
