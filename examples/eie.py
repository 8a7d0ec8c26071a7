"""EIE on compressed fully-connected layers, against CPU and GPU; and the carbon of SRAM vs
MRAM systolic targets over a deployment lifetime.

    python examples/eie.py            # AlexNet FC6-8 and VGG-16 FC6-8
    python examples/eie.py --quick    # AlexNet only (what the tests run)

The layers are AlexNet's / VGG-16's fully-connected stacks (9216-4096-4096-1000 and
25088-4096-4096-1000) with seeded random weights, each fed by a ReLU as in the real
networks, pruned to 10 % density and shared to 16 values (4-bit indices):
``prune{sparsity=0.9},share-weights{clusters=16}``. nvmc measures the activation density by
running the model in onnxruntime on seeded inputs, and the load imbalance from the pruned
weights. Random weights give ~50 % activation density where the paper's trained AlexNet
gives 35 % (its Table III): the difference is in the data, not in the model of the engine.

The paper's figures are printed beside nvmc's, never used as outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nvmc  # noqa: E402
from nvmc.validate.nets import fc_stack  # noqa: E402
from nvmc.validate.seeds_pim import EIE_PASSES as PIPELINE  # noqa: E402

PAPER = {"gops": 102, "power_w": 0.6, "alexnet_fc_fps": 1.88e4, "vs_cpu": 189, "vs_gpu": 13}


def run_eie(name: str, sizes: list[int], sets: tuple[str, ...] = ()) -> dict:
    from nvmc.backends import load_target

    out = nvmc.compile(fc_stack(name, sizes), [load_target("eie", list(sets)), "cpu", "gpu"], passes=PIPELINE)
    dense = nvmc.compile(fc_stack(name, sizes), ["cpu", "gpu"])   # the paper's baselines run the dense model
    eie, cpu_c, gpu_c = out.estimates
    cpu_d, gpu_d = dense.estimates
    t = eie.totals
    row = {"model": name, "latency_s": t["latency_s"], "fps": t["throughput_ips"], "gops": eie.info["effective_gops"],
           "dense_gops": eie.info["dense_equivalent_gops"], "power_w": eie.info["power_w"],
           "act_density": eie.info["mean_activation_density"], "load_balance": eie.info["load_balance"],
           "vs_cpu_dense": cpu_d.totals["latency_s"] / t["latency_s"],
           "vs_gpu_dense": gpu_d.totals["latency_s"] / t["latency_s"],
           "vs_cpu_compressed": cpu_c.totals["latency_s"] / t["latency_s"],
           "vs_gpu_compressed": gpu_c.totals["latency_s"] / t["latency_s"],
           "energy_vs_cpu_dense": cpu_d.totals["energy_j"] / t["energy_j"],
           "energy_vs_gpu_dense": gpu_d.totals["energy_j"] / t["energy_j"],
           "energy_by_component": eie.energy_by_component(), "sparsity": eie.info["activation_sparsity"],
           "spilled": eie.info["spilled_layers"], "notes": eie.notes}
    return row


def speedup_sources(row: dict, sizes: list[int]) -> str:
    """Where the speed-up over a dense engine with the same PEs comes from."""
    dense_cycles = sum(k * n for k, n in zip(sizes, sizes[1:])) / 64
    weight = 1 / 0.1
    act = 1 / row["act_density"]
    return (f"vs a dense 64-PE engine: weight sparsity x{weight:.1f}, activation skipping x{act:.2f}, "
            f"load balance x{row['load_balance']:.2f} -> x{weight * act * row['load_balance']:.1f} "
            f"(dense engine {dense_cycles / 800e6 * 1e6:.0f} us)")


def carbon_comparison(lifetime_years: float = 5.0) -> list[dict]:
    """SRAM vs SOT-MRAM systolic targets at 7 nm on the tiny CNN, over a lifetime."""
    rows = []
    for grid in ("world", "iceland"):
        out = nvmc.compile("examples/models/tiny_cnn.onnx", ["systolic-sram-7nm", "systolic-sot-7nm"],
                           grid=grid, lifetime_years=lifetime_years)
        for e in out.estimates:
            c = e.carbon
            rows.append({"target": e.target, "grid": grid, "area_mm2": c.get("area_mm2"),
                         "operational_g": c["operational_g_lifetime"], "embodied_g": c["embodied_g"],
                         "per_inference_g": c["total_g_per_inference"], "embodied_share": c["embodied_share"]})
    return rows


def main(quick: bool = False) -> None:
    models = [("alexnet_fc", [9216, 4096, 4096, 1000])]
    if not quick:
        models.append(("vgg16_fc", [25088, 4096, 4096, 1000]))
    print(f"EIE ({PIPELINE}) vs CPU / GPU rooflines; paper: {PAPER['gops']} GOPS at {PAPER['power_w']} W, "
          f"AlexNet FC {PAPER['alexnet_fc_fps']:.3g} frames/s, {PAPER['vs_cpu']}x / {PAPER['vs_gpu']}x faster than "
          "CPU / GPU (dense models)")
    runs = [(name, sizes, ()) for name, sizes in models]
    runs.insert(1, ("alexnet_fc", [9216, 4096, 4096, 1000], ("pe.pointer_capacity=64KiB",)))
    for name, sizes, sets in runs:
        r = run_eie(name, sizes, sets)
        print(f"\n{name}{' with ' + ', '.join(sets) if sets else ''}: {r['spilled']} layer(s) spilled to DRAM")
        print(f"  {r['fps']:.3g} frames/s, {r['gops']:.0f} GOPS effective ({r['dense_gops']:.0f} GOPS "
              f"dense-equivalent), {r['power_w'] * 1e3:.0f} mW; activation density {r['act_density']:.2f} "
              f"({r['sparsity']}), PE load balance {100 * r['load_balance']:.0f} %")
        print(f"  faster than CPU x{r['vs_cpu_dense']:.0f} / GPU x{r['vs_gpu_dense']:.1f} (dense models; paper x189 / "
              f"x13), than CPU x{r['vs_cpu_compressed']:.0f} / GPU x{r['vs_gpu_compressed']:.1f} running the compressed "
              f"model densely")
        print(f"  energy: x{r['energy_vs_cpu_dense']:.0f} vs CPU, x{r['energy_vs_gpu_dense']:.0f} vs GPU (paper x24,000 "
              "/ x3,400: its baselines are measured whole-system power, nvmc's rooflines charge arithmetic, DRAM and "
              "a static share only)")
        total = sum(r["energy_by_component"].values())
        print("  energy by component: " + ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in
                                                    sorted(r["energy_by_component"].items(), key=lambda kv: -kv[1])
                                                    if v > 0))
        print("  " + speedup_sources(r, sizes))
    print("\ncarbon over 5 years at 50 % use, tiny CNN, 7 nm systolic targets (modelled buffer area only):")
    for r in carbon_comparison():
        print(f"  {r['target']:<20} grid {r['grid']:<8} area {r['area_mm2']:.3f} mm2  operational "
              f"{r['operational_g']:.3g} g  embodied {r['embodied_g']:.3g} g  embodied share "
              f"{100 * r['embodied_share']:.0f} %")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
