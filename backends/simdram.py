"""The ``simdram`` family: bit-serial computing inside DRAM by row activations, after SIMDRAM
(Hajinazar et al.) on Ambit's triple-row activation (shared/reference/seeds.md, paper 5).

Substrate
=========
Data sit *vertically*: an n-bit element occupies one bit-line (a *lane*) across n rows, so one
row operation acts on a bit of every lane of a row at once. A DDR4 rank's row is ``chips x
columns x device width`` bits (65,536 with x16 chips); banks (and, if allowed, subarrays) of all
ranks and channels work in parallel, each on its own row: ``lanes`` = channels x ranks x banks x
active subarrays x row bits. Every primitive is an AAP (ACTIVATE-ACTIVATE-PRECHARGE): it copies a
row (RowClone), or, as a triple-row activation, computes the bitwise majority MAJ(a, b, c) of
three rows; NOT goes through dual-contact cells. An AAP takes tRAS + tRP of the DRAM
(``tech/dram.toml`` [ddr4_3200_x16], cited) and costs ``chips x 2 activations x (ACT + PRE
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
  scalar (half of them): ``scalar_one_bit_fraction x a x full adder x (w + 1)`` AAPs;
* floats (>= 32 bits): the 24-bit mantissa product that way, times ``float_overhead_factor``.

Each lane then runs ``passes x ceil(M / m_split) x ceil(K / k_split)`` such steps in sequence
(``passes`` when the weight columns outnumber the lanes). Row-operation time = steps x AAPs per
step x tAAP (all banks in parallel); energy = the same AAPs x the bank-rows they touch. The
controller reads the node's input activations (the scalars) over the channels; with a K split
the partial sums (a + w + log2 K bits each) go out over the channels to be added.

*Element ops* (ReLU, Add, BatchNorm, Sign, Softmax, ...) work lane-parallel on vertical data:
for each kind, ``ceil(count / lanes)`` row-steps x the per-element micro-program at the node's
width (``dram_pim.precisions``): add = full adder x bits, compare = 6 x bits, NOT 2 / XOR 12 /
other bitwise ops 4 x bits, multiply as above, transcendental ops ``transcendental_mul_adds`` multiply-adds; floats pay
``float_overhead_factor``. *Data-movement ops* (Transpose, Concat, ...) pass through the memory
controller and its transposition unit: input + output bytes over the channels. Views and folded
nodes are free.

Energy: row activations (AAPs), channel transfers (bytes x the off-chip DRAM energy per bit,
HAN15), and the ranks' background power (IDD3N x VDD per chip) over the latency. A node's
latency = row-operation time + transfer time (the controller reads its scalars before the
micro-programs use them). Area is not reported (SIMDRAM's additions are under 1 % of the DRAM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .support import check_supported
from .dram_pim import Knobs, device, gemm_dims, node_kinds, precision_class, precisions, tech
from .errors import TargetError
from .estimate import Estimate
from .target import Field, Target
from .techlib import Param
from .units import format_capacity

FAMILY = "simdram"

SCHEMA: dict[str, dict[str, Field]] = {
    "simdram": {
        "device": Field("str", "micro-program costs and organisation, a device of the library (data/devices/)",
                        default="simdram-ddr4"),
        "dram": Field("str", "the section of tech/dram.toml with the DRAM's timing and currents",
                      default="ddr4_3200_x16"),
        "channels": Field("int", "DDR channels given to in-DRAM computing (default: the device's)"),
        "ranks": Field("int", "ranks per channel (default: the device's)"),
        "banks": Field("int", "banks per rank that compute in parallel (default: all of the DRAM's)"),
        "subarrays": Field("int", "subarrays per bank computing at once (default: the device's)"),
    },
    "mapping": {
        "split_k": Field("choice", "'auto': replicate weights over K too when lanes are left after M",
                         default="auto", choices=("auto", "never")),
        "conv_activation_bits": Field("int", "activation width of convolutions (0: the weights' width)",
                                      default=0, minimum=0, maximum=64),
    },
}


@dataclass
class Config:
    lanes: float
    row_bits: float                 # lanes of one bank-row (a rank's row)
    t_aap: float
    e_aap: float                    # J per AAP on one bank-row (all chips of the rank)
    channel_bw: float               # all channels together
    transfer_j_per_bit: float
    background_w: float
    capacity_bytes: float
    copy: float
    not_: float
    and_or: float
    xnor: float
    fa: float
    compare: float
    ones: float
    float_factor: float
    trans: float
    split_k: str
    conv_bits: int
    info_: dict
    params: list[Param]

    def info(self) -> dict:
        return dict(self.info_)


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    dev = device(target, "simdram.device")
    dram = tech("dram", target.source)
    k = Knobs(target)
    k("simdram.device")
    sec = k("simdram.dram")
    d = lambda key: k.lib(dram, f"{sec}.{key}")  # noqa: E731
    try:
        chips, row_chip = d("chips_per_rank"), d("row_bits_per_chip")
    except TargetError as e:  # an unknown section: say which
        raise TargetError(f"simdram.dram = '{sec}': {e.message}", where=target.source,
                          hint="name a section of backends/data/tech/dram.toml with DDR timing and IDD "
                               "currents") from None
    channels = int(k("simdram.channels", dev, "organisation.channels"))
    ranks = int(k("simdram.ranks", dev, "organisation.ranks_per_channel"))
    banks = int(k("simdram.banks", dram, f"{sec}.banks"))
    subarrays = int(k("simdram.subarrays", dev, "organisation.subarrays_per_bank_active"))
    row_bits = chips * row_chip
    lanes = channels * ranks * banks * subarrays * row_bits
    k.derived("simdram.lanes", lanes, f"channels x ranks x banks x subarrays x row bits ({row_bits:g} = {chips:g} "
                                      f"chips x {row_chip:g})")
    t_aap = d("row_activate_precharge_s") * k.lib(dev, "primitives.aap_latency_factor")
    e_aap = chips * d("act_pre_energy_per_chip_j") * k.lib(dev, "primitives.aap_activations") \
        * k.lib(dev, "primitives.tra_energy_factor")
    k.derived("simdram.aap_s", t_aap, "tRAS + tRP x aap_latency_factor")
    k.derived("simdram.aap_energy_j", e_aap, "chips per rank x ACT+PRE energy per chip x 2 activations x TRA factor "
                                             "(an upper estimate: the two activations share one precharge)")
    for key in ("tck_s", "t_ras_cycles", "t_rp_cycles", "vdd_v", "idd0_a", "idd2n_a", "idd3n_a"):
        d(key)
    channel_bw = channels * d("channel_bandwidth_bytes_per_s")
    background = channels * ranks * chips * d("vdd_v") * d("idd3n_a")
    k.derived("simdram.background_w", background, "VDD x IDD3N per chip x chips of every rank (active standby)")
    capacity = channels * ranks * chips * d("rows") * row_chip * d("banks") / 8
    lib = lambda key: k.lib(dev, key)  # noqa: E731
    config = Config(
        lanes, row_bits, t_aap, e_aap, channel_bw, lib("host.transfer_energy_per_bit_j"), background, capacity,
        lib("primitives.copy_aap"), lib("primitives.not_aap"), lib("primitives.and_or_aap"),
        lib("primitives.xnor_aap"), lib("primitives.full_adder_aap"), lib("primitives.compare_aap_per_bit"),
        lib("costs.scalar_one_bit_fraction"),
        lib("costs.float_overhead_factor"), lib("costs.transcendental_mul_adds"), k("mapping.split_k"),
        int(k("mapping.conv_activation_bits")),
        {"lanes": lanes, "channels": channels, "ranks": ranks, "banks": banks, "subarrays": subarrays,
         "aap_s": t_aap, "capacity_bytes": capacity},
        k.params)
    target.cache["config"] = config
    return config


def parameters(target: Target) -> list[Param]:
    return resolve(target).params


# ------------------------------------------------------------------ micro-program costs (AAPs)
def int_add_aaps(bits, cfg: Config):
    """A bits-wide integer add: one majority full adder per bit."""
    return cfg.fa * bits


def int_mul_aaps(a_bits, w_bits, cfg: Config):
    """A w-bit lane operand times an a-bit broadcast scalar, accumulated: one shifted (w + 1)-bit add
    per 1-bit of the scalar."""
    return cfg.ones * a_bits * int_add_aaps(w_bits + 1, cfg)


def mac_aaps(w_bits: np.ndarray, a_bits: np.ndarray, cfg: Config) -> np.ndarray:
    """AAPs for one multiply-accumulate step of a lane (module docstring)."""
    binary = (w_bits <= 1) & (a_bits <= 1)
    integer = int_mul_aaps(a_bits, w_bits, cfg)
    floating = cfg.float_factor * int_mul_aaps(24, 24, cfg)
    is_float = np.maximum(w_bits, a_bits) >= 32
    return np.where(binary, (cfg.copy + cfg.not_) / 2 + cfg.fa, np.where(is_float, floating, integer))


def element_aaps(bits: np.ndarray, ops, cfg: Config) -> dict[str, np.ndarray]:
    """AAPs per element operation, by kind, at ``bits``. The workload's ``other`` kind is costed by
    the node's op: NOT 2, XOR/XNOR 12, AND/OR and anything else 4 AAPs per bit."""
    is_float = bits >= 32
    width = np.where(is_float, 26.0, bits)            # mantissa + guard bits for a float add
    factor = np.where(is_float, cfg.float_factor, 1.0)
    add = factor * int_add_aaps(width, cfg)
    mul = mac_aaps(bits, bits, cfg)
    per_bit = {"Not": cfg.not_, "BitwiseNot": cfg.not_, "Xor": cfg.xnor, "BitwiseXor": cfg.xnor}
    other = np.array([per_bit.get(op, cfg.and_or) for op in ops], dtype=np.float64)
    return {"add": add, "cmp": cfg.compare * np.minimum(bits, 32), "other": other * np.minimum(bits, 32),
            "mul": mul, "trans": cfg.trans * (mul + add)}


def _best_k_split(k: np.ndarray, k_max: np.ndarray, t_per_k: np.ndarray, t_partial: np.ndarray) -> np.ndarray:
    """The K split in [1, k_max] minimising ceil(K / s) x t_per_k + (s > 1) x s x t_partial: more
    splits shorten each lane's sequence but send more partial sums over the channels."""
    ideal = np.sqrt(k * t_per_k / np.maximum(t_partial, 1e-30))
    candidates = np.stack([np.ones_like(k), k_max, np.clip(np.floor(ideal), 1.0, k_max),
                           np.clip(np.ceil(ideal), 1.0, k_max)])
    cost = np.ceil(k / candidates) * t_per_k + np.where(candidates > 1, candidates * t_partial, 0.0)
    return np.take_along_axis(candidates, np.argmin(cost, axis=0)[None, :], axis=0)[0]


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    names, ops = list(workload.names), list(workload.ops)
    c = workload.columns
    f = np.float64
    kinds = node_kinds(workload)
    prec = precisions(workload, kinds, cfg.conv_bits)
    mac, nonmac, move = kinds["mac"], kinds["nonmac"], kinds["move"]
    macs = np.where(mac, c["macs"].astype(f), 0.0)
    gb, gm, gn, gk = gemm_dims(workload, kinds)
    w, inp, out = c["weight_bytes"].astype(f), c["input_bytes"].astype(f), c["output_bytes"].astype(f)
    L = cfg.lanes

    # lanes: weight columns, replicated over M then K, as far as the DRAM holds the copies
    w_total = float(np.sum(w))
    if w_total > cfg.capacity_bytes:
        return Estimate.not_fitting(
            target, f"the weights ({format_capacity(w_total)}) exceed the DRAM given to SIMDRAM "
                    f"({format_capacity(cfg.capacity_bytes)}); add ranks or channels", names=names, ops=ops,
            info=cfg.info())
    max_copies = max(1.0, np.floor(cfg.capacity_bytes / max(w_total, 1.0)))
    columns = gb * gn
    passes = np.ceil(columns / L)
    copies = np.clip(np.floor(L / columns), 1.0, max_copies)
    m_split = np.minimum(gm, copies)
    per_step = mac_aaps(prec["w_bits"], prec["a_bits"], cfg)
    acc_bits = np.minimum(32.0, prec["a_bits"] + prec["w_bits"] + np.ceil(np.log2(gk)))
    k_split = _best_k_split(gk, np.maximum(1.0, np.minimum(gk, np.floor(copies / m_split))),
                            passes * np.ceil(gm / m_split) * per_step * cfg.t_aap,
                            gb * gm * gn * acc_bits / 8 / cfg.channel_bw) if cfg.split_k == "auto" else np.ones_like(gk)
    used = np.minimum(L, columns * m_split * k_split)
    steps = passes * np.ceil(gm / m_split) * np.ceil(gk / k_split)
    mac_rows = np.where(mac, steps * per_step, 0.0)                       # serial AAPs per lane
    mac_bank_rows = mac_rows * np.ceil(used / cfg.row_bits)             # AAPs x bank-rows touched

    # element ops (also a MAC node's bias adds), lane-parallel
    per_elem = element_aaps(prec["bits"], ops, cfg)
    counts = {"add": c["add"].astype(f), "cmp": c["cmp"].astype(f), "other": c["other"].astype(f),
              "mul": c["mul"].astype(f),
              "trans": sum(c[k].astype(f) for k in ("div", "exp", "log", "sqrt", "pow", "tanh", "erf"))}
    elem_mask = nonmac | mac
    elem_rows = np.where(elem_mask, sum(np.ceil(counts[k] / L) * per_elem[k] for k in counts), 0.0)
    elem_bank_rows = np.where(elem_mask, sum(np.ceil(counts[k] / cfg.row_bits) * per_elem[k] for k in counts), 0.0)

    # channel transfers: scalars read by the controller, K-split partials, data-movement ops
    partials = np.where(mac & (k_split > 1), gb * gm * gn * k_split * acc_bits / 8, 0.0)
    channel_bytes = np.where(mac, inp + partials, 0.0) + np.where(move, inp + out, 0.0)

    t_rows = (mac_rows + elem_rows) * cfg.t_aap
    t_transfer = channel_bytes / cfg.channel_bw
    node_latency = t_rows + t_transfer
    latency = {"row_activations": t_rows, "transfer": t_transfer}
    energy = {
        "row_activation": (mac_bank_rows + elem_bank_rows) * cfg.e_aap,
        "transfer": channel_bytes * 8.0 * cfg.transfer_j_per_bit,
        "background": node_latency * cfg.background_w,
    }
    notes = _notes(kinds, prec, mac_rows, elem_rows, per_step, used, cfg)
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops, macs=macs,
        node_latency=node_latency, latency=latency, energy=energy, area={}, batch=batch, notes=notes,
        assumptions=[f"{p.key} = {p.value}: {p.note}" for p in cfg.params if p.kind == "assumed"],
        info=cfg.info(), target_file=target.source,
        events={"aaps_per_lane": mac_rows + elem_rows, "aaps_per_mac": np.where(mac, per_step, 0.0),
                "lanes_used": np.where(mac, used, 0.0), "channel_bytes": channel_bytes, "bits": prec["bits"]},
    )


def _notes(kinds, prec, mac_rows, elem_rows, per_step, used, cfg: Config) -> list[str]:
    mac = kinds["mac"]
    notes = [f"{cfg.lanes:.0f} bit-serial lanes; one AAP takes {cfg.t_aap * 1e9:.1f} ns"]
    if mac.any():
        cls = precision_class(np.maximum(prec["w_bits"], prec["a_bits"]))[mac]
        labels = ("binary", "int <= 8 bit", "int16", "float")
        for i in range(4):
            if (cls == i).any():
                median = float(np.median(per_step[mac][cls == i]))
                notes.append(f"{int((cls == i).sum())} {labels[i]} MAC layers at {median:.4g} "
                             "AAPs per MAC step")
        total = float((mac_rows + elem_rows).sum()) or 1.0
        notes.append(f"MAC layers take {100 * float(mac_rows.sum()) / total:.1f} % of the row operations, "
                     f"element ops {100 * float(elem_rows.sum()) / total:.1f} %")
        low = mac & (used < cfg.lanes / 2)
        if low.any():
            notes.append(f"{int(low.sum())} MAC layers use fewer than half of the lanes")
    if kinds["move"].any():
        notes.append(f"{int(kinds['move'].sum())} data-movement nodes go through the memory controller")
    return notes

