"""The ``systolic`` family: a rows x cols systolic array with ifmap / filter / ofmap buffers of a
chosen memory technology (SRAM, STT-, SOT-, VGSOT-MRAM) and node, after the XR edge-AI study
(shared/reference/seeds.md, paper 4). Vectorised over the layers with numpy.

Per node of the workload
========================

*Views* (Reshape, Flatten, ...) and nodes the workload marks ``folded`` (QDQ casts and
weight decodes) cost nothing. Control flow and unknown-domain ops without MACs are refused.

*MAC nodes* run on the array as the workload's GEMMs, ``gemm_batch`` x (M x K) @ (K x N):
Conv (M = output pixels, N = filters per group, K = window, one GEMM per group: a
depthwise conv is C GEMMs with N = 1, as SCALE-Sim splits it), ConvTranspose (each input
pixel times a K x (C_out/g * k_h * k_w) weight block; the overlapping outputs are
accumulated in the ofmap buffer: one read-modify-write and one vector add per partial
output), Gemm, MatMul. A batched MatMul whose weight is shared by every batch entry (a
transformer's linear layers) is one GEMM of batch x M rows; an activation x activation
MatMul (attention) is ``gemm_batch`` GEMMs with both operands streamed from the buffers.

1. Cycles: per GEMM exactly SCALE-Sim v3's count for the dataflow (systolic_map), times
   ``gemm_batch``.
2. Operand accesses (array <-> buffers) as SCALE-Sim counts them (systolic_map), at the
   operands' precision, in buffer words; ws/is also read back partial sums (32-bit).
3. DRAM traffic (buffers <-> DRAM), by the loop order of the dataflow: the operand that is
   re-streamed once per outer fold (os: A per column fold or B per row fold, whichever order
   moves fewer bytes; ws: A per column fold; is: B per column fold) is fetched once if it
   fits in its buffer and re-fetched for the missing fraction ``clip(1 - usable / bytes)``
   otherwise; the other operand's tile is reused across the inner folds when it fits, with
   the same rule. ws/is partial-sum tiles that do not fit the ofmap buffer spill to DRAM
   (written and read back once per extra row fold). ``usable`` = capacity x
   ``buffers.usable_fraction`` (0.5: double-buffered, half the buffer is being refilled).
4. Activations between layers (``buffers.activations = "on-chip"``): a node's input is
   still on chip to the extent the previous node's output fit in the ofmap buffer
   (``min(1, usable / bytes)``; the ifmap and ofmap buffers swap roles, so no copy), and its
   output goes to DRAM only for the part that does not fit. Producer and consumer are
   assumed adjacent (optimistic for skip connections). The first costed node reads the
   model's input from DRAM and the last writes its output there. ``"dram"``: every layer
   reads its inputs from and writes its outputs to DRAM, as SCALE-Sim does.
5. Weights across inferences: when every weight of the model fits in the filter buffer and
   the buffer keeps its contents between inferences (MRAM always: non-volatile; SRAM unless
   ``buffers.power_gating = "idle-sram"`` gates it off between inferences), the weights stay
   resident and cost no DRAM reads per inference. Otherwise every layer fetches its weights.

*Other nodes* (activations, pooling, normalisation, softmax, element-wise, data movement)
run on a vector unit of ``vector.lanes`` lanes: inputs from the ifmap buffer, constants
from the filter buffer, outputs to the ofmap buffer, DRAM by the residency rules above;
each non-MAC op is one lane slot, transcendental ones (div, exp, log, sqrt, pow, tanh,
erf) ``vector.transcendental_cost`` slots. Bias adds of MAC nodes run there too. With
``vector.fusion = "elementwise"`` (default) an element-wise op reading exactly the output of
the node before it, in a chain that starts at a MAC node (Conv -> BatchNormalization -> Relu,
MatMul -> Add -> Gelu), runs in the MAC node's output path, as accelerators apply
activations and requantisation on the way out of the array: no buffer or DRAM round trip,
its lane slots overlap the MAC node's array time, and the MAC node writes the chain's last
output (at its precision: a QDQ graph's int8). Producer and consumer are taken to be
adjacent in topological order (optimistic when the raw MAC output has other readers).

Precision follows the graph: MAC energy, PE and vector-unit area and operand bytes use the
precision of each node's operands (int4 / int8 / fp16 / fp32), read from the workload's
byte columns (``#quant<bits=..>`` and quantised QDQ graphs change them): activation bits
from the input bytes where the operand's element count is known (Gemm, MatMul), weight bits
from the graph's weights (the class holding most weight elements; a node whose own weights
are stored at >= 28 bits is fp32); a Conv's activations are taken at its weights' precision.

Time: every unit's busy time per node; units overlap (double-buffered) and the node takes
the longest: array cycles / clock; vector slots / (lanes x clock); each buffer (reads x
max(read latency, 1 cycle) + writes x max(write latency, 1 cycle)) / banks; DRAM bytes /
bandwidth.

Energy: MACs x MAC energy of their precision; PE registers: the operand bits that move
between PEs per MAC (os: activation + weight; ws: activation + 32-bit partial sum; is:
weight + partial sum) x register energy per bit; vector ops x per-op energy; buffers:
accesses x NVSim energy per access, and leakage x node latency; DRAM bytes x 8 x energy/bit.
With ``operation.inferences_per_s`` the chip idles between inferences: SRAM buffers leak
during the idle time unless power-gated; MRAM buffers are gated (no leakage, no lost state).
That idle energy is attributed to the nodes in proportion to their latency. Logic (PE
array, vector unit) leakage is not modelled: no cited figure.

Area: PE array (rows x cols multipliers and 32-bit adders, Aladdin 40 nm), vector unit
(lanes x the same), the three buffers (NVSim, with their periphery). Chip-level periphery
(control, DMA, I/O) is not modelled.

Node: MAC, register and vector energies are 45/40 nm figures scaled to ``array.node_nm``
by Stillmaker & Baas; buffer figures come from NVSim at 28 nm and are scaled the same way
(energy and leakage by the energy factor, area by the area factor; latencies are kept).

Modules: this one (schema, targets, the Estimate), systolic_map (SCALE-Sim's mapping and
cycles), systolic_traffic (the per-node arithmetic above), systolic_data (NVSim buffer tables,
Stillmaker & Baas scaling); data in data/devices/systolic-edge.toml, data/nvsim_buffers/ and
the ``[buffer_array]`` sections of data/tech/*.toml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .support import check_supported
from . import systolic_map as smap
from .errors import TargetError
from .estimate import Estimate
from .systolic_data import NodeScaling, buffer_spec, buffer_table, capacity_range_text, word_widths
from .systolic_traffic import BUFFERS, PRECISIONS, busy_times, traffic
from .target import MAX_COUNT, Field, Target
from .techlib import Param, TechLibError, library
from .units import format_capacity

FAMILY = "systolic"
# short --set spellings (`--set array=128x128 --set dataflow=ws`); honoured once target.py
# looks a family's SET_ALIASES up before its schema
SET_ALIASES = {"array": "array.size", "dataflow": "array.dataflow"}
ROADMAPS = {"lop": "LOP", "lstp": "LSTP"}


def _buffer_schema(role: str, what: str) -> dict[str, Field]:
    return {
        "technology": Field("str", f"memory technology of the {role} buffer ({what}); a data/tech/ file with a "
                                   "[buffer_array] section: sram, stt-mram, sot-mram, vgsot-mram", required=True),
        "capacity": Field("capacity", f"{role} buffer capacity, e.g. '256KiB'", required=True, unit="B"),
        "word_bits": Field("int", "bits per buffer access: a tabulated NVSim word width (64, 256 or 1024)",
                           default=256),
        "banks": Field("int", "banks serving one access each at a time (default: the device's)"),
    }


SCHEMA: dict[str, dict[str, Field]] = {
    "array": {
        "device": Field("str", "the accelerator's compute data (data/devices/)", default="systolic-edge"),
        "rows": Field("int", "PE rows (default: the device's)"),
        "cols": Field("int", "PE columns (default: the device's)"),
        "size": Field("str", "rows x cols in one value, e.g. '128x128' (overrides rows and cols)"),
        "dataflow": Field("choice", "os (output-), ws (weight-) or is (input-stationary)", default="os",
                          choices=smap.DATAFLOWS),
        "clock_hz": Field("float", "array clock (default: the device's)", unit="Hz"),
        "node_nm": Field("float", "process node of logic and buffers (7-130 nm, Stillmaker & Baas scaling)",
                         required=True, unit="nm"),
    },
    "ifmap_buffer": _buffer_schema("ifmap", "input activations"),
    "filter_buffer": _buffer_schema("filter", "weights"),
    "ofmap_buffer": _buffer_schema("ofmap", "outputs and partial sums"),
    "buffers": {
        "roadmap": Field("choice", "NVSim device roadmap of the buffer arrays: lop (low operating power) or lstp "
                                   "(low standby power)", default="lop", choices=tuple(ROADMAPS)),
        "power_gating": Field("choice", "'idle-sram': power-gate SRAM buffers between inferences (no leakage, "
                                        "contents lost); 'off': SRAM leaks while idle. MRAM is always gated",
                              default="off", choices=("off", "idle-sram")),
        "activations": Field("choice", "'on-chip': layer outputs stay in the ofmap buffer for the next layer as "
                                       "far as they fit; 'dram': every layer goes through DRAM (as SCALE-Sim)",
                             default="on-chip", choices=("on-chip", "dram")),
        "usable_fraction": Field("float", "fraction of a buffer holding reusable operands (0.5: double-buffered)",
                                 default=0.5, maximum=1.0),
    },
    "vector": {
        "lanes": Field("int", "vector-unit lanes for non-MAC ops (default: the device's)"),
        "transcendental_cost": Field("float", "lane slots (and multiply+add energies) per exp/div/... "
                                              "(default: the device's)"),
        "fusion": Field("choice", "'elementwise': an element-wise op right after a MAC node runs in its output "
                                  "path (no buffer or DRAM round trip); 'none': every node on its own",
                        default="elementwise", choices=("elementwise", "none")),
    },
    "dram": {
        "technology": Field("str", "off-chip memory technology (data/tech/), for energy per bit", default="dram"),
        "bandwidth_bytes_per_s": Field("float", "DRAM bandwidth (default: the device's)", unit="B/s"),
    },
    "operation": {
        "inferences_per_s": Field("float", "required inference rate; the chip idles between inferences "
                                           "(default: back to back)", unit="1/s"),
    },
}



@dataclass
class Buffer:
    """One on-chip buffer resolved against the technology library (SI units, at the target's node)."""

    role: str
    technology: str
    capacity: int
    word_bytes: int
    banks: int
    volatile: bool
    read_energy_j: float
    write_energy_j: float
    read_latency_s: float
    write_latency_s: float
    leakage_w: float
    area_mm2: float
    note: str

    def info(self) -> dict:
        return {"technology": self.technology, "capacity_bytes": self.capacity, "word_bits": self.word_bytes * 8,
                "banks": self.banks, "area_mm2": self.area_mm2, "leakage_w": self.leakage_w,
                "read_energy_j": self.read_energy_j, "write_energy_j": self.write_energy_j,
                "read_latency_s": self.read_latency_s, "write_latency_s": self.write_latency_s,
                "volatile": self.volatile}


@dataclass
class Config:
    device: str
    rows: int
    cols: int
    dataflow: str
    clock_hz: float
    node_nm: float
    buffers: dict[str, Buffer]
    roadmap: str
    power_gating: str
    activations: str
    usable_fraction: float
    lanes: int
    transcendental_cost: float
    fusion: str
    dram_bandwidth: float
    dram_energy_per_bit: float
    inferences_per_s: float | None
    psum_bytes: float
    mac_energy_j: np.ndarray          # per precision class, at the node
    add_energy_j: np.ndarray          # vector-unit add per class
    mult_energy_j: np.ndarray         # vector-unit multiply per class
    register_energy_j_per_bit: float
    mult_area_mm2: np.ndarray         # per class, at the node
    adder_area_mm2: float
    params: list[Param] = field(default_factory=list)

    def info(self) -> dict:
        return {"device": self.device, "array": f"{self.rows}x{self.cols}", "dataflow": self.dataflow,
                "clock_hz": self.clock_hz, "node_nm": self.node_nm, "roadmap": self.roadmap,
                "power_gating": self.power_gating, "activations": self.activations,
                "buffers": {r: b.info() for r, b in self.buffers.items()}}


# ------------------------------------------------------------------ resolving a target
def parse_size(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(text))
    if not m:
        raise TargetError(f"array.size = {text!r}: expected ROWSxCOLS, e.g. '128x128'", where=where)
    rows, cols = (int(g) if len(g) <= 9 else MAX_COUNT + 1 for g in m.groups())  # 5000 digits: no int()
    if rows <= 0 or cols <= 0:
        raise TargetError(f"array.size = {text!r}: the array needs at least one row and one column", where=where,
                          hint="e.g. --set array.size=32x32")
    if max(rows, cols) > MAX_COUNT:
        raise TargetError(f"array.size = {text[:40]!r}: at most {MAX_COUNT} rows and columns", where=where)
    return rows, cols


def resolve(target: Target) -> Config:
    """The target's values with defaults from the library, scaled to its node (cached)."""
    if "config" in target.cache:
        return target.cache["config"]
    lib = library()
    where = target.source
    with target.library_errors():
        dev = lib.device(target["array.device"])
        dram = lib.tech(target["dram.technology"])
        dram_bit = dram.param("access.lpddr4_energy_per_64bit_j")
    params: list[Param] = []

    def knob(key: str, default_param: str | None = None):
        value, origin = target[key], target.origins.get(key, "default")
        if value is None and default_param is not None:
            p = dev.param(default_param)
            params.append(Param(key, p.value, p.kind, f"= {dev.name} {default_param}: {p.note}", p.origin,
                                p.formula))
            return p.value
        kind = "--set" if origin == "--set" else ("default" if origin == "default" else "target")
        note = {"--set": f"--set {key}={target.describe(key)}", "default": "family default"}.get(kind, origin)
        params.append(Param(key, "(not set)" if value is None else value, kind, note, where))
        return value

    knob("array.device")
    rows, cols = int(knob("array.rows", "array.rows")), int(knob("array.cols", "array.cols"))
    if target["array.size"] is not None:
        rows, cols = parse_size(knob("array.size"), target.where("array.size"))
    dataflow = knob("array.dataflow")
    clock = knob("array.clock_hz", "array.clock_hz")
    node = float(knob("array.node_nm"))
    scaling = NodeScaling.from_device(dev)
    lo, hi = scaling.node_range
    if not lo <= node <= hi:
        raise TargetError(f"array.node_nm = {node:g}: outside the Stillmaker & Baas scaling table ({lo}-{hi} nm)",
                          where=where, hint=f"choose a node between {lo} and {hi} nm")
    roadmap = ROADMAPS[knob("buffers.roadmap")]
    gating, activations = knob("buffers.power_gating"), knob("buffers.activations")
    usable = knob("buffers.usable_fraction")
    lanes = int(knob("vector.lanes", "vector.lanes"))
    tcost = knob("vector.transcendental_cost", "vector.transcendental_cost")
    fusion = knob("vector.fusion")
    knob("dram.technology")
    bandwidth = knob("dram.bandwidth_bytes_per_s", "dram.bandwidth_bytes_per_s")
    ips = knob("operation.inferences_per_s")
    default_banks = int(dev["array.buffer_banks"])

    buffers = {}
    for role in BUFFERS:
        sec = f"{role}_buffer"
        tech_name = knob(f"{sec}.technology")
        capacity = int(knob(f"{sec}.capacity"))
        word_bits = int(knob(f"{sec}.word_bits"))
        banks = int(knob(f"{sec}.banks")) if target[f"{sec}.banks"] is not None else default_banks
        buffers[role] = _resolve_buffer(role, tech_name, capacity, word_bits, banks, roadmap, node, scaling, where,
                                        params)

    e45, e40 = scaling.energy(node, 45), scaling.energy(node, 40)
    a40 = scaling.area(node, 40)
    params.append(Param("scaling.energy_45nm_to_node", e45, "derived",
                        f"Stillmaker & Baas energy factor 45 -> {node:g} nm at {dev['node_scaling.vdd_v']} V "
                        "(the polynomials of the device's node_scaling section, linear in node between table nodes)",
                        str(dev.path)))
    params.append(Param("scaling.energy_40nm_to_node", e40, "derived", f"the same, 40 -> {node:g} nm", str(dev.path)))
    params.append(Param("scaling.area_40nm_to_node", a40, "derived",
                        f"Stillmaker & Baas area factor 40 -> {node:g} nm (45 nm row, linear in node)",
                        str(dev.path)))
    mac45 = np.array([dev[f"mac.{p}_mac_45nm_j"] for p in PRECISIONS])
    add45 = np.array([dev["mac.int8_add_45nm_j"], dev["mac.int8_add_45nm_j"], dev["mac.fp16_add_45nm_j"],
                      dev["mac.fp32_add_45nm_j"]])
    mult45 = np.array([dev["mac.int8_mult_45nm_j"] * 0.25, dev["mac.int8_mult_45nm_j"], dev["mac.fp16_mult_45nm_j"],
                       dev["mac.fp32_mult_45nm_j"]])
    mult_bits = np.array([4.0, 8.0, dev["area.fp16_mantissa_bits"], dev["area.fp32_mantissa_bits"]])
    mult_area = dev["area.mult32_40nm_um2"] * (mult_bits / 32.0) ** 2 * a40 * 1e-6
    params.extend(_prefixed(dev.param(k), dev.name) for k in ("array.buffer_banks", "array.psum_bytes"))
    for key in ("mac", "area", "vector", "node_scaling"):
        params.extend(_prefixed(p, dev.name) for p in dev.params.values() if p.key.startswith(key + "."))
    params.append(_prefixed(dram_bit, dram.name))

    cfg = Config(dev.name, rows, cols, dataflow, clock, node, buffers, roadmap, gating, activations, usable, lanes,
                 tcost, fusion, bandwidth, dram_bit.value / 64.0, ips, dev["array.psum_bytes"], mac45 * e45,
                 add45 * e45, mult45 * e45, dev["mac.register_read_40nm_j_per_bit"] * e40, mult_area,
                 dev["area.adder32_40nm_um2"] * a40 * 1e-6, params)
    target.cache["config"] = cfg
    return cfg


def _resolve_buffer(role, tech_name, capacity, word_bits, banks, roadmap, node, scaling, where, params) -> Buffer:
    sec = f"{role}_buffer"
    if word_bits % 8:
        raise TargetError(f"{sec}.word_bits = {word_bits}: must be a whole number of bytes", where=where)
    if capacity < word_bits // 8:
        raise TargetError(f"{sec}.capacity = {capacity} B is smaller than one {word_bits}-bit word", where=where,
                          hint="a buffer holds at least one word; give e.g. capacity = '64KiB'")
    try:
        spec = buffer_spec(tech_name)
        widths = word_widths(spec, roadmap)
        if not widths:
            raise TargetError(f"{sec}.technology = '{tech_name}': no {roadmap} rows in {spec.table.name}",
                              where=where, hint="rerun nvsim_buffers/run_nvsim_buffers.py, or choose another "
                                                "buffers.roadmap")
        if word_bits // 8 not in widths:
            raise TargetError(f"{sec}.word_bits = {word_bits}: no NVSim buffer data for {word_bits}-bit words",
                              where=where, hint=f"tabulated: {', '.join(str(w * 8) for w in widths)} bit")
        table = buffer_table(tech_name, roadmap, word_bits // 8)
    except TechLibError as e:
        raise TargetError(f"{sec}.technology = '{tech_name}': {e.message}", where=where, hint=e.hint) from None
    if not table.covers(capacity):
        raise TargetError(f"{sec}.capacity = {format_capacity(capacity)}: no {tech_name} buffer data at that "
                          f"capacity (the NVSim table covers {capacity_range_text(table)})", where=where,
                          hint=f"choose a capacity between {capacity_range_text(table)}")
    point = table.at(capacity)
    tech = library().tech(tech_name)
    volatile = bool(tech.settings.get("buffer_array.volatile", True))
    e, a = scaling.energy(node, spec.node_nm), scaling.area(node, spec.node_nm)
    note = f"{point.note}, {roadmap}, {word_bits}-bit words, at {spec.node_nm:g} nm"
    for name in ("area_mm2", "read_latency_s", "write_latency_s", "read_energy_j", "write_energy_j", "leakage_w"):
        params.append(Param(f"{sec}.array.{name}", getattr(point, name), "source", note, table.origin))
    params.append(Param(f"{sec}.energy_scale", e, "derived",
                        f"Stillmaker & Baas energy (and leakage) factor {spec.node_nm:g} -> {node:g} nm; latencies "
                        "are not scaled", spec.origin))
    params.append(Param(f"{sec}.area_scale", a, "derived", f"Stillmaker & Baas area factor {spec.node_nm:g} -> "
                        f"{node:g} nm", spec.origin))
    return Buffer(role, tech_name, capacity, word_bits // 8, banks, volatile, point.read_energy_j * e,
                  point.write_energy_j * e, point.read_latency_s, point.write_latency_s, point.leakage_w * e,
                  point.area_mm2 * a, note)


def _prefixed(p: Param, owner: str) -> Param:
    return Param(f"{owner}:{p.key}", p.value, p.kind, p.note, p.origin, p.formula)


def parameters(target: Target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
    return resolve(target).params


# ------------------------------------------------------------------ the model

def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    t = traffic(workload, cfg)
    busy, latency = busy_times(cfg, t)
    bufs = cfg.buffers
    leak_w = sum(b.leakage_w for b in bufs.values())
    energy = {
        "mac": t["macs"] * cfg.mac_energy_j[t["mac_class"]],
        "pe_registers": t["macs"] * t["moved_bits"] * cfg.register_energy_j_per_bit,
        "vector": t["vector_j"],
    }
    for role, b in bufs.items():
        energy[f"{role}_read"] = t[f"{role}_reads"] * b.read_energy_j
        energy[f"{role}_write"] = t[f"{role}_writes"] * b.write_energy_j
    energy["buffer_leakage"] = latency * leak_w
    total_latency = float(latency.sum())
    notes, info = [], cfg.info()
    if cfg.inferences_per_s:
        period = batch / cfg.inferences_per_s
        idle = max(0.0, period - total_latency)
        idle_w = sum(b.leakage_w for b in bufs.values() if b.volatile and cfg.power_gating == "off")
        share = latency / total_latency if total_latency > 0 else np.zeros_like(latency)
        energy["idle_leakage"] = share * idle * idle_w
        meets = total_latency <= period
        info.update(inferences_per_s_required=cfg.inferences_per_s, meets_rate=meets, idle_s=idle,
                    idle_leakage_w=idle_w)
        notes.append(f"required {cfg.inferences_per_s:g} inferences/s: "
                     + (f"met; idle {idle / batch * 1e3:.3g} ms per inference, buffers leaking {idle_w * 1e3:.3g} mW "
                        "while idle" if meets else
                        f"NOT met (needs {total_latency / batch * 1e3:.3g} ms per inference, "
                        f"the period is {1e3 / cfg.inferences_per_s:.3g} ms)"))
    energy["dram"] = (t["dram_read"] + t["dram_write"]) * 8.0 * cfg.dram_energy_per_bit
    area = {"pe_array": cfg.rows * cfg.cols * (cfg.mult_area_mm2[t["graph_class"]] + cfg.adder_area_mm2),
            "vector_unit": cfg.lanes * (cfg.mult_area_mm2[t["graph_class"]] + cfg.adder_area_mm2),
            **{f"{r}_buffer": b.area_mm2 for r, b in bufs.items()}}
    work = t["work"]
    units = ("array", "vector", "ifmap", "filter", "ofmap", "dram")
    bound = np.array(units, dtype=object)[np.argmax(np.stack([busy[u] for u in units]), axis=0)]
    notes.append("; ".join(f"{int(np.sum(work & (bound == u)))} {u}-bound" for u in units
                           if np.any(work & (bound == u))) + f" (of {int(work.sum())} costed nodes)")
    if t["fused"].any():
        notes.append(f"{int(t['fused'].sum())} element-wise nodes run in their MAC producer's output path")
    notes.append(f"precision: {PRECISIONS[t['graph_class']]} MACs (by the graph's byte columns); weights "
                 + ("resident in the filter buffer across inferences" if t["resident"] else
                    "fetched from DRAM every inference"))
    info.update(mac_precision=PRECISIONS[t["graph_class"]], weights_resident=bool(t["resident"]),
                array_utilization=float(t["macs"].sum() / max(1.0, t["cycles"].sum() * cfg.rows * cfg.cols)))
    assumptions = [f"{p.key} = {_fmt(p.value)}: {p.note}" for p in cfg.params if p.kind == "assumed"]
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=list(workload.names),
        ops=list(workload.ops), macs=t["macs"], node_latency=latency, latency=busy, energy=energy, area=area,
        batch=batch, notes=notes, assumptions=assumptions, info=info, target_file=target.source,
        events={"array_cycles": t["cycles"],
                **{f"{r}_{k}": t[f"{r}_{k}"] for r in BUFFERS for k in ("reads", "writes")},
                "dram_read_bytes": t["dram_read"], "dram_write_bytes": t["dram_write"]},
    )


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
