"""The ``sparse-engine`` family: EIE (Han et al., ISCA'16), compressed models run from SRAM.

P processing elements (PEs) each hold a slice of every weight matrix: output row r of an
[outputs, inputs] matrix lives on PE r mod P, in EIE's compressed sparse columns (CSC, defined
once in nvmc/ir/csc.py: an entry = a weight code + a relative row index, a padding entry per
run of 2^rel_bits zeros, a pointer per column plus one, ``pe.pointer_bits`` wide). The
leading non-zero detector broadcasts each non-zero input activation; every PE then walks its
entries of that column. Per MAC node (a Conv is the same SpMV once per output pixel,
``gemm_m`` times), vectorised over nodes:

* work = gemm_m x a x E_max cycles, where ``a`` is the activation density and ``E_max`` the
  entries of the busiest PE (load imbalance); at least gemm_m x a x columns broadcast
  cycles. The activation queue is taken as deep enough to even out per-column imbalance,
  so only the total per PE matters (a lower bound on time);
* energy per entry processed: a 1/(word/entry bits) share of a sparse-matrix SRAM read, a
  codebook lookup and an accumulator read + write (register file), a 16-bit MAC; per
  non-zero activation and PE: two pointer reads and an activation read;
* storage: each PE's entries x (code + rel bits) + its pointers must fit its SRAMs. Layers
  are placed in graph order; a layer that no longer fits spills: its weights stream from
  DRAM once per run (bandwidth-bound time, DRAM energy per bit);
* non-MAC element ops (the workload's ``kind`` column: every node but views): one ALU slot
  per PE per cycle (``element_slots``), an add + register read and write each.

Measured inputs (workload columns nvmc/calibrate.py adds for :func:`calibration`'s request):
``activation_density`` (onnxruntime on seeded inputs), ``weight_nonzeros``,
``weight_index_bits``, ``csc_rel_bits`` and the per-PE entries ``nvmc.ir.csc.pe_columns(P)``
(passes/workload.py ``weight_columns``, from the actual weights). Without them (a bare
``analyze`` workload): ``[sparsity] activation_density``, params x weight density non-zeros
(bias included), ``pe.weight_bits`` values with ``pe.rel_index_bits`` indices, a balanced
load without padding; the notes say which. Arithmetic is costed at ``pe.activation_bits``.
No leakage and no activation I/O to the host are modelled. Area: PEs x the paper's PE area.
Keys and defaults: ``data/families/sparse-engine.toml``; design point and per-event energies:
``data/devices/eie-45nm.toml``.
"""

from __future__ import annotations

import numpy as np

from .family import KIND, Counts, FamilySpec, Params, element_slots, per
from .techlib import Param
from nvmc.ir import csc
from nvmc.ir.units import format_capacity

FAMILY = "sparse-engine"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
ENERGIES = ("spmat_read", "pointer_read", "rf_access_16b", "mac", "add", "dram_per_bit")


def resolve(p: Params) -> dict:
    """The device's design point and per-event energies (with the figures they derive from),
    read once per target: every number the model reads besides the target keys."""
    if "device" not in p.cache:
        p.cache["device"] = {q.key: p.lib("pe.device", q.key) for q in p.data("pe.device").params.values()}
    return p.cache["device"]


def estimate(workload, target, *, batch: int = 1):
    return SPEC.estimate(workload, target, count, batch=batch)


def parameters(target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
    return SPEC.parameters(target, resolve)


def calibration(target) -> dict:
    """The measured workload columns this target reads (module doc): nvmc/calibrate.py's, with the
    CSC entries over ``pes`` PEs."""
    return {"pes": SPEC.params(target)["pe.count"]}


# ---------------------------------------------------------------- the model
def count(workload, p: Params) -> Counts:
    c = workload.columns
    f = np.float64
    n = len(workload.names)
    dev = resolve(p).__getitem__
    e = {name: dev(f"energy.{name}_j") for name in ENERGIES}
    mac = c["kind"] == KIND["mac"]
    work = c["kind"] != KIND["view"]
    P, clock, default_density = p["pe.count"], p["pe.clock_hz"], p["sparsity.activation_density"]

    reps = np.where(mac, c["gemm_m"].astype(f), 0.0)
    columns = np.where(mac, (c["gemm_k"] * c["gemm_batch"]).astype(f), 0.0)
    if "weight_nonzeros" in c:
        nnz = np.where(mac, c["weight_nonzeros"].astype(f), 0.0)
    else:  # params include a bias: close enough when not measured
        nnz = np.where(mac, c["params"].astype(f) * c["weight_density"].astype(f), 0.0)
    act = c["activation_density"].astype(f) if "activation_density" in c else np.full(n, np.nan)
    measured = mac & np.isfinite(act)
    act = np.where(measured, act, default_density)
    if measured.any():
        sparsity = f"measured (onnxruntime, seeded inputs) on {int(measured.sum())} of {int(mac.sum())} MAC nodes"
        if (mac & ~measured).any():
            sparsity += f"; assumed {default_density:g} on the rest"
    else:
        sparsity = f"assumed: activation density {default_density:g} (not measured)"
    key_max, key_sum = csc.pe_columns(P)
    if key_max in c:
        e_max, e_sum = c[key_max].astype(f), c[key_sum].astype(f)
        load = "measured from the weights"
    else:
        e_sum, e_max = nnz, nnz / P
        load = "assumed balanced, no padding (weights not measured)"
    e_max, e_sum = np.where(mac, e_max, 0.0), np.where(mac, e_sum, 0.0)
    if "weight_index_bits" in c:
        value_bits = np.where(c["weight_index_bits"] > 0, c["weight_index_bits"].astype(f), dev("pe.weight_bits"))
        rel = c["csc_rel_bits"].astype(f)
        entries_of = "measured widths (a shared weight's codebook index, else its element bits)"
    else:
        value_bits, rel = np.full(n, float(dev("pe.weight_bits"))), np.full(n, float(dev("pe.rel_index_bits")))
        entries_of = "pe.weight_bits values + pe.rel_index_bits relative indices (no codebook measured)"
    entry_bits = value_bits + rel

    # storage per PE, layers placed in graph order
    spmat_bytes, pointer_bytes = float(p["pe.spmat_capacity"]), float(p["pe.pointer_capacity"])
    gb = np.maximum(c["gemm_batch"].astype(f), 1.0)
    pe_bytes = e_max * entry_bits / 8
    ptr_bytes = np.where(mac, csc.pointers(np.ceil(columns / gb)) * gb * dev("pe.pointer_bits") / 8, 0.0)
    fits_alone = (pe_bytes <= spmat_bytes) & (ptr_bytes <= pointer_bytes)
    resident = np.zeros(n, dtype=bool)
    used_w = used_p = 0.0
    for i in np.flatnonzero(mac & fits_alone):
        if used_w + pe_bytes[i] <= spmat_bytes and used_p + ptr_bytes[i] <= pointer_bytes:
            used_w += pe_bytes[i]
            used_p += ptr_bytes[i]
            resident[i] = True
    spill = mac & ~resident
    spill_bytes = np.where(spill, (e_sum * entry_bits / 8 + ptr_bytes * P), 0.0)

    # time
    walked = reps * act * e_max
    broadcast = reps * act * columns / dev("pe.broadcasts_per_cycle")
    elem = np.where(work & ~mac, element_slots(workload, dev("pe.transcendental_cost")), 0.0)
    t_compute = np.maximum(walked, broadcast) / clock + elem / (P * clock)
    t_dram = spill_bytes / p["dram.bandwidth_bytes_per_s"]
    busy = {"pe": t_compute, "dram": t_dram}
    latency = np.maximum(t_compute, t_dram)

    # counts, priced per event
    entries = reps * act * e_sum
    col_visits = reps * act * columns * P
    rf = e["rf_access_16b"]
    actions = {
        "spmat_sram": (entries * entry_bits / dev("pe.spmat_word_bits"), e["spmat_read"]),
        "pointer_sram": (col_visits * 2, e["pointer_read"]),
        "codebook": (entries, rf),
        "accumulate": (entries * 2, rf),
        "activation": (col_visits, rf),
        "mac": (entries, e["mac"]),
        "elementwise": (elem, e["add"] + 2 * rf),
        "dram": (spill_bytes * 8, e["dram_per_bit"]),
    }

    useful = reps * act * nnz
    total_t = float(latency.sum())
    total_e = float(sum((np.asarray(k) * price).sum() for k, price in actions.values()))
    macs = np.where(mac, c["macs"].astype(f), 0.0)
    balance = float(e_sum[mac].sum() / (P * e_max[mac].sum())) if mac.any() and e_max[mac].sum() > 0 else 1.0
    info = {"pes": P, "clock_hz": clock, "spmat_bytes_per_pe": spmat_bytes, "pointer_bytes_per_pe": pointer_bytes,
            "node_nm": dev("pe.node_nm"), "activation_sparsity": sparsity, "pe_load": load,
            "weight_entries": entries_of,
            "mean_activation_density": float(np.average(act[mac], weights=np.maximum(nnz[mac], 1)))
            if mac.any() else None,
            "load_balance": balance,
            "effective_gops": 2 * float(useful.sum()) / total_t / 1e9 if total_t > 0 else None,
            "dense_equivalent_gops": 2 * float(macs.sum()) / total_t / 1e9 if total_t > 0 else None,
            "power_w": total_e / total_t if total_t > 0 else None,
            "spilled_layers": int(spill.sum())}
    notes = [(f"activation sparsity {sparsity}; PE load {load} (balance {100 * balance:.0f} %: mean / busiest "
              f"PE); weight entries: {entries_of}")]
    if spill.any():
        notes.append(f"{int(spill.sum())} of {int(mac.sum())} MAC layers do not fit the PE SRAMs: their weights stream "
                     f"from DRAM ({format_capacity(spill_bytes.sum())} per run)")
    padding = e_sum.sum() - nnz.sum()
    if key_max in c and nnz.sum() > 0:
        notes.append(f"CSC padding entries: {padding:.0f} ({100 * padding / nnz.sum():.1f} % of the non-zeros)")
    notes.append("no leakage and no host I/O of activations modelled")
    return Counts(actions=actions, busy=busy, latency=latency, area={"pes": P * dev("pe.area_mm2")},
                  bits=np.full(n, float(dev("pe.activation_bits"))), notes=notes, info=info, macs=macs,
                  events={"entries": entries, "useful_macs": useful, "spill_bytes": spill_bytes, "pe_bytes": pe_bytes},
                  mapping={"units_total": P, "units_used": np.where(mac, np.minimum(P, np.maximum(e_sum, 1.0)), np.nan),
                           "load_balance": np.where(mac, per(e_sum, P * e_max), np.nan),
                           "dram_bytes": spill_bytes,
                           "onchip_bytes": np.where(mac, entries * entry_bits / 8 + col_visits * 2 * dev("pe.pointer_bits") / 8,
                                                    0.0),
                           # useful (non-zero) MACs over the PEs' MAC slots while the layer computes
                           "utilization": np.where(mac, per(useful, P * clock * t_compute), np.nan)})
