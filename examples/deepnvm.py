"""DeepNVM++ with nvmc: a GPU's last-level cache in SRAM vs STT-MRAM vs SOT-MRAM.

    python examples/deepnvm.py [--batch 1]

Reproduces the study of DeepNVM++ (Inci, Isgenc, Marculescu; arXiv 2012.04559 / TCAD 2022,
paper 1 of shared/reference/seeds.md) with nvmc's ``gpu-llc`` cost model: a GTX 1080
Ti-class GPU whose 2816 KiB L2 is SRAM, STT-MRAM or SOT-MRAM, on CNNs (the onnx wheel's
zoo: AlexNet, GoogLeNet, ResNet-50, SqueezeNet, VGG-19) and a BERT-base-sized transformer
encoder block. It reports, for STT and SOT relative to SRAM:

* iso-capacity: the L2 EDP, energy, inference latency and area ratios;
* iso-area: the same with the MRAM L2 grown to the SRAM L2's area, and the capacity gained;
* the trend of the L2 EDP ratio with L2 capacity (1 to 32 MiB).

"L2 EDP" follows the paper: the L2's energy (dynamic reads and writes + leakage over the
run) times the run's latency. nvmc's whole-GPU EDP (compute + L2 + DRAM) is printed too.

Every nvmc number comes from the technology library (NVSim arrays, cited GPU figures)
and the workloads. The paper's figures (``PAPER``) are only printed beside them, to compare;
no function here returns them.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import onnx

import nvmc
from nvmc import backends
from nvmc.backends.gpu_llc import LLC_COMPONENTS
from nvmc.validate.seeds_compute import bert_layer

ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
CNNS = {"AlexNet": "light_bvlc_alexnet", "GoogLeNet": "light_inception_v1", "ResNet-50": "light_resnet50",
        "SqueezeNet": "light_squeezenet", "VGG-19": "light_vgg19"}
MRAMS = ("stt-mram", "sot-mram")
MIB = 2**20

# DeepNVM++ headline figures (abstract; params.md §2 "DeepNVM++ headline ratios", source DNV).
# Reduction factors SRAM / MRAM ("up to": the best workload). For printing only.
PAPER = {
    ("capacity", "stt-mram"): {"edp": 3.8, "area": 2.4},
    ("capacity", "sot-mram"): {"edp": 4.7, "area": 2.8},
    ("area", "stt-mram"): {"edp": 2.2, "capacity": 2.3},     # 2x in the arXiv/TCAD version
    ("area", "sot-mram"): {"edp": 2.4, "capacity": 3.3},     # 2.3x in the arXiv/TCAD version
}


@dataclass
class Ratios:
    """SRAM / MRAM for one model, target and iso mode (> 1: MRAM is better or smaller)."""

    llc_edp: float
    llc_energy: float
    latency: float          # MRAM latency / SRAM latency (> 1: MRAM slower)
    system_edp: float
    area: float
    capacity: float         # MRAM capacity / SRAM capacity


def workloads(batch: int = 1) -> dict[str, tuple]:
    """Name -> (Workload, batch) for the study's models."""
    out = {}
    for name, stem in CNNS.items():
        graph = nvmc.load(ZOO / f"{stem}.onnx")
        out[name] = (nvmc.analyze(graph), 1)
    out["BERT-base block"] = (nvmc.analyze(nvmc.load(bert_layer(batch=batch))), batch)  # d 768, 12 heads, seq 128
    return out


def llc_energy(est) -> float:
    return est.energy_of(*LLC_COMPONENTS)


def llc_edp(est) -> float:
    return llc_energy(est) * est.totals["latency_s"]


def compare(workload, batch: int, iso: str, sets=()) -> dict[str, Ratios]:
    """nvmc's SRAM / MRAM ratios for one workload."""
    run = {t: backends.estimate(workload, t, sets=[*sets, f"llc.iso={iso}"], batch=batch)
           for t in ("sram", *MRAMS)}
    base = run["sram"]
    out = {}
    for t in MRAMS:
        e = run[t]
        out[t] = Ratios(llc_edp=llc_edp(base) / llc_edp(e), llc_energy=llc_energy(base) / llc_energy(e),
                        latency=e.totals["latency_s"] / base.totals["latency_s"],
                        system_edp=base.totals["edp_js"] / e.totals["edp_js"],
                        area=base.totals["area_mm2"] / e.totals["area_mm2"],
                        capacity=e.info["llc_capacity_bytes"] / base.info["llc_capacity_bytes"])
    return out


def study(models: dict[str, tuple], sets=()) -> dict[str, dict[str, dict[str, Ratios]]]:
    """iso -> model -> target -> Ratios."""
    return {iso: {name: compare(wl, batch, iso, sets) for name, (wl, batch) in models.items()}
            for iso in ("capacity", "area")}


def capacity_trend(workload, batch: int, capacities_mib=(1, 2, 4, 8, 16, 32)) -> list[tuple[int, float, float]]:
    """(capacity MiB, SRAM/STT L2 EDP, SRAM/SOT L2 EDP) at iso-capacity."""
    rows = []
    for cap in capacities_mib:
        r = compare(workload, batch, "capacity", [f"llc.capacity={cap}MiB"])
        rows.append((cap, r["stt-mram"].llc_edp, r["sot-mram"].llc_edp))
    return rows


def best(per_model: dict[str, dict[str, Ratios]], target: str, field: str) -> tuple[float, str]:
    name = max(per_model, key=lambda m: getattr(per_model[m][target], field))
    return getattr(per_model[name][target], field), name


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ----------------------------------------------------------------------- report
def _paper(iso: str, target: str, key: str) -> str:
    v = PAPER[(iso, target)].get(key)
    return f"{v:.1f}x" if v else "-"


def _within(ours: float, paper: float | None) -> str:
    if paper is None:
        return ""
    err = ours / paper - 1
    return f"{err:+.0%} ({'within' if abs(err) <= 0.25 else 'outside'} 25 %)"


def print_study(results, models) -> None:
    for iso in ("capacity", "area"):
        per_model = results[iso]
        print(f"\n== iso-{iso}: SRAM / MRAM (x > 1: MRAM better); latency = MRAM / SRAM ==")
        last = "area" if iso == "capacity" else "capacity"
        cols = ("L2 EDP", "L2 energy", "latency", "GPU EDP", last)
        width = 11 * len(cols)
        print(f"{'':<17}" + "".join(f"{' ' + t + ' ':-^{width}}" for t in MRAMS))
        print(f"{'model':<17}" + "".join(f"{c:>11}" for _ in MRAMS for c in cols))
        for name in models:
            row = f"{name:<17}"
            for t in MRAMS:
                r = per_model[name][t]
                row += "".join(f"{v:11.2f}" for v in (r.llc_edp, r.llc_energy, r.latency, r.system_edp,
                                                      r.area if iso == "capacity" else r.capacity))
            print(row)
        print(f"{'geomean':<17}" + "".join(
            f"{geomean(getattr(per_model[m][t], k) for m in models):11.2f}"
            for t in MRAMS for k in ("llc_edp", "llc_energy", "latency", "system_edp",
                                     "area" if iso == "capacity" else "capacity")))
        print("\n  vs DeepNVM++ (paper: 'up to' over its workloads; nvmc: best model here)")
        for t in MRAMS:
            edp, who = best(per_model, t, "llc_edp")
            p = PAPER[(iso, t)]
            print(f"  {t:<9} L2 EDP  nvmc {edp:5.2f}x ({who})  paper {_paper(iso, t, 'edp'):>5}  "
                  f"{_within(edp, p['edp'])}")
            key = "area" if iso == "capacity" else "capacity"
            value = getattr(per_model[next(iter(models))][t], key)
            print(f"  {'':<9} {key:<7} nvmc {value:5.2f}x{'':<{len(who) + 3}}  paper {_paper(iso, t, key):>5}  "
                  f"{_within(value, p[key])}")


def print_trend(rows, name: str) -> None:
    print(f"\n== L2 EDP reduction vs L2 capacity, iso-capacity ({name}) ==")
    print(f"{'capacity':>10}{'SRAM/STT':>10}{'SRAM/SOT':>10}")
    for cap, stt, sot in rows:
        print(f"{cap:>7} MiB{stt:10.2f}{sot:10.2f}")
    first, last = rows[0], rows[-1]
    monotonic = all(b[1] >= a[1] and b[2] >= a[2] for a, b in zip(rows, rows[1:]))
    direction = "grows" if last[1] > first[1] and last[2] > first[2] else "does not grow"
    why = "" if monotonic else " (not monotonically: NVSim picks another array organisation at each capacity)"
    print(f"  from {first[0]} to {last[0]} MiB the MRAM advantage {direction}: STT {first[1]:.2f}x -> {last[1]:.2f}x, "
          f"SOT {first[2]:.2f}x -> {last[2]:.2f}x{why}.")
    lib = backends.library()
    s, m = (lib.array_table(x).at(last[0] * MIB) for x in ("sram", "stt-mram"))
    print(f"  DeepNVM++ reports the same direction, reaching orders of magnitude at large capacities; nvmc's\n"
          f"  growth is bounded by the NVSim leakage ratio, {s.leakage_w / m.leakage_w:.1f}x at {last[0]} MiB.")


SENSITIVITY = (
    ("as shipped", ()),
    ("no kernel overhead (gpu.kernel_overhead_s=0)", ("gpu.kernel_overhead_s=0",)),
    ("1 bank per L2 slice (llc.banks_per_slice=1)", ("llc.banks_per_slice=1",)),
    ("GEMM kernels at 50 % of peak (gpu.utilization=0.5)", ("gpu.utilization=0.5",)),
)
VARIANT_CELLS = {"stt-mram": "stt-mram-57f2", "sot-mram": "sot-mram-61f2"}


def sensitivity(models: dict[str, tuple]) -> list[tuple[str, float, float]]:
    """Best-model iso-capacity L2 EDP reduction (STT, SOT) under other assumptions and cells."""
    rows = []
    for label, sets in SENSITIVITY:
        per_model = {name: compare(wl, batch, "capacity", sets) for name, (wl, batch) in models.items()}
        rows.append((label, best(per_model, "stt-mram", "llc_edp")[0], best(per_model, "sot-mram", "llc_edp")[0]))
    per_model = {}
    for name, (wl, batch) in models.items():
        base = backends.estimate(wl, "sram", batch=batch)
        per_model[name] = {t: llc_edp(base) / llc_edp(backends.estimate(
            wl, t, sets=[f"llc.technology={VARIANT_CELLS[t]}"], batch=batch)) for t in MRAMS}
    rows.append(("other cells (STT 57.5 F^2, 5 ns write; SOT 60.61 F^2)",
                 max(r["stt-mram"] for r in per_model.values()), max(r["sot-mram"] for r in per_model.values())))
    return rows


def print_sensitivity(rows) -> None:
    print("\n== how the best iso-capacity L2 EDP reduction depends on assumptions and cells ==")
    print(f"  {'':<66}{'STT':>7}{'SOT':>7}")
    for label, stt, sot in rows:
        print(f"  {label:<66}{stt:7.2f}{sot:7.2f}")
    print(f"  {'DeepNVM++ (paper)':<66}{PAPER[('capacity', 'stt-mram')]['edp']:7.1f}"
          f"{PAPER[('capacity', 'sot-mram')]['edp']:7.1f}")


def print_checks(results, models) -> None:
    cap = results["capacity"]
    print("\n== acceptance ==")
    stt_best, sot_best = best(cap, "stt-mram", "llc_edp")[0], best(cap, "sot-mram", "llc_edp")[0]
    stt_mean = geomean(cap[m]["stt-mram"].llc_edp for m in models)
    sot_mean = geomean(cap[m]["sot-mram"].llc_edp for m in models)
    order = sot_best > stt_best > 1 and sot_mean > stt_mean > 1
    print(f"  iso-capacity L2 EDP ordering SOT > STT > SRAM (best model and geomean): {'yes' if order else 'NO'} "
          f"(best {sot_best:.2f}x > {stt_best:.2f}x > 1; geomean {sot_mean:.2f}x > {stt_mean:.2f}x > 1)")
    sot_wins = [m for m in models if cap[m]["sot-mram"].llc_edp > cap[m]["stt-mram"].llc_edp]
    stt_loses = [m for m in models if cap[m]["stt-mram"].llc_edp < 1]
    print(f"  per model: SOT beats STT on {len(sot_wins)} of {len(models)}; STT loses to SRAM on "
          f"{', '.join(stt_loses) if stt_loses else 'none'}")
    area = all(cap[m][t].area > 1 for m in models for t in MRAMS)
    print(f"  MRAM L2 smaller than SRAM at iso-capacity: {'yes' if area else 'NO'}")


def print_explanation(models) -> None:
    lib = backends.library()
    cap = 2816 * 1024
    s, t, o = (lib.array_table(x).at(cap) for x in ("sram", "stt-mram", "sot-mram"))
    print(f"""
== why nvmc's magnitudes differ from the paper's ==
  * Cells and node. DeepNVM++ characterises its own 16 nm STT/SOT bitcells (HSPICE + NVSim);
    its per-access tables are not available (params.md 'Not found'). nvmc uses NVSim arrays
    at 22 nm (NVSim has no 16 nm node) built from NVSim's sample STT cell (54 F^2) and the DH
    course project's SOT cell (81.5 F^2). At 2.75 MiB: SRAM / STT / SOT area {s.area_mm2:.2f} / {t.area_mm2:.2f} /
    {o.area_mm2:.2f} mm^2, ratios {s.area_mm2 / t.area_mm2:.2f}x and {s.area_mm2 / o.area_mm2:.2f}x.
    This SOT cell is larger than the STT cell, while the paper's SOT cell is denser than its
    STT cell (2.8x vs 2.4x): nvmc's SOT area and iso-area capacity gains (and, growing less,
    its iso-area EDP penalty) cannot match the paper's. The STT figures land within 25 % where
    they depend on area alone.
    The DH SOT cell is an MRAM cell with a short write: its read path is STT's, so the SOT
    read advantage DeepNVM++ reports (separate read transistor) cannot appear either.""")
    for name in ("AlexNet", "GoogLeNet"):
        wl, batch = models[name]
        est = backends.estimate(wl, "sram", batch=batch)
        reads, writes = est.events["l2_reads"].sum(), est.events["l2_writes"].sum()
        leak = est.energy["l2_leakage"].sum() / llc_energy(est)
        idle = est.latency["overhead"].sum() / est.totals["latency_s"]
        print(f"  * {name} (batch {batch}): L2 read:write {reads / writes:.1f}; leakage is {leak:.0%} of the SRAM L2's "
              f"energy; kernel gaps are {idle:.0%} of the run.")
    weights = models["AlexNet"][0].totals["weight_bytes"] / MIB
    leak_ratio = s.leakage_w / t.leakage_w
    print(f"""  * Writes. The STT cell writes with 80 uA for 10 ns: {t.write_energy_j * 1e9:.2f} nJ per 128 B line
    vs SRAM's {s.write_energy_j * 1e9:.2f} nJ. nvmc's L2 writes every kernel output and every line filled from DRAM
    (nvprof's l2_write_transactions count no fills; that the paper used them is unconfirmed).
    AlexNet streams {weights:.0f} MiB of weights through the L2: every byte is a fill, so STT
    loses to SRAM there. NVSim's original STT cell (57.5 F^2, 5 ns, 41 uA) writes for a third of it.
  * Leakage share. SRAM leaks {s.leakage_w:.2f} W vs {t.leakage_w:.2f} W (STT) and {o.leakage_w:.2f} W (SOT),
    a {leak_ratio:.1f}x ratio: the more of the SRAM L2's energy is leakage (small kernels, kernel gaps, large
    capacities), the closer the L2 EDP reduction comes to it. It bounds nvmc's 'up to'
    figures at this capacity, and the trend with capacity follows from it. NVSim's 22 nm
    high-performance devices at 350 K leak a lot (nvsim/README.md, caveat 2), which favours
    MRAM; low-leakage SRAM would shrink every reduction here.
  * Latency. Each layer runs at the slowest of compute, L2 (accesses x NVSim latency over
    22 slices x 4 banks, assumed) and DRAM, plus a 5 us kernel gap (assumed); MRAM's longer
    latencies slow only the L2-bound layers, so the latency ratios stay near 1.""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8, help="batch of the transformer block (the zoo CNNs have batch 1)")
    args = ap.parse_args()
    models = workloads(args.batch)
    print("DeepNVM++ with nvmc: GTX 1080 Ti-class GPU, 2816 KiB L2; NVSim 22 nm arrays; "
          f"models: {', '.join(models)}")
    results = study(models)
    print_study(results, models)
    wl, batch = models["ResNet-50"]
    print_trend(capacity_trend(wl, batch), "ResNet-50")
    print_sensitivity(sensitivity(models))
    print_checks(results, models)
    print_explanation(models)


if __name__ == "__main__":
    main()
