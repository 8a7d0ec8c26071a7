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

Energy: compute = (MACs + non-MAC slots) x MAC energy; L2 = reads x read energy + writes x
write energy (dynamic) + leakage power x node latency; DRAM = bytes x 8 x energy/bit.
The rest of the GPU's static power is not modelled (it is the same for every L2
technology). Area: the L2 array only.

``llc.iso = "area"`` grows (or shrinks) the L2 capacity until its array area equals that
of an ``llc.iso_reference`` (default SRAM) L2 of the declared capacity (DeepNVM++'s
iso-area study); ``"capacity"`` keeps the declared capacity (iso-capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported, op_mask
from .errors import TargetError
from .estimate import Estimate
from .target import Field, Target
from .techlib import ArrayPoint, Param, library
from .units import format_capacity

FAMILY = "gpu-llc"

SCHEMA: dict[str, dict[str, Field]] = {
    "gpu": {
        "device": Field("str", "the GPU, a device of the technology library (data/devices/)", default="gtx-1080-ti"),
        "clock_hz": Field("float", "SM clock (default: the device's boost clock)", unit="Hz"),
        "utilization": Field("float", "fraction of peak FP32 throughput a GEMM kernel sustains", maximum=1.0),
        "kernel_overhead_s": Field("float", "idle time per kernel (launch, ramp-up, drain)", minimum=0.0, unit="s"),
        "dram_bandwidth_bytes_per_s": Field("float", "DRAM bandwidth", unit="B/s"),
    },
    "llc": {
        "technology": Field("str", "memory technology of the L2 (data/tech/)", required=True),
        "capacity": Field("capacity", "L2 capacity, e.g. '2816KiB' (default: the device's L2)", unit="B"),
        "slices": Field("int", "L2 slices (default: the device's)"),
        "banks_per_slice": Field("int", "banks per slice, each serving one access at a time (default: the device's)"),
        "iso": Field("choice", "'capacity': as declared; 'area': grown to the area of the reference L2",
                     default="capacity", choices=("capacity", "area")),
        "iso_reference": Field("str", "technology whose area at the declared capacity sets the iso-area budget",
                               default="sram"),
    },
    "dram": {
        "technology": Field("str", "off-chip memory technology (data/tech/), for energy per bit", default="dram"),
    },
    "tiling": {
        "block_m": Field("int", "thread-block tile rows (output pixels / GEMM M); 128 as in cuBLAS/CUTLASS "
                                "large tiles", default=128),
        "block_n": Field("int", "thread-block tile columns (output channels / GEMM N)", default=128),
        "min_split_k": Field("int", "split-K: each split of the K loop keeps at least this many of K", default=256),
    },
}

VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
                      "Constant", "Optional", "OptionalGetElement"})
_TRANSCENDENTAL = ("div", "exp", "log", "sqrt", "pow", "tanh", "erf")
_SIMPLE = ("add", "mul", "cmp", "other")
LLC_COMPONENTS = ("l2_read", "l2_write", "l2_leakage")


class _NoFit(Exception):
    """The target is valid but cannot be realised (e.g. iso-area capacity outside the table)."""


@dataclass
class Config:
    """A gpu-llc target resolved against the technology library (SI units)."""

    device: str
    peak_macs_per_s: float
    sm_count: int
    utilization: float
    kernel_overhead_s: float
    transcendental_cost: float
    mac_energy_j: float
    dram_bandwidth: float
    dram_capacity: float
    dram_energy_per_bit: float
    llc_technology: str
    llc: ArrayPoint
    slices: int
    banks_per_slice: int
    block_m: int
    block_n: int
    min_split_k: int
    declared_capacity: int
    iso: str
    params: list[Param]

    def info(self) -> dict:
        return {"device": self.device, "llc_technology": self.llc_technology,
                "llc_capacity_bytes": self.llc.capacity_bytes, "declared_capacity_bytes": self.declared_capacity,
                "iso": self.iso, "llc_line_bytes": self.llc.line_bytes, "llc_area_mm2": self.llc.area_mm2}


def resolve(target: Target) -> Config:
    """Fill the target's defaults from the library and look up the L2 array (cached)."""
    if "config" in target.cache:
        return target.cache["config"]
    lib = library()
    where = target.source
    with target.library_errors():
        dev = lib.device(target["gpu.device"])
        tech = lib.tech(target["llc.technology"])
        dram = lib.tech(target["dram.technology"])
        table = lib.array_table(tech.name)

    params: list[Param] = []

    def knob(key: str, default_param: str | None = None, source=dev):
        value, origin = target[key], target.origins.get(key, "default")
        if value is None and default_param is not None:
            p = source.param(default_param)
            params.append(Param(key, p.value, p.kind, f"= {source.name} {default_param}: {p.note}", p.origin,
                                p.formula))
            return p.value
        kind = "--set" if origin == "--set" else ("default" if origin == "default" else "target")
        note = {"--set": f"--set {key}={target.describe(key)}", "default": "family default"}.get(kind, origin)
        params.append(Param(key, value, kind, note, where))
        return value

    knob("gpu.device")
    clock = knob("gpu.clock_hz", "compute.boost_clock_hz")
    utilization = knob("gpu.utilization", "compute.utilization")
    overhead = knob("gpu.kernel_overhead_s", "compute.kernel_overhead_s")
    bandwidth = knob("gpu.dram_bandwidth_bytes_per_s", "dram.bandwidth_bytes_per_s")
    knob("llc.technology")
    capacity = int(knob("llc.capacity", "l2.capacity_bytes"))
    slices = int(knob("llc.slices", "l2.slices"))
    banks = int(knob("llc.banks_per_slice", "l2.banks_per_slice"))
    iso = knob("llc.iso")
    reference = knob("llc.iso_reference")
    knob("dram.technology")
    block_m, block_n = knob("tiling.block_m"), knob("tiling.block_n")
    min_split_k = knob("tiling.min_split_k")

    declared = capacity
    if iso == "area" and reference != tech.name:
        try:
            ref_table = lib.array_table(reference)
        except TargetError as e:
            raise TargetError(f"llc.iso_reference: {e.message}", where=where, hint=e.hint) from None
        ref = _lookup(ref_table, declared, where)
        grown = table.capacity_for_area(ref.area_mm2)
        if grown is None:
            lo, hi = table.capacity_range
            raise _NoFit(f"iso-area: a {tech.name} L2 with the area of a {format_capacity(declared)} {reference} L2 "
                         f"({ref.area_mm2:.3g} mm^2) lies outside the {tech.name} table "
                         f"({format_capacity(lo)}-{format_capacity(hi)})")
        capacity = int(round(grown))
        params.append(Param("llc.iso_area_mm2", ref.area_mm2, "derived",
                            f"area of a {format_capacity(declared)} {reference} L2: {ref.note}", ref_table.origin))
        params.append(Param("llc.iso_capacity_bytes", capacity, "derived",
                            f"capacity of a {tech.name} L2 of that area (log-log interpolation of the area column)",
                            table.origin))
    llc = _lookup(table, capacity, where)
    params.append(Param("llc.array.table", table.origin, "source", table.source, str(tech.path)))
    for name in ("area_mm2", "read_latency_s", "write_latency_s", "read_energy_j", "write_energy_j", "leakage_w"):
        params.append(Param(f"llc.array.{name}", getattr(llc, name), "source", llc.note, table.origin))
    params.append(Param("llc.array.line_bytes", llc.line_bytes, tech.param("llc_array.line_bytes").kind,
                        tech.param("llc_array.line_bytes").note, tech.param("llc_array.line_bytes").origin))
    peak = dev["compute.cuda_cores"] * clock
    params.append(Param("gpu.peak_macs_per_s", peak, "derived", "compute.cuda_cores x gpu.clock_hz (one FMA per core "
                        "per cycle)", where))
    for key in ("compute.sm_count", "compute.cores_per_sm", "compute.transcendental_cost", "compute.mac_energy_j",
                "dram.capacity_bytes"):
        params.append(_prefixed(dev.param(key), dev.name))
    params.append(_prefixed(dram.param("access.energy_per_bit_j"), dram.name))
    for p in tech.params.values():
        if p.key.startswith("cell."):
            params.append(_prefixed(p, tech.name))

    config = Config(dev.name, peak, int(dev["compute.sm_count"]), utilization, overhead,
                    dev["compute.transcendental_cost"], dev["compute.mac_energy_j"], bandwidth,
                    dev["dram.capacity_bytes"], dram["access.energy_per_bit_j"], tech.name, llc, slices, banks,
                    block_m, block_n, min_split_k, declared, iso, params)
    target.cache["config"] = config
    return config


def _prefixed(p: Param, owner: str) -> Param:
    return Param(f"{owner}:{p.key}", p.value, p.kind, p.note, p.origin, p.formula)


def _lookup(table, capacity: int, where: str) -> ArrayPoint:
    if not table.covers(capacity):
        lo, hi = table.capacity_range
        raise TargetError(f"llc.capacity = {format_capacity(capacity)}: no {table.technology} array data at that "
                          f"capacity (the NVSim table covers {format_capacity(lo)} to {format_capacity(hi)})",
                          where=where,
                          hint=f"choose a capacity between {format_capacity(lo)} and {format_capacity(hi)}")
    return table.at(capacity)


def parameters(target: Target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
    try:
        return resolve(target).params
    except _NoFit as e:
        raise TargetError(str(e), where=target.source) from None


# ---------------------------------------------------------------- the model

def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    try:
        cfg = resolve(target)
    except _NoFit as e:
        return Estimate.not_fitting(target, str(e), names=workload.names, ops=workload.ops)
    check_supported(workload, target, FAMILY)
    names, ops = workload.names, workload.ops
    c = workload.columns
    footprint = float(c["weight_bytes"].sum() + (c["input_bytes"] + c["output_bytes"]).max(initial=0.0))
    if footprint > cfg.dram_capacity:
        return Estimate.not_fitting(
            target, f"weights plus the largest layer's activations need {format_capacity(footprint)}, the GPU has "
                    f"{format_capacity(cfg.dram_capacity)} of DRAM", names=names, ops=ops, info=cfg.info())

    t = _traffic(workload, cfg)
    work = t["work"]
    busy = _busy_times(workload, cfg, t)
    latency = np.maximum.reduce([busy["compute"], busy["l2"], busy["dram"]]) + busy["overhead"]
    energy = {
        "compute": (t["macs"] + t["slots"]) * cfg.mac_energy_j,
        "l2_read": t["l2_reads"] * cfg.llc.read_energy_j,
        "l2_write": t["l2_writes"] * cfg.llc.write_energy_j,
        "l2_leakage": latency * cfg.llc.leakage_w,
        "dram": (t["dram_read"] + t["dram_write"]) * 8.0 * cfg.dram_energy_per_bit,
    }
    units = ("compute", "l2", "dram")
    bound = np.array(units, dtype=object)[np.argmax(np.stack([busy[u] for u in units]), axis=0)]
    notes = [f"{int(np.sum(work & (bound == u)))} of {int(work.sum())} costed nodes are {u}-bound" for u in units]
    total = float(latency.sum())
    if total > 0 and busy["overhead"].sum() > 0:
        kind = next((p.kind for p in cfg.params if p.key == "gpu.kernel_overhead_s"), "")
        notes.append(f"{100 * float(busy['overhead'].sum()) / total:.0f} % of the latency is the fixed per-kernel "
                     f"overhead ({int(work.sum())} kernels x gpu.kernel_overhead_s = {cfg.kernel_overhead_s:.3g} s"
                     f"{', assumed' if kind == 'assumed' else ''}); --set gpu.kernel_overhead_s=0 shows the rest")
    if cfg.iso == "area":
        notes.append(f"iso-area: L2 capacity {format_capacity(cfg.llc.capacity_bytes)} "
                     f"(declared {format_capacity(cfg.declared_capacity)})")
    assumptions = [f"{p.key} = {_fmt(p.value)}: {p.note}" for p in cfg.params if p.kind == "assumed"]
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=list(names), ops=list(ops),
        macs=t["macs"], node_latency=latency, latency=busy, energy=energy, area={"llc": cfg.llc.area_mm2},
        batch=batch, notes=notes, assumptions=assumptions, info=cfg.info(), target_file=target.source,
        events={"l2_reads": t["l2_reads"], "l2_writes": t["l2_writes"], "dram_read_bytes": t["dram_read"],
                "dram_write_bytes": t["dram_write"]},
    )


def _traffic(workload, cfg: Config) -> dict[str, np.ndarray]:
    """Bytes through the L2 and DRAM per node (module docstring, points 1-3)."""
    c = workload.columns
    f = np.float64
    macs = c["macs"].astype(f)
    w, inp, out, params = (c[k].astype(f) for k in ("weight_bytes", "input_bytes", "output_bytes", "params"))
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    cap = float(cfg.llc.capacity_bytes)
    is_mac = macs > 0
    work = ~(op_mask(np.asarray(workload.ops, dtype=object), list(VIEW_OPS)) & ~is_mac)
    if "folded" in workload.columns:  # weight decodes / precision casts fused into their readers
        work &= workload.columns["folded"] == 0

    # operands of MAC nodes: A (activations) and B (weights, or a second activation)
    has_w = params > 0
    act_b = is_mac & ~has_w
    a_el, b_el = gb * gm * gk, gb * gk * gn
    b_unique = np.where(act_b, inp * b_el / (a_el + b_el), w)
    a_unique = inp - np.where(act_b, b_unique, 0.0)
    elem_w = np.where(has_w, w / np.maximum(params, 1.0), 4.0)
    a_unique = np.where(is_mac & has_w, np.minimum(a_unique, a_el * elem_w), a_unique)
    broadcast = np.where(is_mac & has_w, np.maximum(1.0, b_el / np.maximum(params, 1.0)), 1.0)
    tiles_m, tiles_n = np.ceil(gm / cfg.block_m), np.ceil(gn / cfg.block_n)

    # re-streams that miss, in the cheaper raster order
    def miss(working_set):
        return np.clip(1.0 - cap / np.maximum(working_set, 1.0), 0.0, 1.0)

    restream_b = (tiles_m * broadcast - 1.0) * b_unique * miss(b_unique * broadcast / gb)
    restream_a = (tiles_n - 1.0) * a_unique * miss(a_unique / gb)
    restream = np.where(is_mac, np.minimum(restream_a, restream_b), 0.0)

    # split-K: a GEMM with fewer blocks than SMs splits its K loop so that every SM works;
    # the partial outputs go through the L2 (written, then read back by the reduction)
    blocks = gb * tiles_m * tiles_n
    split = np.where(is_mac, np.clip(np.floor(cfg.sm_count / blocks), 1.0,
                                     np.maximum(1.0, np.floor(gk / cfg.min_split_k))), 1.0)
    partials = (split - 1.0) * out

    loads = np.where(is_mac, tiles_n * a_unique + tiles_m * broadcast * b_unique + partials, inp + w)
    act_in = np.where(is_mac, a_unique + np.where(act_b, b_unique, 0.0), inp)
    resident_in = np.minimum(1.0, cap / np.maximum(act_in, 1.0))
    dram_read = np.where(work, w + act_in * (1.0 - resident_in) + restream, 0.0)
    dram_write = np.where(work, out * np.maximum(0.0, 1.0 - cap / np.maximum(out, 1.0)), 0.0)
    stores = np.where(work, out + partials, 0.0)
    loads = np.where(work, loads, 0.0)
    line = float(cfg.llc.line_bytes)
    slots = (sum(c[k].astype(f) for k in _SIMPLE)
             + cfg.transcendental_cost * sum(c[k].astype(f) for k in _TRANSCENDENTAL))
    return {
        "macs": macs, "work": work, "is_mac": is_mac, "slots": np.where(work, slots, 0.0),
        "blocks": blocks, "split": split, "tile_macs": np.minimum(gm, cfg.block_m) * np.minimum(gn, cfg.block_n) * gk,
        "l2_reads": (loads + dram_write) / line, "l2_writes": (stores + dram_read) / line,
        "dram_read": dram_read, "dram_write": dram_write,
    }


def _busy_times(workload, cfg: Config, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seconds each unit is busy per node (module docstring, "Time")."""
    # MAC work runs in waves of thread blocks, one block per SM at a time (tile quantisation)
    waves = np.ceil(t["blocks"] * t["split"] / cfg.sm_count)
    sm_rate = cfg.peak_macs_per_s / cfg.sm_count * cfg.utilization
    t_mac = np.where(t["is_mac"], waves * t["tile_macs"] / t["split"] / sm_rate, 0.0)
    banks = cfg.slices * cfg.banks_per_slice
    return {
        "compute": t_mac + t["slots"] / cfg.peak_macs_per_s,
        "l2": (t["l2_reads"] * cfg.llc.read_latency_s + t["l2_writes"] * cfg.llc.write_latency_s) / banks,
        "dram": (t["dram_read"] + t["dram_write"]) / cfg.dram_bandwidth,
        "overhead": np.where(t["work"], cfg.kernel_overhead_s, 0.0),
    }


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
