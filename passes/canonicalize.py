"""The canonical clean-up: the exact passes, repeated until none changes the graph."""

from __future__ import annotations

from dataclasses import dataclass

from nvmc.ir.graph import Graph

from .base import Pass, PassError, PassResult, option, register_pass
from .cse import CommonSubexpressionElimination
from .dce import DeadCodeElimination
from .fold_constants import FoldConstants
from .fuse_activation import FuseActivation
from .fuse_conv_bn import FuseConvBn


@register_pass("canonicalize", exact=True)
@dataclass(frozen=True)
class Canonicalize(Pass):
    """Run fold-constants, cse, fuse-conv-bn, fuse-activation and dce to a fixed point.

    1. One round runs the five passes in that order; rounds repeat until a round changes
       nothing. Each pass only removes work or adds annotations, so the order changes how
       many rounds it takes, never the fixed point (two or three rounds on the zoo models).
    2. ``max-iterations`` bounds the rounds; reaching it without a fixed point is an error
       (it would mean two rules undo each other).
    3. Stats are the sums of the passes' stats, plus ``iterations``; the places left alone
       (``why_not``) are those of the last round.

    Before:
        %s = Shape(%x) : i64[4]
        %shape = Concat(%s1, %minus1) {axis=0} : i64[2]        // from %s
        %c = Conv(%x, %w) : f32[1,16,8,8]  // conv1
        %b = BatchNormalization(%c, %g, %be, %m, %v) : f32[1,16,8,8]
        %y = Relu(%b) : f32[1,16,8,8]  // relu1
    After:
        %shape = const i64[2] [1, -1]
        %b = Conv(%x, %w_fused, %conv1_b_fused) : f32[1,16,8,8] #fused<activation="Relu", node="relu1">  // conv1
        %y = Relu(%b) : f32[1,16,8,8]  // relu1
    """

    max_iterations: int = option(10, min=1, max=1000, help="rounds before giving up on a fixed point")

    def run(self, graph: Graph) -> PassResult:
        passes = [FoldConstants(), CommonSubexpressionElimination(), FuseConvBn(), FuseActivation(),
                  DeadCodeElimination()]
        total = PassResult(False)
        for iteration in range(1, self.max_iterations + 1):
            round_changed, why_not = False, []
            for p in passes:
                result = p.run(graph)
                round_changed |= result.changed
                why_not += [(node, f"{p.name}: {reason}") for node, reason in result.why_not]
                result.why_not = []
                total.merge(result)
            if not round_changed:
                total.stats["iterations"] = iteration
                total.why_not = why_not
                return total
        raise PassError(f"canonicalize did not reach a fixed point in {self.max_iterations} rounds",
                        hint="raise canonicalize{max-iterations=N}, or report the passes that undo each other")
