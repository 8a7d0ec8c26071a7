"""The neon pass's speed and headline figures (not a timed test; run by hand).

    python benchmarks/bench_neon.py [--repeat 3]

Prints: the time to fit each function's net per hidden size (cold: fitted; warm: from the
on-disk cache in a temporary folder) with its max error on the default range; the pass on
examples/models/tiny_transformer.onnx and on a synthetic transformer stack (calibration,
rewrite, numerics check); then the compiled latency / energy on rram-pim with the non-MAC
ops on digital units and as NEON nets, beside the paper's 2.28x (examples/neon.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
os.environ.setdefault("NVMC_CACHE_DIR", tempfile.mkdtemp(prefix="nvmc-neon-bench-"))

import nvmc  # noqa: E402
from nvmc.passes import neon_fit, run_pipeline  # noqa: E402
from timing import best_of  # noqa: E402



def stack(blocks: int, width: int = 32):
    """A chain of ``blocks`` x (MatMul by a constant, Softmax, Erf) on a [1, 8, width] input."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(blocks):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                  helper.make_node("Softmax", [f"m{i}"], [f"s{i}"], name=f"sm{i}", axis=-1),
                  helper.make_node("Erf", [f"s{i}"], [f"e{i}"], name=f"erf{i}")]
        x = f"e{i}"
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8, width])  # noqa: E731
    return helper.make_model(helper.make_graph(nodes, "stack", [vi("x")], [vi(x)], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"cache: {neon_fit.cache_dir()}")
    print(f"{'function':<12}{'H':>5}{'cold ms':>10}{'warm ms':>10}{'max err':>11}")
    for fn in neon_fit.FUNCTIONS:
        for h in (8, 16, 32, 64):
            neon_fit._MEMORY.clear()
            start = time.perf_counter()
            net = neon_fit.fit_net(fn, hidden=h, error=0.0)
            cold = time.perf_counter() - start
            neon_fit._MEMORY.clear()
            warm, _ = best_of(args.repeat, lambda: (neon_fit._MEMORY.clear(), neon_fit.fit_net(fn, hidden=h, error=0.0)))
            print(f"{fn:<12}{h:>5}{1e3 * cold:>10.2f}{1e3 * warm:>10.2f}{net.max_err:>11.2e}")

    model = REPO / "examples" / "models" / "tiny_transformer.onnx"
    for label, pipeline in (("neon", "neon"), ("neon{check=false}", "neon{check=false}"),
                            ("neon{range=default,check=false}", "neon{range=default,check=false}")):
        def run():
            g = nvmc.load(model)
            return run_pipeline(g, pipeline).records[0]
        t, rec = best_of(args.repeat, run)
        extra = f"  cosine {rec.result.error['cosine']:.6f}" if "cosine" in rec.result.error else ""
        print(f"tiny_transformer {label:<34} {1e3 * t:8.1f} ms  ({rec.nodes_before} -> {rec.nodes_after} nodes){extra}")

    for blocks in (100, 1000):
        proto = stack(blocks)
        def run_stack():
            g = nvmc.load(proto)
            return run_pipeline(g, "neon{check=false}").records[0]
        t, rec = best_of(1, run_stack)
        print(f"synthetic stack of {blocks} x (MatMul, Softmax, Erf) {1e3 * t:10.1f} ms  "
              f"({rec.nodes_before} -> {rec.nodes_after} nodes, {int(rec.result.stats['nodes_rewritten'])} rewritten)")

    from neon import show, silu_cnn

    show("tiny transformer", model, "rram-pim", "neon")
    show("SiLU CNN", silu_cnn(), "rram-pim", "neon")


if __name__ == "__main__":
    main()
