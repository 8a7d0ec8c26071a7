"""Speed of the DRAM-PIM cost models and their headline figures (not a timed test; run by hand).

    python benchmarks/bench_dram_pim.py [--repeat 5] [--nodes 100000]

Prints, per target (upmem, mensa, edge-tpu, simdram, cpu, gpu): the cost-model time on ResNet-50
(best of --repeat) and on a synthetic workload of --nodes nodes (scale), then the figures of
examples/dram_pim.py that stand for the paper's (nvmc's numbers, the paper's beside them).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


import nvmc
from nvmc import backends
from timing import ZOO as ZOO_DIR, best_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ZOO = ZOO_DIR / "light_resnet50.onnx"
TARGETS = ("upmem", "mensa", "edge-tpu", "simdram", "cpu", "gpu")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=100_000)
    args = ap.parse_args()
    synthetic = _load("bench_compile", ROOT / "benchmarks" / "bench_compile.py").synthetic(args.nodes)
    workload = nvmc.analyze(nvmc.load(ZOO))
    print(f"{ZOO.name}: {len(workload)} nodes; synthetic: {args.nodes} nodes")
    print(f"{'target':<10} {'resnet50 model':>15} {'synthetic model':>16} {'per node':>10}  latency (resnet50)")
    for name in TARGETS:
        target = backends.load_target(name)
        t_small, est = best_of(args.repeat, lambda: backends.estimate(workload, target))
        t_big, _ = best_of(max(1, args.repeat // 2), lambda: backends.estimate(synthetic, target))
        print(f"{name:<10} {t_small * 1e3:>12.2f} ms {t_big * 1e3:>13.1f} ms {t_big / args.nodes * 1e6:>7.2f} µs  "
              f"{est.totals['latency_s'] * 1e3:.3g} ms")

    example = _load("dram_pim_example", ROOT / "examples" / "dram_pim.py")
    print("\nheadline figures (nvmc | paper):")
    gemv = example.study_gemv()
    binary = example.study_binary()
    edge = example.study_edge()
    print("\nsummary (nvmc | paper):")
    print(f"  UPMEM over GPU, oversubscribed int8 GEMV: {gemv[131072]:.2f}x at full PCIe, {gemv['paged']:.1f}x with "
          "demand paging | ~23x")
    lstm = edge["LSTM stack (batch 1)"]
    cnn = edge["edge CNN (depthwise-separable)"]
    print(f"  Mensa over Edge TPU: LSTM stack {lstm[0]:.2f}x throughput / {lstm[1]:.2f}x energy efficiency; edge CNN "
          f"{cnn[0]:.2f}x / {cnn[1]:.2f}x | 3.1x / 3.0x (24 Google models)")
    print(f"  SIMDRAM on a binary CNN over CPU / GPU: {binary['binary_cpu']:.2f}x / {binary['binary_gpu']:.2f}x "
          f"(16 ranks x 4 channels over CPU: {binary['binary_cpu_16x4']:.2f}x); bulk XOR {binary['bulk_cpu']:.1f}x / "
          f"{binary['bulk_gpu']:.2f}x | 16.7x / 1.4x")


if __name__ == "__main__":
    main()
