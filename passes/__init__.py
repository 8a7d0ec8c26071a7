"""Analyses and transform passes over the nvmc IR."""

from .workload import NONMAC_KINDS, Workload, analyze

__all__ = ["NONMAC_KINDS", "Workload", "analyze"]

# Pass infrastructure (issue 4): importing the pass modules registers the built-in passes.
from .base import (OptionError, OptionSpec, Pass, PassError, PassResult, get_pass, make_pass,  # noqa: E402
                   option, options_of, register_pass, registered_passes)
from .analysis import cached, get_analysis, register_analysis  # noqa: E402
from .rewrite import Const, Match, Op, PatternPass, Rewriter, Var  # noqa: E402
from .pipeline import PassSpec, Pipeline, parse_pipeline  # noqa: E402
from .manager import PassRecord, PipelineResult, run_pipeline  # noqa: E402
from . import canonicalize, cse, dce, fold_constants, fuse_activation, fuse_conv_bn  # noqa: E402,F401

__all__ += [
    "Const", "Match", "Op", "OptionError", "OptionSpec", "Pass", "PassError", "PassRecord", "PassResult",
    "PassSpec", "PatternPass", "Pipeline", "PipelineResult", "Rewriter", "Var", "cached", "get_analysis",
    "get_pass", "make_pass", "option", "options_of", "parse_pipeline", "register_analysis", "register_pass",
    "registered_passes", "run_pipeline",
]

# Compression passes (issue 16): quantize, prune, share-weights.
from . import prune, quantize, share_weights  # noqa: E402,F401
# HDC (issue 11): the hdc-recognize pass (the nvmc.Bind/Permute/Bundle/Similarity ops: nvmc.ir.dialect.hdc).
from . import hdc_recognize  # noqa: E402,F401
# RRAM crossbar non-idealities (issue 8): the crossbar-noise pass.
from . import crossbar_noise  # noqa: E402,F401
# Winograd F(2x2,3x3) / F(4x4,3x3) with tap-wise quantisation (issue 7).
from . import winograd  # noqa: E402,F401
# NEON (issue 9): the neon pass (the nvmc.NeonApprox op: nvmc.ir.dialect.neon).
from . import neon  # noqa: E402,F401
