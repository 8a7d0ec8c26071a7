"""Compile time of the ResNet-50 zoo model per target (not a timed test; run by hand).

    python benchmarks/bench_compile.py [--repeat 5] [--model PATH]

Prints, per shipped target: load + analyze (shared by every target) and the cost-model
time (best of --repeat runs), then one end-to-end `nvmc compile` subprocess per target.
Last, the cost model and the JSON report on a synthetic 100,000-node workload (scale).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import nvmc
from nvmc.ir import NvmcError
from nvmc import backends
from nvmc.passes.workload import NONMAC_KINDS, Workload
from timing import ZOO as ZOO_DIR, best_of  # noqa: E402

ZOO = ZOO_DIR / "light_resnet50.onnx"



def synthetic(n: int) -> Workload:
    """n nodes: 30 % 128 x 64 x 64 MatMuls with weights, the rest elementwise Adds."""
    mac = np.random.default_rng(0).random(n) < 0.3
    cols = {k: np.zeros(n, dtype=np.int64) for k in ("macs", "params", "gemm_batch", "gemm_m", "gemm_n", "gemm_k",
                                                     *NONMAC_KINDS)}
    for k, v in (("gemm_batch", 1), ("gemm_m", 128), ("gemm_n", 64), ("gemm_k", 64), ("params", 4096)):
        cols[k][mac] = v
    cols["macs"] = cols["gemm_batch"] * cols["gemm_m"] * cols["gemm_n"] * cols["gemm_k"]
    cols["add"][~mac] = 8192
    cols.update(weight_bytes=cols["params"] * 4.0, input_bytes=np.full(n, 32768.0),
                output_bytes=np.full(n, 32768.0), weight_density=np.ones(n))
    return Workload([f"n{i}" for i in range(n)], np.where(mac, "MatMul", "Add").tolist(), cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", type=Path, default=ZOO)
    args = ap.parse_args()

    t_load, graph = best_of(args.repeat, lambda: nvmc.load(args.model))
    t_analyze, workload = best_of(args.repeat, lambda: nvmc.analyze(nvmc.load(args.model)))
    print(f"model {args.model.name}: {len(graph)} nodes, {workload.totals['macs'] / 1e9:.2f} GMAC")
    print(f"  load {t_load * 1e3:8.1f} ms   load+analyze {t_analyze * 1e3:8.1f} ms   (best of {args.repeat})")
    print(f"{'target':<24}{'estimate (ms)':>14}{'cli compile (s)':>17}{'latency':>12}{'energy':>11}")
    env = dict(os.environ, NO_COLOR="1")
    for name in backends.shipped_targets():
        gpu_llc = backends.load_target(name).family == "gpu-llc"  # the family with iso-capacity / iso-area
        for iso in ("capacity", "area") if gpu_llc else (None,):
            target = backends.load_target(name, [f"llc.iso={iso}"] if iso else [])
            try:
                backends.estimate(workload, target)  # warm the library and the target's resolution
            except NvmcError as e:  # e.g. the HDC-only targets refuse a CNN: say so, go on
                print(f"{name:<24}{'refused: ' + e.message[:70]}")
                continue
            t_est, est = best_of(args.repeat, lambda: backends.estimate(workload, target))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nvmc", "compile", str(args.model), "--target", name,
                            *(["--iso", iso] if iso else [])], check=True, capture_output=True, env=env)
            t_cli = time.perf_counter() - start
            label = f"{name} (iso-{iso})" if iso else name
            print(f"{label:<24}{t_est * 1e3:14.2f}{t_cli:17.2f}{est.totals['latency_s'] * 1e3:10.3f} ms"
                  f"{est.totals['energy_j'] * 1e3:8.2f} mJ")
    big = synthetic(100_000)
    target = backends.load_target("sot-mram")
    t_est, est = best_of(args.repeat, lambda: backends.estimate(big, target))
    t_json, text = best_of(1, est.to_json)
    print(f"synthetic {len(big)} nodes on sot-mram: estimate {t_est * 1e3:.1f} ms, JSON report {t_json:.2f} s "
          f"({len(text) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
