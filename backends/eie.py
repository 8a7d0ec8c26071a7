"""The ``sparse-engine`` family: EIE (Han et al., ISCA'16), compressed models run from SRAM.

P processing elements (PEs) each hold a slice of every weight matrix: output row r of an
[outputs, inputs] matrix lives on PE r mod P, stored in compressed sparse columns (CSC): per
non-zero an ``index_bits`` codebook index (``share-weights``) and a ``rel_bits`` relative row
index, a padding entry for each run of 2^rel_bits zeros, a 16-bit pointer per column. The
leading non-zero detector broadcasts each non-zero input activation; every PE then walks
its entries of that column. Per MAC node (a Conv is the same SpMV once per output pixel,
``gemm_m`` times), vectorised over nodes:

* work = gemm_m x a x E_max cycles, where ``a`` is the activation density and ``E_max`` the
  entries of the busiest PE (load imbalance); at least gemm_m x a x columns broadcast
  cycles. The activation queue is taken as deep enough to even out per-column imbalance,
  so only the total per PE matters (a lower bound on time);
* energy per entry processed: a 1/(word/entry bits) share of a sparse-matrix SRAM read, a
  codebook lookup and an accumulator read + write (register file), a 16-bit MAC; per
  non-zero activation and PE: two pointer reads and an activation read;
* storage: each PE's entries x (index + rel bits) + its pointers must fit its SRAMs. Layers
  are placed in graph order; a layer that no longer fits spills: its weights stream from
  DRAM once per run (bandwidth-bound time, DRAM energy per bit);
* non-MAC element ops: one per PE per cycle, an add + register read and write each.

Measured inputs (nvmc/calibrate.py, through :func:`calibration`): ``activation_density``
(onnxruntime on seeded inputs), ``pe_entries_max_P`` / ``pe_entries_sum_P`` (from the actual
weights), ``weight_nonzeros``, ``weight_index_bits``, ``csc_rel_bits``. Without them (a bare
``analyze`` workload) the density is ``[sparsity] activation_density``, the non-zeros are
params x weight density (bias included) and the load is assumed
balanced with no padding; ``info["activation_sparsity"]`` and the notes say which.
No leakage and no activation I/O to the host are modelled. Area: PEs x the paper's PE area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported
from .dram_pim import Knobs, device, node_kinds
from .estimate import Estimate
from .target import Field, Target
from .techlib import Param

FAMILY = "sparse-engine"

SCHEMA: dict[str, dict[str, Field]] = {
    "pe": {
        "device": Field("str", "the engine's data file in data/devices/ (default eie-45nm)", default="eie-45nm"),
        "count": Field("int", "processing elements (default: the device's)"),
        "clock_hz": Field("float", "PE clock (default: the device's)", unit="Hz"),
        "spmat_capacity": Field("capacity", "sparse-matrix SRAM per PE (default: the device's)"),
        "pointer_capacity": Field("capacity", "pointer SRAM per PE (default: the device's)"),
    },
    "sparsity": {
        "activation_density": Field("float", "non-zero fraction of activations when not measured (default 1: no "
                                             "skipping assumed)", maximum=1.0),
    },
    "dram": {
        "bandwidth_bytes_per_s": Field("float", "DRAM bandwidth for spilled weights (default: the device's)",
                                       unit="B/s"),
    },
}
COMPONENTS = ("spmat_sram", "pointer_sram", "codebook", "accumulate", "activation", "mac", "elementwise", "dram")


@dataclass
class Config:
    pes: int
    clock: float
    spmat_bytes: float
    pointer_bytes: float
    word_bits: float
    pointer_bits: float
    broadcasts: float
    activation_density: float
    bandwidth: float
    e: dict[str, float]
    node_nm: float
    pe_area: float
    params: list[Param]

    def info(self) -> dict:
        return {"pes": self.pes, "clock_hz": self.clock, "spmat_bytes_per_pe": self.spmat_bytes,
                "pointer_bytes_per_pe": self.pointer_bytes, "node_nm": self.node_nm}


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    k = Knobs(target)
    dev = device(target, "pe.device")
    k("pe.device")
    pes = int(k("pe.count", dev, "pe.count"))
    clock = k("pe.clock_hz", dev, "pe.clock_hz")
    spmat = k("pe.spmat_capacity", dev, "pe.spmat_bytes")
    pointer = k("pe.pointer_capacity", dev, "pe.pointer_bytes")
    density = target["sparsity.activation_density"]
    if density is None:
        density = 1.0
        k._add(Param("sparsity.activation_density", 1.0, "assumed",
                     "no activation skipping unless measured (nvmc.compile measures it in onnxruntime)", target.source))
    else:
        k("sparsity.activation_density")
    bandwidth = k("dram.bandwidth_bytes_per_s", dev, "dram.bandwidth_bytes_per_s")
    e = {name: k.lib(dev, f"energy.{name}_j") for name in
         ("spmat_read", "pointer_read", "rf_access_16b", "mac", "add", "dram_per_bit")}
    config = Config(pes, clock, float(spmat), float(pointer), k.lib(dev, "pe.spmat_word_bits"),
                    k.lib(dev, "pe.pointer_bits"), k.lib(dev, "pe.broadcasts_per_cycle"), float(density), bandwidth,
                    e, k.lib(dev, "pe.node_nm"), k.lib(dev, "pe.area_mm2"), k.params)
    target.cache["config"] = config
    return config


def parameters(target: Target) -> list[Param]:
    return resolve(target).params


def calibration(target: Target) -> dict:
    """What nvmc/calibrate.py measures for this target: activation density, per-PE entries."""
    return {"pes": resolve(target).pes}


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    names, ops = list(workload.names), list(workload.ops)
    c = workload.columns
    f = np.float64
    n = len(names)
    kinds = node_kinds(workload)
    mac, work = kinds["mac"], kinds["work"]
    P = cfg.pes
    notes, assumptions = [], []

    reps = np.where(mac, c["gemm_m"].astype(f), 0.0)
    columns = np.where(mac, (c["gemm_k"] * c["gemm_batch"]).astype(f), 0.0)
    if "weight_nonzeros" in c:
        nnz = np.where(mac, c["weight_nonzeros"].astype(f), 0.0)
    else:  # params include a bias: close enough when not measured
        nnz = np.where(mac, c["params"].astype(f) * c["weight_density"].astype(f), 0.0)
    measured_act = "activation_density" in c
    act = c["activation_density"].astype(f) if measured_act else np.full(n, np.nan)
    measured = mac & np.isfinite(act)
    act = np.where(measured, act, cfg.activation_density)
    if measured_act and measured.any():
        sparsity = f"measured (onnxruntime, seeded inputs) on {int(measured.sum())} of {int(mac.sum())} MAC nodes"
        if (mac & ~measured).any():
            sparsity += f"; assumed {cfg.activation_density:g} on the rest"
    else:
        sparsity = f"assumed: activation density {cfg.activation_density:g} (not measured)"
    key_max, key_sum = f"pe_entries_max_{P}", f"pe_entries_sum_{P}"
    if key_max in c:
        e_max, e_sum = c[key_max].astype(f), c[key_sum].astype(f)
        load = "measured from the weights"
    else:
        e_sum, e_max = nnz, nnz / P
        load = "assumed balanced, no padding (weights not measured)"
        assumptions.append(f"PE load: {load}; run through nvmc.compile to measure it")
    e_max, e_sum = np.where(mac, e_max, 0.0), np.where(mac, e_sum, 0.0)
    if "weight_index_bits" in c:
        bits = np.where(c["weight_index_bits"] > 0, c["weight_index_bits"].astype(f), 16.0)
        rel = c["csc_rel_bits"].astype(f)
    else:
        bits, rel = np.full(n, 16.0), np.full(n, 4.0)
        assumptions.append("weight entries taken as 16-bit values + 4-bit relative indices (no codebook measured)")
    entry_bits = bits + rel

    # storage per PE, layers placed in graph order
    pe_bytes = e_max * entry_bits / 8
    ptr_bytes = np.where(mac, (np.ceil(columns / np.maximum(c["gemm_batch"].astype(f), 1.0)) + 1)
                         * np.maximum(c["gemm_batch"].astype(f), 1.0) * cfg.pointer_bits / 8, 0.0)
    fits_alone = (pe_bytes <= cfg.spmat_bytes) & (ptr_bytes <= cfg.pointer_bytes)
    resident = np.zeros(n, dtype=bool)
    used_w = used_p = 0.0
    for i in np.flatnonzero(mac & fits_alone):
        if used_w + pe_bytes[i] <= cfg.spmat_bytes and used_p + ptr_bytes[i] <= cfg.pointer_bytes:
            used_w += pe_bytes[i]
            used_p += ptr_bytes[i]
            resident[i] = True
    spill = mac & ~resident
    spill_bytes = np.where(spill, (e_sum * entry_bits / 8 + ptr_bytes * P), 0.0)

    # time
    walked = reps * act * e_max
    broadcast = reps * act * columns / cfg.broadcasts
    elem = np.where(work & ~mac, sum(c[k].astype(f) for k in
                                    ("add", "mul", "div", "cmp", "exp", "log", "sqrt", "pow", "tanh", "erf", "other")),
                    0.0)
    t_compute = np.maximum(walked, broadcast) / cfg.clock + elem / (P * cfg.clock)
    t_dram = spill_bytes / cfg.bandwidth
    latency = {"pe": t_compute, "dram": t_dram}
    node_latency = np.maximum(t_compute, t_dram)

    # energy
    entries = reps * act * e_sum
    col_visits = reps * act * columns * P
    e = cfg.e
    energy = {
        "spmat_sram": entries * e["spmat_read"] * entry_bits / cfg.word_bits,
        "pointer_sram": col_visits * 2 * e["pointer_read"],
        "codebook": entries * e["rf_access_16b"],
        "accumulate": entries * 2 * e["rf_access_16b"],
        "activation": col_visits * e["rf_access_16b"],
        "mac": entries * e["mac"],
        "elementwise": elem * (e["add"] + 2 * e["rf_access_16b"]),
        "dram": spill_bytes * 8 * e["dram_per_bit"],
    }

    useful = reps * act * nnz
    total_t = float(node_latency.sum())
    total_e = float(sum(v.sum() for v in energy.values()))
    macs_all = float(np.where(mac, c["macs"].astype(f), 0.0).sum())
    balance = float(e_sum[mac].sum() / (P * e_max[mac].sum())) if mac.any() and e_max[mac].sum() > 0 else 1.0
    info = {**cfg.info(), "activation_sparsity": sparsity, "pe_load": load,
            "mean_activation_density": float(np.average(act[mac], weights=np.maximum(nnz[mac], 1)))
            if mac.any() else None,
            "load_balance": balance,
            "effective_gops": 2 * float(useful.sum()) / total_t / 1e9 if total_t > 0 else None,
            "dense_equivalent_gops": 2 * macs_all / total_t / 1e9 if total_t > 0 else None,
            "power_w": total_e / total_t if total_t > 0 else None,
            "spilled_layers": int(spill.sum())}
    notes.append(f"activation sparsity {sparsity}; PE load {load} (balance {100 * balance:.0f} %: mean / busiest PE)")
    if spill.any():
        notes.append(f"{int(spill.sum())} of {int(mac.sum())} MAC layers do not fit the PE SRAMs: their weights stream "
                     f"from DRAM ({spill_bytes.sum() / 2**20:.2f} MiB per run)")
    padding = e_sum.sum() - nnz.sum()
    if key_max in c and nnz.sum() > 0:
        notes.append(f"CSC padding entries: {padding:.0f} ({100 * padding / nnz.sum():.1f} % of the non-zeros)")
    notes.append("no leakage and no host I/O of activations modelled")
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops,
        macs=np.where(mac, c["macs"].astype(f), 0.0), node_latency=node_latency, latency=latency, energy=energy,
        area={"pes": P * cfg.pe_area}, batch=batch, notes=notes,
        assumptions=[*k_assumptions(cfg), *assumptions], info=info, target_file=target.source,
        events={"entries": entries, "useful_macs": useful, "spill_bytes": spill_bytes, "pe_bytes": pe_bytes},
    )


def k_assumptions(cfg: Config) -> list[str]:
    return [f"{p.key} = {p.value}: {p.note}" for p in cfg.params if p.kind == "assumed"]
