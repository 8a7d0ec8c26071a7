"""nvmc's systolic cycle model vs SCALE-Sim v3 on ResNet-50's layers (128x128 array, os).

    python benchmarks/bench_systolic.py [--scalesim-python PATH] [--layers N] [--recorded] [--repeat 5]

The layers are SCALE-Sim's own ResNet-50 topology (scale-sim-v3 @fab89b77
topologies/conv_nets/Resnet50.csv; the cleaned copy in tests/data/refs/scalesim/
topo_resnet50_all.csv: 53 convs and the FC layer as a 1x1 conv), mapped to GEMMs as SCALE-Sim
maps them (no padding, E = ceil((H - F + s) / s)).

* nvmc: ``systolic_map.compute_cycles`` on all layers at once (vectorised), best of --repeat;
  and, for scale, the whole systolic family (load + analyze + estimate) on the onnx zoo's
  ResNet-50 at 128x128 os.
* SCALE-Sim: when its Python (default /work/tmp/scalesim-venv/bin/python, a throwaway venv with
  scalesim==3.0.0 and numpy<2) exists and --recorded is not given, it runs on the same layers
  in a subprocess, is timed, and its per-layer compute cycles are compared with nvmc's (they
  must be identical). Otherwise the wall time recorded in
  tests/data/refs/scalesim/acceptance_refs.json (run ``resnet50_all__128x128_os``) is printed.

Prints both times and the ratio (goal: nvmc >= 200x faster at identical cycles).

USER (bandwidth-limited) mode, ``interface.mode = "user"`` (backends/systolic_bandwidth.py):
the family's estimate on examples/models/resnet50.onnx in CALC and in USER mode (default
interface = the device's DRAM, and 1 one-byte word per cycle), best of --repeat, and the closed form on the
54 SCALE-Sim layers with 64 kB SRAMs at 4 words/cycle next to the wall times SCALE-Sim's own
USER mode took per layer (tests/data/refs/scalesim/scalesim_user_bw_refs.json).

``array.dataflow = "auto"`` (per layer the fastest of os, ws, is): on examples/models/resnet50.onnx at
16x16 (the shipped array) and 128x128, CALC and USER, auto's latency and energy against each
fixed dataflow's, the layers per dataflow, and the estimate's time against a fixed dataflow's.

``mapping.tiling = "search"`` (per layer the DRAM-level tiles and loop order, backends/systolic_tiling.py):
on examples/models/resnet50.onnx, for each dataflow at the shipped 16x16 array, the DRAM bytes with the
fixed loop orders and with the search, latency and energy, and the estimate's time with and without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

import nvmc
from nvmc.backends import systolic_bandwidth as sbw
from nvmc.backends import systolic_map as smap
from timing import ZOO as ZOO_DIR, best_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFS = REPO / "tests" / "data" / "refs" / "scalesim"
RESNET50 = REPO / "examples" / "models" / "resnet50.onnx"
ZOO = ZOO_DIR / "light_resnet50.onnx"
DEFAULT_PY = Path("/work/tmp/scalesim-venv/bin/python")
ROWS = COLS = 128
DATAFLOW = "os"

CONFIG = """[general]
run_name = bench_resnet50

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   8192
FilterSramSzkB:  8192
OfmapSramSzkB:   8192
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""  # as tests/data/refs/scalesim (run_all.py): large SRAMs, CALC bandwidth -> 0 stall cycles

RUNNER = textwrap.dedent("""
    import csv, json, sys, time
    from scalesim.scale_sim import scalesim
    cfg, topo, layout, out = sys.argv[1:5]
    t0 = time.perf_counter()
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=False)
    s.run_scale(top_path=out)
    wall = time.perf_counter() - t0
    with open(out + "/" + s.config.get_run_name() + "/COMPUTE_REPORT.csv") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    col = rows[0].index("Total Cycles")
    print("RESULT " + json.dumps({"wall_s": wall, "cycles": [int(float(r[col])) for r in rows[1:] if r]}))
""")


def layers(limit: int | None) -> tuple[list[str], list[tuple[int, ...]]]:
    lines = (REFS / "topo_resnet50_all.csv").read_text().splitlines()
    rows = [[c.strip() for c in line.split(",")] for line in lines[1:] if line.strip()]
    rows = rows[:limit] if limit else rows
    return [r[0] for r in rows], [tuple(int(x) for x in r[1:8]) for r in rows]


def nvmc_cycles(dims: list[tuple[int, ...]]) -> np.ndarray:
    m, n, k = (np.array(x) for x in zip(*(smap.conv_gemm_scalesim(*d) for d in dims)))
    return smap.compute_cycles(DATAFLOW, ROWS, COLS, m, n, k)



def run_scalesim(python: Path, names: list[str], dims: list[tuple[int, ...]]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "cfg.cfg").write_text(CONFIG.format(rows=ROWS, cols=COLS, df=DATAFLOW))
        header = (REFS / "topo_resnet50_all.csv").read_text().splitlines()[0]
        body = "".join(f"{name},{','.join(map(str, d))},\n" for name, d in zip(names, dims))
        (tmp / "topo.csv").write_text(header + "\n" + body)
        (tmp / "runner.py").write_text(RUNNER)
        cmd = [str(python), str(tmp / "runner.py"), str(tmp / "cfg.cfg"), str(tmp / "topo.csv"),
               str(REFS / "layout_test.csv"), str(tmp / "out")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            raise SystemExit(f"SCALE-Sim failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        return json.loads(line[0][len("RESULT "):])


def recorded() -> dict:
    data = json.loads((REFS / "acceptance_refs.json").read_text())
    recs = [r for r in data["records"] if r["run_id"] == "resnet50_all__128x128_os"]
    return {"wall_s": recs[0]["wall_s"], "cycles": [r["compute_cycles"] for r in sorted(recs, key=lambda r:
                                                                                      r["layer_index"])]}


def user_mode(dims: list[tuple[int, ...]], repeat: int) -> None:
    """The cost of USER (bandwidth-limited) timing against CALC, on ResNet-50."""
    workload = nvmc.analyze(nvmc.load(RESNET50))
    runs = {"CALC": [], "USER, device DRAM": ["interface.mode=user"],
            "USER, 1 byte/cycle": ["interface.mode=user", "interface.bandwidth_words_per_cycle=1"]}
    base = None
    for label, sets in runs.items():
        target = nvmc.backends.load_target("systolic-sram-28nm", sets)
        t, est = best_of(repeat, lambda: nvmc.backends.estimate(workload, target))
        base = base or t
        print(f"{label:>20}: estimate of examples/models/resnet50.onnx ({len(workload)} nodes) {t * 1e3:7.2f} ms "
              f"({t / base:4.1f}x CALC); latency {est.totals['latency_s'] * 1e3:8.2f} ms, stall cycles "
              f"{est.events['stall_cycles'].sum():.3g} on {est.events['compute_cycles'].sum():.3g} compute")
    m, n, k = (np.array(x) for x in zip(*(smap.conv_gemm_scalesim(*d) for d in dims)))
    kw = dict(bandwidth=4, ifmap_capacity=65536, filter_capacity=65536, ofmap_capacity=65536)
    t_user, cyc = best_of(repeat, lambda: sbw.user_cycles(DATAFLOW, ROWS, COLS, m, n, k, **kw))
    recs = json.loads((REFS / "scalesim_user_bw_refs.json").read_text())["records"]
    walls = sorted(r["wall_s"] for r in recs if r["status"] == "ok")
    print(f"USER-mode closed form, {len(dims)} SCALE-Sim layers, {ROWS}x{COLS} {DATAFLOW}, 64 kB SRAMs, 4 words/cycle: "
          f"{t_user * 1e3:.2f} ms ({int(cyc['stall'].sum())} stall cycles on {int(cyc['compute'].sum())}); "
          f"SCALE-Sim's USER mode took {walls[len(walls) // 2]:.0f} s per layer (median of {len(walls)} recorded "
          f"runs, max {walls[-1]:.0f} s; 2 timed out at 300 s)")


def auto_dataflow(repeat: int) -> None:
    """``array.dataflow = "auto"`` on examples/models/resnet50.onnx: what it costs against a fixed
    dataflow (it costs all three, then picks per layer) and what it saves against the best single
    dataflow, at the shipped 16x16 array and at 128x128, in CALC and USER mode."""
    workload = nvmc.analyze(nvmc.load(RESNET50))
    for mode, sets in (("CALC", []), ("USER", ["interface.mode=user"])):
        for size in ("16x16", "128x128"):
            times, est = {}, {}
            for df in (*smap.DATAFLOWS, "auto"):
                target = nvmc.backends.load_target("systolic-sram-28nm", [f"array.size={size}",
                                                                          f"array.dataflow={df}", *sets])
                times[df], est[df] = best_of(repeat, lambda: nvmc.backends.estimate(workload, target))
            lat = {df: e.totals["latency_s"] for df, e in est.items()}
            energy = {df: e.totals["energy_j"] for df, e in est.items()}
            best = min(smap.DATAFLOWS, key=lat.get)
            fixed_t = float(np.mean([times[df] for df in smap.DATAFLOWS]))
            nodes = est["auto"].info["dataflow_nodes"]
            print(f"auto dataflow, {mode} {size:>7}: latency {lat['auto'] * 1e3:7.2f} ms, "
                  + "/".join(f"{lat[df] * 1e3:.2f}" for df in smap.DATAFLOWS) + " ms with os/ws/is: "
                  f"{100 * (1 - lat['auto'] / lat[best]):4.1f}% less than the best ({best}); energy "
                  f"{100 * (energy['auto'] / energy[best] - 1):+5.1f}% vs {best}'s; layers "
                  + ", ".join(f"{k} {df}" for df, k in nodes.items())
                  + f"; estimate {times['auto'] * 1e3:.2f} ms vs {fixed_t * 1e3:.2f} ms fixed "
                  f"({times['auto'] / fixed_t:.1f}x)")


def tiling_search(repeat: int) -> None:
    """``mapping.tiling = "search"`` on examples/models/resnet50.onnx: DRAM bytes fixed vs search, and
    what the search costs in estimate time."""
    workload = nvmc.analyze(nvmc.load(RESNET50))
    for df in (*smap.DATAFLOWS, "auto"):
        res = {}
        for tiling in ("fixed", "search"):
            target = nvmc.backends.load_target("systolic-sram-28nm", [f"array.dataflow={df}", f"mapping.tiling={tiling}"])
            res[tiling] = best_of(repeat, lambda: nvmc.backends.estimate(workload, target))
        (t_f, f), (t_s, s) = res["fixed"], res["search"]
        d_f, d_s = (float((e.events["dram_read_bytes"] + e.events["dram_write_bytes"]).sum()) for e in (f, s))
        order = s.events["loop_order"][np.isfinite(s.events["loop_order"])].astype(int)
        print(f"tiling search, resnet50 16x16 {df:>4}: DRAM {d_f / 1e6:7.1f} -> {d_s / 1e6:7.1f} MB "
              f"({100 * (d_s / d_f - 1):+5.1f}%), latency {f.totals['latency_s'] * 1e3:.2f} -> "
              f"{s.totals['latency_s'] * 1e3:.2f} ms, energy {f.totals['energy_j'] * 1e3:.2f} -> "
              f"{s.totals['energy_j'] * 1e3:.2f} mJ; {int((order < 6).sum())}/{order.size} layers searched-tiled; "
              f"estimate {t_f * 1e3:.2f} -> {t_s * 1e3:.2f} ms ({t_s / t_f:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalesim-python", type=Path, default=Path(os.environ.get("NVMC_SCALESIM_PYTHON", DEFAULT_PY)))
    ap.add_argument("--layers", type=int, help="only the first N layers (SCALE-Sim takes ~10 min for all)")
    ap.add_argument("--recorded", action="store_true", help="do not run SCALE-Sim; use its recorded time")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    names, dims = layers(args.layers)
    t_nvmc, cycles = best_of(args.repeat, lambda: nvmc_cycles(dims))
    print(f"ResNet-50 (SCALE-Sim topology), {len(dims)} layers, {ROWS}x{COLS} {DATAFLOW}")
    print(f"nvmc cycle model (vectorised): {t_nvmc * 1e6:9.1f} us  ({int(cycles.sum())} cycles in all)")

    target = nvmc.backends.load_target("systolic-sram-28nm", [f"array.size={ROWS}x{COLS}",
                                                              f"array.dataflow={DATAFLOW}"])
    t_full, est = best_of(args.repeat, lambda: nvmc.compile(nvmc.load(ZOO), target).estimate)
    workload = nvmc.analyze(nvmc.load(ZOO))
    t_est, _ = best_of(args.repeat, lambda: nvmc.backends.estimate(workload, target))
    print(f"nvmc systolic family on the zoo ResNet-50 ({len(workload)} nodes): load + analyze + estimate "
          f"{t_full * 1e3:.1f} ms, of which the estimate {t_est * 1e3:.2f} ms")

    user_mode(dims, args.repeat)
    auto_dataflow(args.repeat)
    tiling_search(args.repeat)

    live = args.scalesim_python.exists() and not args.recorded
    if live:
        print(f"running SCALE-Sim ({args.scalesim_python}) on the same layers ...", flush=True)
        ref = run_scalesim(args.scalesim_python, names, dims)
        how = "measured now"
    else:
        if args.layers:
            raise SystemExit("--layers needs a live SCALE-Sim run (the recorded time is for all layers)")
        ref = recorded()
        how = "recorded (acceptance_refs.json: 2 SCALE-Sim runs in parallel on a shared 2-core machine)"
    same = list(map(int, cycles)) == ref["cycles"]
    print(f"SCALE-Sim 3.0.0 wall time ({how}): {ref['wall_s']:.1f} s")
    print(f"per-layer compute cycles identical: {same} ({len(ref['cycles'])} layers)")
    print(f"speed-up, cycle model:          {ref['wall_s'] / t_nvmc:12.0f}x")
    print(f"speed-up, nvmc end to end:      {ref['wall_s'] / t_full:12.0f}x  (goal >= 200x)")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
