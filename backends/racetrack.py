"""The ``racetrack-hdc`` family: hyperdimensional computing inside racetrack memory with
transverse reads, after Khan, Ollivier, Longofono, Hempel, Castrillon, Jones, "Brain-inspired
Cognition in Next-Generation Racetrack Memories" (ACM TECS 2022; shared/reference/seeds.md,
paper 8), and its FPGA baseline.

It costs HDC models: the nvmc ops of ir/dialect/hdc.py (run ``--passes hdc-recognize`` on a
plain ONNX HDC model first) plus their glue, by the workload's ``kind`` column: views (free),
moves (Slice, Concat, Cast, ...: their bits are read and written), the item-memory gather,
and reductions that only compare (ArgMin, ArgMax, TopK). Any other node is refused with an
error naming it; nothing is costed by a silent fallback.

Geometry of a node (from the workload columns, ir/dialect/hdc.py "Workload counts"):
hypervector elements are bool, one byte in the byte columns and one bit in hardware, so
Bind has M = output elements and k = other / M + 1 operands; Permute, moves and Gather move
M = output elements; Bundle adds n = in / (in - add) vectors into m = in - add counters; a
Similarity makes P = other - add comparisons of D = other / P bits, and writes its
non-constant operands (the queries) into the array.

Racetrack fabric (``[fabric] kind = "racetrack"``)
=================================================
Technology: ``data/tech/racetrack.toml`` (RTSim / DESTINY timings and energies per access,
its geometry: 64 domains per track, 32 tracks per domain-block cluster (DBC), 2 access ports,
256 DBCs per bank; transverse-read latency and energy, leakage per bank derived there).
``banks`` banks work at once: ``lanes`` = banks x DBCs x tracks tracks, each holding one bit
position of consecutive hypervectors in its domains. An op processes its bit columns in
waves of ``lanes``; within a column the steps below run one after another (times add up):

* Gather (item-memory lookup): per bit, ``geometry.mean_port_distance`` shifts to align the
  symbol's row with its port, a read, and a write of the bit into the working array;
* Permute and moves: a read and a write per bit; a rotation is the write drivers' offset
  wiring in the CMOS periphery (no extra step);
* Bind of k operands: rounds r = ceil((k - 1) / (TRD - 1)); per round and column one TR
  (its parity is the XOR of the operands under the window), one write of the partial result,
  and TRD shifts that bring the operands (written one domain apart) under the ports;
* Bundle of n vectors into m counters: a column's n domains span s = ceil(n / domains) tracks
  counted in parallel; each track needs ceil(n / s / TRD) TR rounds (a TR counts up to TRD
  ones) of one TR and TRD shifts, and a CMOS add of the TR count into a w = ceil(log2(n+1))-bit
  counter (w bit-adds); then, with a threshold, a w-bit CMOS compare; one write of the
  result bit (w bits for counts);
* Similarity: the query is written once beside the stored class vectors; per comparison and
  bit, one shift brings the next class under the window and one TR of two domains gives the
  XOR; a CMOS adder tree counts the differing bits (about one full-adder per bit);
* compare-only reductions (ArgMin/ArgMax): CMOS compares of w-bit values (w = bits of the
  largest distance D, or the compared values' own width without a Similarity), overlapped
  with the array (no time);
* views (Reshape, Unsqueeze, ...): addressing, free.

Energy (counted, then priced by backends/family.py): events x per-track energies of the
library + CMOS bit operations x the 45 nm adder bit energy + leakage (``leakage.per_bank_w``
x banks x ``leakage_scale``) x latency. A node whose operands and result (bits) exceed the
capacity of the working banks (lanes x domains) does not fit: the Estimate says so.

FPGA baseline (``[fabric] kind = "fpga"``)
==========================================
Device: ``data/devices/fpga-16nm.toml``, the ISLPED'16 HDC RTL on a 16 nm FPGA. The encoder
streams one letter per clock through ``datapath_bits`` lanes: Gather, Permute and moves
(wiring) and Bind feed the Bundle's counters in the same cycle, so only Bundle takes cycles,
ceil(n x m / lanes); the associative memory compares ``classes_in_parallel`` classes at
once, ``similarity_bits_per_cycle`` bits per clock: ceil(P / classes) x ceil(D / bits)
cycles. Energy: bit operations (XOR bits, counter bits, compare bits, one register bit per
moved bit) x the FPGA bit-op energy (Horowitz adder bit x node scaling x Kuon & Rose's
FPGA/ASIC dynamic-power ratio), item and class memory reads x the BRAM bit energy, and
static power x latency.

Keys, defaults and their sources: ``data/families/racetrack-hdc.toml``. No area is modelled.
The paper reports 7.8x runtime and 5.3x energy below its FPGA and 8.6x energy below the best
in-memory HDC design; these are targets to explain (the Estimate's notes print them), never
outputs.
"""

from __future__ import annotations

import numpy as np

from nvmc.ir.kinds import NONMAC_KINDS

from .errors import TargetError, UnsupportedOpError
from .family import KIND, Counts, FamilySpec, NotFitting, Params
from .support import op_mask
from .techlib import Param

FAMILY = "racetrack-hdc"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
HDC_OPS = {"bind": "nvmc.Bind", "permute": "nvmc.Permute", "bundle": "nvmc.Bundle", "similarity": "nvmc.Similarity"}
PAPER = ("paper (Khan et al., TECS 2022; seeds.md #8): racetrack HDC 7.8x faster and 5.3x less energy than an "
         "FPGA, 8.6x less energy than the best in-memory HDC, on language recognition. Targets to explain, not "
         "outputs: compare with --compare fpga")


def resolve(p: Params) -> None:
    """Every number the model reads, in the order ``nvmc explain`` lists them."""
    if p["fabric.kind"] == "fpga":
        if "energy.bit_op_energy_j" not in p.data("fpga.device").params:
            raise TargetError(f"device '{p['fpga.device']}' is not an FPGA (no energy.bit_op_energy_j)",
                              where=p.target.source, hint="choose an FPGA device of data/devices/, e.g. fpga-16nm")
        for key in ("clock_hz", "datapath_bits", "classes_in_parallel", "similarity_bits_per_cycle", "static_power_w"):
            p.param(f"fpga.{key}")
        for q in p.data("fpga.device").params.values():  # the energies and the figures they derive from
            p.lib("fpga.device", q.key)
        return
    if "transverse_read.energy_j" not in p.data("racetrack.technology").params:
        raise TargetError(f"technology '{p['racetrack.technology']}' has no [transverse_read] figures",
                          where=p.target.source, hint="choose a racetrack technology (data/tech/racetrack.toml)")
    trd, most = p["racetrack.transverse_read_distance"], p.lib("racetrack.technology", "transverse_read.max_distance")
    if not 2 <= trd <= most:
        raise TargetError(f"racetrack.transverse_read_distance = {trd}: a transverse read spans 2 to {int(most)} "
                          "domains (PIRM sense margin)", where=p.target.where("racetrack.transverse_read_distance"))
    banks = p["racetrack.banks"]
    p.derive("racetrack.lanes", banks * p.lib("racetrack.technology", "per_track.tracks_per_bank"),
             "racetrack.banks x per_track.tracks_per_bank", "tracks working in parallel")
    p.derive("racetrack.leakage_w", p.lib("racetrack.technology", "leakage.per_bank_w") * banks
             * p["racetrack.leakage_scale"], "leakage.per_bank_w x racetrack.banks x racetrack.leakage_scale",
             "leakage of the working banks")
    for q in p.data("racetrack.technology").params.values():  # the figures used and those they derive from
        p.lib("racetrack.technology", q.key)


def estimate(workload, target, *, batch: int = 1):
    check_supported(workload, target)
    return SPEC.estimate(workload, target, count, batch=batch)


def parameters(target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``): the keys of
    the fabric in use only (a racetrack target reads no FPGA figure, and the reverse)."""
    p = SPEC.params(target)
    p.param("fabric.kind")
    resolve(p)
    return p.params


# ---------------------------------------------------------------- the model
def _compare_only(c) -> np.ndarray:
    """Reductions whose only ops are compares (ArgMin, ArgMax, TopK, ReduceMax, ...)."""
    others = sum(c[k].astype(np.float64) for k in NONMAC_KINDS if k != "cmp")
    return (c["kind"] == KIND["reduction"]) & (c["cmp"] > 0) & (others == 0)


def check_supported(workload, target) -> None:
    """Refuse, naming the first node, anything that is not an HDC op or its glue."""
    c = workload.columns
    glue = np.isin(c["kind"], [KIND["view"], KIND["move"], KIND["gather"]]) | _compare_only(c)
    bad = np.flatnonzero(~(op_mask(workload.ops, HDC_OPS.values()) | glue) | (c["macs"] > 0))
    if not bad.size:
        return
    i = int(bad[0])
    why = (f"family '{FAMILY}' costs hyperdimensional-computing models only (nvmc.Bind, Permute, Bundle, Similarity "
           "and their glue)")
    if (c["macs"] > 0).any():  # a DNN
        hint = "choose a DNN target ('nvmc targets' lists them)"
    else:
        hint = ("if this is a plain ONNX HDC model, run with --passes hdc-recognize to turn Xor / Slice+Concat / "
                "ReduceSum patterns into nvmc.Bind / Permute / Bundle / Similarity")
    raise UnsupportedOpError(f"node '{workload.names[i]}' ({workload.ops[i]}) is not supported by target "
                             f"'{target.name}': {why}", hint=hint)


def _geometry(workload) -> dict[str, np.ndarray]:
    """Per-node HDC geometry (module doc): bits moved, operands, vectors, comparisons."""
    c = workload.columns
    f = np.float64
    ops = np.asarray(workload.ops, dtype=object)
    out, inp = c["output_bytes"].astype(f), c["input_bytes"].astype(f)
    other, add, cmp = (c[k].astype(f) for k in ("other", "add", "cmp"))
    g = {name: ops == op for name, op in HDC_OPS.items()}
    g["gather"] = c["kind"] == KIND["gather"]
    g["move"] = c["kind"] == KIND["move"]
    g["select"] = _compare_only(c)
    safe = lambda x: np.maximum(x, 1.0)  # noqa: E731
    g["bits"] = np.where(g["bind"] | g["permute"] | g["gather"] | g["move"], out, 0.0)
    g["operands"] = np.where(g["bind"], np.rint(other / safe(out)) + 1.0, 0.0)
    counters = np.where(g["bundle"], inp - add, 0.0)
    g["counters"] = counters
    g["vectors"] = np.where(g["bundle"] & (counters > 0), inp / safe(counters), 0.0)
    g["majority"] = g["bundle"] & (cmp > 0)
    pairs = np.where(g["similarity"], other - add, 0.0)
    g["pairs"] = pairs
    g["dim"] = np.where(g["similarity"] & (pairs > 0), other / safe(pairs), 0.0)
    g["written"] = np.where(g["similarity"], inp, 0.0)
    g["compares"] = np.where(g["select"], cmp, 0.0)
    dmax = float(g["dim"].max(initial=0.0))
    g["distance_bits"] = np.ceil(np.log2(dmax + 1.0)) if dmax > 0 else c["act_bits"].astype(f)
    g["counter_bits"] = np.where(g["vectors"] > 0, np.ceil(np.log2(g["vectors"] + 1.0)), 0.0)
    g["footprint"] = out + inp
    return g


def count(workload, p: Params) -> Counts:
    resolve(p)
    g = _geometry(workload)
    c = workload.columns
    # costed at the model's own precision: each bool element is one bit in the tracks or lanes
    bits = np.maximum(c["act_bits"], c["weight_bits"]).astype(np.float64)
    if p["fabric.kind"] == "fpga":
        return _fpga(g, p, bits)
    lanes, domains = p["racetrack.lanes"], p.lib("racetrack.technology", "geometry.domains_per_track")
    capacity = lanes * domains
    if len(g["footprint"]) and g["footprint"].max() > capacity:
        worst = int(np.argmax(g["footprint"]))
        raise NotFitting(f"node '{workload.names[worst]}' needs {g['footprint'][worst]:.4g} bits of operands and "
                         f"results, the {p['racetrack.banks']} working banks hold {capacity:.4g} ({lanes:.0f} tracks x "
                         f"{domains:.0f} domains): raise racetrack.banks")
    return _racetrack(g, p, bits)


def _racetrack(g: dict, p: Params, bits: np.ndarray) -> Counts:
    """Events and busy times per node on the racetrack fabric (module doc, one rule per op)."""
    lib = lambda key: p.lib("racetrack.technology", key)  # noqa: E731
    lanes, trd = p["racetrack.lanes"], p["racetrack.transverse_read_distance"]
    domains = lib("geometry.domains_per_track")
    waves = lambda columns: np.ceil(columns / lanes)  # noqa: E731
    zeros = np.zeros_like(g["bits"])
    ev = {k: zeros.copy() for k in ("shifts", "transverse_reads", "reads", "writes", "cmos_bit_ops")}
    steps = {k: zeros.copy() for k in ("shift", "transverse_read", "read", "write")}  # per-column steps x waves

    # Gather: align, read, write each bit; Permute and moves: read and write each bit
    for mask, shifts in ((g["gather"], lib("geometry.mean_port_distance")), (g["permute"] | g["move"], 0.0)):
        moved = np.where(mask, g["bits"], 0.0)
        w = waves(moved)
        ev["shifts"] += moved * shifts
        ev["reads"] += moved
        ev["writes"] += moved
        steps["shift"] += w * shifts
        steps["read"] += w
        steps["write"] += w

    # Bind: r rounds of (TR, write, TRD shifts) per bit column
    bound = np.where(g["bind"], g["bits"], 0.0)
    rounds = np.where(g["bind"], np.ceil(np.maximum(g["operands"] - 1.0, 1.0) / (trd - 1)), 0.0)
    w = waves(bound)
    ev["transverse_reads"] += bound * rounds
    ev["writes"] += bound * rounds
    ev["shifts"] += bound * rounds * trd
    steps["transverse_read"] += w * rounds
    steps["write"] += w * rounds
    steps["shift"] += w * rounds * trd

    # Bundle: n vectors over s tracks per counter, ceil(n / s / TRD) TR rounds per track
    n, m = g["vectors"], g["counters"]
    segments = np.where(m > 0, np.ceil(n / domains), 0.0)
    seg_rounds = np.where(segments > 0, np.ceil(n / np.maximum(segments, 1.0) / trd), 0.0)
    trs = m * segments * seg_rounds
    result_bits = np.where(g["majority"], m, m * g["counter_bits"])
    w = waves(m * segments)
    ev["transverse_reads"] += trs
    ev["shifts"] += trs * trd
    ev["cmos_bit_ops"] += trs * g["counter_bits"] + np.where(g["majority"], m * g["counter_bits"], 0.0)
    ev["writes"] += result_bits
    steps["transverse_read"] += w * seg_rounds
    steps["shift"] += w * seg_rounds * trd
    steps["write"] += np.where(m > 0, waves(m) * np.where(g["majority"], 1.0, g["counter_bits"]), 0.0)

    # Similarity: write the queries, then per comparison and bit one shift and one TR; popcount in CMOS
    cols = g["pairs"] * g["dim"]
    ev["writes"] += g["written"]
    ev["shifts"] += cols
    ev["transverse_reads"] += cols
    ev["cmos_bit_ops"] += cols
    steps["write"] += waves(g["written"])
    steps["shift"] += waves(cols)
    steps["transverse_read"] += waves(cols)

    # compare-only reductions (ArgMin / ArgMax): CMOS compares, overlapped
    ev["cmos_bit_ops"] += g["compares"] * g["distance_bits"]

    busy = {"shift": steps["shift"] * lib("access.shift_latency_s"),
            "transverse_read": steps["transverse_read"] * lib("transverse_read.latency_s"),
            "read": steps["read"] * lib("access.read_latency_s"),
            "write": steps["write"] * lib("access.write_latency_s")}
    actions = {"shift": (ev["shifts"], lib("per_track.shift_energy_j")),
               "transverse_read": (ev["transverse_reads"], lib("transverse_read.energy_j")),
               "read": (ev["reads"], lib("per_track.read_energy_j")),
               "write": (ev["writes"], lib("per_track.write_energy_j")),
               "cmos": (ev["cmos_bit_ops"], lib("cmos.bit_add_energy_j"))}
    note = (f"racetrack: {p['racetrack.banks']} banks = {lanes:.0f} tracks in parallel, transverse reads over {trd} "
            f"domains, leakage {p['racetrack.leakage_w']:.3g} W; area not modelled (no cited racetrack array area)")
    return Counts(actions=actions, busy=busy, latency=sum(busy.values()), static={"leakage": p["racetrack.leakage_w"]},
                  bits=bits, events=ev, notes=[note, PAPER],
                  info={"fabric": "racetrack", "lanes": lanes, "banks": p["racetrack.banks"],
                        "transverse_read_distance": trd})


def _fpga(g: dict, p: Params, bits: np.ndarray) -> Counts:
    """Cycles and events per node on the FPGA baseline (module doc)."""
    n, m = g["vectors"], g["counters"]
    encode = np.ceil(n * m / p["fpga.datapath_bits"])
    per_class = np.ceil(g["dim"] / p["fpga.similarity_bits_per_cycle"])
    search = np.ceil(g["pairs"] / p["fpga.classes_in_parallel"]) * per_class
    cycles = np.where(g["bundle"], encode, 0.0) + np.where(g["similarity"], search, 0.0)
    bit_ops = (np.where(g["bind"], g["bits"] * (g["operands"] - 1.0), 0.0)
               + np.where(g["move"], g["bits"], 0.0)
               + n * m * g["counter_bits"] + np.where(g["majority"], m * g["counter_bits"], 0.0)
               + g["pairs"] * g["dim"] * (1.0 + g["distance_bits"])
               + g["compares"] * g["distance_bits"])
    bram_bits = np.where(g["gather"], g["bits"], 0.0) + g["pairs"] * g["dim"]
    busy = {"fabric": cycles / p["fpga.clock_hz"]}
    note = (f"fpga: {p['fpga.datapath_bits']}-bit encoder at {p['fpga.clock_hz'] / 1e6:.0f} MHz, associative memory "
            f"{p['fpga.classes_in_parallel']} classes x {p['fpga.similarity_bits_per_cycle']} bit(s) per clock; area "
            "not modelled")
    return Counts(actions={"logic": (bit_ops, p.lib("fpga.device", "energy.bit_op_energy_j")),
                           "bram": (bram_bits, p.lib("fpga.device", "energy.bram_bit_energy_j"))},
                  busy=busy, latency=busy["fabric"], static={"static": p["fpga.static_power_w"]}, bits=bits,
                  events={"cycles": cycles, "bit_ops": bit_ops, "bram_bits": bram_bits}, notes=[note, PAPER],
                  scope={"label": "FPGA logic, block RAM and the device's static power"},
                  info={"fabric": "fpga", "clock_hz": p["fpga.clock_hz"], "datapath_bits": p["fpga.datapath_bits"]})
