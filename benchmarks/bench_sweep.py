"""Sweep throughput: points/s in this process, with 1 and 2 local worker processes, and on a
Dask LocalCluster (not a timed test; run by hand).

    python benchmarks/bench_sweep.py [--capacities 24] [--repeat 2] [--no-dask]

The sweep: tiny_cnn, tiny_transformer and the zoo's squeezenet and shufflenet x the three
gpu-llc targets x iso-capacity/iso-area x N L2 capacities x 2 pipelines, each run into a
fresh database (so nothing is skipped). Prints the points/s of each runner (best of
--repeat), the speed-up over one worker, and how much of a run the writing process spends
writing rows (the serial part that bounds scaling), and the CPU time per point of this
process and its workers (independent of other load on the machine; Dask workers excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import onnx

from nvmc import sweep
from nvmc.sweep import store as store_mod
from nvmc.sweep import worker

REPO = Path(__file__).resolve().parents[1]
ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = [REPO / "examples" / "models" / "tiny_cnn.onnx", REPO / "examples" / "models" / "tiny_transformer.onnx",
          ZOO / "light_squeezenet.onnx", ZOO / "light_shufflenet.onnx"]


def write_spec(folder: Path, capacities: int) -> Path:
    caps = [f"{1 + 31 * i // max(1, capacities - 1)}MiB" for i in range(capacities)]
    path = folder / "bench.toml"
    path.write_text(f"""schema = "nvmc.sweep/1"
name = "bench"
models = {json.dumps([str(m) for m in MODELS])}
targets = ["sram", "stt-mram", "sot-mram"]
pipelines = ["", "canonicalize"]
[grid]
"llc.iso" = ["capacity", "area"]
"llc.capacity" = {json.dumps(sorted(set(caps), key=lambda c: int(c[:-3])))}
""")
    return path


class _TimedStore(sweep.Store):
    write_s = 0.0

    def write(self, rows):
        start = time.perf_counter()
        try:
            return super().write(rows)
        finally:
            self.write_s += time.perf_counter() - start


def _cpu() -> float:
    """CPU seconds of this process and of its finished (joined) children."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_once(spec, folder: Path, tag: str, **kw) -> tuple[float, float, int, float]:
    db = folder / f"{tag}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    worker._WORKLOADS.items.clear()  # forked workers would inherit this process's analyses
    with _TimedStore(db) as store:
        cpu = _cpu()
        start = time.perf_counter()
        summary = sweep.run_sweep(spec, store, **kw)
        seconds = time.perf_counter() - start
        cpu = _cpu() - cpu
        assert summary.counts["pending"] == 0 and summary.ran == len(spec.points)
        return seconds, store.write_s, summary.counts["error"], cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capacities", type=int, default=24, help="L2 capacities in the grid (1 MiB to 32 MiB)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        spec = sweep.load_spec(write_spec(folder, args.capacities))
        plan_s = time.perf_counter() - start
        n = len(spec.points)
        print(f"sweep: {len(spec.models)} models x {len(spec.targets)} targets x 2 iso x {args.capacities} "
              f"capacities x 2 pipelines = {n} points ({len(spec.groups())} model/pipeline groups); "
              f"spec expanded in {plan_s * 1e3:.0f} ms; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (others' work on the machine distorts the scaling)")
        runners = [("in-process (--workers 0)", dict(workers=0)), ("1 worker process", dict(workers=1)),
                   ("2 worker processes", dict(workers=2))]
        cluster = None
        if not args.no_dask:
            try:
                from distributed import LocalCluster

                cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
                runners.append(("Dask LocalCluster, 2 worker processes", dict(scheduler=cluster.scheduler_address)))
            except ImportError:
                print("(dask.distributed not installed: pip install 'nvmc[cluster]' to include it)")
        results = {}
        try:
            for label, kw in runners:
                best = min(run_once(spec, folder, label.split()[0], **kw) for _ in range(args.repeat))
                results[label] = best
                seconds, write_s, errors, cpu = best
                cpu_text = f"; CPU {1e3 * cpu / n:.2f} ms/point" if "Dask" not in label else ""
                print(f"  {label:<40} {n / seconds:8.1f} points/s  ({seconds:.2f} s; writing rows "
                      f"{100 * write_s / seconds:.0f}% of it{cpu_text}"
                      f"{'; ' + str(errors) + ' errors' if errors else ''})")
        finally:
            if cluster is not None:
                cluster.close()
        one = results["1 worker process"][0]
        for label in ("2 worker processes", "Dask LocalCluster, 2 worker processes"):
            if label in results:
                speedup = one / results[label][0]
                print(f"scaling, {label} vs 1 worker process: {speedup:.2f}x ({100 * speedup / 2:.0f}% parallel "
                      f"efficiency)")
        size = (folder / "2.sqlite").stat().st_size if (folder / "2.sqlite").exists() else 0
        print(f"database: {size / n / 1024:.1f} KiB per point (full JSON report included; "
              f"schema {store_mod.DB_SCHEMA})")


if __name__ == "__main__":
    main()
