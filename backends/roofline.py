"""The ``roofline`` family: CPU and GPU baselines as rooflines with cited peaks, for paper-style
ratios (``nvmc compile model --target upmem --compare gpu,cpu``).

A device of the technology library gives the peaks (``cpu``: ``data/devices/xeon-e3-1275-v3.toml``;
``gpu``: ``gtx-1080-ti.toml`` with the extras in ``gtx-1080-ti-roofline.toml``). Per node,
vectorised:

* compute time = MACs / (peak MAC rate of the node's precision x utilization) + element ops /
  the FP32 rate. The precision (``dram_pim.precisions``) picks the rate: float32 (and 16-bit) at
  the FP32 FMA rate, int8 at the device's int8 dot-product rate, 1-bit operands at its
  XNOR-popcount rate;
* memory time = DRAM bytes / DRAM bandwidth. A node reads its weights and, unless they fit in
  half of the last-level cache (``llc_bytes``: produced by the node before and still there),
  its input activations, and writes its output unless it fits there too. When the whole model's
  weights fit in the cache they stay there between inferences and cost no DRAM traffic;
* a GPU holds the weights in its own memory. When weights plus the largest layer's activations
  exceed it (*oversubscription*), the excess part of every layer's weights crosses the host link
  (PCIe) at every inference: link time = those bytes / link bandwidth;
* a node takes the longest of the three (units overlap) plus a per-operator overhead (kernel
  launch / framework dispatch). Views and folded nodes are free.

Energy: arithmetic (MACs x energy of one MAC at the precision, element ops at the FP32 MAC energy),
DRAM bytes x energy per bit, link bytes x energy per bit, plus static power (a fraction of the
TDP) x time. No area is reported: these are reference points, not designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported
from .errors import TargetError
from .dram_pim import Knobs, device, node_kinds, precision_class, precisions, tech
from .estimate import Estimate
from .target import Field, Target
from .techlib import Param
from .units import format_capacity

FAMILY = "roofline"

SCHEMA: dict[str, dict[str, Field]] = {
    "device": {
        "name": Field("str", "the CPU or GPU, a device of the technology library (data/devices/)", required=True),
        "kind": Field("choice", "which keys of the device file hold the peaks", required=True,
                      choices=("cpu", "gpu")),
        "extras": Field("str", "a second data file with the figures the device file lacks (int8 / binary rates, "
                               "host link, static power); default: none"),
    },
    "compute": {
        "utilization": Field("float", "fraction of the peak MAC rate sustained (default: the device's)", maximum=1.0),
        "op_overhead_s": Field("float", "per operator: kernel launch / framework dispatch", minimum=0.0, unit="s"),
    },
    "memory": {
        "bandwidth_bytes_per_s": Field("float", "DRAM bandwidth", unit="B/s"),
        "capacity": Field("capacity", "DRAM capacity"),
        "llc": Field("capacity", "last-level cache (activations that fit in half of it stay on chip)"),
        "host_link_bytes_per_s": Field("float", "GPU only: host link bandwidth for oversubscribed weights",
                                       unit="B/s"),
    },
}

# the device file keys of each kind: (rates, memory)
_KEYS = {
    "gpu": {"cores": "compute.cuda_cores", "clock": "compute.boost_clock_hz", "utilization": "compute.utilization",
            "overhead": "compute.kernel_overhead_s", "bandwidth": "dram.bandwidth_bytes_per_s",
            "capacity": "dram.capacity_bytes", "llc": "l2.capacity_bytes", "fp32_energy": "compute.mac_energy_j",
            "tdp": "compute.tdp_w"},
    "cpu": {"cores": "compute.cores", "clock": "compute.clock_hz", "utilization": "compute.utilization",
            "overhead": "compute.op_overhead_s", "bandwidth": "memory.bandwidth_bytes_per_s",
            "capacity": "memory.capacity_bytes", "llc": "memory.llc_bytes", "fp32_energy": "compute.fp32_mac_energy_j",
            "tdp": "compute.tdp_w"},
}
COMPONENTS = ("compute", "dram", "host_link")


@dataclass
class Config:
    device: str
    kind: str
    rates: np.ndarray              # MAC/s by precision class: binary, int8, int16, float
    fp32_rate: float
    utilization: float
    overhead_s: float
    bandwidth: float
    capacity: float
    llc: float
    link_bw: float
    mac_energy: np.ndarray         # J per MAC by precision class
    dram_j_per_bit: float
    link_j_per_bit: float
    static_w: float
    params: list[Param]

    def info(self) -> dict:
        return {"device": self.device, "kind": self.kind, "peak_fp32_macs_per_s": self.fp32_rate,
                "dram_bandwidth_bytes_per_s": self.bandwidth, "dram_capacity_bytes": self.capacity}


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    dev = device(target, "device.name")
    extras = device(target, "device.extras") if target["device.extras"] else dev
    kind = target["device.kind"]
    keys = _KEYS[kind]
    if keys["cores"] not in dev.params:
        other = next((k for k, v in _KEYS.items() if v["cores"] in dev.params), None)
        raise TargetError(f"device.kind = '{kind}' does not match device '{dev.name}'"
                          + (f", which is a {other}" if other else ""), where=target.where("device.kind"),
                          hint=f"name a {kind} device with device.name (data/devices/), or keep the target's kind")
    k = Knobs(target)
    k("device.name")
    k("device.kind")
    if target["device.extras"]:
        k("device.extras")
    cores, clock = k.lib(dev, keys["cores"]), k.lib(dev, keys["clock"])
    if kind == "gpu":
        fp32 = cores * clock
        k.derived("compute.fp32_macs_per_s", fp32, f"{dev.name} cores x clock (one FP32 FMA per core per cycle)")
    else:
        fp32 = k.lib(dev, "compute.fp32_macs_per_s")
    int8 = cores * clock * k.lib(extras, "compute.int8_macs_per_cycle_per_core")
    binary = cores * clock * k.lib(extras, "compute.binary_macs_per_cycle_per_core")
    k.derived("compute.int8_macs_per_s", int8, "cores x clock x int8 MACs per core per cycle")
    k.derived("compute.binary_macs_per_s", binary, "cores x clock x 1-bit MACs per core per cycle")
    utilization = k("compute.utilization", dev, keys["utilization"])
    overhead = k("compute.op_overhead_s", dev, keys["overhead"])
    bandwidth = k("memory.bandwidth_bytes_per_s", dev, keys["bandwidth"])
    capacity = k("memory.capacity", dev, keys["capacity"])
    llc = k("memory.llc", dev, keys["llc"])
    if kind == "gpu":
        link = k("memory.host_link_bytes_per_s", extras, "host_link.bandwidth_bytes_per_s")
        link_j = k.lib(extras, "host_link.energy_per_bit_j")
    else:
        link, link_j = 0.0, 0.0
    fp32_j = k.lib(dev, keys["fp32_energy"])
    energy = np.array([k.lib(extras, "compute.binary_mac_energy_j"), k.lib(extras, "compute.int8_mac_energy_j"),
                       fp32_j, fp32_j])
    static = k.lib(dev, keys["tdp"]) * k.lib(extras, "compute.static_power_fraction")
    dram_j = k.lib(tech("dram", target.source), "access.energy_per_bit_j")
    config = Config(dev.name, kind, np.array([binary, int8, fp32, fp32]), fp32, utilization, overhead, bandwidth,
                    capacity, llc, link, energy, dram_j, link_j, static, k.params)
    target.cache["config"] = config
    return config


def parameters(target: Target) -> list[Param]:
    return resolve(target).params


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    names, ops = list(workload.names), list(workload.ops)
    c = workload.columns
    f = np.float64
    kinds = node_kinds(workload)
    prec = precisions(workload, kinds)
    cls = precision_class(prec["bits"])
    work, mac = kinds["work"], kinds["mac"]
    macs = np.where(mac, c["macs"].astype(f), 0.0)
    w, inp, out = (np.where(work, c[key].astype(f), 0.0) for key in ("weight_bytes", "input_bytes", "output_bytes"))
    element_ops = np.where(work, sum(c[key].astype(f) for key in
                                     ("add", "mul", "div", "cmp", "exp", "log", "sqrt", "pow", "tanh", "erf",
                                      "other")), 0.0)

    resident = float(w.sum() + (inp + out).max(initial=0.0))
    streamed_fraction = 0.0
    if resident > cfg.capacity:
        if cfg.kind != "gpu" or cfg.link_bw <= 0:
            return Estimate.not_fitting(target, f"weights plus the largest layer's activations need "
                                                f"{format_capacity(resident)}, the {cfg.kind} has "
                                                f"{format_capacity(cfg.capacity)} of memory",
                                        names=names, ops=ops, info=cfg.info())
        streamed_fraction = min(1.0, (resident - cfg.capacity) / max(float(w.sum()), 1.0))
    weights_cached = float(w.sum()) <= cfg.llc / 2
    on_chip = cfg.llc / 2
    dram_bytes = (np.where(weights_cached, 0.0, w * (1.0 - streamed_fraction))
                  + np.where(inp <= on_chip, 0.0, inp) + np.where(out <= on_chip, 0.0, out))
    link_bytes = w * streamed_fraction
    t_compute = macs / (cfg.rates[cls] * cfg.utilization) + element_ops / cfg.fp32_rate
    t_dram = dram_bytes / cfg.bandwidth
    t_link = link_bytes / cfg.link_bw if cfg.link_bw > 0 else np.zeros_like(w)
    overhead = np.where(work, cfg.overhead_s, 0.0)
    latency = {"compute": t_compute, "dram": t_dram, "host_link": t_link, "overhead": overhead}
    node_latency = np.maximum.reduce([t_compute, t_dram, t_link]) + overhead
    energy = {
        "compute": macs * cfg.mac_energy[cls] + element_ops * cfg.mac_energy[3],
        "dram": dram_bytes * 8.0 * cfg.dram_j_per_bit,
        "host_link": link_bytes * 8.0 * cfg.link_j_per_bit,
        "static": node_latency * cfg.static_w,
    }
    notes = []
    bound = np.array(COMPONENTS, dtype=object)[np.argmax(np.stack([t_compute, t_dram, t_link]), axis=0)]
    notes.append(", ".join(f"{int(np.sum(work & (bound == u)))} {u}-bound" for u in COMPONENTS)
                 + f" of {int(work.sum())} costed nodes")
    if streamed_fraction > 0:
        notes.append(f"GPU memory oversubscribed: {format_capacity(resident)} needed, "
                     f"{format_capacity(cfg.capacity)} held; {100 * streamed_fraction:.1f} % of the weights cross the "
                     "host link at every inference")
    if weights_cached:
        notes.append("all weights fit in half of the last-level cache: no DRAM traffic for them")
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops, macs=macs,
        node_latency=node_latency, latency=latency, energy=energy, area={}, batch=batch, notes=notes,
        assumptions=[f"{p.key} = {p.value}: {p.note}" for p in cfg.params if p.kind == "assumed"],
        info={**cfg.info(), "streamed_weight_fraction": streamed_fraction}, target_file=target.source,
        events={"dram_bytes": dram_bytes, "host_link_bytes": link_bytes, "bits": prec["bits"]},
    )
