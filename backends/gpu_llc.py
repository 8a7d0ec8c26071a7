"""The ``gpu-llc`` family: a GPU whose last-level cache (L2) is built from a chosen memory
technology, after DeepNVM++ (Inci, Isgenc, Marculescu; shared/reference/seeds.md, paper 1).

The GPU (default: GTX 1080 Ti, ``data/devices/gtx-1080-ti.toml``) and the L2 array
(``data/tech/<technology>.toml`` + its NVSim table) come from the technology library.
Everything is computed per node with numpy arrays; no per-node Python loop.

Execution model, per node of the workload
=========================================

*MAC nodes* (Conv, Gemm, MatMul, ...: ``macs > 0``) run as a tiled GEMM, the workload's
``gemm_batch`` x (M x N x K). A thread block computes a ``block_m`` x ``block_n`` output
tile and streams its A panel (M side, activations) and B panel (N side, weights) through
the L2, staging them in shared memory/L1:

1. L2 loads: every column of blocks streams the A operand once, every row of blocks the B
   operand once: ``ceil(N/bn) * A + ceil(M/bm) * B * broadcast`` bytes, where A is the
   unique activation input (for a conv the input tensor: the L1 captures the overlap of
   neighbouring windows; a strided 1x1 conv reads only its sampled pixels, the im2col
   volume) and ``broadcast`` counts a weight shared by every GEMM of a batched MatMul.
   An activation x activation MatMul (attention) splits its input bytes between A and B
   by element count. L2 stores: the output, once.
2. DRAM reads: weights once (compulsory), the activation input except the part still
   resident in the L2 from the kernel that produced it (``min(1, capacity / bytes)``:
   producer-consumer reuse, assuming the producer ran just before; optimistic for skip
   connections), plus re-streams that miss. Blocks are rasterised so that one operand's
   panel is reused at short distance (hits) and the other is re-streamed in full once
   per row (or column) of blocks; a re-stream misses on the fraction of that operand's
   working set beyond the capacity, ``clip(1 - capacity / working_set, 0, 1)`` (a smooth,
   random-replacement-like approximation; strict LRU would be all or nothing). The
   kernel picks the cheaper raster order, as tile swizzling in cuBLAS/cuDNN does.
3. DRAM writes: the part of the output that does not fit in the L2
   (``max(0, 1 - capacity / bytes)``); what fits is consumed and later overwritten in
   place (frameworks recycle activation buffers), so it is not written back.

*Other nodes* are elementwise/memory-bound kernels: load every input (and constant), store
the output, with the same residency rules. Pure views (Reshape, Flatten, Squeeze,
Unsqueeze, Identity, Dropout, Shape, ...) cost nothing. Control flow (If, Loop, Scan) and
ops of unknown domains without a MAC count are refused with an error naming the node.

L2 accesses move one array line (``line_bytes`` of the NVSim table): reads = loads +
write-backs (a dirty line is read out before it goes to DRAM); writes = stores + fills
(a line arriving from DRAM is written into the array). A miss thus costs a read and a
write, conservatively and alike for every technology.

Time: each unit's busy time, and the node takes the longest (units overlap, roofline),
plus a fixed ``kernel_overhead_s`` per kernel (launch and drain; views launch nothing).
Compute: the thread blocks (``gemm_batch x ceil(M/bm) x ceil(N/bn)``) run in waves of one
block per SM, each block ``min(M,bm) x min(N,bn) x K`` MACs at the SM's rate (cores per SM
x clock x utilization). A GEMM with fewer blocks than SMs splits K (split-K, as cuBLAS
does) into ``min(floor(SMs / blocks), floor(K / min_split_k))`` parts so more SMs work;
its partial outputs are stored to and loaded from the L2 once more per extra part. Non-MAC op
slots run at the full-chip rate (CUDA cores x clock), transcendental ops taking
``transcendental_cost`` slots. L2 = (reads x
read latency + writes x write latency) / (slices x banks per slice) (a bank serves one
access at a time for the NVSim access latency); DRAM = bytes / bandwidth.

Energy (counted, then priced by backends/family.py): compute = (MACs + non-MAC slots) x MAC
energy; L2 = reads x read energy + writes x write energy (dynamic) + leakage power x node
latency; DRAM = bytes x 8 x energy/bit. Scope: the rest of the GPU's static power is left out
(it is the same for every L2 technology), unless ``scope.system = "gpu"`` adds it as the
device's TDP x ``static_power_fraction``, the figure the roofline ``gpu`` target uses, so the
two can be compared on the whole GPU. Area: the L2 array only.

Keys, defaults and their sources: ``data/families/gpu-llc.toml``.

``llc.iso = "area"`` grows (or shrinks) the L2 capacity until its array area equals that
of an ``llc.iso_reference`` (default SRAM) L2 of the declared capacity (DeepNVM++'s
iso-area study); ``"capacity"`` keeps the declared capacity (iso-capacity).
"""

from __future__ import annotations

import numpy as np

from .errors import TargetError
from .family import KIND, Counts, FamilySpec, NotFitting, Params, element_slots, per
from .techlib import ArrayPoint, Param, library
from nvmc.ir.units import format_capacity

FAMILY = "gpu-llc"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
LLC_COMPONENTS = ("l2_read", "l2_write", "l2_leakage")


def llc_array(p: Params) -> ArrayPoint:
    """The L2 array at the target's capacity (after ``llc.iso = "area"``), from its NVSim table."""
    if "llc" in p.cache:
        return p.cache["llc"]
    lib = library()
    tech, reference = p.data("llc.technology"), p["llc.iso_reference"]
    with p.target.library_errors():
        table = lib.array_table(tech.name)
    declared = capacity = int(p["llc.capacity"])
    if p["llc.iso"] == "area" and reference != tech.name:
        try:
            ref_table = lib.array_table(reference)
        except TargetError as e:
            raise TargetError(f"llc.iso_reference: {e.message}", where=p.target.source, hint=e.hint) from None
        ref = _lookup(ref_table, declared, p.target.source)
        grown = table.capacity_for_area(ref.area_mm2)
        if grown is None:
            lo, hi = table.capacity_range
            raise NotFitting(f"iso-area: a {tech.name} L2 with the area of a {format_capacity(declared)} {reference} "
                             f"L2 ({ref.area_mm2:.3g} mm^2) lies outside the {tech.name} table "
                             f"({format_capacity(lo)}-{format_capacity(hi)})")
        capacity = int(round(grown))
        p.add(Param("llc.iso_area_mm2", ref.area_mm2, "derived",
                    f"area of a {format_capacity(declared)} {reference} L2: {ref.note}", ref_table.origin))
        p.add(Param("llc.iso_capacity_bytes", capacity, "derived",
                    f"capacity of a {tech.name} L2 of that area (log-log interpolation of the area column)",
                    table.origin))
    llc = _lookup(table, capacity, p.target.source)
    p.add(Param("llc.array.table", table.origin, "source", table.source, str(tech.path)))
    for name in ("area_mm2", "read_latency_s", "write_latency_s", "read_energy_j", "write_energy_j", "leakage_w"):
        p.add(Param(f"llc.array.{name}", getattr(llc, name), "source", llc.note, table.origin))
    line = tech.param("llc_array.line_bytes")
    p.add(Param("llc.array.line_bytes", llc.line_bytes, line.kind, line.note, line.origin))
    p.cache["llc"] = llc
    return llc


def _lookup(table, capacity: int, where: str) -> ArrayPoint:
    if not table.covers(capacity):
        lo, hi = table.capacity_range
        raise TargetError(f"llc.capacity = {format_capacity(capacity)}: no {table.technology} array data at that "
                          f"capacity (the NVSim table covers {format_capacity(lo)} to {format_capacity(hi)})",
                          where=where,
                          hint=f"choose a capacity between {format_capacity(lo)} and {format_capacity(hi)}")
    return table.at(capacity)


def resolve(p: Params) -> None:
    """Every number the model reads, in the order ``nvmc explain`` lists them."""
    if "resolved" in p.cache:
        return
    llc_array(p)
    p.derive("gpu.peak_macs_per_s", p.lib("gpu.device", "compute.cuda_cores") * p["gpu.clock_hz"],
             "compute.cuda_cores x gpu.clock_hz", "one FMA per core per cycle")
    for key in ("compute.sm_count", "compute.transcendental_cost", "compute.mac_energy_j", "dram.capacity_bytes"):
        p.lib("gpu.device", key)
    p.lib("dram.technology", "access.energy_per_bit_j")
    if p["scope.system"] == "gpu":
        p.derive("scope.other_static_w", p.lib("gpu.device", "compute.tdp_w") * p["scope.static_power_fraction"],
                 "compute.tdp_w x scope.static_power_fraction")
    for q in p.data("llc.technology").params.values():
        if q.key.startswith("cell."):
            p.lib("llc.technology", q.key)
    p.cache["resolved"] = True  # only once everything resolved: a failure repeats on every call


def info(p: Params) -> dict:
    llc = llc_array(p)
    return {"device": p["gpu.device"], "llc_technology": p["llc.technology"], "llc_capacity_bytes": llc.capacity_bytes,
            "declared_capacity_bytes": int(p["llc.capacity"]), "iso": p["llc.iso"], "llc_line_bytes": llc.line_bytes,
            "llc_area_mm2": llc.area_mm2, "dram_capacity_bytes": p.lib("gpu.device", "dram.capacity_bytes")}


# ---------------------------------------------------------------- the model
def count(workload, p: Params) -> Counts:
    resolve(p)
    llc = llc_array(p)
    c = workload.columns
    footprint = float(c["weight_bytes"].sum() + (c["input_bytes"] + c["output_bytes"]).max(initial=0.0))
    dram_capacity = p.lib("gpu.device", "dram.capacity_bytes")
    if footprint > dram_capacity:
        raise NotFitting(f"weights plus the largest layer's activations need {format_capacity(footprint)}, the GPU "
                         f"has {format_capacity(dram_capacity)} of DRAM")
    t = _traffic(workload, p, llc)
    work = t["work"]
    busy = _busy_times(p, llc, t)
    latency = np.maximum.reduce([busy["compute"], busy["l2"], busy["dram"]]) + busy["overhead"]
    mac_j = p.lib("gpu.device", "compute.mac_energy_j")
    actions = {
        "compute": (t["macs"] + t["slots"], mac_j),
        "l2_read": (t["l2_reads"], llc.read_energy_j),
        "l2_write": (t["l2_writes"], llc.write_energy_j),
        "dram": ((t["dram_read"] + t["dram_write"]) * 8.0, p.lib("dram.technology", "access.energy_per_bit_j")),
    }
    static = {"l2_leakage": llc.leakage_w}
    scope = None
    if p["scope.system"] == "gpu":
        static["gpu_static"] = p["scope.other_static_w"]
        scope = {"system": "gpu", "label": "the whole GPU: arithmetic, L2, DRAM and the rest of its static power "
                                           "(TDP x static_power_fraction)", "excludes": ""}
    units = ("compute", "l2", "dram")
    bound = np.array(units, dtype=object)[np.argmax(np.stack([busy[u] for u in units]), axis=0)]
    notes = [f"{int(np.sum(work & (bound == u)))} of {int(work.sum())} costed nodes are {u}-bound" for u in units]
    total = float(latency.sum())
    overhead = float(busy["overhead"].sum())
    if total > 0 and overhead > 0:
        assumed = p.param("gpu.kernel_overhead_s").kind == "assumed"
        # its energy consequence: what the static power spends during the gap, as a share of the total
        # (the same count x price the family prices with: dynamic actions + static power x latency)
        energy = sum(float(np.sum(n)) * price for n, price in actions.values()) + sum(static.values()) * total
        gap = overhead * sum(static.values())
        notes.append(f"{100 * overhead / total:.0f} % of the latency is the fixed per-kernel overhead "
                     f"({int(work.sum())} kernels x gpu.kernel_overhead_s = {p['gpu.kernel_overhead_s']:.3g} s"
                     f"{', assumed' if assumed else ''}), and the static power during it ({' + '.join(static)}) is "
                     f"{100 * gap / energy:.0f} % of the energy; --set gpu.kernel_overhead_s=0 shows the rest")
    if p["llc.iso"] == "area":
        notes.append(f"iso-area: L2 capacity {format_capacity(llc.capacity_bytes)} "
                     f"(declared {format_capacity(p['llc.capacity'])})")
    return Counts(actions=actions, busy=busy, latency=latency, static=static, area={"llc": llc.area_mm2},
                  bits=np.full(len(latency), float(p["gpu.compute_bits"])), notes=notes, info=info(p), macs=t["macs"], scope=scope,
                  events={"l2_reads": t["l2_reads"], "l2_writes": t["l2_writes"], "dram_read_bytes": t["dram_read"],
                          "dram_write_bytes": t["dram_write"]}, mapping=_mapping(p, llc, t, busy))


def _mapping(p: Params, llc: ArrayPoint, t: dict[str, np.ndarray], busy: dict[str, np.ndarray]) -> dict:
    """The layer mapping record (backends/estimate.MAPPING_FIELDS): thread blocks on SMs, waves, split-K,
    the L2 hit rate (1 - the lines DRAM supplies / the L2's read accesses), the MAC rate achieved."""
    sm_count = p.lib("gpu.device", "compute.sm_count")
    mac, nan = t["is_mac"], np.nan
    line = float(llc.line_bytes)
    reads = t["l2_reads"]
    return {"units_total": sm_count,
            "units_used": np.where(mac, np.minimum(t["blocks"] * t["split"], sm_count), nan),
            "passes": np.where(mac, t["waves"], nan), "split_k": np.where(mac, t["split"], nan),
            "utilization": np.where(mac, per(t["macs"], p["gpu.peak_macs_per_s"] * busy["compute"]), nan),
            "hit_rate": 1.0 - per(t["dram_read"] / line, reads),
            "dram_bytes": t["dram_read"] + t["dram_write"], "onchip_bytes": (reads + t["l2_writes"]) * line}


def _traffic(workload, p: Params, llc: ArrayPoint) -> dict[str, np.ndarray]:
    """Bytes through the L2 and DRAM per node (module docstring, points 1-3)."""
    c = workload.columns
    f = np.float64
    macs = c["macs"].astype(f)
    w, inp, out, params = (c[k].astype(f) for k in ("weight_read_bytes", "input_bytes", "output_bytes", "params"))
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    cap = float(llc.capacity_bytes)
    block_m, block_n, sm_count = p["tiling.block_m"], p["tiling.block_n"], p.lib("gpu.device", "compute.sm_count")
    is_mac = macs > 0
    work = c["kind"] != KIND["view"]

    # operands of MAC nodes: A (activations) and B (weights, or a second activation)
    has_w = params > 0
    act_b = is_mac & ~has_w
    a_el, b_el = gb * gm * gk, gb * gk * gn
    b_unique = np.where(act_b, inp * b_el / (a_el + b_el), w)
    a_unique = inp - np.where(act_b, b_unique, 0.0)
    elem_w = np.where(has_w, w / np.maximum(params, 1.0), c["act_bits"] / 8)
    a_unique = np.where(is_mac & has_w, np.minimum(a_unique, a_el * elem_w), a_unique)
    broadcast = np.where(is_mac & has_w, np.maximum(1.0, b_el / np.maximum(params, 1.0)), 1.0)
    tiles_m, tiles_n = np.ceil(gm / block_m), np.ceil(gn / block_n)

    # re-streams that miss, in the cheaper raster order
    def miss(working_set):
        return np.clip(1.0 - cap / np.maximum(working_set, 1.0), 0.0, 1.0)

    restream_b = (tiles_m * broadcast - 1.0) * b_unique * miss(b_unique * broadcast / gb)
    restream_a = (tiles_n - 1.0) * a_unique * miss(a_unique / gb)
    restream = np.where(is_mac, np.minimum(restream_a, restream_b), 0.0)

    # split-K: a GEMM with fewer blocks than SMs splits its K loop so that every SM works;
    # the partial outputs go through the L2 (written, then read back by the reduction)
    blocks = gb * tiles_m * tiles_n
    split = np.where(is_mac, np.clip(np.floor(sm_count / blocks), 1.0,
                                     np.maximum(1.0, np.floor(gk / p["tiling.min_split_k"]))), 1.0)
    partials = (split - 1.0) * out

    loads = np.where(is_mac, tiles_n * a_unique + tiles_m * broadcast * b_unique + partials, inp + w)
    act_in = np.where(is_mac, a_unique + np.where(act_b, b_unique, 0.0), inp)
    resident_in = np.minimum(1.0, cap / np.maximum(act_in, 1.0))
    dram_read = np.where(work, w + act_in * (1.0 - resident_in) + restream, 0.0)
    dram_write = np.where(work, out * np.maximum(0.0, 1.0 - cap / np.maximum(out, 1.0)), 0.0)
    stores = np.where(work, out + partials, 0.0)
    loads = np.where(work, loads, 0.0)
    line = float(llc.line_bytes)
    slots = element_slots(workload, p.lib("gpu.device", "compute.transcendental_cost"))
    return {
        "macs": macs, "work": work, "is_mac": is_mac, "slots": np.where(work, slots, 0.0),
        "blocks": blocks, "split": split, "tile_macs": np.minimum(gm, block_m) * np.minimum(gn, block_n) * gk,
        # MAC work runs in waves of thread blocks, one block per SM at a time (tile quantisation)
        "waves": np.ceil(blocks * split / sm_count),
        "l2_reads": (loads + dram_write) / line, "l2_writes": (stores + dram_read) / line,
        "dram_read": dram_read, "dram_write": dram_write,
    }


def _busy_times(p: Params, llc: ArrayPoint, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seconds each unit is busy per node (module docstring, "Time")."""
    sm_count = p.lib("gpu.device", "compute.sm_count")
    peak = p["gpu.peak_macs_per_s"]
    sm_rate = peak / sm_count * p["gpu.utilization"]
    t_mac = np.where(t["is_mac"], t["waves"] * t["tile_macs"] / t["split"] / sm_rate, 0.0)
    banks = p["llc.slices"] * p["llc.banks_per_slice"]
    return {
        "compute": t_mac + t["slots"] / peak,
        "l2": (t["l2_reads"] * llc.read_latency_s + t["l2_writes"] * llc.write_latency_s) / banks,
        "dram": (t["dram_read"] + t["dram_write"]) / p["gpu.dram_bandwidth_bytes_per_s"],
        "overhead": np.where(t["work"], p["gpu.kernel_overhead_s"], 0.0),
    }


estimate, parameters = SPEC.entry_points(count, resolve)
