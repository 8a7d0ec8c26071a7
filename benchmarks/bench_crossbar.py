"""The crossbar family's speed and headline figures (not a timed test; run by hand).

    python benchmarks/bench_crossbar.py [--repeat 3]

Prints, per model on rram-pim: load + analyze, the cost model's time for inference and for
a training step (BP, DFA), and the estimate's latency / energy / area; then the cost model
on a synthetic 100,000-node workload (scale), and the crossbar-noise pass (calibration,
rewrite, measured error in onnxruntime) on ResNet-18 at 64x64 and on VGG8 (random weights).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import nvmc
from nvmc import backends
from nvmc.passes import run_pipeline

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "crossbar"))
sys.path.insert(0, str(REPO / "benchmarks"))

import nets  # noqa: E402
from bench_compile import synthetic  # noqa: E402
from timing import ZOO, best_of  # noqa: E402




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    models = {"vgg8 (cifar)": nets.vgg8(), "resnet18 (224)": nets.resnet18(), "mlp16": nets.mlp(16),
              "resnet50 (zoo)": ZOO / "light_resnet50.onnx", "tiny_transformer": REPO / "examples" / "models" /
              "tiny_transformer.onnx"}
    print(f"{'model':<18}{'nodes':>7}{'analyze':>10}{'infer':>9}{'train bp':>10}{'train dfa':>10}"
          f"{'latency':>11}{'energy':>11}{'area':>10}")
    for label, model in models.items():
        t_an, workload = best_of(args.repeat, lambda: nvmc.analyze(nvmc.load(model)))
        times = {}
        for mode, sets in (("infer", []), ("bp", ["run.mode=train", "training.algorithm=bp"]),
                           ("dfa", ["run.mode=train", "training.algorithm=dfa"])):
            target = backends.load_target("rram-pim", sets)
            backends.estimate(workload, target)
            times[mode], est = best_of(args.repeat, lambda: backends.estimate(workload, target))
            if mode == "infer":
                infer = est
        t = infer.totals
        print(f"{label:<18}{len(workload):>7}{t_an * 1e3:>8.1f}ms{times['infer'] * 1e3:>7.2f}ms"
              f"{times['bp'] * 1e3:>8.2f}ms{times['dfa'] * 1e3:>8.2f}ms{t['latency_s'] * 1e3:>8.3f} ms"
              f"{t['energy_j'] * 1e6:>8.2f} uJ{t['area_mm2']:>6.1f} mm2")
    big = synthetic(100_000)
    target = backends.load_target("rram-pim")
    t_est, est = best_of(args.repeat, lambda: backends.estimate(big, target))
    print(f"synthetic {len(big)} nodes on rram-pim: estimate {t_est * 1e3:.1f} ms "
          f"({est.info['arrays_required']} arrays, {est.info['tiles']} tiles)")
    for label, model in (("resnet18 (64x64)", nets.resnet18(size=64)),
                         ("vgg8 (cifar)", nets.vgg8())):
        graph = nvmc.load(model)
        start = time.perf_counter()
        result = run_pipeline(graph, "crossbar-noise{sigma=0.1,samples=2}")
        elapsed = time.perf_counter() - start
        r = result.records[0].result
        print(f"crossbar-noise on {label}: {elapsed:.2f} s for {int(r.stats['layers'])} layers "
              f"({r.stats['cells']:.3g} cells), SQNR {r.error.get('sqnr_db', float('nan')):.1f} dB, "
              f"cosine {r.error.get('cosine', float('nan')):.4f}")


if __name__ == "__main__":
    main()
