"""The ``roofline`` family: CPU and GPU baselines as rooflines with cited peaks, for paper-style
ratios (``nvmc compile model --target upmem --compare gpu,cpu``). Keys, defaults and their
sources: ``data/families/roofline.toml``.

A device of the technology library gives the peaks (``cpu``: ``data/devices/xeon-e3-1275-v3.toml``;
``gpu``: ``gtx-1080-ti.toml`` with the extras in ``gtx-1080-ti-roofline.toml``). Per node,
vectorised:

* compute time = MACs / (peak MAC rate of the node's precision x utilization) + element-op slots
  (``family.element_slots``: a simple op one slot, a transcendental one ``transcendental_cost``)
  / the FP32 rate. The precision (``dram_pim.operand_bits``, classes of
  ``dram_pim.precision_class``) picks the rate: floats and wider integers at the FP32 FMA rate,
  integers of up to 8 bits at the device's int8 dot-product rate, 1-bit operands at its
  XNOR-popcount rate; each rate = cores x clock x MACs per core per cycle;
* memory time = DRAM bytes / DRAM bandwidth. A node reads its weights (the rows a gather reads)
  and, unless it fits in ``llc_resident_fraction`` of the last-level cache (produced by the node
  before and still there), its input activations, and writes its output unless it fits there
  too. When the whole model's weights fit in that share they stay there between inferences and
  cost no DRAM traffic. A decoder's KV cache (``cache_bytes``) is read from DRAM like the weights
  (earlier steps wrote it), unless weights and cache together fit in that share;
* a GPU holds the weights in its own memory. When weights plus the largest layer's activations
  exceed it (*oversubscription*), the excess part of every layer's weights crosses the host link
  (PCIe) at every inference: link time = those bytes / link bandwidth;
* a node takes the longest of the three (units overlap) plus a per-operator overhead (kernel
  launch / framework dispatch). Views (and folded nodes) are free.

Energy (counted, then priced by backends/family.py): arithmetic = (MACs + element-op slots) x the
energy of one MAC (at the node's precision; element ops at the FP32 MAC energy), DRAM bytes x 8 x
the DRAM technology's energy per bit, link bytes x 8 x its energy per bit, plus static power (the
device's TDP x ``static_power_fraction``) x time. On an FP32 model the arithmetic and the DRAM
price per byte are gpu-llc's rules on the same device, so ``gpu`` and gpu-llc's ``sram`` (and
``--set scope.system=gpu`` there) compare on one scope: the whole device. No area is modelled:
these are reference points, not designs.
"""

from __future__ import annotations

import numpy as np

from .dram_pim import BINARY, INT8, operand_bits, precision_class
from .errors import TargetError
from .family import KIND, Counts, FamilySpec, NotFitting, Params, element_slots, per, target_or_data
from nvmc.ir.units import format_capacity

FAMILY = "roofline"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
COMPONENTS = ("compute", "dram", "host_link")
KIND_KEY = {"gpu": "compute.cuda_cores", "cpu": "compute.cores"}   # a device file of that kind has it


def resolve(p: Params) -> None:
    """Every number the model reads, in the order ``nvmc explain`` lists them."""
    kind = p["device.kind"]
    dev = p.data("device.name")
    if KIND_KEY[kind] not in dev.params:
        other = next((k for k, key in KIND_KEY.items() if key in dev.params), None)
        raise TargetError(f"device.kind = '{kind}' does not match device '{dev.name}'"
                          + (f", which is a {other}" if other else ""), where=p.target.where("device.kind"),
                          hint=f"name a {kind} device with device.name (data/devices/), or keep the target's kind")
    extras = extras_key(p)
    cores_x_clock = p["compute.cores"] * p["compute.clock_hz"]
    for rate in ("fp32", "int8", "binary"):
        p.derive(f"compute.{rate}_macs_per_s", cores_x_clock * p[f"compute.{rate}_macs_per_cycle_per_core"],
                 f"compute.cores x compute.clock_hz x compute.{rate}_macs_per_cycle_per_core", f"peak {rate} MAC rate")
    p.lib(extras, "compute.int8_mac_energy_j")
    p.lib(extras, "compute.binary_mac_energy_j")
    p.derive("compute.static_w", p.lib("device.name", "compute.tdp_w") * p.lib(extras, "compute.static_power_fraction"),
             "compute.tdp_w x compute.static_power_fraction", "static power drawn while running")
    p.lib("memory.technology", "access.energy_per_bit_j")
    if kind == "gpu":
        target_or_data(p, "memory.host_link_bytes_per_s", p.data(extras), "host_link.bandwidth_bytes_per_s")
        p.lib(extras, "host_link.energy_per_bit_j")
        p.lib("device.name", "compute.sm_count")   # its compute units in the mapping record


def extras_key(p: Params) -> str:
    """The key naming the data file of the int8 / binary rates, host link and static power."""
    return "device.extras" if p.get("device.extras") else "device.name"


def info(p: Params) -> dict:
    return {"device": p["device.name"], "kind": p["device.kind"], "peak_fp32_macs_per_s": p["compute.fp32_macs_per_s"],
            "dram_bandwidth_bytes_per_s": p["memory.bandwidth_bytes_per_s"], "dram_capacity_bytes": p["memory.capacity"]}


# ---------------------------------------------------------------- the model
def count(workload, p: Params) -> Counts:
    resolve(p)
    c = workload.columns
    f = np.float64
    kind, extras = p["device.kind"], extras_key(p)
    work = c["kind"] != KIND["view"]
    mac = c["kind"] == KIND["mac"]
    macs = np.where(mac, c["macs"].astype(f), 0.0)
    w_stored, inp, out = (np.where(work, c[k].astype(f), 0.0) for k in ("weight_bytes", "input_bytes", "output_bytes"))
    w = np.where(work, c["weight_read_bytes"].astype(f), 0.0)
    slots = np.where(work, element_slots(workload, p["compute.transcendental_cost"]), 0.0)

    # precision: binary, int8 or the FP32 rate and energy
    prec = operand_bits(workload)
    cls = precision_class(prec["bits"])
    fp32_j = p["compute.fp32_mac_energy_j"]
    rate = np.select([cls == BINARY, cls == INT8], [p["compute.binary_macs_per_s"], p["compute.int8_macs_per_s"]],
                     default=p["compute.fp32_macs_per_s"])
    mac_j = np.select([cls == BINARY, cls == INT8], [p.lib(extras, "compute.binary_mac_energy_j"),
                                                     p.lib(extras, "compute.int8_mac_energy_j")], default=fp32_j)
    costed_bits = np.select([cls == BINARY, cls == INT8], [1.0, 8.0], default=float(p["compute.float_bits"]))
    ops = macs + slots
    # J per op: a MAC at its precision, an element-op slot at the FP32 MAC energy (exactly fp32_j for FP32 nodes)
    op_j = np.where(mac_j == fp32_j, fp32_j, (macs * mac_j + slots * fp32_j) / np.maximum(ops, 1.0))

    capacity = p["memory.capacity"]
    resident = float(w_stored.sum() + (inp + out).max(initial=0.0))
    link_bw = p["memory.host_link_bytes_per_s"] if kind == "gpu" else 0.0
    streamed = 0.0
    if resident > capacity:
        if kind != "gpu":
            raise NotFitting(f"weights plus the largest layer's activations need {format_capacity(resident)}, the "
                             f"{kind} has {format_capacity(capacity)} of memory")
        streamed = min(1.0, (resident - capacity) / max(float(w_stored.sum()), 1.0))
    on_chip = p["memory.llc"] * p["memory.llc_resident_fraction"]
    weights_cached = float(w_stored.sum()) <= on_chip
    # a decoder's KV cache (the workload's cache_bytes) was written by earlier steps, not by the node
    # before: it streams from DRAM like the weights, unless weights and cache both stay on chip
    kv = np.where(work, c["cache_bytes"].astype(f), 0.0) if "cache_bytes" in c else np.zeros_like(inp)
    kv_cached = float(w_stored.sum() + kv.sum()) <= on_chip
    act = inp - kv
    dram_bytes = (np.where(weights_cached, 0.0, w * (1.0 - streamed)) + np.where(act <= on_chip, 0.0, act)
                  + np.where(kv_cached, 0.0, kv) + np.where(out <= on_chip, 0.0, out))
    link_bytes = w * streamed
    busy = {"compute": macs / (rate * p["compute.utilization"]) + slots / p["compute.fp32_macs_per_s"],
            "dram": dram_bytes / p["memory.bandwidth_bytes_per_s"],
            "host_link": link_bytes / link_bw if link_bw > 0 else np.zeros_like(w),
            "overhead": np.where(work, p["compute.op_overhead_s"], 0.0)}
    latency = np.maximum.reduce([busy[u] for u in COMPONENTS]) + busy["overhead"]
    actions = {"compute": (ops, op_j), "dram": (dram_bytes * 8, p.lib("memory.technology", "access.energy_per_bit_j")),
               "host_link": (link_bytes * 8, p.lib(extras, "host_link.energy_per_bit_j") if kind == "gpu" else 0.0)}

    bound = np.array(COMPONENTS, dtype=object)[np.argmax(np.stack([busy[u] for u in COMPONENTS]), axis=0)]
    notes = [", ".join(f"{int(np.sum(work & (bound == u)))} {u}-bound" for u in COMPONENTS)
             + f" of {int(work.sum())} costed nodes"]
    if streamed > 0:
        notes.append(f"GPU memory oversubscribed: {format_capacity(resident)} needed, {format_capacity(capacity)} "
                     f"held; {100 * streamed:.1f} % of the weights cross the host link at every inference")
    if weights_cached:
        notes.append(f"all weights fit in {p['memory.llc_resident_fraction']:.0%} of the last-level cache: no DRAM "
                     "traffic for them")
    link = ", host link (oversubscribed weights)" if kind == "gpu" else ""
    scope = {"system": kind, "label": f"the whole {kind.upper()}: arithmetic, DRAM{link} and static power "
                                      "(TDP x static_power_fraction)", "excludes": ""}
    return Counts(actions=actions, busy=busy, latency=latency, static={"static": p["compute.static_w"]},
                  bits=costed_bits, macs=macs, notes=notes, scope=scope,
                  info=info(p) | {"streamed_weight_fraction": streamed},
                  events={"dram_bytes": dram_bytes, "host_link_bytes": link_bytes, "bits": prec["bits"]},
                  # a GPU's units are its SMs (as gpu-llc counts them for the same device), a CPU's its cores
                  mapping={"units_total": p.lib("device.name", "compute.sm_count") if kind == "gpu"
                           else p["compute.cores"], "dram_bytes": dram_bytes,
                           **({"host_bytes": link_bytes} if kind == "gpu" else {}),
                           "utilization": np.where(mac, per(macs, rate * busy["compute"]), np.nan)})


estimate, parameters = SPEC.entry_points(count, resolve)
