"""Speed of the EIE path: calibration (onnxruntime activation run + per-PE CSC counts from the
weights) and the vectorised estimate, on the compressed VGG-16 FC stack and on a deep stack
of FC layers. Prints the figures; not a timed test.

    python benchmarks/bench_eie.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import nvmc  # noqa: E402
from eie import PIPELINE, fc_stack  # noqa: E402
from nvmc.backends import family_module, load_target  # noqa: E402
from nvmc.calibrate import calibrate  # noqa: E402


def bench(name: str, sizes: list[int]) -> None:
    g = nvmc.load(fc_stack(name, sizes))
    t0 = time.perf_counter()
    nvmc.run_passes(g, PIPELINE)
    t1 = time.perf_counter()
    w = nvmc.analyze(g)
    target = load_target("eie")
    t2 = time.perf_counter()
    cw = calibrate(g, w, [{"pes": 64}])
    t3 = time.perf_counter()
    est = family_module("sparse-engine").estimate(cw, target)
    t4 = time.perf_counter()
    params = sum(k * n for k, n in zip(sizes, sizes[1:]))
    print(f"{name}: {len(sizes) - 1} FC layers, {params / 1e6:.1f} M weights: passes {t1 - t0:.2f} s, "
          f"calibrate {t3 - t2:.2f} s, estimate {1e3 * (t4 - t3):.1f} ms -> {est.info['effective_gops']:.0f} GOPS, "
          f"{est.info['power_w'] * 1e3:.0f} mW, {est.totals['throughput_ips']:.3g} frames/s")


if __name__ == "__main__":
    bench("vgg16_fc", [25088, 4096, 4096, 1000])
    bench("deep_fc", [1024] * 65)
