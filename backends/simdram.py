"""The ``simdram`` family: bit-serial computing inside DRAM by row activations, after SIMDRAM
(Hajinazar et al.) on Ambit's triple-row activation (shared/reference/seeds.md, paper 5). Keys,
defaults and their sources: ``data/families/simdram.toml``.

Substrate
=========
Data sit *vertically*: an n-bit element occupies one bit-line (a *lane*) across n rows, so one
row operation acts on a bit of every lane of a row at once. A DDR4 rank's row is ``chips x
columns x device width`` bits (65,536 with x16 chips); banks (and, if allowed, subarrays) of all
ranks and channels work in parallel, each on its own row: ``lanes`` = channels x ranks x banks x
active subarrays x row bits. Every primitive is an AAP (ACTIVATE-ACTIVATE-PRECHARGE): it copies a
row (RowClone), or, as a triple-row activation, computes the bitwise majority MAJ(a, b, c) of
three rows; NOT goes through dual-contact cells. An AAP takes tRAS + tRP of the DRAM
(``tech/dram.toml`` [``simdram.dram``], cited) and costs ``chips x 2 activations x (ACT + PRE
energy per chip) x TRA factor``. The micro-program costs in AAPs (``data/devices/simdram-ddr4.toml``)
are derived there: copy 1, NOT 2, AND/OR 4, XNOR 12, full adder 13 per bit, compare 6 per bit.

Mapping, per node, vectorised
=============================
*A MAC node* (``gemm_batch`` x M x N x K): the weights are resident in vertical layout, one weight
column n of each GEMM per lane, replicated (once, at model load) into the lanes left over: first
over M (rows: output pixels, tokens), then, with ``mapping.split_k = "auto"``, over K (as far as
the shorter lane sequences outweigh sending more partial sums over the channels); every layer gets
at most ``floor(DRAM capacity / all weights)`` copies, so that all fit. For each
(m, k) it owns, a lane multiplies its weight by the activation A[m, k], a scalar that the memory
controller reads and broadcasts as the choice of micro-program:

* binary operands (1 bit each, ±1 as XNOR): the product is the weight row copied or negated
  (1 or 2 AAPs, half each) and the popcount adds it into a carry-save counter, about one full
  adder per counted bit: ``(copy + NOT) / 2 + full adder`` AAPs;
* integers: one shifted add of the w-bit weight into the accumulator per 1-bit of the a-bit
  scalar: ``scalar_one_bit_fraction x a x full adder x (w + 1)`` AAPs;
* floats (``dram_pim.precision_class``): the ``float.mantissa_bits`` significand product that
  way, times ``float_overhead_factor``.

Each lane then runs ``passes x ceil(M / m_split) x ceil(K / k_split)`` such steps in sequence
(``passes`` when the weight columns outnumber the lanes). Row-operation time = steps x AAPs per
step x tAAP (all banks in parallel); energy = the same AAPs x the bank-rows they touch. The
controller reads the node's input activations (the scalars) over the channels; with a K split
the partial sums (a + w + log2 K bits each, at most ``max_partial_sum_bits``) go out over the
channels to be added.

*Element ops* (ReLU, Add, BatchNorm, Sign, Softmax, ...) work lane-parallel on vertical data:
for each op kind, ``ceil(count / lanes)`` row-steps x the per-element micro-program at the node's
width (``dram_pim.operand_bits``): add = full adder x bits (a float add: ``float.add_bits`` of
aligned significands x ``float_overhead_factor``), compare = 6 x bits, the ``other`` kind by the
node's op (:data:`BITWISE`: NOT 2, XOR 12 per bit; AND/OR and anything else 4), multiply as
above, transcendental ops ``transcendental_mul_adds`` multiply-adds. *Data movement and gathers*
pass through the memory controller and its transposition unit: input (for a gather, the table
rows it reads) + output bytes over the channels. Views are free.

Energy (counted, then priced by backends/family.py): row activations (AAPs x bank-rows), channel
transfers (bytes x the off-chip DRAM energy per bit, HAN15), and the ranks' background power
(IDD3N x VDD per chip) as static power over the latency. A node's latency = row-operation time +
transfer time (the controller reads its scalars before the micro-programs use them). Area is not
modelled (SIMDRAM's additions are under 1 % of the DRAM).
"""

from __future__ import annotations

import numpy as np

from .dram_pim import BINARY, FLOAT, INT8, INT16, PRECISION_CLASSES, gemm_dims, is_mac, operand_bits, precision_class
from .errors import TargetError
from .family import KIND, TRANSCENDENTAL_KINDS, Counts, FamilySpec, NotFitting, Params, target_or_data
from .techlib import library
from nvmc.ir.units import format_capacity

FAMILY = "simdram"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
# The micro-program of the workload's 'other' op kind, by op: its AAPs per bit (device key).
BITWISE = {"Not": "primitives.not_aap", "BitwiseNot": "primitives.not_aap", "Xor": "primitives.xnor_aap",
           "BitwiseXor": "primitives.xnor_aap"}
DRAM_KEYS = ("chips_per_rank", "row_bits_per_chip", "rows", "banks", "row_activate_precharge_s",
             "act_pre_energy_per_chip_j", "channel_bandwidth_bytes_per_s", "tck_s", "t_ras_cycles", "t_rp_cycles",
             "vdd_v", "idd0_a", "idd2n_a", "idd3n_a")
DEVICE_KEYS = ("primitives.aap_latency_factor", "primitives.aap_activations", "primitives.tra_energy_factor",
               "primitives.copy_aap", "primitives.not_aap", "primitives.and_or_aap", "primitives.xnor_aap",
               "primitives.full_adder_aap", "primitives.compare_aap_per_bit", "costs.scalar_one_bit_fraction",
               "costs.float_overhead_factor", "costs.transcendental_mul_adds", "host.transfer_energy_per_bit_j")


def resolve(p: Params) -> None:
    """Every number the model reads, in the order ``nvmc explain`` lists them."""
    d = {key: dram(p, key) for key in DRAM_KEYS}
    dev = {key: p.lib("simdram.device", key) for key in DEVICE_KEYS}
    banks = target_or_data(p, "simdram.banks", library().tech("dram"), f"{p['simdram.dram']}.banks")
    channels, ranks, subarrays = p["simdram.channels"], p["simdram.ranks"], p["simdram.subarrays"]
    chips = d["chips_per_rank"]
    row_bits = p.derive("simdram.row_bits", chips * d["row_bits_per_chip"], "chips_per_rank x row_bits_per_chip",
                        "lanes of one bank-row (a rank's row)")
    p.derive("simdram.lanes", channels * ranks * banks * subarrays * row_bits,
             "simdram.channels x simdram.ranks x simdram.banks x simdram.subarrays x simdram.row_bits",
             "bit-serial lanes: every computing bank-row of every rank")
    p.derive("simdram.aap_s", d["row_activate_precharge_s"] * dev["primitives.aap_latency_factor"],
             "row_activate_precharge_s (tRAS + tRP) x primitives.aap_latency_factor", "time of one AAP")
    p.derive("simdram.aap_energy_j", chips * d["act_pre_energy_per_chip_j"] * dev["primitives.aap_activations"]
             * dev["primitives.tra_energy_factor"], "chips_per_rank x act_pre_energy_per_chip_j x "
             "primitives.aap_activations x primitives.tra_energy_factor",
             "an upper estimate: the two activations share one precharge")
    p.derive("simdram.channel_bytes_per_s", channels * d["channel_bandwidth_bytes_per_s"],
             "simdram.channels x channel_bandwidth_bytes_per_s", "the channels to the memory controller")
    p.derive("simdram.background_w", channels * ranks * chips * d["vdd_v"] * d["idd3n_a"],
             "simdram.channels x simdram.ranks x chips_per_rank x vdd_v x idd3n_a", "active standby of every chip")
    p.derive("simdram.capacity_bytes", channels * ranks * chips * d["rows"] * d["row_bits_per_chip"] * d["banks"] / 8,
             "simdram.channels x simdram.ranks x chips_per_rank x rows x row_bits_per_chip x banks / 8",
             "the DRAM given to SIMDRAM, which holds the weights and their copies")
    for key in ("mapping.max_partial_sum_bits", "float.mantissa_bits", "float.add_bits"):
        p[key]


def dram(p: Params, key: str):
    """Number ``key`` of the DRAM's section (``simdram.dram``) of tech/dram.toml."""
    section = p["simdram.dram"]
    try:
        return p.file("tech", "dram", f"{section}.{key}")
    except TargetError as e:  # an unknown section: say which
        raise TargetError(f"simdram.dram = '{section}': {e.message}", where=p.target.where("simdram.dram"),
                          hint="name a section of backends/data/tech/dram.toml with DDR timing and IDD "
                               "currents") from None


def info(p: Params) -> dict:
    return {key: p[f"simdram.{key}"] for key in ("lanes", "channels", "ranks", "banks", "subarrays")} | {
        "aap_s": p["simdram.aap_s"], "capacity_bytes": p["simdram.capacity_bytes"]}


# ------------------------------------------------------------------ micro-program costs (AAPs)
def lib(p: Params, key: str):
    return p.lib("simdram.device", key)


def int_add_aaps(bits, p: Params):
    """A bits-wide integer add: one majority full adder per bit."""
    return lib(p, "primitives.full_adder_aap") * bits


def int_mul_aaps(a_bits, w_bits, p: Params):
    """A w-bit lane operand times an a-bit broadcast scalar, accumulated: one shifted (w + 1)-bit add
    per 1-bit of the scalar."""
    return lib(p, "costs.scalar_one_bit_fraction") * a_bits * int_add_aaps(w_bits + 1, p)


def mac_aaps(w_bits: np.ndarray, a_bits: np.ndarray, p: Params) -> np.ndarray:
    """AAPs for one multiply-accumulate step of a lane (module docstring)."""
    binary = (w_bits <= 1) & (a_bits <= 1)
    mantissa = p["float.mantissa_bits"]
    floating = lib(p, "costs.float_overhead_factor") * int_mul_aaps(mantissa, mantissa, p)
    is_float = precision_class(np.maximum(w_bits, a_bits)) == FLOAT
    step = (lib(p, "primitives.copy_aap") + lib(p, "primitives.not_aap")) / 2 + lib(p, "primitives.full_adder_aap")
    return np.where(binary, step, np.where(is_float, floating, int_mul_aaps(a_bits, w_bits, p)))


def element_aaps(bits: np.ndarray, ops, p: Params) -> dict[str, np.ndarray]:
    """AAPs per element operation, by kind, at ``bits``. The workload's ``other`` kind is costed by
    the node's op (:data:`BITWISE`; AND/OR and anything else 4 AAPs per bit)."""
    is_float = precision_class(bits) == FLOAT
    width = np.where(is_float, p["float.add_bits"], bits)
    add = np.where(is_float, lib(p, "costs.float_overhead_factor"), 1.0) * int_add_aaps(width, p)
    mul = mac_aaps(bits, bits, p)
    and_or = lib(p, "primitives.and_or_aap")
    other = np.array([lib(p, BITWISE[op]) if op in BITWISE else and_or for op in ops], dtype=np.float64)
    return {"add": add, "cmp": lib(p, "primitives.compare_aap_per_bit") * bits, "other": other * bits,
            "mul": mul, "trans": lib(p, "costs.transcendental_mul_adds") * (mul + add)}


def _best_k_split(k: np.ndarray, k_max: np.ndarray, t_per_k: np.ndarray, t_partial: np.ndarray) -> np.ndarray:
    """The K split in [1, k_max] minimising ceil(K / s) x t_per_k + (s > 1) x s x t_partial: more
    splits shorten each lane's sequence but send more partial sums over the channels."""
    with np.errstate(divide="ignore"):
        ideal = np.sqrt(k * t_per_k / t_partial)
    candidates = np.stack([np.ones_like(k), k_max, np.clip(np.floor(ideal), 1.0, k_max),
                           np.clip(np.ceil(ideal), 1.0, k_max)])
    cost = np.ceil(k / candidates) * t_per_k + np.where(candidates > 1, candidates * t_partial, 0.0)
    return np.take_along_axis(candidates, np.argmin(cost, axis=0)[None, :], axis=0)[0]


# ---------------------------------------------------------------- the model
def count(workload, p: Params) -> Counts:
    resolve(p)
    c = workload.columns
    f = np.float64
    kind = c["kind"]
    mac = is_mac(workload)
    lanes, row_bits, t_aap = p["simdram.lanes"], p["simdram.row_bits"], p["simdram.aap_s"]
    channel_bw, capacity = p["simdram.channel_bytes_per_s"], p["simdram.capacity_bytes"]
    prec = operand_bits(workload, p["mapping.conv_activation_bits"])
    gb, gm, gn, gk = gemm_dims(workload)

    # lanes: weight columns, replicated over M then K, as far as the DRAM holds the copies
    w_total = float(np.sum(c["weight_bytes"]))
    if w_total > capacity:
        raise NotFitting(f"the weights ({format_capacity(w_total)}) exceed the DRAM given to SIMDRAM "
                         f"({format_capacity(capacity)}); add ranks or channels")
    max_copies = max(1.0, np.floor(capacity / max(w_total, 1.0)))
    columns = gb * gn
    passes = np.ceil(columns / lanes)
    copies = np.clip(np.floor(lanes / columns), 1.0, max_copies)
    m_split = np.minimum(gm, copies)
    per_step = mac_aaps(prec["w_bits"], prec["a_bits"], p)
    acc_bits = np.minimum(p["mapping.max_partial_sum_bits"], prec["a_bits"] + prec["w_bits"] + np.ceil(np.log2(gk)))
    k_split = np.ones_like(gk)
    if p["mapping.split_k"] == "auto":
        k_split = _best_k_split(gk, np.maximum(1.0, np.minimum(gk, np.floor(copies / m_split))),
                                passes * np.ceil(gm / m_split) * per_step * t_aap,
                                gb * gm * gn * acc_bits / 8 / channel_bw)
    used = np.minimum(lanes, columns * m_split * k_split)
    steps = passes * np.ceil(gm / m_split) * np.ceil(gk / k_split)
    mac_rows = np.where(mac, steps * per_step, 0.0)                       # serial AAPs per lane
    mac_bank_rows = mac_rows * np.ceil(used / row_bits)                   # AAPs x bank-rows touched

    # element ops (also a MAC node's bias adds), lane-parallel
    per_elem = element_aaps(prec["bits"], workload.ops, p)
    counts = {k: c[k].astype(f) for k in ("add", "cmp", "other", "mul")}
    counts["trans"] = sum(c[k].astype(f) for k in TRANSCENDENTAL_KINDS)
    compute = (kind == KIND["elementwise"]) | (kind == KIND["reduction"]) | (kind == KIND["other"]) | mac
    elem_rows = np.where(compute, sum(np.ceil(counts[k] / lanes) * per_elem[k] for k in counts), 0.0)
    elem_bank_rows = np.where(compute, sum(np.ceil(counts[k] / row_bits) * per_elem[k] for k in counts), 0.0)

    # channel transfers: scalars read by the controller, K-split partials, data movement and gathers
    partials = np.where(mac & (k_split > 1), gb * gm * gn * k_split * acc_bits / 8, 0.0)
    moves = (kind == KIND["move"]) | (kind == KIND["gather"])
    moved = c["input_bytes"] + np.where(kind == KIND["gather"], c["weight_read_bytes"], 0.0) + c["output_bytes"]
    channel_bytes = np.where(mac, c["input_bytes"] + partials, 0.0) + np.where(moves, moved, 0.0)

    t_rows = (mac_rows + elem_rows) * t_aap
    t_transfer = channel_bytes / channel_bw
    actions = {"row_activation": (mac_bank_rows + elem_bank_rows, p["simdram.aap_energy_j"]),
               "transfer": (channel_bytes * 8, lib(p, "host.transfer_energy_per_bit_j"))}
    return Counts(actions=actions, busy={"row_activations": t_rows, "transfer": t_transfer},
                  latency=t_rows + t_transfer, static={"background": p["simdram.background_w"]},
                  bits=prec["bits"], info=info(p), notes=_notes(workload, prec, mac_rows, elem_rows, per_step, used, p),
                  events={"aaps_per_lane": mac_rows + elem_rows, "aaps_per_mac": np.where(mac, per_step, 0.0),
                          "lanes_used": np.where(mac, used, 0.0), "channel_bytes": channel_bytes,
                          "bits": prec["bits"]},
                  # units: the bit-serial lanes (DRAM columns); utilization: MACs over the lanes' MAC steps
                  mapping={"units_total": lanes, "units_used": np.where(mac, used, np.nan),
                           "passes": np.where(mac, passes, np.nan), "split_k": np.where(mac, k_split, np.nan),
                           "replication": np.where(mac, m_split, np.nan), "host_bytes": channel_bytes,
                           "utilization": np.where(mac & (steps > 0), c["macs"].astype(f) / (lanes * np.maximum(steps, 1.0)),
                                                   np.nan)})


def _notes(workload, prec, mac_rows, elem_rows, per_step, used, p: Params) -> list[str]:
    mac = is_mac(workload)
    kind = workload.columns["kind"]
    lanes = p["simdram.lanes"]
    notes = [f"{lanes:.0f} bit-serial lanes; one AAP takes {p['simdram.aap_s'] * 1e9:.1f} ns"]
    if mac.any():
        cls = precision_class(np.maximum(prec["w_bits"], prec["a_bits"]))[mac]
        labels = {BINARY: "binary", INT8: "int <= 8 bit", INT16: "int16", FLOAT: "float"}
        for i in range(len(PRECISION_CLASSES)):
            if (cls == i).any():
                notes.append(f"{int((cls == i).sum())} {labels[i]} MAC layers at "
                             f"{float(np.median(per_step[mac][cls == i])):.4g} AAPs per MAC step")
        total = float((mac_rows + elem_rows).sum()) or 1.0
        notes.append(f"MAC layers take {100 * float(mac_rows.sum()) / total:.1f} % of the row operations, "
                     f"element ops {100 * float(elem_rows.sum()) / total:.1f} %")
        low = mac & (used < lanes / 2)
        if low.any():
            notes.append(f"{int(low.sum())} MAC layers use fewer than half of the lanes")
    moves = int(((kind == KIND["move"]) | (kind == KIND["gather"])).sum())
    if moves:
        notes.append(f"{moves} data-movement nodes go through the memory controller")
    return notes


estimate, parameters = SPEC.entry_points(count, resolve)
