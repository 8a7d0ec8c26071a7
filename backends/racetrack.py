"""The ``racetrack-hdc`` family: hyperdimensional computing inside racetrack memory with
transverse reads, after Khan, Ollivier, Longofono, Hempel, Castrillon, Jones, "Brain-inspired
Cognition in Next-Generation Racetrack Memories" (ACM TECS 2022; shared/reference/seeds.md,
paper 8), and its FPGA baseline.

It costs HDC models: the nvmc ops of passes/hdc_ops.py (run ``--passes hdc-recognize`` on a
plain ONNX HDC model first) plus their glue (item-memory Gather, views, ArgMin). Any other
op is refused with an error naming the node; nothing is costed by a silent fallback.

Geometry of a node (from the workload columns, passes/hdc_ops.py "Workload counts"):
hypervector elements are bool, one byte in the byte columns and one bit in hardware, so
Bind has M = output elements and k = other / M + 1 operands; Permute and Gather move M =
output elements; Bundle adds n = in / (in - add) vectors into m = in - add counters; a
Similarity makes P = other - add comparisons of D = other / P bits, and writes its
non-constant operands (the queries) into the array.

Racetrack fabric (``[fabric] kind = "racetrack"``)
=================================================
Technology: ``data/tech/racetrack.toml`` (RTSim / DESTINY timings and energies per access,
its geometry: 64 domains per track, 32 tracks per domain-block cluster (DBC), 2 access ports,
256 DBCs per bank; transverse-read latency and energy derived there). ``banks`` banks work
at once: ``lanes`` = banks x DBCs x tracks tracks, each holding one bit position of
consecutive hypervectors in its domains. An op processes its bit columns in waves of
``lanes``; within a column the steps below run one after another (times add up):

* Gather (item-memory lookup): per bit, ``gather_shifts`` shifts to align the symbol's row
  with the nearest port (mean distance domains / (3 ports)), a read, and a write of the bit
  into the working array;
* Permute: a read and a write per bit; the rotation itself is the write drivers' offset
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
* ArgMin/ArgMax: CMOS compares of w-bit distances (w = bits of the largest D), overlapped
  with the array (no time);
* views (Slice, Reshape, Unsqueeze, Cast, ...): addressing, free.

Energy: events x per-track energies of the library + CMOS bit operations x the 45 nm adder
bit energy + leakage (RTSim's bank leakage x banks x ``leakage_scale``) x latency. A node
whose operands and result (bits) exceed the capacity of the working banks (lanes x domains)
does not fit: the Estimate says so.

FPGA baseline (``[fabric] kind = "fpga"``)
==========================================
Device: ``data/devices/fpga-16nm.toml``, the ISLPED'16 HDC RTL on a 16 nm FPGA. The encoder
streams one letter per clock through ``datapath_bits`` lanes: Gather, Permute (wiring) and
Bind feed the Bundle's counters in the same cycle, so only Bundle takes cycles, ceil(n x m
/ lanes); the associative memory compares ``classes_in_parallel`` classes at once,
``similarity_bits_per_cycle`` bits per clock: ceil(P / classes) x ceil(D / bits) cycles.
Energy: bit operations (XOR bits, counter bits, compare bits) x the FPGA bit-op energy
(Horowitz adder bit x node scaling x Kuon & Rose's FPGA/ASIC dynamic-power ratio), item and
class memory reads x the BRAM bit energy, and static power x latency.

The paper reports 7.8x runtime and 5.3x energy below its FPGA and 8.6x energy below the best
in-memory HDC design; these are targets to explain (the Estimate's notes print them), never
outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TargetError, UnsupportedOpError
from .estimate import Estimate
from .support import op_mask
from .target import Field, Target
from .techlib import Param, library

FAMILY = "racetrack-hdc"

SCHEMA: dict[str, dict[str, Field]] = {
    "fabric": {
        "kind": Field("choice", "'racetrack': HDC in racetrack memory with transverse reads; 'fpga': the FPGA "
                                "baseline", default="racetrack", choices=("racetrack", "fpga")),
    },
    "racetrack": {
        "technology": Field("str", "racetrack technology of the library (data/tech/)", default="racetrack"),
        "banks": Field("int", "banks of the technology's geometry working in parallel", default=16),
        "transverse_read_distance": Field("int", "domains one transverse read spans (default: the technology's)"),
        "leakage_scale": Field("float", "fraction of the banks' leakage that is not power-gated", default=1.0,
                               minimum=0.0, maximum=1.0),
    },
    "fpga": {
        "device": Field("str", "the FPGA, a device of the technology library (data/devices/)", default="fpga-16nm"),
        "clock_hz": Field("float", "fabric clock (default: the device's)", unit="Hz"),
        "datapath_bits": Field("int", "hypervector bits the encoder processes per clock (default: the device's)"),
        "classes_in_parallel": Field("int", "classes the associative memory compares at once (default: the device's)"),
        "similarity_bits_per_cycle": Field("int", "bits per class the associative memory compares per clock "
                                                  "(default: the device's)"),
        "static_power_w": Field("float", "static power of the device (default: the device's)", minimum=0.0,
                                unit="W"),
    },
}

HDC_OPS = ("nvmc.Bind", "nvmc.Permute", "nvmc.Bundle", "nvmc.Similarity")
VIEW_OPS = frozenset({"Slice", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Cast", "Shape", "Size",
                      "Constant", "Dropout"})
LOOKUP_OPS = frozenset({"Gather"})
SELECT_OPS = frozenset({"ArgMin", "ArgMax", "TopK"})
RAW_HDC_OPS = frozenset({"Xor", "BitwiseXor", "ReduceSum", "Greater", "Less", "Concat", "Not"})
PAPER = ("paper (Khan et al., TECS 2022; seeds.md #8): racetrack HDC 7.8x faster and 5.3x less energy than an "
         "FPGA, 8.6x less energy than the best in-memory HDC, on language recognition. Targets to explain, not "
         "outputs: compare with --compare fpga")
RACETRACK_ENERGY = ("shift", "transverse_read", "read", "write", "cmos", "leakage")
FPGA_ENERGY = ("logic", "bram", "static")


@dataclass
class Config:
    """A racetrack-hdc target resolved against the library (SI units)."""

    kind: str
    params: list[Param]
    values: dict[str, float]

    def __getattr__(self, key: str) -> float:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None


def resolve(target: Target) -> Config:
    if "config" in target.cache:
        return target.cache["config"]
    lib = library()
    kind = target["fabric.kind"]
    params: list[Param] = [Param("fabric.kind", kind, _origin_kind(target, "fabric.kind"),
                                 _origin_note(target, "fabric.kind"), target.source)]
    values: dict[str, float] = {}
    with target.library_errors():
        if kind == "racetrack":
            _resolve_racetrack(target, lib, params, values)
        else:
            _resolve_fpga(target, lib, params, values)
    config = Config(kind, params, values)
    target.cache["config"] = config
    return config


def _origin_kind(target: Target, key: str) -> str:
    origin = target.origins.get(key, "default")
    return origin if origin in ("--set", "default") else "target"


def _origin_note(target: Target, key: str) -> str:
    origin = target.origins.get(key, "default")
    return {"--set": f"--set {key}={target.describe(key)}", "default": "family default"}.get(origin, origin)


def _knob(target: Target, params: list[Param], key: str, owner=None, default_key: str | None = None):
    """A target value, or (left out) the library number it defaults to; recorded for explain."""
    value = target[key]
    if value is None and owner is not None:
        p = owner.param(default_key)
        params.append(Param(key, p.value, p.kind, f"= {owner.name} {default_key}: {p.note}", p.origin, p.formula))
        return p.value
    params.append(Param(key, value, _origin_kind(target, key), _origin_note(target, key), target.source))
    return value


def _prefixed(p: Param, owner: str) -> Param:
    return Param(f"{owner}:{p.key}", p.value, p.kind, p.note, p.origin, p.formula)


def _resolve_racetrack(target: Target, lib, params: list[Param], v: dict[str, float]) -> None:
    tech = lib.tech(_knob(target, params, "racetrack.technology"))
    if "transverse_read.energy_j" not in tech.params:
        raise TargetError(f"technology '{tech.name}' has no [transverse_read] figures",
                          hint="choose a racetrack technology (data/tech/racetrack.toml)")
    banks = _knob(target, params, "racetrack.banks")
    trd = int(_knob(target, params, "racetrack.transverse_read_distance", tech, "geometry.transverse_read_distance"))
    if not 2 <= trd <= tech["transverse_read.max_distance"]:
        raise TargetError(f"racetrack.transverse_read_distance = {trd}: a transverse read spans 2 to "
                          f"{int(tech['transverse_read.max_distance'])} domains (PIRM sense margin)")
    v["leakage_scale"] = _knob(target, params, "racetrack.leakage_scale")
    v["banks"], v["trd"] = banks, trd
    v["domains"] = tech["geometry.domains_per_track"]
    v["ports"] = tech["geometry.ports_per_dbc"]
    v["lanes"] = banks * tech["per_track.tracks_per_bank"]
    v["gather_shifts"] = v["domains"] / (3 * v["ports"])
    for key in ("shift_latency_s", "read_latency_s", "write_latency_s"):
        v[key] = tech[f"access.{key}"]
    v["tr_latency_s"] = tech["transverse_read.latency_s"]
    v["shift_energy_j"], v["read_energy_j"], v["write_energy_j"] = (tech[f"per_track.{k}_energy_j"]
                                                                    for k in ("shift", "read", "write"))
    v["tr_energy_j"] = tech["transverse_read.energy_j"]
    v["cmos_bit_j"] = tech["cmos.bit_add_energy_j"]
    v["leakage_w"] = tech["access.leakage_w"] * banks * v["leakage_scale"]
    params.append(Param("racetrack.lanes", v["lanes"], "derived",
                        f"banks x per_track.tracks_per_bank = {banks} x {int(tech['per_track.tracks_per_bank'])} "
                        "tracks working in parallel", target.source))
    params.append(Param("racetrack.gather_shifts", v["gather_shifts"], "derived",
                        "geometry.domains_per_track / (3 x geometry.ports_per_dbc): mean distance from a random row "
                        "to the nearest of the ports", target.source))
    params.append(Param("racetrack.leakage_w", v["leakage_w"], "derived",
                        "access.leakage_w (one RTSim bank) x banks x leakage_scale", target.source))
    params.extend(_prefixed(p, tech.name) for p in tech.params.values()
                  if p.key.split(".")[0] in ("access", "geometry", "transverse_read", "per_track", "cmos"))


def _resolve_fpga(target: Target, lib, params: list[Param], v: dict[str, float]) -> None:
    dev = lib.device(_knob(target, params, "fpga.device"))
    if "energy.bit_op_energy_j" not in dev.params:
        raise TargetError(f"device '{dev.name}' is not an FPGA (no energy.bit_op_energy_j)",
                          hint="choose an FPGA device of data/devices/, e.g. fpga-16nm")
    v["clock_hz"] = _knob(target, params, "fpga.clock_hz", dev, "fabric.clock_hz")
    v["datapath_bits"] = _knob(target, params, "fpga.datapath_bits", dev, "fabric.datapath_bits")
    v["classes_in_parallel"] = _knob(target, params, "fpga.classes_in_parallel", dev, "fabric.classes_in_parallel")
    v["similarity_bits"] = _knob(target, params, "fpga.similarity_bits_per_cycle", dev,
                                 "fabric.similarity_bits_per_cycle")
    v["static_w"] = _knob(target, params, "fpga.static_power_w", dev, "fabric.static_power_w")
    v["bit_op_j"] = dev["energy.bit_op_energy_j"]
    v["bram_bit_j"] = dev["energy.bram_bit_energy_j"]
    params.extend(_prefixed(p, dev.name) for p in dev.params.values())


def parameters(target: Target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
    return resolve(target).params


# ---------------------------------------------------------------- the model
def check_supported(workload, target: Target) -> None:
    """Refuse, naming the first node, anything that is not an HDC op or its glue."""
    ops = np.asarray(workload.ops, dtype=object)
    c = workload.columns
    known = op_mask(ops, list(HDC_OPS) + list(VIEW_OPS | LOOKUP_OPS | SELECT_OPS)) | (_folded(workload) > 0)
    bad = np.flatnonzero(~known | (c["macs"] > 0))
    if not bad.size:
        return
    i = int(bad[0])
    op = workload.ops[i]
    if op in RAW_HDC_OPS:
        why, hint = (f"it is plain ONNX; the {FAMILY} family costs the nvmc HDC ops",
                     "run with --passes hdc-recognize to turn Xor / Slice+Concat / ReduceSum patterns into "
                     "nvmc.Bind / Permute / Bundle / Similarity")
    else:
        why, hint = (f"family '{FAMILY}' costs hyperdimensional-computing models only (nvmc.Bind, Permute, Bundle, "
                     "Similarity and their glue)", "choose a DNN target ('nvmc targets' lists them)")
    raise UnsupportedOpError(f"node '{workload.names[i]}' ({op}) is not supported by target '{target.name}': {why}",
                             hint=hint)


def _folded(workload) -> np.ndarray:
    """1 for nodes the workload analysis folds into their neighbours (they cost nothing)."""
    return workload.columns.get("folded", np.zeros(len(workload.names), dtype=np.int64))


def _geometry(workload) -> dict[str, np.ndarray]:
    """Per-node HDC geometry (module doc): bits moved, operands, vectors, comparisons."""
    c = workload.columns
    f = np.float64
    ops = np.asarray(workload.ops, dtype=object)
    out, inp = c["output_bytes"].astype(f), c["input_bytes"].astype(f)
    other, add, cmp = (c[k].astype(f) for k in ("other", "add", "cmp"))
    live = _folded(workload) == 0
    g = {name: live & (ops == op) for name, op in (("bind", "nvmc.Bind"), ("permute", "nvmc.Permute"),
                                                   ("bundle", "nvmc.Bundle"), ("similarity", "nvmc.Similarity"))}
    g["gather"] = live & op_mask(ops, list(LOOKUP_OPS))
    g["select"] = live & op_mask(ops, list(SELECT_OPS))
    safe = lambda x: np.maximum(x, 1.0)  # noqa: E731
    g["bits"] = np.where(g["bind"] | g["permute"] | g["gather"], out, 0.0)
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
    g["distance_bits"] = np.ceil(np.log2(dmax + 1.0)) if dmax > 0 else 16.0
    g["counter_bits"] = np.where(g["vectors"] > 0, np.ceil(np.log2(g["vectors"] + 1.0)), 0.0)
    g["footprint"] = out + inp
    return g


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target)
    names, ops = list(workload.names), list(workload.ops)
    g = _geometry(workload)
    if cfg.kind == "racetrack":
        capacity = cfg.lanes * cfg.domains
        worst = int(np.argmax(g["footprint"])) if len(names) else 0
        if len(names) and g["footprint"][worst] > capacity:
            return Estimate.not_fitting(
                target, f"node '{names[worst]}' needs {g['footprint'][worst]:.4g} bits of operands and results, the "
                        f"{cfg.banks} working banks hold {capacity:.4g} ({cfg.lanes:.0f} tracks x {cfg.domains:.0f} "
                        "domains): raise racetrack.banks", names=names, ops=ops, info=_info(cfg))
        latency, energy, events = _racetrack(g, cfg)
    else:
        latency, energy, events = _fpga(g, cfg)
    node_latency = np.sum(list(latency.values()), axis=0) if latency else np.zeros(len(names))
    if cfg.kind == "racetrack":
        energy["leakage"] = node_latency * cfg.leakage_w
    else:
        energy["static"] = node_latency * cfg.static_w
    notes = [_describe(cfg), PAPER]
    assumptions = [f"{p.key} = {p.value:.4g}: {p.note}" for p in cfg.params
                   if p.kind == "assumed" and isinstance(p.value, (int, float))]
    return Estimate(target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops,
                    macs=workload.columns["macs"].astype(np.float64), node_latency=node_latency, latency=latency,
                    energy=energy, area={}, events=events, batch=batch, notes=notes, assumptions=assumptions,
                    info=_info(cfg), target_file=target.source)


def _info(cfg: Config) -> dict:
    if cfg.kind == "racetrack":
        return {"fabric": "racetrack", "lanes": cfg.lanes, "banks": cfg.banks, "transverse_read_distance": cfg.trd}
    return {"fabric": "fpga", "clock_hz": cfg.clock_hz, "datapath_bits": cfg.datapath_bits}


def _describe(cfg: Config) -> str:
    if cfg.kind == "racetrack":
        return (f"racetrack: {cfg.banks:.0f} banks = {cfg.lanes:.0f} tracks in parallel, transverse reads over "
                f"{cfg.trd:.0f} domains; area not modelled (no cited racetrack array area)")
    return (f"fpga: {cfg.datapath_bits:.0f}-bit encoder at {cfg.clock_hz / 1e6:.0f} MHz, associative memory "
            f"{cfg.classes_in_parallel:.0f} classes x {cfg.similarity_bits:.0f} bit(s) per clock; area not modelled")


def _racetrack(g: dict, cfg: Config) -> tuple[dict, dict, dict]:
    """Events and busy times per node on the racetrack fabric (module doc, one rule per op)."""
    lanes, trd = cfg.lanes, cfg.trd
    waves = lambda columns: np.ceil(columns / lanes)  # noqa: E731
    zeros = np.zeros_like(g["bits"])
    ev = {k: zeros.copy() for k in ("shifts", "transverse_reads", "reads", "writes", "cmos_bit_ops")}
    steps = {k: zeros.copy() for k in ("shift", "transverse_read", "read", "write")}  # per-column steps x waves

    # Gather: align, read, write each bit; Permute: read and write each bit
    for mask, shifts in ((g["gather"], cfg.gather_shifts), (g["permute"], 0.0)):
        bits = np.where(mask, g["bits"], 0.0)
        w = waves(bits)
        ev["shifts"] += bits * shifts
        ev["reads"] += bits
        ev["writes"] += bits
        steps["shift"] += w * shifts
        steps["read"] += w
        steps["write"] += w

    # Bind: r rounds of (TR, write, TRD shifts) per bit column
    bits = np.where(g["bind"], g["bits"], 0.0)
    rounds = np.where(g["bind"], np.ceil(np.maximum(g["operands"] - 1.0, 1.0) / (trd - 1)), 0.0)
    w = waves(bits)
    ev["transverse_reads"] += bits * rounds
    ev["writes"] += bits * rounds
    ev["shifts"] += bits * rounds * trd
    steps["transverse_read"] += w * rounds
    steps["write"] += w * rounds
    steps["shift"] += w * rounds * trd

    # Bundle: n vectors over s tracks per counter, ceil(n / s / TRD) TR rounds per track
    n, m = g["vectors"], g["counters"]
    segments = np.where(m > 0, np.ceil(n / cfg.domains), 0.0)
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

    # ArgMin / ArgMax: CMOS compares, overlapped
    ev["cmos_bit_ops"] += g["compares"] * g["distance_bits"]

    latency = {"shift": steps["shift"] * cfg.shift_latency_s,
               "transverse_read": steps["transverse_read"] * cfg.tr_latency_s,
               "read": steps["read"] * cfg.read_latency_s,
               "write": steps["write"] * cfg.write_latency_s}
    energy = {"shift": ev["shifts"] * cfg.shift_energy_j,
              "transverse_read": ev["transverse_reads"] * cfg.tr_energy_j,
              "read": ev["reads"] * cfg.read_energy_j,
              "write": ev["writes"] * cfg.write_energy_j,
              "cmos": ev["cmos_bit_ops"] * cfg.cmos_bit_j}
    return latency, energy, ev


def _fpga(g: dict, cfg: Config) -> tuple[dict, dict, dict]:
    """Cycles and events per node on the FPGA baseline (module doc)."""
    n, m = g["vectors"], g["counters"]
    encode = np.ceil(n * m / cfg.datapath_bits)
    search = np.ceil(g["pairs"] / cfg.classes_in_parallel) * np.ceil(g["dim"] / cfg.similarity_bits)
    cycles = np.where(g["bundle"], encode, 0.0) + np.where(g["similarity"], search, 0.0)
    bit_ops = (np.where(g["bind"], g["bits"] * (g["operands"] - 1.0), 0.0)
               + n * m * g["counter_bits"] + np.where(g["majority"], m * g["counter_bits"], 0.0)
               + g["pairs"] * g["dim"] * (1.0 + g["distance_bits"])
               + g["compares"] * g["distance_bits"])
    bram_bits = np.where(g["gather"], g["bits"], 0.0) + g["pairs"] * g["dim"]
    latency = {"fabric": cycles / cfg.clock_hz}
    energy = {"logic": bit_ops * cfg.bit_op_j, "bram": bram_bits * cfg.bram_bit_j}
    return latency, energy, {"cycles": cycles, "bit_ops": bit_ops, "bram_bits": bram_bits}
