"""The ``upmem`` family: general-purpose DRAM processing units (DPUs) beside DRAM banks, after the
UPMEM system characterised by PrIM (shared/reference/seeds.md, paper 5; the data in
``data/devices/upmem-prim-2556.toml`` with its sources). Keys, defaults and their sources:
``data/families/upmem.toml``.

Execution model (PrIM's GEMV/MLP style), per node, vectorised over the workload
===============================================================================

*Weights are resident*: they are written to the DPUs' MRAM banks once, when the model is loaded
(the premise of PIM: the data already lives in memory). A model whose weights exceed the DPUs'
total MRAM does not fit (``mapping.weights = "stream"`` instead sends the weights with every
inference, at the host-transfer cost). A decoder's *KV cache* (the workload's ``cache_bytes``)
is an operand like a weight: partitioned with the output columns, resident in MRAM across decode
steps (``mapping.kv_cache = "resident"``) or sent with every step (``"stream"``).

*A MAC node* is a batch of GEMMs (``gemm_batch`` x M x N x K; a batched MatMul whose weight the
batch shares is one GEMM, ``dram_pim.gemm_dims``). Its ``gemm_batch x N`` output columns are
partitioned across the DPUs (PrIM's GEMV partitions the matrix rows the same way). DPUs left over
take a share of the rows M (``mapping.split_m = "auto"``: output pixels or tokens; each such group
holds its own copy of the weights, and all copies must fit in MRAM), then, with
``mapping.split_k = "auto"``, a share of K, up to ``ceil(K / min_k_per_dpu)`` parts whose partial
sums (``partial_sum_bits`` each) the host adds (the host's add time is not modelled; its transfer
is). Then, serially, as PrIM times its phases:

1. CPU->DPU: every DPU receives the activations it needs: the node's input bytes / (M split x K
   split) (a GEMV vector is replicated into every DPU). Ranks transfer in parallel; within a rank
   the DPUs' buffers share the rank's measured bandwidth: time = bytes per DPU x DPUs used per
   rank / (CPU->DPU bandwidth per rank x rank parallelism).
2. The DPU kernel (one launch, ``launch_overhead_s``): each DPU runs ``columns x rows x K`` / its
   splits MACs at a cost in instructions per MAC set by the operands' precision
   (``dram_pim.operand_bits``, classes of ``dram_pim.precision_class``): int8 = loop overhead + one
   8x8 multiply; int16 = overhead + 16 shift-and-add multiply steps (DPUs have no 32-bit
   multiplier); 32-bit operands are ONNX floats: overhead + software float add and multiply;
   binary = a 32-bit XNOR + count-ones per word of one-bit products. The pipeline retires one
   instruction per cycle with enough tasklets to fill it, ``tasklets / tasklets_to_fill_pipeline``
   of that with fewer. Meanwhile its DMA engine streams from MRAM to WRAM the DPU's weight slice
   (again for each chunk of activations when the slice exceeds ``wram_weight_fraction`` of the
   WRAM), its activation slice, and writes its outputs, at PrIM's DMA bandwidth (alpha + beta x
   size per transfer). Tasklets overlap the two: the DPU takes the longer.
3. DPU->CPU: the outputs (or partial sums) return to the host the same way at the DPU->CPU
   bandwidth; the next MAC layer starts from the host again (PrIM's MLP). With ``mapping.activations =
   "resident"`` (a decoder-aware mapping) a layer's output stays in MRAM instead, and the next MAC layer's
   DPUs get it through the host (DPUs cannot talk to each other): the gather above, then a broadcast of
   what each DPU does not already hold, at PrIM's broadcast rate (``_exchange``).

*Other compute nodes* (elementwise and reductions: ReLU, Add, Softmax, ...) run on the DPUs inside
the preceding kernel, on data already there: their element operations are spread over all DPUs,
each costing loop overhead + the operation (add/compare one instruction, a multiply or a
transcendental op by the precision rules above). *Data movement and gathers* run on the host, on
activations it holds between kernels: not modelled (noted). Views are free.

Energy (counted, then priced by backends/family.py): DPU pipeline = DPU-seconds x DPU power;
MRAM = DMA bits x energy per bit of an in-bank access; host transfers = bits x the host DRAM's
energy per bit (HAN15). Area: not modelled (the DPUs sit in commodity DRAM chips).
"""

from __future__ import annotations

import numpy as np

from .dram_pim import BINARY, FLOAT, INT8, INT16, PRECISION_CLASSES, gemm_dims, is_mac, operand_bits, precision_class
from .family import KIND, SIMPLE_KINDS, TRANSCENDENTAL_KINDS, Counts, FamilySpec, NotFitting, Params, per
from nvmc.ir.units import format_capacity

FAMILY = "upmem"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
DEVICE_KEYS = ("dpu.pipeline_stages", "dpu.mram_bytes", "dpu.wram_bytes", "system.dpus_per_rank",
               "mram.dma_read_alpha_cycles", "mram.dma_write_alpha_cycles", "mram.dma_beta_cycles_per_byte",
               "mram.dma_bytes", "mram.read_bandwidth_bytes_per_s", "mram.write_bandwidth_bytes_per_s",
               "host.rank_parallelism", "isa.loop_overhead_instructions", "isa.mul8_instructions",
               "isa.mul16_steps", "isa.mul32_steps", "isa.int8_mac_instructions", "isa.int16_mac_instructions",
               "isa.int32_mac_instructions", "isa.fp32_add_instructions", "isa.fp32_mul_instructions",
               "isa.fp32_mac_instructions", "isa.binary_word_mac_instructions", "isa.binary_mac_instructions",
               "isa.transcendental_mul_adds", "isa.int32_add_loop_instructions", "isa.int32_add_ops_per_s",
               "energy.dpu_power_w", "energy.mram_energy_per_bit_j")


def resolve(p: Params) -> None:
    """Every number the model reads, in the order ``nvmc explain`` lists them."""
    dev = lambda key: p.lib("system.device", key)  # noqa: E731
    fill = dev("dpu.tasklets_to_fill_pipeline")
    p.derive("system.instructions_per_cycle", min(1.0, p["system.tasklets"] / fill),
             "min(1, system.tasklets / dpu.tasklets_to_fill_pipeline)",
             "one instruction retires per cycle once enough tasklets fill the pipeline")
    for key in DEVICE_KEYS:
        dev(key)
    p.lib("host.dram", "access.energy_per_bit_j")
    if p["mapping.activations"] == "resident":
        dev("host.broadcast_cpu_to_dpu_bytes_per_s_per_rank")
    loop, mul8, mul16 = dev("isa.loop_overhead_instructions"), dev("isa.mul8_instructions"), dev("isa.mul16_steps")
    fp_add, fp_mul = dev("isa.fp32_add_instructions"), dev("isa.fp32_mul_instructions")
    # instructions per operation, by precision class (binary, int8, int16, float)
    p.cache["mac_instr"] = np.array([dev("isa.binary_mac_instructions"), dev("isa.int8_mac_instructions"),
                                     dev("isa.int16_mac_instructions"), dev("isa.fp32_mac_instructions")])
    op = np.array([1.0, 1.0, 1.0, fp_add])                      # an integer add / compare: one instruction
    mul = np.array([1.0, mul8, mul16, fp_mul])                  # a one-bit product: one XNOR
    p.cache["elem_instr"] = {"simple": loop + op, "mul": loop + mul,
                             "trans": loop + dev("isa.transcendental_mul_adds") * (mul + op)}


def info(p: Params) -> dict:
    return {"device": p["system.device"], "dpus": p["system.dpus"], "clock_hz": p["system.clock_hz"],
            "tasklets": p["system.tasklets"], "weights": p["mapping.weights"], "kv_cache": p["mapping.kv_cache"],
            "mram_capacity_bytes": p["system.dpus"] * p.lib("system.device", "dpu.mram_bytes")}


# ---------------------------------------------------------------- the model
def count(workload, p: Params) -> Counts:
    resolve(p)
    dev = lambda key: p.lib("system.device", key)  # noqa: E731
    c = workload.columns
    f = np.float64
    dpus, dpus_per_rank = p["system.dpus"], dev("system.dpus_per_rank")
    capacity = dpus * dev("dpu.mram_bytes")
    resident_weights = p["mapping.weights"] == "resident"
    w_total = float(c["weight_bytes"].sum())
    if resident_weights and w_total > capacity:
        raise NotFitting(f"the weights ({format_capacity(w_total)}) exceed the MRAM of {dpus} DPUs "
                         f"({format_capacity(capacity)}); use more DPUs or --set mapping.weights=stream")
    kind = c["kind"]
    mac = is_mac(workload)
    on_dpus = (kind == KIND["elementwise"]) | (kind == KIND["reduction"]) | (kind == KIND["other"])
    prec = operand_bits(workload, p["mapping.conv_activation_bits"])
    cls = precision_class(prec["bits"])
    gb, gm, gn, gk = gemm_dims(workload)
    w, inp, out = (c[k].astype(f) for k in ("weight_read_bytes", "input_bytes", "output_bytes"))
    # a KV cache operand is partitioned with the output columns, like a weight (not replicated like the
    # activation vector), and stays in MRAM between steps when mapping.kv_cache = "resident"
    kv = np.where(mac, c["cache_bytes"].astype(f), 0.0)
    resident_kv = p["mapping.kv_cache"] == "resident"
    inp = inp - kv

    # partitioning: output columns across DPUs, then rows (M), then K while DPUs are left
    columns = gb * gn
    col_dpus = np.minimum(dpus, columns)
    spare = np.floor(dpus / col_dpus)
    m_split = np.minimum(gm, spare) if p["mapping.split_m"] == "auto" else np.ones_like(gm)
    split = np.ones_like(gk)
    if p["mapping.split_k"] == "auto":
        split = np.maximum(1.0, np.minimum(np.floor(spare / m_split), np.ceil(gk / p["mapping.min_k_per_dpu"])))
    used = np.where(mac, col_dpus * m_split * split, 0.0)
    resident = float(np.sum(np.where(mac, c["weight_bytes"] * m_split, c["weight_bytes"])))
    if resident_weights and resident > capacity:
        raise NotFitting(f"the weights replicated for the row split ({format_capacity(resident)}) exceed the MRAM "
                         f"of {dpus} DPUs ({format_capacity(capacity)}); --set mapping.split_m=never")
    cols_per_dpu, rows_per_dpu = np.ceil(columns / col_dpus), np.ceil(gm / m_split)
    macs_per_dpu = cols_per_dpu * rows_per_dpu * np.ceil(gk / split)

    # DPU kernel: instructions (MACs + the node's own element ops, e.g. a bias) and MRAM streaming
    ei = p.cache["elem_instr"]
    simple = sum(c[k].astype(f) for k in SIMPLE_KINDS if k != "mul")
    trans = sum(c[k].astype(f) for k in TRANSCENDENTAL_KINDS)
    elem_instr = simple * ei["simple"][cls] + c["mul"].astype(f) * ei["mul"][cls] + trans * ei["trans"][cls]
    rate = p["system.clock_hz"] * p["system.instructions_per_cycle"]
    t_mac = np.where(mac, (macs_per_dpu * p.cache["mac_instr"][cls] + elem_instr / np.maximum(used, 1.0)) / rate, 0.0)
    t_elem = np.where(on_dpus, elem_instr / (dpus * rate), 0.0)
    a_slice = inp / (m_split * split)
    w_slice = w / np.maximum(col_dpus * split, 1.0)
    kv_slice = kv / np.maximum(col_dpus * split, 1.0)
    budget = dev("dpu.wram_bytes") * p["mapping.wram_weight_fraction"]
    restream = np.where(w_slice > budget, np.maximum(1.0, np.ceil(a_slice / budget)), 1.0)
    out_el_bytes = np.where(split > 1, p["mapping.partial_sum_bits"] / 8, out / (gb * gm * gn))
    out_slice = cols_per_dpu * rows_per_dpu * out_el_bytes
    mram_read = np.where(mac, w_slice * restream + a_slice + kv_slice, 0.0)
    mram_write = np.where(mac, out_slice, 0.0)
    t_mram = mram_read / dev("mram.read_bandwidth_bytes_per_s") + mram_write / dev("mram.write_bandwidth_bytes_per_s")

    # host transfers: each rank in parallel, its DPUs' buffers one after another
    per_rank, parallel = np.minimum(used, dpus_per_rank), dev("host.rank_parallelism")
    stream_w = (0.0 if resident_weights else w_slice) + (0.0 if resident_kv else kv_slice)
    held = (resident if resident_weights else 0.0) + float(kv.sum())
    if resident_kv and kv.any() and held > capacity:
        raise NotFitting(f"the resident weights and KV cache ({format_capacity(held)}) exceed the MRAM of {dpus} DPUs "
                         f"({format_capacity(capacity)}); --set mapping.kv_cache=stream")
    rate_in = p["host.cpu_to_dpu_bytes_per_s_per_rank"]
    a_sent, a_time, exchanged = a_slice, 1.0, np.zeros_like(mac)
    if p["mapping.activations"] == "resident":
        broadcast = rate_in / dev("host.broadcast_cpu_to_dpu_bytes_per_s_per_rank")
        a_sent, a_time, exchanged = _exchange(mac, a_slice, out_slice, used, split, broadcast)
    # a_time: a broadcast byte's time as a share of a parallel transfer's (exactly 1 with "host")
    t_in = np.where(mac, (a_sent * a_time + stream_w) * per_rank / (rate_in * parallel), 0.0)
    t_out = np.where(mac, out_slice * per_rank / (p["host.dpu_to_cpu_bytes_per_s_per_rank"] * parallel), 0.0)
    host_bytes = np.where(mac, (a_sent + stream_w + out_slice) * used, 0.0)
    mram_bytes = (mram_read + mram_write) * np.maximum(used, 1.0)

    busy = {"transfer_in": t_in, "compute": t_mac + t_elem, "mram": t_mram, "transfer_out": t_out,
            "overhead": np.where(mac, p["host.launch_overhead_s"], 0.0)}
    latency = t_in + np.maximum(t_mac + t_elem, t_mram) + t_out + busy["overhead"]
    active = np.where(mac, used, np.where(on_dpus, dpus, 0.0))
    actions = {"compute": ((t_mac + t_elem) * active, dev("energy.dpu_power_w")),      # DPU-seconds x W
               "mram": (mram_bytes * 8, dev("energy.mram_energy_per_bit_j")),
               "transfer": (host_bytes * 8, p.lib("host.dram", "access.energy_per_bit_j"))}
    costed = np.select([cls == BINARY, cls == INT8], [1.0, 8.0], default=prec["bits"])
    return Counts(actions=actions, busy=busy, latency=latency, bits=costed, info=info(p),
                  notes=_notes(workload, cls, used, split, t_in + t_out, np.maximum(t_mac + t_elem, t_mram), dpus,
                               exchanged),
                  mapping={"units_total": dpus, "units_used": np.where(mac, used, np.nan),
                           "split_k": np.where(mac, split, np.nan), "replication": np.where(mac, m_split, np.nan),
                           "host_bytes": host_bytes, "onchip_bytes": mram_bytes * mac,
                           "utilization": np.where(mac, per(c["macs"], dpus * rate / p.cache["mac_instr"][cls] * t_mac),
                                                   np.nan)},
                  events={"dpus_used": used, "k_split": np.where(mac, split, 0.0), "host_bytes": host_bytes,
                          "mram_bytes": mram_bytes * mac, "bits": prec["bits"]})


def _exchange(mac, a_slice, out_slice, used, split, broadcast_time):
    """``mapping.activations = "resident"``: what each DPU of a MAC layer receives from the host, the time of
    one of its bytes as a share of a parallel transfer's, and which layers' inputs are exchanged between DPUs.

    Every MAC layer but the first takes its input from the previous one (the workload's order is topological),
    whose output stays in its DPUs' MRAM. DPUs cannot talk to each other (PrIM: the host is the only path), so
    the output still crosses the host: its gather is the producer's own DPU->CPU transfer, as with "host"; the
    host then broadcasts it to the consumer's DPUs (``dpu_broadcast_to``, at PrIM's broadcast rate), less what a
    DPU already holds: numbering the consumer's DPUs like the producer's, each of the first ``min(used)`` keeps
    its own output slice, up to its input slice (partial sums of a K split are reduced by the host: nothing kept).
    The first layer's input and the last layer's output cross the host as with "host". A DPU never receives
    more than with "host" (``a_sent <= a_slice``), so the host never moves more bytes.
    """
    chained = mac & (np.cumsum(mac) > 1)
    producer = np.maximum.accumulate(np.where(mac, np.arange(len(mac)), -1))   # the latest MAC layer so far
    previous = np.concatenate([[0], producer[:-1]])   # ... before this node (read only where chained)
    kept = np.where(split[previous] > 1, 0.0, np.minimum(a_slice, out_slice[previous]))
    holders = np.minimum(used, used[previous])
    a_sent = np.where(chained, a_slice - kept * holders / np.maximum(used, 1.0), a_slice)
    return a_sent, np.where(chained, broadcast_time, 1.0), chained


def _notes(workload, cls, used, split, t_host, t_dpu, dpus, exchanged) -> list[str]:
    mac = is_mac(workload)
    kind = workload.columns["kind"]
    notes = []
    if mac.any():
        labels = {BINARY: "binary", INT8: "int <= 8 bit", INT16: "int16", FLOAT: "float (software-emulated on DPUs)"}
        mix = ", ".join(f"{int((cls[mac] == i).sum())} {labels[i]}" for i in range(len(PRECISION_CLASSES))
                        if (cls[mac] == i).any())
        notes.append(f"MAC layers by precision: {mix}")
        notes.append(f"{int((mac & (t_host > t_dpu)).sum())} of {int(mac.sum())} MAC layers spend longer in "
                     "host<->DPU transfers than in their DPU kernel")
        low = mac & (used < dpus / 2)
        if low.any():
            notes.append(f"{int(low.sum())} MAC layers leave more than half of the DPUs idle (too few output columns, "
                         f"rows and K-splits for {dpus} DPUs)")
        if exchanged.any():
            notes.append(f"activations stay on the DPUs: {int(exchanged.sum())} of {int(mac.sum())} MAC layers get "
                         "their input from the previous one's DPUs, gathered and broadcast through the host "
                         "(DPUs cannot talk to each other)")
        if (split > 1).any():
            notes.append(f"{int((mac & (split > 1)).sum())} MAC layers split K across DPUs; the host adds their "
                         "partial sums (the adds' time is not modelled)")
    host = (kind == KIND["move"]) | (kind == KIND["gather"])
    if host.any():
        notes.append(f"{int(host.sum())} data-movement nodes run on the host between kernels (not modelled)")
    return notes


estimate, parameters = SPEC.entry_points(count, resolve)
