"""The ``systolic`` family: a rows x cols systolic array with ifmap / filter / ofmap buffers of a
chosen memory technology (SRAM, STT-, SOT-, VGSOT-MRAM) and node, after the XR edge-AI study
(shared/reference/seeds.md, paper 4). Counted per node from the workload's columns, vectorised.

Nodes of kind ``view`` (and those the workload marks ``folded``: QDQ casts, weight decodes)
cost nothing; control flow and unknown-domain ops without MACs are refused.

*MAC nodes* run on the array as the workload's GEMMs, ``gemm_batch`` x (M x K) @ (K x N):
Conv (one GEMM per group; a depthwise conv is C GEMMs with N = 1, as SCALE-Sim splits it),
ConvTranspose (each input pixel times a K x (C_out/g * k_h * k_w) block; the overlapping
partial outputs are accumulated in the ofmap buffer: a read-modify-write and a vector add
each), Gemm, MatMul. A node with fewer weight elements than its GEMMs use (a batched MatMul
sharing one weight: a transformer's linear layers) is one GEMM of batch x M rows; where the
constant weights do not cover the B operand (attention, or a weight computed at run time)
both operands stream from the buffers.

1. Cycles: per GEMM exactly SCALE-Sim v3's count for the dataflow (systolic_map), x ``gemm_batch``.
2. Operand accesses (array <-> buffers) as SCALE-Sim counts them (systolic_map), at the
   operands' precision, in buffer words; ws/is also read back partial sums (32-bit).
3. DRAM traffic by the dataflow's loop order: the operand re-streamed once per outer fold
   (os: A per column fold or B per row fold, whichever moves fewer bytes; ws: A; is: B) is
   fetched once if it fits its buffer and re-fetched for the missing fraction
   ``clip(1 - usable / bytes)`` otherwise; the other operand's tile is reused across the
   inner folds by the same rule; ws/is partial-sum tiles that do not fit the ofmap buffer
   spill to DRAM. ``usable`` = capacity x ``buffers.usable_fraction`` (double buffering).
   A is at most its im2col volume (``gemm_batch x M x K``): a strided 1x1 conv reads only
   the pixels it samples.
   ``mapping.tiling = "search"`` (CALC interface only; systolic_tiling): per MAC node, the
   M / N / K tiles within the three buffers' usable bytes and the order of the DRAM-level loops
   that move the fewest refetch and spill bytes (ties: fewer buffer accesses), or this fixed
   rule where no tiling beats it; the array's folds and cycles stay SCALE-Sim's. The events say
   ``tile_m``, ``tile_n``, ``tile_k`` and ``loop_order`` (0-5: MNK, MKN, NMK, NKM, KMN, KNM,
   outer -> inner; 6: the fixed rule, tiles NaN), a note the DRAM bytes against the fixed rule.
4. Activations (``buffers.activations = "on-chip"``): a node's input is on chip as far as
   the previous node's output fit in the ofmap buffer (``min(1, usable / bytes)``; ifmap and
   ofmap swap roles), its output goes to DRAM for the part that does not fit (producer and
   consumer taken as adjacent: optimistic for skip connections); the model's input comes
   from DRAM and its output goes there. ``"dram"``: every layer goes through DRAM (SCALE-Sim).
5. Weights: when the model's stored weights (``weight_bytes``) fit the filter buffer and it
   keeps them between inferences (MRAM: non-volatile; SRAM unless ``buffers.power_gating =
   "idle-sram"``), they cost no DRAM reads; otherwise each node fetches what it reads
   (``weight_read_bytes``: a Gather of a constant table reads its rows).

*Other nodes* run on a vector unit of ``vector.lanes`` lanes (family.element_slots: a
transcendental op is ``vector.transcendental_cost`` slots), through the buffers and DRAM by
the rules above; bias adds of MAC nodes too. With ``vector.fusion = "elementwise"`` a node
of kind ``elementwise`` reading exactly the previous node's output, in a chain that starts
at a MAC node (Conv -> BatchNormalization -> Relu, MatMul -> Add -> Gelu), runs in the MAC
node's output path: no buffer or DRAM round trip, its slots overlap the array time, and the
MAC node writes the chain's last output at its ``out_bits`` (a QDQ graph's int8).

Precision: the classes the family data declares native (int4, int8, fp16, fp32), the one
nearest (log2) to the operands' bits. Activations: ``act_bits``. Weights: the graph's class
(that of ``weight_bits`` holding most weight elements), fp32 for a node whose own weights are
nearest fp32; not each node's own ``weight_bits``, which counts scales and codebooks too (a
per-channel int8 3x3 depthwise conv stores 12.4 bits per weight: it would be costed at fp16).
A MAC is costed at the wider operand; ``bits`` tells the report what each node was costed at.

Time: units overlap (double-buffered) and a node takes the busiest: array cycles / clock;
vector slots / (lanes x clock); each buffer (reads x max(read latency, 1 cycle) + writes x
max(write latency, 1 cycle)) / banks; DRAM bytes / bandwidth.

DRAM interface (``interface.mode``): ``"calc"`` (default; SCALE-Sim's CALC mode) the array never
waits for DRAM: array cycles = compute cycles, 0 stall cycles. ``"user"`` (SCALE-Sim's USER
mode, systolic_bandwidth): array cycles = compute + stall cycles, the stalls SCALE-Sim's read
buffers (window slides, each a refill of the buffer's prefetch half) and ofmap drains cause
behind an interface of ``interface.bandwidth_words_per_cycle`` words per cycle (SCALE-Sim's
1-byte words: bytes per cycle), in closed form; the refills are the operands' DRAM refetches
(replacing point 3's loop-order rule: SCALE-Sim's order, column folds outer), and the DRAM unit
runs at the interface's bandwidth (default: ``dram.bandwidth_bytes_per_s``). Per node the
estimate's events say ``compute_cycles``, ``stall_cycles`` and ``array_cycles`` (their sum),
in USER mode also ``ifmap_refills`` and ``filter_refills``.

Dataflow (``array.dataflow``): os, ws or is for every node, or ``"auto"`` (nvmc's own; a SCALE-Sim
config names one of the three): per node the fastest of os, ws and is; ties (bit-equal latencies)
go to the lower energy, then to the first of os, ws, is (choose_dataflow). Each dataflow is costed
over all nodes by the rules above and the chosen one's numbers are the node's: cycles, stalls,
buffer and DRAM traffic, energy. A per-node choice is exact: what one node costs does not depend
on another's dataflow (activations between layers, weight residency and fusion do not depend on
it). The events say ``dataflow`` per MAC node (0 os, 1 ws, 2 is; NaN on other nodes), a note
counts them and compares the latency with the best single dataflow's.

Energy (counted here, priced by backends/family.py): MACs x the class's MAC energy; PE
registers: the operand bits moved between PEs per MAC (os: activation + weight; ws:
activation + 32-bit partial sum; is: weight + partial sum) x energy per bit; vector lane ops
(adds, multiplies; a transcendental op is ``transcendental_cost`` of each) x the graph
class's energies; buffer accesses x NVSim energy; DRAM bytes x 8 x energy per bit. Static
power x node latency: buffer leakage and, with ``operation.inferences_per_s``, the leakage of
the idle time between inferences (SRAM unless power-gated; MRAM is gated without losing
state), spread over the nodes by latency. Logic leakage is not modelled (no cited figure).

Area: PE array and vector unit (multipliers of the graph class and 32-bit adders, Aladdin
40 nm), the three buffers (NVSim, with their periphery); not the chip periphery. Node: logic
figures (Horowitz 45 nm, Aladdin 40 nm) and NVSim's 28 nm buffers are scaled to
``array.node_nm`` by Stillmaker & Baas (latencies are kept).

Keys, defaults and sources: ``data/families/systolic.toml``; compute data
``data/devices/systolic-edge.toml``; buffer tables ``data/nvsim_buffers/`` via the
``[buffer_array]`` sections of ``data/tech/*.toml``. Modules: systolic_map (SCALE-Sim's
mapping and cycles), systolic_traffic (the per-node arithmetic above), systolic_bandwidth (USER
mode's stall cycles), systolic_tiling (the tiling search), systolic_data (buffer tables, node scaling).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np

from .errors import TargetError
from .family import Counts, FamilySpec, Params, per
from .systolic_data import NodeScaling, resolve_buffer
from . import systolic_tiling as stiling
from .systolic_map import DATAFLOWS
from .systolic_traffic import BUFFERS, busy_times, class_bits, operands, traffic
from .target import MAX_COUNT

FAMILY = "systolic"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
# short --set spellings (`--set array=128x128 --set dataflow=ws`)
SET_ALIASES = {"array": "array.size", "dataflow": "array.dataflow"}
DEVICE = "array.device"
AUTO = "auto"   # array.dataflow: chosen per node among DATAFLOWS (choose_dataflow)


def parse_size(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(text))
    if not m:
        raise TargetError(f"array.size = {text!r}: expected ROWSxCOLS, e.g. '128x128'", where=where)
    digits = len(str(MAX_COUNT))  # a 5000-digit number is not parsed
    rows, cols = (int(g) if len(g) <= digits else MAX_COUNT + 1 for g in m.groups())
    if rows <= 0 or cols <= 0:
        raise TargetError(f"array.size = {text!r}: the array needs at least one row and one column", where=where,
                          hint="e.g. --set array.size=32x32")
    if max(rows, cols) > MAX_COUNT:
        raise TargetError(f"array.size: at most {MAX_COUNT} rows and columns", where=where)
    return rows, cols


def resolve(p: Params) -> SimpleNamespace:
    """Every number the model reads, in the order ``nvmc explain`` lists them (cached)."""
    if "chip" in p.cache:
        return p.cache["chip"]
    size = p.get("array.size")
    rows, cols = parse_size(size, p.target.where("array.size")) if size is not None else \
        (int(p["array.rows"]), int(p["array.cols"]))
    node = p["array.node_nm"]
    scaling = NodeScaling.from_params(p, DEVICE)
    lo, hi = scaling.node_range
    if not lo <= node <= hi:
        raise TargetError(f"array.node_nm = {node:g}: outside the Stillmaker & Baas scaling table ({lo}-{hi} nm)",
                          where=p.target.source, hint=f"choose a node between {lo} and {hi} nm")
    roadmap = p["buffers.roadmap"].upper()
    buffers = {role: resolve_buffer(p, role, roadmap, node, scaling) for role in BUFFERS}
    factors = {  # SB17 factors from the nodes of the cited logic figures to array.node_nm
        key: p.derive(key, factor(node, p.lib(DEVICE, at)), f"SB17 {factor.__name__} factor systolic-edge {at} -> "
                      "array.node_nm (the device's node_scaling table, linear in node between table nodes)")
        for key, factor, at in (("scaling.energy_45nm_to_node", scaling.energy, "mac.node_nm"),
                                ("scaling.energy_40nm_to_node", scaling.energy, "mac.register_node_nm"),
                                ("scaling.area_40nm_to_node", scaling.area, "area.node_nm"))}
    classes = SPEC.native

    def scaled(name: str, lib_key: str, factor: str, unit: float = 1.0):
        """Device figure ``lib_key`` at the node (per precision class where the names hold '{}')."""
        one = [p.derive(name.format(c), p.lib(DEVICE, lib_key.format(c)) * factors[factor] * unit,
                        f"systolic-edge {lib_key.format(c)} x {factor}") for c in (classes if "{}" in name else "_")]
        return np.array(one) if "{}" in name else one[0]

    um2 = 1e-6  # um^2 -> mm^2
    chip = SimpleNamespace(  # the array, the buffers at the node, the per-class prices (index = classes)
        rows=rows, cols=cols, classes=classes, buffers=buffers, psum_bytes=p.lib(DEVICE, "array.psum_bytes"),
        mac_energy_j=scaled("mac.{}_energy_j", "mac.{}_mac_45nm_j", "scaling.energy_45nm_to_node"),
        add_energy_j=scaled("vector.{}_add_energy_j", "mac.{}_add_45nm_j", "scaling.energy_45nm_to_node"),
        mult_energy_j=scaled("vector.{}_mult_energy_j", "mac.{}_mult_45nm_j", "scaling.energy_45nm_to_node"),
        register_energy_j_per_bit=scaled("mac.register_energy_j_per_bit", "mac.register_read_40nm_j_per_bit",
                                         "scaling.energy_40nm_to_node"),
        mult_area_mm2=scaled("area.{}_mult_mm2", "area.{}_mult_40nm_um2", "scaling.area_40nm_to_node", um2),
        adder_area_mm2=scaled("area.adder32_mm2", "area.adder32_40nm_um2", "scaling.area_40nm_to_node", um2),
        dram_energy_per_bit_j=p.derive("dram.energy_per_bit_j", p.lib("dram.technology",
                                       "access.lpddr4_energy_per_64bit_j") / p.lib(DEVICE, "dram.access_bits"),
                                       "access.lpddr4_energy_per_64bit_j / systolic-edge dram.access_bits"))
    chip.interface, chip.bytes_per_cycle = p["interface.mode"], None
    if chip.interface == "user" and p["mapping.tiling"] == "search":
        raise TargetError("mapping.tiling = 'search' needs interface.mode = 'calc': USER mode's refetches and stalls "
                          "are SCALE-Sim's own buffer refills, in its loop order",
                          where=p.target.where("mapping.tiling"),
                          hint="drop --set mapping.tiling=search, or use interface.mode=calc")
    if chip.interface == "user":
        if p["buffers.usable_fraction"] >= 1:
            raise TargetError("interface.mode = 'user' needs a prefetch half: buffers.usable_fraction must be below 1 "
                              f"(it is {p['buffers.usable_fraction']:g})",
                              where=p.target.where("buffers.usable_fraction"),
                              hint="e.g. --set buffers.usable_fraction=0.5 (SCALE-Sim's double-buffered read buffers)")
        # SCALE-Sim's words are 1 byte (single_layer_sim: word_size = 1): words per cycle = bytes per cycle
        chip.bytes_per_cycle = p.get("interface.bandwidth_words_per_cycle")
        if chip.bytes_per_cycle is None:  # the device's DRAM per array cycle
            chip.bytes_per_cycle = p.derive("interface.bandwidth_words_per_cycle",
                                            p["dram.bandwidth_bytes_per_s"] / p["array.clock_hz"],
                                            "dram.bandwidth_bytes_per_s / array.clock_hz (1-byte words per cycle)")
    p.cache["chip"] = chip
    return chip


def _overlapping_convs(workload) -> int:
    """Convs whose windows overlap: an im2col operand (batch x M x K elements at the activations'
    width) larger than the input it is built from. 1x1 and stride = kernel convs are equal to it;
    padding also adds to it, so a padded conv with stride = kernel is counted too (rare)."""
    c = workload.columns
    im2col = c["gemm_batch"].astype(np.float64) * c["gemm_m"] * c["gemm_k"] * np.maximum(c["act_bits"], 8) / 8
    conv = np.asarray(workload.ops, dtype=object) == "Conv"
    return int(np.count_nonzero(conv & (im2col > c["input_bytes"])))


# ------------------------------------------------------------------ the model
def count(workload, p: Params, *, batch: int = 1) -> Counts:
    chip = resolve(p)
    s = operands(workload, p, chip)
    dataflow = p["array.dataflow"]
    if dataflow == AUTO:
        t, choice, fixed_latency = choose_dataflow(p, chip, s)
    else:
        t = traffic(s, p, chip, dataflow)
    busy, latency = busy_times(p, chip, t)
    bufs = chip.buffers
    g = t["graph_class"]
    actions = _actions(chip, t)
    static = {"buffer_leakage": sum(b.leakage_w for b in bufs.values())}
    total, notes = float(latency.sum()), []
    facts = {"device": p[DEVICE], "array": f"{chip.rows}x{chip.cols}", "dataflow": p["array.dataflow"],
             "clock_hz": p["array.clock_hz"], "node_nm": p["array.node_nm"], "roadmap": p["buffers.roadmap"].upper(),
             "power_gating": p["buffers.power_gating"], "activations": p["buffers.activations"],
             "buffers": {r: b.info() for r, b in chip.buffers.items()}}
    ips = p.get("operation.inferences_per_s")
    if ips:
        period = batch / ips
        idle = max(0.0, period - total)
        idle_w = sum(b.leakage_w for b in bufs.values() if b.volatile and p["buffers.power_gating"] == "off")
        static["idle_leakage"] = idle_w * idle / total if total > 0 else 0.0
        meets = total <= period
        facts.update(inferences_per_s_required=ips, meets_rate=meets, idle_s=idle, idle_leakage_w=idle_w)
        notes.append(f"required {ips:g} inferences/s: "
                     + (f"met; idle {idle / batch * 1e3:.3g} ms per inference, buffers leaking {idle_w * 1e3:.3g} mW "
                        "while idle" if meets else
                        f"NOT met (needs {total / batch * 1e3:.3g} ms per inference, the period is {1e3 / ips:.3g} ms)"))
    pe = chip.mult_area_mm2[g] + chip.adder_area_mm2
    area = {"pe_array": chip.rows * chip.cols * pe, "vector_unit": p["vector.lanes"] * pe,
            **{f"{r}_buffer": b.area_mm2 for r, b in bufs.items()}}
    work = t["work"]
    units = ("array", "vector", "ifmap", "filter", "ofmap", "dram")
    bound = np.bincount(np.argmax(np.stack([busy[u] for u in units]), axis=0)[work], minlength=len(units))
    notes.append("; ".join(f"{k} {u}-bound" for u, k in zip(units, bound) if k) + f" (of {int(work.sum())} costed nodes)")
    if t["fused"].any():
        notes.append(f"{int(t['fused'].sum())} element-wise nodes run in their MAC producer's output path")
    notes.append(f"precision: {chip.classes[g]} MACs (by the workload's act_bits and weight_bits); weights "
                 + ("resident in the filter buffer across inferences" if t["resident"] else
                    "fetched from DRAM every inference"))
    array_cycles = t["cycles"] + t["stall_cycles"]
    facts.update(mac_precision=chip.classes[g], weights_resident=bool(t["resident"]),
                 array_utilization=float(t["macs"].sum() / max(1.0, array_cycles.sum() * chip.rows * chip.cols)))
    more_events = {}
    if t["user"] is not None:
        u = t["user"]
        stall, compute = float(t["stall_cycles"].sum()), float(t["cycles"].sum())
        given = p.param("interface.bandwidth_words_per_cycle").kind != "derived"
        gbs = chip.bytes_per_cycle * p["array.clock_hz"] / 1e9
        notes.append("DRAM interface: USER mode (bandwidth-limited, SCALE-Sim v3 semantics) at "
                     f"{chip.bytes_per_cycle:g} words (bytes) per cycle = {gbs:.3g} GB/s"
                     + ("" if given else " (the device's DRAM bandwidth)") + f"; stalls add {stall:.4g} cycles to "
                     f"{compute:.4g} compute cycles ({100 * stall / max(compute, 1.0):.3g}%); buffer refills: ifmap "
                     f"{u['ifmap_slides'].sum():.4g}, filter {u['filter_slides'].sum():.4g}")
        overlapping = _overlapping_convs(workload)
        if overlapping:  # systolic_bandwidth.py's stated limit, said where the numbers are read
            notes.append(f"{overlapping} conv layer(s) with overlapping windows: their ifmap refills are approximate "
                         "(SCALE-Sim hits a pixel's copies elsewhere in the stream; the closed form does not: total "
                         "cycles 0.33x-4.1x of SCALE-Sim's event model on 96 small overlapping cases, os 0.59x-1.35x; "
                         "tests/data/refs/scalesim/check_overlap.py)")
        facts.update(interface="user", interface_bytes_per_cycle=float(chip.bytes_per_cycle), stall_cycles=stall)
        more_events = {"ifmap_refills": u["ifmap_slides"], "filter_refills": u["filter_slides"]}
    if t["tiles"] is not None:
        tl = t["tiles"]
        more_events.update({k: tl[k] for k in ("tile_m", "tile_n", "tile_k")}, loop_order=tl["order"])
        notes.append(_tiling_note(t, tl))
        facts.update(tiling="search", dram_bytes_fixed_tiling=_fixed_dram(t, tl))
    if dataflow == AUTO:
        more_events["dataflow"] = np.where(t["is_mac"], choice, np.nan)
        notes.append(_auto_note(choice[t["is_mac"]], fixed_latency, total))
        facts.update(dataflow_nodes=dict(zip(DATAFLOWS, np.bincount(choice[t["is_mac"]], minlength=len(DATAFLOWS)).tolist())),
                     dataflow_fixed_latency_s=dict(zip(DATAFLOWS, fixed_latency.sum(axis=1).tolist())))
    widths = class_bits(chip.classes)
    return Counts(actions=actions, busy=busy, latency=latency, static=static, area=area, notes=notes, info=facts,
                  bits=np.where(t["is_mac"], widths[t["mac_class"]], widths[g]), macs=t["macs"],
                  events={"array_cycles": array_cycles, "compute_cycles": t["cycles"],
                          "stall_cycles": t["stall_cycles"], **more_events,
                          **{f"{r}_{k}": t[f"{r}_{k}"] for r in BUFFERS for k in ("reads", "writes")},
                          "dram_read_bytes": t["dram_read"], "dram_write_bytes": t["dram_write"]},
                  mapping=_mapping(chip, t, workload))


def _mapping(chip, t: dict, workload) -> dict[str, np.ndarray]:
    """The layer mapping record (backends/estimate.MAPPING_FIELDS) of the dataflow each layer ran."""
    mac, nan = t["is_mac"], np.nan
    pes = chip.rows * chip.cols
    gb = np.maximum(workload.columns["gemm_batch"].astype(np.float64), 1.0)   # GEMMs of a batched MatMul
    buffered = sum(t[f"{r}_{k}"] * chip.buffers[r].word_bytes for r in BUFFERS for k in ("reads", "writes"))
    return {"units_total": pes, "units_used": np.where(mac, t["pes_used"], nan),
            "passes": np.where(mac, t["row_folds"] * t["col_folds"] * gb, nan),
            "compute_cycles": np.where(mac, t["cycles"], nan), "stall_cycles": np.where(mac, t["stall_cycles"], nan),
            # MACs over every PE's MAC slot while the array computes (stalls excluded: "while it computes")
            "utilization": np.where(mac, per(t["macs"], pes * t["cycles"]), nan),
            "dram_bytes": t["dram_read"] + t["dram_write"], "onchip_bytes": buffered}


def _actions(chip, t: dict) -> dict[str, tuple[np.ndarray, object]]:
    """Energy label -> (count per node, J per count) of one traffic table (systolic.py, Energy)."""
    g = t["graph_class"]
    lane_ops = t["vector_adds"] + t["vector_mults"]   # priced at each node's mix of adds and multiplies
    lane_j = t["vector_adds"] * chip.add_energy_j[g] + t["vector_mults"] * chip.mult_energy_j[g]
    lane_price = np.divide(lane_j, lane_ops, out=np.zeros_like(lane_j), where=lane_ops > 0)
    return {
        "mac": (t["macs"], chip.mac_energy_j[t["mac_class"]]),
        "pe_registers": (t["macs"] * t["moved_bits"], chip.register_energy_j_per_bit),
        "vector": (lane_ops, lane_price),
        **{f"{r}_{k}": (t[f"{r}_{k}s"], getattr(b, f"{k}_energy_j"))
           for r, b in chip.buffers.items() for k in ("read", "write")},
        "dram": ((t["dram_read"] + t["dram_write"]) * 8.0, chip.dram_energy_per_bit_j),
    }


def choose_dataflow(p: Params, chip, s) -> tuple[dict, np.ndarray, np.ndarray]:
    """``array.dataflow = "auto"``: per node, the dataflow with the lowest latency.

    Each of os, ws, is is costed by :func:`traffic` and :func:`busy_times` over all nodes at
    once (one call per dataflow, numpy over the nodes), giving a (3, nodes) table of latencies
    and energies. Per node the fastest wins; among equally fast ones (bit-equal latencies) the
    one with the lowest energy (dynamic energy plus buffer leakage over the node's latency; the
    idle leakage between inferences is spread by latency, so it cannot break such a tie); among
    those equal in both, the first of os, ws, is. The returned table holds, per node, the
    chosen dataflow's entries of the same tables a fixed dataflow gives: everything downstream
    (cycles, stalls, buffer and DRAM traffic, energy) is that dataflow's.

    Returns the table, the choice per node (index into ``DATAFLOWS``: 0 os, 1 ws, 2 is) and the
    (3, nodes) latencies of the three fixed dataflows."""
    tables = [traffic(s, p, chip, df) for df in DATAFLOWS]
    latency = np.stack([busy_times(p, chip, t)[1] for t in tables])
    leakage = sum(b.leakage_w for b in chip.buffers.values())
    energy = np.stack([sum(np.asarray(n, dtype=np.float64) * price for n, price in _actions(chip, t).values())
                       + lat * leakage for t, lat in zip(tables, latency)])
    fastest = latency == latency.min(axis=0)
    choice = np.argmin(np.where(fastest, energy, np.inf), axis=0)    # argmin: the first of equals
    return {k: _pick([t[k] for t in tables], choice) for k in tables[0]}, choice, latency


def _pick(values: list, choice: np.ndarray):
    """Per node, the entry of ``values[choice]`` (per-node arrays; dicts of them, recursively)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _pick([v[k] for v in values], choice) for k in first}
    if isinstance(first, np.ndarray) and first.shape == choice.shape:
        return np.choose(choice, values)
    return first   # a value of the whole graph (weight residency, precision class): the same for every dataflow


def _fixed_dram(t: dict, tl: dict) -> float:
    """The DRAM bytes the same dataflow(s) move with ``mapping.tiling = "fixed"``."""
    return float((t["dram_read"] + t["dram_write"] - tl["refetch"] + tl["fixed_refetch"]).sum())


def _tiling_note(t: dict, tl: dict) -> str:
    fixed, searched = _fixed_dram(t, tl), float((t["dram_read"] + t["dram_write"]).sum())
    order = tl["order"][np.isfinite(tl["order"])].astype(int)
    counts = np.bincount(order, minlength=len(stiling.ORDERS) + 1)
    saved = 100 * (1 - searched / fixed) if fixed > 0 else 0.0
    return (f"tiling search: DRAM traffic {fixed / 1e6:.4g} -> {searched / 1e6:.4g} MB (-{saved:.3g} %) over fixed loop "
            f"orders; {order.size - counts[stiling.FIXED]} of {order.size} MAC nodes searched-tiled, "
            f"{counts[stiling.FIXED]} keep the fixed rule (events tile_m, tile_n, tile_k, loop_order: "
            + ", ".join(f"{i} {o}" for i, o in enumerate(stiling.ORDERS)) + f", {stiling.FIXED} fixed; loops outer -> "
            "inner)")


def _auto_note(choice: np.ndarray, fixed_latency: np.ndarray, total: float) -> str:
    counts = np.bincount(choice, minlength=len(DATAFLOWS))
    fixed = fixed_latency.sum(axis=1)
    best = int(np.argmin(fixed))
    saved = 100 * (1 - total / fixed[best]) if fixed[best] > 0 else 0.0
    return (f"auto dataflow: {', '.join(f'{k} {d}' for d, k in zip(DATAFLOWS, counts))} (of {choice.size} MAC "
            f"nodes; per node: events 'dataflow', 0 = os, 1 = ws, 2 = is); latency {total * 1e3:.4g} ms against "
            f"{fixed[best] * 1e3:.4g} ms with the best single dataflow ({DATAFLOWS[best]}), {saved:.3g}% less")


estimate, parameters = SPEC.entry_points(count, resolve, batched=True)
