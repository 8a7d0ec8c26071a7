"""The ``mensa`` family: heterogeneous edge accelerators on the SoC and in memory, after Mensa
(Boroumand et al.; shared/reference/seeds.md, paper 5), and its Edge-TPU-like baseline. Keys,
defaults and their sources: ``data/families/mensa.toml``.

Three accelerators, each a small MAC fabric with its own buffer and path to DRAM
(``data/devices/mensa-g.toml``; the baseline ``edge-tpu-like.toml`` has only the first):

* ``compute_centric``: a systolic array on the SoC, reaching DRAM over the LPDDR channel;
* ``lstm_centric`` and ``data_centric``: MAC vectors in the logic layer of 3D-stacked memory,
  reaching DRAM through the stack at higher bandwidth and lower energy per bit.

Partitioning rule (``partition.rule = "mensa"``), per layer, reported in ``info["partition"]``
and the per-layer ``accelerator`` event (0 compute-centric, 1 LSTM-centric, 2 data-centric):

1. recurrent (LSTM / GRU / RNN) layers go to ``lstm_centric`` (their weights stream every time step);
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
  the batch shares is one GEMM (``dram_pim.gemm_dims``). Element ops: their lane slots
  (``family.element_slots`` with ``accelerators.transcendental_cost``) / cols cycles.
* DRAM traffic: weights (the rows a gather reads) once when they fit in ``buffer.weight_fraction``
  of the buffer, else again for every reuse of them (the time steps of an LSTM, the chunks of an
  input larger than that share); the input and the output when they exceed
  ``buffer.activation_fraction`` of it (else they stay on chip between layers).
* Cross-accelerator transfers: when a node's accelerator differs from that of the node before it,
  its input moves over the LPDDR channel (or inside the stack between the two in-memory ones).
* Time = max(compute, DRAM bytes / the accelerator's own path: ``memory.soc_bandwidth_bytes_per_s``
  on the SoC, ``memory.stack_bandwidth_bytes_per_s`` in memory) + transfer, a roofline per layer;
  the mapping record's ``stall_cycles`` are its excess over ``compute_cycles``. A layer that streams
  its int8 weights (an LSTM step, a batch-1 fully-connected layer) reads about one byte per MAC, so
  an in-memory vector of L lanes at f Hz is bound by the stack below about L x f B/s (64 GB/s for
  the shipped 128-lane LSTM vector): at the shipped 256 GB/s every in-memory layer is compute-bound,
  and the stack bandwidth shows only below that or with wider vectors (the per-accelerator note
  counts the layers bound by their DRAM path). Energy (counted, then priced by backends/family.py):
  MACs x MAC energy; buffer bytes (each operand read once per fold of the other dimension,
  outputs written once) x buffer energy per byte; DRAM bytes and transfer bytes x energy per bit
  of their path. A buffer's energy per byte scales with its capacity (``buffer_energy_exponent``
  on a cited reference size), so a right-sized buffer costs less per access. No static power;
  area not modelled.

The edge accelerators compute in int8 (``accelerators.compute_bits``): operands wider than that (a
float model) are costed at 8 bits, as after quantisation (``--passes quantize`` does it for real;
the estimate's precision note says so); narrower ones as they are. The paper's own ratios of
Mensa over the Edge TPU (3.0x / 3.1x) are never used here.
"""

from __future__ import annotations

import numpy as np

from .dram_pim import gemm_dims, is_mac, operand_bits, recurrent
from .errors import TargetError
from .family import KIND, Counts, FamilySpec, Params, element_slots, target_or_data
from .systolic_map import compute_cycles, operand_accesses

FAMILY = "mensa"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
ACCELERATORS = ("compute_centric", "lstm_centric", "data_centric")
COMPUTE, LSTM, DATA = range(len(ACCELERATORS))


def resolve(p: Params) -> list[dict]:
    """Every number the model reads, in the order ``nvmc explain`` lists them; the accelerators
    in use (index = accelerator id), each a dict of its numbers."""
    if "accels" in p.cache:
        return p.cache["accels"]
    dev = p.data("accelerators.device")
    lib = lambda key: p.lib("accelerators.device", key)  # noqa: E731
    mensa = p["partition.rule"] == "mensa"
    if mensa and "memory.stack_energy_per_bit_j" not in dev.params:
        raise TargetError(f"partition.rule = 'mensa' needs in-memory accelerators, and device '{dev.name}' has no "
                          "3D-stacked memory (memory.stack_bandwidth_bytes_per_s)", where=p.target.where("partition.rule"),
                          hint="use the 'mensa' target, whose device has stacked memory")
    soc = (p["memory.soc_bandwidth_bytes_per_s"], lib("memory.soc_energy_per_bit_j"))
    stack = (target_or_data(p, "memory.stack_bandwidth_bytes_per_s", dev, "memory.stack_bandwidth_bytes_per_s"),
             lib("memory.stack_energy_per_bit_j")) if mensa else soc
    exponent = lib("memory.buffer_energy_exponent")
    accels = []
    for name in ACCELERATORS if mensa else ACCELERATORS[:1]:
        key = lambda k, device_key: target_or_data(p, f"{name}.{k}", dev, f"{name}.{device_key}")  # noqa: E731
        a = {"name": name, "rows": key("rows", "rows"), "cols": key("cols", "cols"), "clock": key("clock_hz", "clock_hz"),
             "buffer": key("buffer", "buffer_bytes"), "in_memory": bool(lib(f"{name}.in_memory")),
             "flexible": bool(lib(f"{name}.flexible")), "mac_j": lib(f"{name}.mac_energy_j")}
        a["buffer_j"] = p.derive(f"{name}.buffer_energy_per_byte_j",
                                 lib(f"{name}.buffer_reference_energy_per_byte_j")
                                 * (a["buffer"] / lib(f"{name}.buffer_reference_bytes")) ** exponent,
                                 f"{name}.buffer_reference_energy_per_byte_j x ({name}.buffer / "
                                 f"{name}.buffer_reference_bytes) ^ memory.buffer_energy_exponent",
                                 "SRAM read energy per byte at the buffer's capacity")
        a["bandwidth"], a["j_per_bit"] = stack if a["in_memory"] else soc
        a["peak"] = p.derive(f"{name}.peak_macs_per_s", a["rows"] * a["cols"] * a["clock"],
                             f"{name}.rows x {name}.cols x {name}.clock_hz", "peak MAC rate")
        accels.append(a)
    p.derive("partition.ridge_macs_per_byte", accels[COMPUTE]["peak"] / accels[COMPUTE]["bandwidth"],
             "compute_centric.peak_macs_per_s / memory.soc_bandwidth_bytes_per_s",
             "the compute-centric array's roofline ridge point, in MACs per byte of DRAM traffic")
    for k in ("accelerators.compute_bits", "accelerators.transcendental_cost", "buffer.weight_fraction",
              "buffer.activation_fraction"):
        p[k]
    p.cache["paths"] = {"soc": soc, "stack": stack}       # (bandwidth, J per bit) between accelerators
    p.cache["accels"] = accels
    return accels


def info(p: Params, accels: list[dict]) -> dict:
    return {"device": p["accelerators.device"], "rule": p["partition.rule"],
            "accelerators": {a["name"]: {"rows": a["rows"], "cols": a["cols"], "in_memory": a["in_memory"],
                                         "peak_macs_per_s": a["peak"], "dram_bandwidth_bytes_per_s": a["bandwidth"]}
                             for a in accels}}


# ---------------------------------------------------------------- the model
def compute_sized(workload, p: Params) -> dict[str, np.ndarray]:
    """Weight (as stored, and as read), input and output bytes with operands wider than the
    accelerators' ``compute_bits`` costed at it; ``a_el``: bytes per activation element."""
    c = workload.columns
    f = np.float64
    native = float(p["accelerators.compute_bits"])
    prec = operand_bits(workload)
    scale = {k: native / np.maximum(prec[f"{k}_bits"], native) for k in ("w", "a", "out")}
    return {"w": c["weight_bytes"].astype(f) * scale["w"], "w_read": c["weight_read_bytes"].astype(f) * scale["w"],
            "inp": c["input_bytes"].astype(f) * scale["a"], "out": c["output_bytes"].astype(f) * scale["out"],
            "a_el": np.minimum(prec["a_bits"], native) / 8}


def _cost_on(a: dict, workload, p: Params, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compute cycles, DRAM bytes and buffer bytes of every node if it ran on accelerator ``a``."""
    c = workload.columns
    mac, work = is_mac(workload), c["kind"] != KIND["view"]
    gb, gm, gn, gk = gemm_dims(workload)
    params = c["params"].astype(np.float64)
    R, C = float(a["rows"]), float(a["cols"])
    if a["flexible"]:  # a vector: no fill or drain; the larger of M and N on the lanes
        folds_mn = np.ceil(gm / R) * np.ceil(gn / C)
        folds_nm = np.ceil(gn / R) * np.ceil(gm / C)
        transpose = folds_nm < folds_mn
        mac_cycles = gb * np.minimum(folds_mn, folds_nm) * gk
        m_folds = np.where(transpose, np.ceil(gm / C), np.ceil(gm / R))
        n_folds = np.where(transpose, np.ceil(gn / R), np.ceil(gn / C))
        a_reads, w_reads = gb * gm * gk * n_folds, gb * gk * gn * m_folds
    else:  # an output-stationary systolic array: SCALE-Sim's cycles and operand reads (systolic_map)
        mac_cycles = gb * compute_cycles("os", a["rows"], a["cols"], gm, gn, gk)
        acc = operand_accesses("os", a["rows"], a["cols"], gm, gn, gk)
        a_reads, w_reads = gb * acc["ifmap_reads"], gb * acc["filter_reads"]
    elem_cycles = element_slots(workload, p["accelerators.transcendental_cost"]) / C
    cycles = np.where(work, np.where(mac, mac_cycles, 0.0) + elem_cycles, 0.0)

    w, w_read, inp, out = b["w"], b["w_read"], b["inp"], b["out"]
    weights, activations = a["buffer"] * p["buffer.weight_fraction"], a["buffer"] * p["buffer.activation_fraction"]
    broadcast = np.where(mac & (params > 0), np.maximum(1.0, gb * gk * gn / np.maximum(params, 1.0)), 1.0)
    refetch = np.where(w > weights, broadcast * np.maximum(1.0, np.ceil(inp / weights)), 1.0)
    dram = np.where(work, w_read * refetch + np.where(inp > activations, inp, 0.0)
                    + np.where(out > activations, out, 0.0), 0.0)
    # buffer: operand reads by the array (elements x bytes), outputs written once
    w_el = np.where(params > 0, w / np.maximum(params, 1.0), b["a_el"])
    buffer = np.where(mac, a_reads * b["a_el"] + w_reads * w_el + out, np.where(work, inp + out, 0.0))
    return {"cycles": cycles, "dram": dram, "buffer": buffer}


def count(workload, p: Params) -> Counts:
    accels = resolve(p)
    c = workload.columns
    n = len(workload)
    mac, work = is_mac(workload), c["kind"] != KIND["view"]
    macs = np.where(mac, c["macs"].astype(np.float64), 0.0)
    sized = compute_sized(workload, p)
    costs = [_cost_on(a, workload, p, sized) for a in accels]

    # placement
    mensa = p["partition.rule"] == "mensa"
    ridge = p["partition.ridge_macs_per_byte"]
    threshold = p["partition.intensity_threshold"] if mensa else 1.0
    min_cols = p["partition.min_columns_fraction"] * accels[COMPUTE]["cols"] if mensa else 0.0
    params = c["params"].astype(np.float64)
    intensity = np.where(mac & (params > 0), macs / np.maximum(params, 1.0), np.inf)
    narrow = mac & (c["gemm_n"] < min_cols)
    place = np.full(n, COMPUTE)
    if mensa:
        lstm = recurrent(workload)
        low = mac & ~lstm & ((intensity < threshold * ridge) | narrow)
        place = np.where(lstm, LSTM, np.where(low, DATA, COMPUTE))
        last_mac = np.maximum.accumulate(np.where(mac, np.arange(n), -1)) if n else np.arange(n)
        place = np.where(mac, place, np.where(last_mac >= 0, place[np.maximum(last_mac, 0)], COMPUTE))

    def pick(key: str) -> np.ndarray:
        return np.choose(place, [cst[key] for cst in costs]) if len(costs) > 1 else costs[0][key]

    def per_node(key: str) -> np.ndarray:
        return np.array([a[key] for a in accels])[place]

    clock = per_node("clock")
    cycles = pick("cycles")
    t_compute = cycles / clock
    dram = pick("dram")
    t_dram = dram / per_node("bandwidth")      # each accelerator's own path: LPDDR on the SoC, the stack in memory
    dram_bound = t_dram > t_compute
    # transfers where the accelerator changes between consecutive costed nodes
    in_mem = per_node("in_memory")
    work_idx = np.flatnonzero(work)
    moved, via_stack = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if len(work_idx) > 1:
        moved[work_idx[1:]] = place[work_idx[1:]] != place[work_idx[:-1]]
        via_stack[work_idx[1:]] = in_mem[work_idx[1:]] & in_mem[work_idx[:-1]]
    transfer = np.where(moved, sized["inp"], 0.0)
    (soc_bw, soc_j), (stack_bw, stack_j) = p.cache["paths"]["soc"], p.cache["paths"]["stack"]
    t_transfer = transfer / np.where(via_stack, stack_bw, soc_bw)
    latency = np.maximum(t_compute, t_dram) + t_transfer
    actions = {"compute": (macs, per_node("mac_j")), "buffer": (pick("buffer"), per_node("buffer_j")),
               "memory": (dram * 8, per_node("j_per_bit")),
               "transfer": (transfer * 8, np.where(via_stack, stack_j, soc_j))}
    busy = {"compute": t_compute, "memory": t_dram, "transfer": t_transfer}
    partition, notes = _report(workload, mac, place, intensity, narrow, ridge, threshold, min_cols, accels, latency,
                               actions, dram_bound)
    unit_macs = per_node("rows") * per_node("cols")
    bits = np.full(n, float(p["accelerators.compute_bits"]))     # every MAC and lane op is an int8 one
    utilization = macs / np.maximum(t_compute * clock * unit_macs, 1.0)
    return Counts(actions=actions, busy=busy, latency=latency, bits=bits, macs=macs, notes=notes,
                  info=info(p, accels) | {"partition": partition},
                  events={"accelerator": np.where(work, place, -1).astype(np.float64),
                          "macs_per_parameter": np.where(np.isfinite(intensity), intensity, 0.0),
                          "dram_bytes": dram, "transfer_bytes": transfer,
                          "utilization": np.where(mac, utilization, 0.0)},
                  mapping={"units_used": np.where(work, unit_macs, np.nan),
                           "utilization": np.where(mac, utilization, np.nan),
                           "compute_cycles": np.where(work, cycles, np.nan),
                           # the roofline's excess: cycles the accelerator waits on its DRAM path
                           "stall_cycles": np.where(work, np.maximum(t_dram - t_compute, 0.0) * clock, np.nan),
                           "dram_bytes": dram, "onchip_bytes": pick("buffer"), "host_bytes": transfer})


def _report(workload, mac, place, intensity, narrow, ridge, threshold, min_cols, accels, latency, actions,
            dram_bound):
    """Per-layer placement with its reason, and summary notes."""
    names, ops, gemm_n = workload.names, workload.ops, workload.columns["gemm_n"]
    mensa = len(accels) > 1
    limit = threshold * ridge
    partition = []
    for i in np.flatnonzero(mac):
        reuse = f"{intensity[i]:.3g} MACs per parameter" if np.isfinite(intensity[i]) else "no parameters"
        if not mensa:
            why = "single accelerator"
        elif place[i] == LSTM:
            why = f"recurrent layer ({ops[i]}): weights stream every time step"
        elif place[i] == DATA and narrow[i]:
            why = f"{int(gemm_n[i])} output channels per group < {min_cols:g}: cannot fill the compute-centric array"
        elif place[i] == DATA:
            why = f"{reuse} < {limit:.3g} ({threshold:g} x its ridge {ridge:.3g} MAC/B): memory-bound on the " \
                  "compute-centric array"
        else:
            why = f"{reuse} >= {limit:.3g} ({threshold:g} x its ridge {ridge:.3g} MAC/B): compute-bound"
        partition.append({"node": names[i], "op": ops[i], "accelerator": accels[place[i]]["name"],
                          "macs_per_parameter": float(intensity[i]) if np.isfinite(intensity[i]) else None,
                          "reason": why})
    node_energy = sum(np.asarray(n, dtype=np.float64) * price for n, price in actions.values())
    notes = []
    if mensa:
        notes.append(f"partition: LSTM/GRU/RNN -> lstm_centric; MAC layers with under {limit:.3g} MACs per parameter "
                     f"({threshold:g} x the compute-centric ridge) or under {min_cols:g} output channels per group -> "
                     "data_centric; others -> compute_centric; non-MAC nodes follow their producer")
    total_t, total_e = float(latency.sum()) or 1.0, float(node_energy.sum()) or 1.0
    for j, a in enumerate(accels):
        sel = place == j
        layers, bound = int((sel & mac).sum()), int((sel & mac & dram_bound).sum())
        path = f"{a['bandwidth'] / 1e9:.3g} GB/s"
        notes.append(f"{a['name']}: {layers} MAC layers ({bound} bound by its {path} DRAM path), "
                     f"{100 * float(latency[sel].sum()) / total_t:.1f} % of the latency, "
                     f"{100 * float(node_energy[sel].sum()) / total_e:.1f} % of the energy")
    return partition, notes


estimate, parameters = SPEC.entry_points(count, resolve)
