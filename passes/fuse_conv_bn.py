"""Fold BatchNormalization into the Conv or Gemm before it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvmc.ir.graph import Graph

from .base import register_pass
from .rewrite import Const, Match, Op, PatternPass, Rewriter, Var


@register_pass("fuse-conv-bn", exact=True)
@dataclass(frozen=True)
class FuseConvBn(PatternPass):
    """Fold an inference BatchNormalization into the weights of the Conv or Gemm feeding it.

    1. Matches BatchNormalization(Conv(x, W[, b]) | Gemm(x, W[, c]), scale, bias, mean, var)
       where W, b/c and the four BN parameters are constants and the Conv/Gemm result is
       read by the BN only.
    2. With s = scale / sqrt(var + epsilon): W' = W * s per output channel (axis 0 of a Conv
       weight, the output axis of a Gemm weight) and b' = (b - mean) * s + bias. Computed in
       float64, stored in W's element type; the Conv/Gemm keeps its name and attributes
       (a Gemm's beta becomes 1, folded into b').
    3. Left alone: a BN in training mode or whose running statistics are read, the
       pre-opset-9 spatial=0 form, a Gemm bias that is not per output feature, and
       parameters whose length is not the number of output channels.

    Before:
        %c = Conv(%x, %w) {kernel_shape=[3,3]} : f32[1,16,8,8]  // conv1
        %y = BatchNormalization(%c, %scale, %bias, %mean, %var) {epsilon=1e-05} : f32[1,16,8,8]  // bn1
    After:
        %y = Conv(%x, %w_fused, %conv1_b_fused) {kernel_shape=[3,3]} : f32[1,16,8,8]  // conv1
    """

    pattern = Op("BatchNormalization",
                 Op(("Conv", "Gemm"), Var("x"), Const("w"), Const("b", optional=True), name="conv"),
                 Const("scale"), Const("bias"), Const("mean"), Const("var"), name="bn")

    def check(self, m: Match, graph: Graph) -> str | None:
        bn, conv, w = m["bn"], m["conv"], m["w"]
        if bn.attrs.get("training_mode", 0):
            return "BatchNormalization is in training mode"
        if not bn.attrs.get("spatial", 1):
            return "BatchNormalization has spatial=0 (per-element statistics)"
        if any(o and (graph.users(o) or o in graph.outputs) for o in bn.outputs[1:]):
            return "the running statistics of the BatchNormalization are read"
        if w.dtype.kind != "f":
            return f"weights of {conv.op} '{conv.name}' are {w.dtype}, not floating point"
        channels = _out_channels(conv.op, conv.attrs, w)
        if channels is None:
            return f"weights of {conv.op} '{conv.name}' have shape {list(w.shape)}"
        for key in ("scale", "bias", "mean", "var"):
            if m[key].shape != (channels,):
                return f"BatchNormalization {key} has shape {list(m[key].shape)}, not [{channels}]"
        b = m["b"]
        if b is not None and conv.op == "Gemm" and b.shape not in ((), (1,), (channels,), (1, channels)):
            return f"Gemm bias of shape {list(b.shape)} is not per output feature"
        return None

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        bn, conv, w = m["bn"], m["conv"], m["w"].astype(np.float64)
        channels = _out_channels(conv.op, conv.attrs, w)
        s = m["scale"].astype(np.float64) / np.sqrt(m["var"].astype(np.float64) + bn.attrs.get("epsilon", 1e-5))
        attrs = dict(conv.attrs)
        b = np.zeros(channels) if m["b"] is None else m["b"].astype(np.float64)
        if conv.op == "Conv":
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # Gemm: y = alpha * x @ op(W) + beta * c, output features on W's axis 0 if transB
            w = w * (s[:, None] if conv.attrs.get("transB", 0) else s[None, :])
            b = np.broadcast_to(b.reshape(-1), (channels,)) * conv.attrs.get("beta", 1.0)
            if "beta" in attrs:
                attrs["beta"] = 1.0
        b = (b - m["mean"].astype(np.float64)) * s + m["bias"].astype(np.float64)
        w_name = rw.add_const(f"{m.value('w')}_fused", w.astype(m["w"].dtype))
        b_name = rw.add_const(f"{m.value('b') or conv.name + '_b'}_fused", b.astype(m["w"].dtype))
        rw.replace([conv, bn], conv.op, [m.value("x"), w_name, b_name], attrs, keep=conv, outputs=bn.outputs[:1])


def _out_channels(op: str, attrs: dict, w: np.ndarray) -> int | None:
    if op == "Conv":
        return w.shape[0] if w.ndim >= 3 else None
    if w.ndim != 2:
        return None
    return w.shape[0] if attrs.get("transB", 0) else w.shape[1]
