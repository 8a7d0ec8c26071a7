"""Data-parallel training cost: speed of the model and its headline figures (run by hand).

    python benchmarks/bench_collective.py [--repeat 3]

Prints: the time of one data-parallel iteration estimate (training step + bucketed,
overlapped all-reduce) for ResNet-50 and VGG-19 on the gpu target, and on a synthetic
100,000-node workload; then the iteration breakdown of ResNet-50 at N = 64 on every
interconnect preset (communication share with and without overlap, samples/s, scaling
efficiency, energy per sample).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import nvmc
from nvmc.backends.collective import interconnects, network
from nvmc.backends.training import data_parallel
from timing import ZOO, best_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    net = network("25gbe", ["net.bucket=1MiB"])
    print("time of one data-parallel iteration estimate (N=64, 25gbe, 1 MiB buckets), best of", args.repeat)
    for stem in ("light_resnet50", "light_vgg19"):
        out = nvmc.compile(ZOO / f"{stem}.onnx", "gpu")
        est, wl = out.estimates[0], out.workload
        t, r = best_of(args.repeat, lambda: data_parallel(est, wl, devices=64, batch=32, net=net))
        d = r.info["distributed"]
        print(f"  {stem[6:]:<10} {len(est.names):>6} nodes  {t * 1e3:7.2f} ms  ({d['buckets']} buckets)")
    try:
        from bench_compile import synthetic

        wl = synthetic(100_000)
        from nvmc.backends import family_module, load_target

        target = load_target("gpu")
        est = family_module(target.family).estimate(wl, target, batch=1)
        t, r = best_of(args.repeat, lambda: data_parallel(est, wl, devices=64, batch=32, net=net))
        buckets = r.info["distributed"]["buckets"]
        print(f"  synthetic  {len(est.names):>6} nodes  {t * 1e3:7.2f} ms  ({buckets} buckets)")
    except Exception as e:  # the synthetic workload generator belongs to another benchmark
        print(f"  synthetic: skipped ({e})")

    out = nvmc.compile(ZOO / "light_resnet50.onnx", "gpu")
    est, wl = out.estimates[0], out.workload
    print("\nResNet-50, gpu target, batch 32 per device, N = 64")
    print(f"  {'interconnect':<18} {'iteration':>10} {'comm (no ovl)':>14} {'comm (ovl)':>11} {'samples/s':>10} "
          f"{'efficiency':>10} {'J/sample':>9}")
    for name in interconnects():
        r = data_parallel(est, wl, devices=64, batch=32, net=network(name))
        d = r.info["distributed"]
        print(f"  {name:<18} {d['iteration_s'] * 1e3:8.1f}ms {100 * d['comm_share_no_overlap']:13.1f}% "
              f"{100 * d['comm_share']:10.1f}% {d['samples_per_s']:10.0f} {100 * d['scaling_efficiency']:9.1f}% "
              f"{r.totals['energy_per_inference_j']:9.3f}")


if __name__ == "__main__":
    main()
