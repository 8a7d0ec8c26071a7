"""HDC on racetrack: toolchain speed and how the racetrack/FPGA ratios move with the model.

    python benchmarks/bench_hdc.py [--repeat 3]

1. Speed (best of --repeat): building the ONNX model, loading it, ``hdc-recognize``
   (verifier on), workload analysis and both cost models, for D x letters up to
   10,000 x 1,000; and the pass on a graph of 1,000 stacked n-gram encoders.
2. Ratios FPGA / racetrack (latency, energy) for D = 1,000 .. 10,000 and query lengths
   50 .. 400 letters, beside the paper's 7.8x / 5.3x (printed only, never computed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

import nvmc
from nvmc import backends
from nvmc.passes import analyze, run_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "hdc"))
import hdc_model as hdc  # noqa: E402
from timing import best_of  # noqa: E402

PAPER = {"runtime": 7.8, "energy": 5.3}  # Khan et al., TECS 2022 (abstract): FPGA / racetrack



def model(dim: int, length: int, classes: int = 6):
    rng = np.random.default_rng(0)
    im = rng.integers(0, 2, (len(hdc.ALPHABET), dim)).astype(bool)
    am = rng.integers(0, 2, (classes, dim)).astype(bool)
    return hdc.build_onnx(im, am, length=length, n=4)


def stacked_encoders(count: int, dim: int = 256):
    """``count`` independent 3-operand Xor chains with rotations: a large graph for the pass."""
    nodes, inputs, inits = [], [], []
    for i in range(count):
        x = f"x{i}"
        inputs.append(helper.make_tensor_value_info(x, TensorProto.BOOL, [1, dim]))
        for s in (1, 2):
            inits += [helper.make_tensor(f"hs{i}_{s}", TensorProto.INT64, [1], [dim - s]),
                      helper.make_tensor(f"he{i}_{s}", TensorProto.INT64, [1], [dim]),
                      helper.make_tensor(f"ls{i}_{s}", TensorProto.INT64, [1], [0]),
                      helper.make_tensor(f"le{i}_{s}", TensorProto.INT64, [1], [dim - s]),
                      helper.make_tensor(f"ax{i}_{s}", TensorProto.INT64, [1], [1])]
            nodes += [helper.make_node("Slice", [x, f"hs{i}_{s}", f"he{i}_{s}", f"ax{i}_{s}"], [f"h{i}_{s}"]),
                      helper.make_node("Slice", [x, f"ls{i}_{s}", f"le{i}_{s}", f"ax{i}_{s}"], [f"l{i}_{s}"]),
                      helper.make_node("Concat", [f"h{i}_{s}", f"l{i}_{s}"], [f"r{i}_{s}"], axis=1)]
        nodes += [helper.make_node("Xor", [x, f"r{i}_1"], [f"a{i}"]),
                  helper.make_node("Xor", [f"a{i}", f"r{i}_2"], [f"y{i}"])]
    outputs = [helper.make_tensor_value_info(f"y{i}", TensorProto.BOOL, [1, dim]) for i in range(count)]
    graph = helper.make_graph(nodes, "stacked", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    print("speed (best of %d)" % args.repeat)
    print(f"  {'D x letters':>14} {'build':>8} {'load':>8} {'recognise':>10} {'analyze':>8} {'racetrack':>10} "
          f"{'fpga':>8}")
    for dim, length in ((1000, 100), (10_000, 100), (10_000, 1000)):
        t_build, m = best_of(args.repeat, lambda: model(dim, length))
        t_load, graph = best_of(args.repeat, lambda: nvmc.load(m))

        def recognise():
            g = graph.copy()
            run_pipeline(g, "hdc-recognize", verify_each=True)
            return g

        t_pass, g = best_of(args.repeat, recognise)
        t_an, work = best_of(args.repeat, lambda: analyze(g.copy()))
        t_rtm, _ = best_of(args.repeat, lambda: backends.estimate(work, "racetrack-hdc"))
        t_fpga, _ = best_of(args.repeat, lambda: backends.estimate(work, "fpga"))
        print(f"  {dim:>7} x {length:<5} {t_build * 1e3:7.1f}ms {t_load * 1e3:7.1f}ms {t_pass * 1e3:9.1f}ms "
              f"{t_an * 1e3:7.1f}ms {t_rtm * 1e3:9.2f}ms {t_fpga * 1e3:7.2f}ms")
    big = nvmc.load(stacked_encoders(1000))
    t_big, g = best_of(args.repeat, lambda: run_pipeline(big.copy(), "hdc-recognize", verify_each=False))
    print(f"  hdc-recognize on {len(big)} nodes (1,000 encoders): {t_big:.2f} s")

    print("\nFPGA / racetrack for one query (nvmc; paper: runtime %.1fx, energy %.1fx)" % (PAPER["runtime"],
                                                                                         PAPER["energy"]))
    print(f"  {'D':>6} {'letters':>7} {'runtime':>9} {'energy':>8} {'energy, leakage gated':>22}")
    for dim in (1000, 4000, 10_000):
        for length in (50, 100, 400):
            g = nvmc.load(model(dim, length))
            run_pipeline(g, "hdc-recognize")
            rtm, fpga = nvmc.compile(g, ["racetrack-hdc", "fpga"]).estimates
            gated = nvmc.compile(g, "racetrack-hdc", sets=["racetrack.leakage_scale=0"]).estimate
            if not rtm.ok:
                print(f"  {dim:>6} {length:>7}   racetrack: {rtm.reason}")
                continue
            r, f = rtm.totals, fpga.totals
            print(f"  {dim:>6} {length:>7} {f['latency_s'] / r['latency_s']:8.1f}x {f['energy_j'] / r['energy_j']:7.2f}x "
                  f"{f['energy_j'] / gated.totals['energy_j']:21.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
