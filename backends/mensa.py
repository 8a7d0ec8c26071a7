"""The ``mensa`` family: heterogeneous edge accelerators on the SoC and in memory, after Mensa
(Boroumand et al.; shared/reference/seeds.md, paper 5), and its Edge-TPU-like baseline.

Three accelerators, each a small MAC fabric with its own buffer and path to DRAM
(``data/devices/mensa-g.toml``; the baseline ``edge-tpu-like.toml`` has only the first):

* ``compute_centric``: a systolic array on the SoC, reaching DRAM over the LPDDR channel;
* ``lstm_centric`` and ``data_centric``: MAC vectors in the logic layer of 3D-stacked memory,
  reaching DRAM through the stack at higher bandwidth and lower energy per bit.

Partitioning rule (``partition.rule = "mensa"``), per layer, reported in ``info["partition"]``
and the per-layer ``accelerator`` event (0 compute-centric, 1 LSTM-centric, 2 data-centric):

1. LSTM / GRU / RNN layers go to ``lstm_centric`` (their weights stream every time step);
2. any other MAC layer goes to ``data_centric`` when
   a. its parameter reuse, MACs per weight parameter, is below ``intensity_threshold`` x the
      compute-centric accelerator's ridge point (its peak MACs/s / its DRAM bandwidth, in MACs
      per byte; the edge accelerators hold one-byte int8 parameters, so per parameter = per
      byte, whatever the ONNX type): it is memory-bound there (fully-connected layers at small
      batch, projections of a few tokens); or
   b. it has fewer output channels per group (GEMM N) than ``min_columns_fraction`` x the
      compute-centric array's columns: it cannot fill the array (depthwise and narrow grouped
      convolutions);
   else it stays on ``compute_centric`` (standard convolutions; matrix products of two
   activations, which have no parameters);
3. a non-MAC node runs on the accelerator of the nearest MAC node before it (its producer, in
   the usual chain), on that accelerator's vector lanes.

``partition.rule = "single"`` puts everything on ``compute_centric`` (the Edge-TPU-like baseline).

Cost of a node on an accelerator (vectorised)
=============================================
* Compute: a GEMM (``gemm_batch`` x M x N x K) on a rows x cols systolic array runs output-
  stationary, with the systolic family's SCALE-Sim-exact cycle count and operand reads
  (``systolic_map``: ``ceil(M/rows) x ceil(N/cols)`` folds of ``rows + cols + K - 2`` cycles).
  A ``flexible`` vector (rows = 1) has no fill or drain and maps the larger of M and N onto its
  lanes (each operand read once per fold of the other dimension). A batched MatMul whose weight
  the batch shares is one GEMM (``dram_pim.gemm_dims``). Element ops: ``count / cols`` cycles.
* DRAM traffic: weights once when they fit in half the buffer, else again for every reuse of
  them (the time steps of an LSTM, the chunks of an input larger than half the buffer); the input
  and the output when they exceed a quarter of the buffer (else they stay on chip between layers).
* Cross-accelerator transfers: when a node's accelerator differs from that of the node before it,
  its input moves over the LPDDR channel (or inside the stack between the two in-memory ones).
* Time = max(compute, DRAM) + transfer. Energy: MACs x MAC energy; buffer bytes (each operand
  read once per fold of the other dimension, outputs written once) x buffer energy per byte;
  DRAM bytes and transfer bytes x energy per bit of their path. A buffer's energy per byte
  scales with its capacity (``buffer_energy_exponent`` on a cited reference size), so a right-sized
  buffer costs less per access. No static power or area.

The edge accelerators compute in int8: operands wider than 8 bits (a float model) are costed at 8
bits, as after quantisation (``--passes quantize`` does it for real); narrower ones as they are.
The paper's own ratios of Mensa over the Edge TPU (3.0x / 3.1x) are never used here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported, op_mask
from .errors import TargetError
from .dram_pim import RECURRENT_OPS, Knobs, device, gemm_dims, node_kinds, nonmac_counts, precisions
from .estimate import Estimate
from .systolic_map import compute_cycles, operand_accesses
from .target import Field, Target
from .techlib import Param

FAMILY = "mensa"
ACCELERATORS = ("compute_centric", "lstm_centric", "data_centric")


def _accelerator_fields(what: str) -> dict[str, Field]:
    return {
        "rows": Field("int", f"{what}: PE rows (default: the device's)"),
        "cols": Field("int", f"{what}: PE columns / vector lanes (default: the device's)"),
        "clock_hz": Field("float", f"{what}: clock", unit="Hz"),
        "buffer": Field("capacity", f"{what}: on-chip buffer"),
    }


SCHEMA: dict[str, dict[str, Field]] = {
    "accelerators": {
        "device": Field("str", "the accelerators' data, a device of the technology library (data/devices/)",
                        default="mensa-g"),
    },
    "partition": {
        "rule": Field("choice", "'mensa': by layer family (see the family's doc); 'single': all on compute_centric",
                      default="mensa", choices=("mensa", "single")),
        "intensity_threshold": Field("float", "a MAC layer whose MACs per parameter are below this fraction of the "
                                              "compute-centric ridge point goes to data_centric (a quarter: layers "
                                              "near the ridge still run faster on the large array)", default=0.25),
        "min_columns_fraction": Field("float", "a MAC layer with fewer output channels per group than this fraction "
                                               "of the compute-centric columns goes to data_centric", default=0.25,
                                      maximum=1.0),
    },
    "compute_centric": _accelerator_fields("the SoC systolic array"),
    "lstm_centric": _accelerator_fields("the in-memory LSTM accelerator"),
    "data_centric": _accelerator_fields("the in-memory data-centric accelerator"),
    "memory": {
        "soc_bandwidth_bytes_per_s": Field("float", "the SoC's DRAM channel (LPDDR)", unit="B/s"),
        "stack_bandwidth_bytes_per_s": Field("float", "in-stack bandwidth of the in-memory accelerators",
                                             unit="B/s"),
    },
}


@dataclass
class Accel:
    name: str
    rows: int
    cols: int
    clock: float
    buffer: float
    in_memory: bool
    flexible: bool
    mac_j: float
    buffer_j_per_byte: float
    bandwidth: float
    j_per_bit: float

    @property
    def peak(self) -> float:
        return self.rows * self.cols * self.clock


@dataclass
class Config:
    device: str
    rule: str
    threshold: float
    min_cols: float
    accels: list[Accel]             # the ones in use, index = accelerator id
    soc_bw: float
    soc_j_per_bit: float
    stack_bw: float
    stack_j_per_bit: float
    params: list[Param]

    def info(self) -> dict:
        return {"device": self.device, "rule": self.rule,
                "accelerators": {a.name: {"rows": a.rows, "cols": a.cols, "in_memory": a.in_memory,
                                          "peak_macs_per_s": a.peak, "dram_bandwidth_bytes_per_s": a.bandwidth}
                                 for a in self.accels}}


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    dev = device(target, "accelerators.device")
    k = Knobs(target)
    k("accelerators.device")
    rule = k("partition.rule")
    threshold = k("partition.intensity_threshold") if rule == "mensa" else 1.0
    min_cols = k("partition.min_columns_fraction") if rule == "mensa" else 0.0
    soc_bw = k("memory.soc_bandwidth_bytes_per_s", dev, "memory.soc_bandwidth_bytes_per_s")
    soc_j = k.lib(dev, "memory.soc_energy_per_bit_j")
    names = ACCELERATORS if rule == "mensa" else ACCELERATORS[:1]
    if rule == "mensa" and "memory.stack_energy_per_bit_j" not in dev.params:
        raise TargetError(f"partition.rule = 'mensa' needs in-memory accelerators, and device '{dev.name}' has no "
                          "3D-stacked memory (memory.stack_bandwidth_bytes_per_s)", where=target.where("partition.rule"),
                          hint="use the 'mensa' target, whose device has stacked memory")
    if rule == "mensa":
        stack_bw = k("memory.stack_bandwidth_bytes_per_s", dev, "memory.stack_bandwidth_bytes_per_s")
        stack_j = k.lib(dev, "memory.stack_energy_per_bit_j")
    else:
        stack_bw, stack_j = soc_bw, soc_j
    exponent = k.lib(dev, "memory.buffer_energy_exponent")
    accels = []
    for name in names:
        in_memory = bool(k.lib(dev, f"{name}.in_memory"))
        buffer = k(f"{name}.buffer", dev, f"{name}.buffer_bytes")
        ref_j, ref_bytes = k.lib(dev, f"{name}.buffer_reference_energy_per_byte_j"), \
            k.lib(dev, f"{name}.buffer_reference_bytes")
        buffer_j = ref_j * (buffer / ref_bytes) ** exponent
        k.derived(f"{name}.buffer_energy_per_byte_j", buffer_j, "reference energy x (buffer / reference "
                                                                "capacity) ^ buffer_energy_exponent")
        accels.append(Accel(
            name, int(k(f"{name}.rows", dev, f"{name}.rows")), int(k(f"{name}.cols", dev, f"{name}.cols")),
            k(f"{name}.clock_hz", dev, f"{name}.clock_hz"), buffer, in_memory, bool(k.lib(dev, f"{name}.flexible")),
            k.lib(dev, f"{name}.mac_energy_j"), buffer_j, stack_bw if in_memory else soc_bw,
            stack_j if in_memory else soc_j))
    for a in accels:
        k.derived(f"{a.name}.peak_macs_per_s", a.peak, "rows x cols x clock")
    ridge = accels[0].peak / accels[0].bandwidth
    k.derived("partition.ridge_macs_per_byte", ridge, "compute_centric peak MACs/s / its DRAM bandwidth")
    config = Config(dev.name, rule, threshold, min_cols, accels, soc_bw, soc_j, stack_bw, stack_j, k.params)
    target.cache["config"] = config
    return config


def parameters(target: Target) -> list[Param]:
    return resolve(target).params


def int8_bytes(workload, prec) -> dict[str, np.ndarray]:
    """Weight, input and output bytes with operands wider than 8 bits costed at 8 bits."""
    c = workload.columns
    f = np.float64
    return {"w": c["weight_bytes"].astype(f) * np.minimum(1.0, 8.0 / prec["w_bits"]),
            "inp": c["input_bytes"].astype(f) * np.minimum(1.0, 8.0 / prec["a_bits"]),
            "out": c["output_bytes"].astype(f) * np.minimum(1.0, 8.0 / prec["out_bits"]),
            "a_el": np.minimum(prec["a_bits"], 8.0) / 8}


def _cost_on(a: Accel, workload, kinds, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compute cycles, DRAM bytes and buffer bytes of every node if it ran on accelerator ``a``."""
    c = workload.columns
    f = np.float64
    mac = kinds["mac"]
    gb, gm, gn, gk = gemm_dims(workload, kinds)
    params = c["params"].astype(f)
    w, inp, out, a_bytes_el = b["w"], b["inp"], b["out"], b["a_el"]
    R, C = float(a.rows), float(a.cols)
    if a.flexible:  # a vector: no fill or drain; the larger of M and N on the lanes
        folds_mn = np.ceil(gm / R) * np.ceil(gn / C)
        folds_nm = np.ceil(gn / R) * np.ceil(gm / C)
        transpose = folds_nm < folds_mn
        mac_cycles = gb * np.minimum(folds_mn, folds_nm) * gk
        m_folds = np.where(transpose, np.ceil(gm / C), np.ceil(gm / R))
        n_folds = np.where(transpose, np.ceil(gn / R), np.ceil(gn / C))
        a_reads, w_reads = gb * gm * gk * n_folds, gb * gk * gn * m_folds
    else:  # an output-stationary systolic array: SCALE-Sim's cycles and operand reads (systolic_map)
        mac_cycles = gb * compute_cycles("os", a.rows, a.cols, gm, gn, gk)
        acc = operand_accesses("os", a.rows, a.cols, gm, gn, gk)
        a_reads, w_reads = gb * acc["ifmap_reads"], gb * acc["filter_reads"]
    mac_cycles = np.where(mac, mac_cycles, 0.0)
    simple, mul, trans = nonmac_counts(workload)
    elem_cycles = (simple + mul + 4.0 * trans) / C
    cycles = np.where(kinds["work"], mac_cycles + elem_cycles, 0.0)

    half, quarter = a.buffer / 2, a.buffer / 4
    broadcast = np.where(mac & (params > 0), np.maximum(1.0, gb * gk * gn / np.maximum(params, 1.0)), 1.0)
    refetch = np.where(w > half, broadcast * np.maximum(1.0, np.ceil(inp / half)), 1.0)
    dram = np.where(kinds["work"], w * refetch + np.where(inp > quarter, inp, 0.0) + np.where(out > quarter, out, 0.0),
                    0.0)
    # buffer: operand reads by the array (elements x bytes), outputs written once
    w_el = np.where(params > 0, w / np.maximum(params, 1.0), a_bytes_el)
    buffer = np.where(mac, a_reads * a_bytes_el + w_reads * w_el + out, np.where(kinds["work"], inp + out, 0.0))
    return {"cycles": cycles, "dram": dram, "buffer": buffer, "compulsory": w + inp + out}


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    names, ops = list(workload.names), list(workload.ops)
    c = workload.columns
    f = np.float64
    n = len(names)
    kinds = node_kinds(workload)
    prec = precisions(workload, kinds)
    mac, work = kinds["mac"], kinds["work"]
    macs = np.where(mac, c["macs"].astype(f), 0.0)
    sized = int8_bytes(workload, prec)
    inp = sized["inp"]
    costs = [_cost_on(a, workload, kinds, sized) for a in cfg.accels]

    # placement
    ridge = cfg.accels[0].peak / cfg.accels[0].bandwidth
    params = c["params"].astype(f)
    intensity = np.where(mac & (params > 0), macs / np.maximum(params, 1.0), np.inf)
    narrow = mac & (c["gemm_n"].astype(f) < cfg.min_cols * cfg.accels[0].cols)
    place = np.zeros(n, dtype=np.int64)
    if cfg.rule == "mensa":
        recurrent = mac & op_mask(np.asarray(ops, dtype=object), list(RECURRENT_OPS))
        low = mac & ~recurrent & ((intensity < cfg.threshold * ridge) | narrow)
        place = np.where(recurrent, 1, np.where(low, 2, 0))
        idx = np.arange(n)
        last_mac = np.maximum.accumulate(np.where(mac, idx, -1)) if n else idx
        place = np.where(mac, place, np.where(last_mac >= 0, place[np.maximum(last_mac, 0)], 0))

    def pick(key: str) -> np.ndarray:
        return np.choose(place, [cst[key] for cst in costs]) if len(costs) > 1 else costs[0][key]

    clock = np.array([a.clock for a in cfg.accels])[place]
    bw = np.array([a.bandwidth for a in cfg.accels])[place]
    t_compute = pick("cycles") / clock
    dram = pick("dram")
    t_dram = dram / bw
    # transfers where the accelerator changes between consecutive costed nodes
    in_mem = np.array([a.in_memory for a in cfg.accels])[place]
    work_idx = np.flatnonzero(work)
    moved = np.zeros(n, dtype=bool)
    if len(work_idx) > 1:
        moved[work_idx[1:]] = place[work_idx[1:]] != place[work_idx[:-1]]
    prev_mem = np.zeros(n, dtype=bool)
    if len(work_idx) > 1:
        prev_mem[work_idx[1:]] = in_mem[work_idx[:-1]]
    via_stack = in_mem & prev_mem
    transfer = np.where(moved, inp, 0.0)
    t_transfer = transfer / np.where(via_stack, cfg.stack_bw, cfg.soc_bw)
    node_latency = np.maximum(t_compute, t_dram) + t_transfer

    mac_j = np.array([a.mac_j for a in cfg.accels])[place]
    buf_j = np.array([a.buffer_j_per_byte for a in cfg.accels])[place]
    bit_j = np.array([a.j_per_bit for a in cfg.accels])[place]
    energy = {
        "compute": macs * mac_j,
        "buffer": pick("buffer") * buf_j,
        "memory": dram * 8.0 * bit_j,
        "transfer": transfer * 8.0 * np.where(via_stack, cfg.stack_j_per_bit, cfg.soc_j_per_bit),
    }
    latency = {"compute": t_compute, "memory": t_dram, "transfer": t_transfer}
    partition, notes = _report(names, ops, mac, place, intensity, narrow, c["gemm_n"], ridge, cfg, node_latency,
                               energy)
    info = cfg.info()
    info["partition"] = partition
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops, macs=macs,
        node_latency=node_latency, latency=latency, energy=energy, area={}, batch=batch, notes=notes,
        assumptions=[f"{p.key} = {p.value}: {p.note}" for p in cfg.params if p.kind == "assumed"],
        info=info, target_file=target.source,
        events={"accelerator": np.where(work, place, -1).astype(f),
                "macs_per_parameter": np.where(np.isfinite(intensity), intensity, 0.0),
                "dram_bytes": dram, "transfer_bytes": transfer,
                "utilization": np.where(mac, macs / np.maximum(t_compute * clock *
                                                              np.array([a.rows * a.cols for a in cfg.accels])[place],
                                                              1.0), 0.0)},
    )


def _report(names, ops, mac, place, intensity, narrow, gemm_n, ridge, cfg: Config, latency, energy):
    """Per-layer placement with its reason, and summary notes."""
    partition = []
    limit = cfg.threshold * ridge
    cols = cfg.min_cols * cfg.accels[0].cols
    for i in np.flatnonzero(mac):
        a = cfg.accels[place[i]].name
        reuse = f"{intensity[i]:.3g} MACs per parameter" if np.isfinite(intensity[i]) else "no parameters"
        if cfg.rule == "single":
            why = "single accelerator"
        elif place[i] == 1:
            why = f"recurrent layer ({ops[i]}): weights stream every time step"
        elif place[i] == 2 and narrow[i]:
            why = f"{int(gemm_n[i])} output channels per group < {cols:g}: cannot fill the compute-centric array"
        elif place[i] == 2:
            why = f"{reuse} < {limit:.3g} ({cfg.threshold:g} x its ridge {ridge:.3g} MAC/B): memory-bound on the " \
                  "compute-centric array"
        else:
            why = f"{reuse} >= {limit:.3g} ({cfg.threshold:g} x its ridge {ridge:.3g} MAC/B): compute-bound"
        partition.append({"node": names[i], "op": ops[i], "accelerator": a,
                          "macs_per_parameter": float(intensity[i]) if np.isfinite(intensity[i]) else None,
                          "reason": why})
    node_energy = sum(energy.values())
    notes = []
    if cfg.rule == "mensa":
        notes.append(f"partition: LSTM/GRU/RNN -> lstm_centric; MAC layers with under {limit:.3g} MACs per parameter "
                     f"({cfg.threshold:g} x the compute-centric ridge) or under {cols:g} output channels per group -> "
                     "data_centric; "
                     "others -> compute_centric; non-MAC nodes follow their producer")
    for j, a in enumerate(cfg.accels):
        sel = place == j
        t_share = 100 * float(latency[sel].sum()) / max(float(latency.sum()), 1e-30)
        e_share = 100 * float(node_energy[sel].sum()) / max(float(node_energy.sum()), 1e-30)
        notes.append(f"{a.name}: {int((sel & mac).sum())} MAC layers, {t_share:.1f} % of the latency, "
                     f"{e_share:.1f} % of the energy")
    return partition, notes
