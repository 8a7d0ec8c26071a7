"""Mark Conv/Gemm results whose only reader is an activation a backend can fuse."""

from __future__ import annotations

from dataclasses import dataclass

from nvmc.ir.graph import Graph
from nvmc.ir.types import Annotation

from .base import PassResult, option, register_pass
from .rewrite import Match, Op, PatternPass, Rewriter

ANNOTATION = "fused"


@register_pass("fuse-activation", exact=True)
@dataclass(frozen=True)
class FuseActivation(PatternPass):
    """Annotate a Conv/Gemm whose result feeds only a Relu or Clip, for backends to fuse.

    1. Matches Relu(Conv|Gemm(...)) and, with ``clip`` (default), Clip(Conv|Gemm(...)) whose
       min/max are constants or absent; the Conv/Gemm result must be read by the activation
       only and must not be a graph output.
    2. Adds ``#fused<activation=..., node=...>`` to the Conv/Gemm result type: the activation
       op, its node's name and a Clip's bounds. Backends read it to cost the activation as
       the epilogue of the MAC array; nothing is removed, so the graph and its numbers are
       unchanged (the pass is exact by construction) and re-running it changes nothing.

    Before:
        %c = Conv(%x, %w) : f32[1,16,8,8]  // conv1
        %y = Relu(%c) : f32[1,16,8,8]  // relu1
    After:
        %c = Conv(%x, %w) : f32[1,16,8,8] #fused<activation="Relu", node="relu1">  // conv1
        %y = Relu(%c) : f32[1,16,8,8]  // relu1
    """

    clip: bool = option(True, help="also fuse Clip (ReLU6 and other bounded activations)")

    pattern = Op(("Relu", "Clip"), Op(("Conv", "Gemm"), name="conv"), name="act")

    def check(self, m: Match, graph: Graph) -> str | None:
        act = m["act"]
        if act.op == "Clip":
            if not self.clip:
                return "Clip fusion is off (clip=false)"
            for bound in act.inputs[1:]:
                if bound and not graph.is_const(bound):
                    return f"Clip bound '%{bound}' is not a constant"
        return None

    def rewrite(self, m: Match, rw: Rewriter) -> None:
        act, conv = m["act"], m["conv"]
        params: dict = {"activation": act.op, "node": act.name}
        if act.op == "Clip":
            bounds = [float(rw.graph.consts[b].reshape(-1)[0]) if b else None for b in
                      (list(act.inputs[1:]) + ["", ""])[:2]]
            bounds = [act.attrs.get("min"), act.attrs.get("max")] if len(act.inputs) == 1 else bounds
            params.update({k: v for k, v in zip(("min", "max"), bounds) if v is not None})
        if rw.annotate(conv.outputs[0], Annotation.of(ANNOTATION, params)):
            rw.rewrites += 1

    def run(self, graph: Graph) -> PassResult:
        result = super().run(graph)
        result.stats = {"activations_fused": result.stats["nodes_rewritten"]}
        return result
