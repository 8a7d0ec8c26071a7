"""The ``upmem`` family: general-purpose DRAM processing units (DPUs) beside DRAM banks, after the
UPMEM system characterised by PrIM (shared/reference/seeds.md, paper 5; the data in
``data/devices/upmem-prim-2556.toml`` with its sources).

Execution model (PrIM's GEMV/MLP style), per node, vectorised over the workload
===============================================================================

*Weights are resident*: they are written to the DPUs' MRAM banks once, when the model is loaded
(the premise of PIM: the data already lives in memory). A model whose weights exceed the DPUs'
total MRAM does not fit (``mapping.weights = "stream"`` instead sends the weights with every
inference, at the host-transfer cost).

*A MAC node* is a batch of GEMMs (``gemm_batch`` x M x N x K; a batched MatMul whose weight the
batch shares is one GEMM, ``dram_pim.gemm_dims``). Its ``gemm_batch x N`` output columns are
partitioned across the DPUs (PrIM's GEMV partitions the matrix rows the same way). DPUs left over
take a share of the rows M (``mapping.split_m = "auto"``: output pixels or tokens; each such group
holds its own copy of the weights, and all copies must fit in MRAM), then, with
``mapping.split_k = "auto"``, a share of K, up to ``ceil(K / min_k_per_dpu)`` parts whose partial
sums (4 B each) the host adds (the host's add time is not modelled; its transfer is). Then,
serially, as PrIM times its phases:

1. CPU->DPU: every DPU receives the activations it needs: the node's input bytes / (M split x K
   split) (a GEMV vector is replicated into every DPU). Ranks transfer in parallel; within a rank
   the DPUs' buffers share the rank's measured bandwidth: time = bytes per DPU x DPUs used per
   rank / (CPU->DPU bandwidth per rank).
2. The DPU kernel (one launch, ``launch_overhead_s``): each DPU runs ``columns x rows x K`` / its
   splits MACs at a cost in instructions per MAC set by the operands' precision (``dram_pim.precisions``):
   int8 = loop overhead + one 8x8 multiply; int16 = overhead + 16 shift-and-add multiply steps
   (DPUs have no 32-bit multiplier); 32-bit operands are ONNX floats: overhead + software float
   add and multiply; binary = a 32-bit XNOR + count-ones per 32 products. The pipeline retires one
   instruction per cycle with at least 11 tasklets, ``tasklets / 11`` of that with fewer.
   Meanwhile its DMA engine streams from MRAM to WRAM the DPU's weight slice (again for each
   chunk of activations when the slice exceeds half the WRAM), its activation slice, and writes
   its outputs, at PrIM's DMA bandwidth (alpha + beta x size per 2 KiB transfer). Tasklets overlap
   the two: the DPU takes the longer.
3. DPU->CPU: the outputs (or partial sums) return to the host the same way at the DPU->CPU
   bandwidth; the next MAC layer starts from the host again (PrIM's MLP).

*Other compute nodes* (ReLU, Add, Softmax, ...) run on the DPUs inside the preceding kernel, on
data already there: their element operations are spread over all DPUs, each costing loop
overhead + the operation (add/compare 1 instruction, a multiply or a transcendental op by the
precision rules above). *Data-movement ops* (Transpose, Concat, ...) run on the host, on
activations it holds between kernels: not modelled (noted). Views and folded nodes are free.

Energy: DPU pipeline = DPU power x kernel time x DPUs used; MRAM = DMA bytes x energy per bit of
an in-bank access; host transfers = bytes x the off-chip DRAM energy per bit (HAN15). Area: none
is modelled (the DPUs sit in commodity DRAM chips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported
from .dram_pim import (Knobs, device, gemm_dims, node_kinds, nonmac_counts, precision_class,
                       precisions, tech)
from .estimate import Estimate
from .target import Field, Target
from .techlib import Param
from .units import format_capacity

FAMILY = "upmem"

SCHEMA: dict[str, dict[str, Field]] = {
    "system": {
        "device": Field("str", "the UPMEM system, a device of the technology library (data/devices/)",
                        default="upmem-prim-2556"),
        "dpus": Field("int", "DPUs used (default: the device's)"),
        "clock_hz": Field("float", "DPU clock (default: the device's)", unit="Hz"),
        "tasklets": Field("int", "tasklets (software threads) per DPU; >= 11 fill the 14-stage pipeline",
                          default=16, maximum=24),
    },
    "host": {
        "cpu_to_dpu_bytes_per_s_per_rank": Field("float", "CPU->DPU parallel transfer bandwidth of one rank",
                                                 unit="B/s"),
        "dpu_to_cpu_bytes_per_s_per_rank": Field("float", "DPU->CPU parallel transfer bandwidth of one rank",
                                                 unit="B/s"),
        "launch_overhead_s": Field("float", "per DPU kernel launch and completion", minimum=0.0, unit="s"),
    },
    "mapping": {
        "split_m": Field("choice", "'auto': split GEMM rows (output pixels, tokens) across DPUs left over by the "
                                   "output columns (their weights are replicated)", default="auto",
                         choices=("auto", "never")),
        "split_k": Field("choice", "'auto': split K across DPUs still left over (the host adds partial sums)",
                         default="auto", choices=("auto", "never")),
        "min_k_per_dpu": Field("int", "split-K keeps at least this much of K on each DPU", default=64),
        "weights": Field("choice", "'resident': weights live in MRAM; 'stream': sent with every inference",
                         default="resident", choices=("resident", "stream")),
        "conv_activation_bits": Field("int", "activation width of convolutions (0: the weights' width)",
                                      default=0, minimum=0, maximum=64),
    },
}

LATENCY_COMPONENTS = ("transfer_in", "compute", "mram", "transfer_out", "overhead")


@dataclass
class Config:
    device: str
    dpus: int
    dpus_per_rank: int
    clock_hz: float
    tasklets: int
    ipc: float                      # instructions per cycle per DPU
    mram_bytes: float
    wram_bytes: float
    mram_read_bw: float
    mram_write_bw: float
    to_dpu_bw: float                # per rank
    to_cpu_bw: float
    rank_parallelism: float
    launch_s: float
    mac_instr: np.ndarray           # by precision class: binary, int8, int16, float
    op_instr: np.ndarray            # element op (add/cmp) by class
    mul_instr: np.ndarray
    trans_instr: np.ndarray
    loop_instr: float
    dpu_power_w: float
    mram_j_per_bit: float
    host_j_per_bit: float
    split_m: str
    split_k: str
    min_k: int
    weights: str
    conv_bits: int
    params: list[Param]

    def info(self) -> dict:
        return {"device": self.device, "dpus": self.dpus, "clock_hz": self.clock_hz, "tasklets": self.tasklets,
                "mram_capacity_bytes": self.dpus * self.mram_bytes, "weights": self.weights}


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    dev = device(target, "system.device")
    dram = tech("dram", target.source)
    k = Knobs(target)
    k("system.device")
    dpus = int(k("system.dpus", dev, "system.dpus"))
    clock = k("system.clock_hz", dev, "dpu.clock_hz")
    tasklets = int(k("system.tasklets"))
    fill = k.lib(dev, "dpu.tasklets_to_fill_pipeline")
    k.lib(dev, "dpu.pipeline_stages")
    ipc = min(1.0, tasklets / fill)
    k.derived("system.instructions_per_cycle", ipc, f"min(1, tasklets / {fill:g}): one instruction retires per cycle "
                                                    "once enough tasklets fill the pipeline")
    to_dpu = k("host.cpu_to_dpu_bytes_per_s_per_rank", dev, "host.cpu_to_dpu_bytes_per_s_per_rank")
    to_cpu = k("host.dpu_to_cpu_bytes_per_s_per_rank", dev, "host.dpu_to_cpu_bytes_per_s_per_rank")
    launch = k("host.launch_overhead_s", dev, "host.launch_overhead_s")
    split_m, split_k, min_k = k("mapping.split_m"), k("mapping.split_k"), int(k("mapping.min_k_per_dpu"))
    weights, conv_bits = k("mapping.weights"), int(k("mapping.conv_activation_bits"))
    lib = lambda key: k.lib(dev, key)  # noqa: E731
    loop = lib("isa.loop_overhead_instructions")
    int8, int16 = lib("isa.int8_mac_instructions"), lib("isa.int16_mac_instructions")
    lib("isa.int32_mac_instructions")  # for explain: a 32-bit operand counts as float (ONNX float32)
    fp_add, fp_mul, fp_mac = lib("isa.fp32_add_instructions"), lib("isa.fp32_mul_instructions"), \
        lib("isa.fp32_mac_instructions")
    binary = lib("isa.binary_word_mac_instructions") / 32.0
    mul8, mul16 = lib("isa.mul8_instructions"), lib("isa.mul16_steps")
    lib("isa.mul32_steps")
    trans = lib("isa.transcendental_mul_adds")
    lib("isa.int32_add_loop_instructions")
    lib("isa.int32_add_ops_per_s")
    for key in ("mram.dma_read_alpha_cycles", "mram.dma_write_alpha_cycles", "mram.dma_beta_cycles_per_byte",
                "mram.dma_bytes"):
        lib(key)
    config = Config(
        dev.name, dpus, int(lib("system.dpus_per_rank")), clock, tasklets, ipc, lib("dpu.mram_bytes"),
        lib("dpu.wram_bytes"), lib("mram.read_bandwidth_bytes_per_s"), lib("mram.write_bandwidth_bytes_per_s"),
        to_dpu, to_cpu, lib("host.rank_parallelism"), launch,
        mac_instr=np.array([binary, int8, int16, fp_mac], dtype=np.float64),
        op_instr=np.array([1.0, 1.0, 1.0, fp_add], dtype=np.float64),
        mul_instr=np.array([1.0, mul8, mul16, fp_mul], dtype=np.float64),
        trans_instr=trans * np.array([1.0 + 1.0, mul8 + 1.0, mul16 + 1.0, fp_mul + fp_add], dtype=np.float64),
        loop_instr=loop, dpu_power_w=lib("energy.dpu_power_w"), mram_j_per_bit=lib("energy.mram_energy_per_bit_j"),
        host_j_per_bit=k.lib(dram, "access.energy_per_bit_j"), split_m=split_m, split_k=split_k, min_k=min_k,
        weights=weights,
        conv_bits=conv_bits, params=k.params)
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
    prec = precisions(workload, kinds, cfg.conv_bits)
    w_total = float(c["weight_bytes"].sum())
    capacity = cfg.dpus * cfg.mram_bytes
    if cfg.weights == "resident" and w_total > capacity:
        return Estimate.not_fitting(
            target, f"the weights ({format_capacity(w_total)}) exceed the MRAM of {cfg.dpus} DPUs "
                    f"({format_capacity(capacity)}); use more DPUs or --set mapping.weights=stream",
            names=names, ops=ops, info=cfg.info())

    mac, nonmac = kinds["mac"], kinds["nonmac"]
    macs = c["macs"].astype(f)
    gb, gm, gn, gk = gemm_dims(workload, kinds)
    w, inp, out = c["weight_bytes"].astype(f), c["input_bytes"].astype(f), c["output_bytes"].astype(f)
    cls = precision_class(prec["bits"])

    # partitioning: output columns across DPUs, then rows (M), then K while DPUs are left
    columns = gb * gn
    col_dpus = np.minimum(cfg.dpus, columns)
    spare = np.floor(cfg.dpus / col_dpus)
    m_split = np.minimum(gm, spare) if cfg.split_m == "auto" else np.ones_like(gm)
    if cfg.split_k == "auto":
        split = np.maximum(1.0, np.minimum(np.floor(spare / m_split), np.ceil(gk / cfg.min_k)))
    else:
        split = np.ones_like(gk)
    used = np.where(mac, col_dpus * m_split * split, 0.0)
    resident = float(np.sum(np.where(mac, w * m_split, w)))
    if cfg.weights == "resident" and resident > capacity:
        return Estimate.not_fitting(
            target, f"the weights replicated for the row split ({format_capacity(resident)}) exceed the MRAM of "
                    f"{cfg.dpus} DPUs ({format_capacity(capacity)}); --set mapping.split_m=never",
            names=names, ops=ops, info=cfg.info())
    cols_per_dpu = np.ceil(columns / col_dpus)
    rows_per_dpu = np.ceil(gm / m_split)
    k_per_dpu = np.ceil(gk / split)
    macs_per_dpu = cols_per_dpu * rows_per_dpu * k_per_dpu

    # DPU kernel: instructions (MACs + the node's own element ops, e.g. a bias) and MRAM streaming
    simple, mul, trans = nonmac_counts(workload)
    elem_instr = (simple * (cfg.loop_instr + cfg.op_instr[cls]) + mul * (cfg.loop_instr + cfg.mul_instr[cls])
                  + trans * (cfg.loop_instr + cfg.trans_instr[cls]))
    rate = cfg.clock_hz * cfg.ipc
    mac_instr = macs_per_dpu * cfg.mac_instr[cls] + elem_instr / np.maximum(used, 1.0)
    t_mac = np.where(mac, mac_instr / rate, 0.0)
    t_elem = np.where(nonmac, elem_instr / (cfg.dpus * rate), 0.0)
    a_slice = inp / (m_split * split)
    w_slice = w / np.maximum(col_dpus * split, 1.0)
    budget = cfg.wram_bytes / 2
    restream = np.where(w_slice > budget, np.maximum(1.0, np.ceil(a_slice / budget)), 1.0)
    out_el_bytes = np.where(split > 1, 4.0, out / (gb * gm * gn))
    out_slice = cols_per_dpu * rows_per_dpu * out_el_bytes
    mram_read = np.where(mac, w_slice * restream + a_slice, 0.0)
    mram_write = np.where(mac, out_slice, 0.0)
    t_mram = mram_read / cfg.mram_read_bw + mram_write / cfg.mram_write_bw

    # host transfers: each rank in parallel, its DPUs' buffers one after another
    per_rank = np.minimum(used, cfg.dpus_per_rank)
    stream_w = w_slice if cfg.weights == "stream" else 0.0
    t_in = np.where(mac, (a_slice + stream_w) * per_rank / (cfg.to_dpu_bw * cfg.rank_parallelism), 0.0)
    t_out = np.where(mac, out_slice * per_rank / (cfg.to_cpu_bw * cfg.rank_parallelism), 0.0)
    host_bytes = np.where(mac, (a_slice + stream_w + out_slice) * used, 0.0)

    latency = {
        "transfer_in": t_in,
        "compute": t_mac + t_elem,
        "mram": t_mram,
        "transfer_out": t_out,
        "overhead": np.where(mac, cfg.launch_s, 0.0),
    }
    node_latency = t_in + np.maximum(t_mac + t_elem, t_mram) + t_out + latency["overhead"]
    active = np.where(mac, used, np.where(nonmac, cfg.dpus, 0.0))
    energy = {
        "compute": cfg.dpu_power_w * (t_mac + t_elem) * active,
        "mram": (mram_read + mram_write) * np.maximum(used, 1.0) * 8.0 * cfg.mram_j_per_bit,
        "transfer": host_bytes * 8.0 * cfg.host_j_per_bit,
    }
    notes = _notes(names, kinds, prec, used, split, t_in + t_out, np.maximum(t_mac + t_elem, t_mram), cfg)
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops,
        macs=np.where(kinds["folded"], 0.0, macs), node_latency=node_latency, latency=latency, energy=energy,
        area={}, batch=batch, notes=notes, assumptions=[f"{p.key} = {p.value}: {p.note}" for p in cfg.params
                                                        if p.kind == "assumed"],
        info=cfg.info(), target_file=target.source,
        events={"dpus_used": used, "k_split": np.where(mac, split, 0.0), "host_bytes": host_bytes,
                "mram_bytes": (mram_read + mram_write) * np.maximum(used, 1.0) * mac,
                "bits": prec["bits"]},
    )


def _notes(names, kinds, prec, used, split, t_host, t_dpu, cfg: Config) -> list[str]:
    mac = kinds["mac"]
    notes = []
    if mac.any():
        classes = precision_class(prec["bits"][mac])
        labels = ("binary", "int <= 8 bit", "int16", "float (software-emulated on DPUs)")
        mix = ", ".join(f"{int((classes == i).sum())} {labels[i]}" for i in range(4) if (classes == i).any())
        notes.append(f"MAC layers by precision: {mix}")
        host_bound = int((mac & (t_host > t_dpu)).sum())
        notes.append(f"{host_bound} of {int(mac.sum())} MAC layers spend longer in host<->DPU transfers than in "
                     "their DPU kernel")
        low = mac & (used < cfg.dpus / 2)
        if low.any():
            notes.append(f"{int(low.sum())} MAC layers leave more than half of the DPUs idle (too few output columns, "
                         f"rows and K-splits for {cfg.dpus} DPUs)")
        if (split > 1).any():
            notes.append(f"{int((mac & (split > 1)).sum())} MAC layers split K across DPUs; the host adds their "
                         "partial sums (the adds' time is not modelled)")
    if kinds["move"].any():
        notes.append(f"{int(kinds['move'].sum())} data-movement nodes run on the host between kernels (not modelled)")
    return notes
