"""nvmc's crossbar family next to DNN+NeuroSim V1.3 on VGG8 / CIFAR-10 (32x32 inputs).

    python examples/crossbar/neurosim_compare.py

The NeuroSim figures are a self-run of DNN+NeuroSim V1.3's C++ simulator at its default
Param.cpp on synthetic traces (how: neurosim_traces.py; its full output:
neurosim_v13_vgg8.out). nvmc runs the same layer shapes (nets.vgg8()) on the target
``rram-neurosim``, which takes NeuroSim V1.3's array, cell, ADC and node defaults
(data/crossbar/neurosim-v13.toml) and ISAAC's periphery for what NeuroSim models in its own
circuits (DACs, shift-and-add, buffers, router).

Where they differ, and why (see also the closing notes printed below):
* ADC: NeuroSim's default is a multi-level sense amplifier (MLSA); nvmc uses NeuroSim's
  SAR model (SarADC.cpp) with ISAAC's ADC areas. Both count the column current inside
  the ADC energy (nvmc books it as "crossbar").
* Mapping: NeuroSim's default "novel mapping" lays a conv's k x k kernel positions into
  separate sub-arrays and sizes tiles/PEs to the network; nvmc unrolls im2col into
  128-row arrays, ISAAC-sized tiles (12 PEs x 8 arrays).
* Latency: NeuroSim's layer latency is dominated by buffer and interconnect transfers
  ("Other peripheries"); nvmc overlaps buffer traffic with the arrays' reads.
* NeuroSim reports leakage energy (LSTP periphery); nvmc does not model CMOS leakage.
* NeuroSim's activity comes from the traces; nvmc assumes half of the input bits are 1.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

from nvmc.validate import nets  # the reference networks, defined once in the package

import nvmc  # noqa: E402

# DNN+NeuroSim V1.3, self-run (neurosim_v13_vgg8.out): per layer (readLatency ns, readDynamicEnergy pJ)
NEUROSIM_LAYERS = {
    "conv1": (379809, 1.46889e6), "conv2": (566444, 1.30137e7), "conv3": (119167, 5.48257e6),
    "conv4": (193417, 1.02813e7), "conv5": (35428.3, 3.71539e6), "conv6": (61200.4, 7.18491e6),
    "fc1": (2595.14, 661978), "fc2": (1249.73, 5981.57),
}
NEUROSIM_TOTALS = {
    "latency_s": 1.35931e6 * 1e-9, "dynamic_energy_j": 4.18147e7 * 1e-12, "leakage_energy_j": 1.48458e6 * 1e-12,
    "area_mm2": 5.87334e7 * 1e-6, "adc_energy_j": 2.12731e7 * 1e-12, "adc_area_mm2": 2.45324e7 * 1e-6,
    "array_area_mm2": 1.5408e6 * 1e-6, "tops_per_w": 23.3191, "fps": 735.667,
}


def main() -> dict:
    est = nvmc.compile(nets.vgg8(), "rram-neurosim").estimate
    t = est.totals
    index = {n: i for i, n in enumerate(est.names)}
    print("VGG8 / CIFAR-10 on rram-neurosim (nvmc) vs DNN+NeuroSim V1.3 (self-run, default Param.cpp)\n")
    print(f"{'layer':<7}{'nvmc latency':>14}{'NeuroSim':>12}{'ratio':>8}"
          f"{'nvmc energy':>14}{'NeuroSim':>12}{'ratio':>8}")
    for name, (ns_lat, ns_e) in NEUROSIM_LAYERS.items():
        i = index[name]
        lat, e = est.node_latency[i], est.node_energy[i]
        print(f"{name:<7}{lat * 1e6:>11.1f} us{ns_lat * 1e-3:>9.1f} us{lat / (ns_lat * 1e-9):>8.2f}"
              f"{e * 1e6:>11.2f} uJ{ns_e * 1e-6:>9.2f} uJ{e / (ns_e * 1e-12):>8.2f}")
    ns = NEUROSIM_TOTALS
    ns_energy = ns["dynamic_energy_j"] + ns["leakage_energy_j"]
    adc_e = est.energy_of("adc", "crossbar")
    rows = [
        ("latency / image", t["latency_s"] * 1e3, ns["latency_s"] * 1e3, "ms"),
        ("energy / image", t["energy_j"] * 1e6, ns_energy * 1e6, "uJ"),
        ("ADC + column current energy", adc_e * 1e6, ns["adc_energy_j"] * 1e6, "uJ"),
        ("chip area", t["area_mm2"], ns["area_mm2"], "mm2"),
        ("ADC area", est.area["adc"], ns["adc_area_mm2"], "mm2"),
        ("array (cell) area", est.area["crossbar"], ns["array_area_mm2"], "mm2"),
        ("TOPS/W", 2 * t["macs"] / t["energy_j"] / 1e12, ns["tops_per_w"], ""),
    ]
    print(f"\n{'total':<30}{'nvmc':>12}{'NeuroSim':>12}{'nvmc/NS':>9}")
    for label, mine, theirs, unit in rows:
        print(f"{label:<30}{mine:>9.3g} {unit:<3}{theirs:>8.3g} {unit:<3}{mine / theirs:>8.2f}")
    print("\nnvmc energy by component (uJ):", {k: round(v * 1e6, 2) for k, v in est.energy_by_component().items()})
    print("nvmc area by component (mm2):", {k: round(v, 2) for k, v in est.area.items()})
    for note in est.notes:
        print("note:", note)
    print("\nAssumptions of the comparison: same layer shapes, 8-bit weights and inputs, 2-bit cells, 5-bit ADCs "
          "shared by 8 columns, 128x128 arrays, 22 nm, layer-by-layer; NeuroSim on synthetic traces "
          "(neurosim_traces.py), nvmc with half of the input bits at 1. Differences: MLSA vs SAR ADC, novel vs "
          "im2col mapping, NeuroSim's buffer/interconnect-bound latency and its leakage (see the module doc).")
    return {"nvmc": t, "neurosim": ns}


if __name__ == "__main__":
    main()
