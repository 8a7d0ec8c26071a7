"""The winograd pass on the zoo models: pass time, MAC reductions and float error.

    python benchmarks/bench_winograd.py               # every zoo model, onnxruntime check included
    python benchmarks/bench_winograd.py --no-check    # pass time and MACs only

Per model and tile: 3x3 stride-1 layers rewritten, wall time of the pass (weight transform
G g G^T in numpy, float64; with quant=tapwise the int8 coding too), the element-wise and
end-to-end MAC reductions of the rewritten layers, and (with the check) the max relative
error (outputs and the logits before a softmax) of the float Winograd model against the
original in onnxruntime, seeded random weights (tests/test_passes_zoo.py's draw). VGG-19
(16 layers at up to 224 x 224) is the largest. Paper figure beside: 2.25x / 4x element-wise on whole tiles (TAP, WG3).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnx

import nvmc
from nvmc.harness import compare
from nvmc.passes import run_pipeline

ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from winograd import random_weights  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    ap.add_argument("models", nargs="*", help="zoo model names (default: all)")
    args = ap.parse_args(argv)
    names = args.models or sorted(p.stem for p in ZOO.glob("light_*.onnx"))
    print(f"{'model':<20}{'tile':>5}{'quant':>9}{'layers':>8}{'pass s':>9}{'elem-wise':>11}{'end-to-end':>12}"
          f"{'max rel err':>13}{'check s':>9}")
    for name in names:
        graph = random_weights(nvmc.load(ZOO / f"{name}.onnx"))
        for node in graph.nodes:  # compare the logits too: random weights saturate a softmax
            if node.op == "Softmax" and node.inputs[0] not in graph.outputs:
                graph.outputs.append(node.inputs[0])
        for tile in (2, 4):
            for quant in ("none", "tapwise"):
                g = graph.copy()
                t0 = time.perf_counter()
                result = run_pipeline(g, f"winograd{{tile={tile},quant={quant}}}", verify_each=False)
                elapsed = time.perf_counter() - t0
                s = result.records[0].result.stats
                err, check = "", ""
                if not args.no_check and quant == "none" and s["nodes_rewritten"]:
                    t1 = time.perf_counter()
                    err = f"{compare(graph, g).max_rel_err:.2e}"
                    check = f"{time.perf_counter() - t1:.2f}"
                print(f"{name:<20}{tile:>5}{quant:>9}{int(s['nodes_rewritten']):>8}{elapsed:>9.3f}"
                      f"{s.get('elementwise_reduction', 0):>10.3f}x{s.get('end_to_end_reduction', 0):>11.3f}x"
                      f"{err:>13}{check:>9}", flush=True)
    print("paper (TAP / Lavin & Gray): 2.25x (F2) and 4x (F4) element-wise on whole tiles; "
          "partial edge tiles and the transforms lower both columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
