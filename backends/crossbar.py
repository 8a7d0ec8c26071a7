"""The ``crossbar`` family: RRAM compute-in-memory chips, after DNN+NeuroSim and ISAAC
(shared/reference/seeds.md, papers 7 and 11; parameters in shared/reference/params.md §5).

Organisation: ``tiles`` x ``pes_per_tile`` processing elements x ``arrays_per_pe`` crossbar
arrays of ``rows`` x ``cols`` cells of ``cell_bits`` bits. Each tile has an eDRAM buffer, a
quarter of a router (ISAAC's router is shared by four tiles) and digital units for the
non-MAC ops. Keys, defaults and their sources: ``data/families/crossbar.toml``; the model's
own numbers (NeuroSim V1.3 / V2.1 parameters and SAR-ADC model, ISAAC components, Horowitz +
SB17 digital figures, the assumed organisation, activity and mesh) are in ``data/crossbar/``.
:func:`resolve` reads every one, so ``nvmc explain`` lists them with their sources.

Mapping (weight stationary, layer by layer, as NeuroSim's non-pipelined mode)
==============================================================================

A node with a constant weight (Conv, Gemm, MatMul with a constant operand, an nvmc op whose
MAC rule the workload knows, like NEON's ``nvmc.NeonApprox`` nets, ...) is the
workload's ``gemm_batch`` x (M x N x K) GEMM. Its weight is unrolled (im2col): each of its
``copies`` (conv groups; 1 when a batched MatMul shares one weight) is a K x N matrix whose
rows are array rows and whose columns take ``S = ceil(weight_bits / cell_bits)`` cells each
(bit slicing; twice that with ``signed = "differential"``; ``"offset"`` stores
offset-binary weights and spends one reference column per array, NeuroSim's dummy column).
A model quantised below ``weight_bits`` keeps its own bits (the workload's ``weight_bits``
column, rounded). A copy takes ``ceil(K / rows) x ceil(N S / cols)`` arrays; small copies
(depthwise convolutions) are packed block-diagonally, ``min(rows // K, cols // (N S))`` to
an array. The chip holds every layer's weights at once; ``chip.tiles`` unset sizes the chip
to fit (NeuroSim's floorplan), a given count that is too small is a result, ``ok=False``.
Spare arrays replicate layers (``mapping.replicate``): replica counts minimise the summed
layer latency for the arrays left (a Lagrange split: r ~ sqrt(latency / arrays), floored).

Per layer, each of the V = ``gemm_batch x M / copies`` input vectors is applied bit-serially
(1-bit DACs, ``input_bits`` cycles, as ISAAC and NeuroSim). A cycle reads every array of
the layer at once for ``read_pulse_s``, then each ADC converts its ``cols_per_adc`` columns
one after another (NeuroSim's column mux): ``t_step = t_read + cols_per_adc x t_conv``.
Replicas split the vectors: the layer takes ``ceil(V / r) x input_bits x t_step``.

* ADC conversions = V x input_bits x (copies x N x S + reference columns); energy per
  conversion from NeuroSim's SAR model (power = (a bits + b) + c R_col^-k, over bits + 1
  cycles of 1 ns, R_col the column's resistance with ``input_one_fraction`` of its rows
  driven, cells at the mean level) or ISAAC's ADC table (``periphery.adc = "isaac"``).
* Cells (component "crossbar"): with NeuroSim's SAR model, its c R_col^-k term, the
  current the column sinks while converted (NeuroSim counts only bit-line charging as
  array energy); with ISAAC's ADC, V_read^2 x G_mean x t_read per driven cell.
* DAC drives = V x input_bits x copies x K x input_one_fraction (ISAAC 1-bit DAC energy).
* Shift-and-add: one op per conversion, plus (row tiles - 1) adds per output to
  accumulate partial sums across arrays (ISAAC shift-and-add energy).
* Buffer (eDRAM): every vector's K x input_bits bits are read, the N outputs written at
  input_bits; interconnect (router): the outputs travel once to the next layer.

Other nodes, by the workload's ``kind`` (ir/kinds.py): views cost nothing; the others read
and write their tensors in the buffer at ``input_bits`` per element (elements from the
tensors' bytes and the workload's ``act_bits`` / ``out_bits``) and run their non-MAC ops on
the digital units, one lane slot per simple op (add, mul, cmp, other; add energy Horowitz's
32-bit add, mul his int8 multiply) and onnx-tool's MAC equivalents per transcendental one
(div, exp, log, sqrt, pow, tanh, erf; each slot an int8 MAC), Horowitz's 45 nm energies
scaled by SB17. A MAC node whose operands both change at run time (attention's Q K^T and
A V) runs on the digital MAC lanes (``mapping.dynamic_matmul = "digital"``) or is written
into spare arrays before use (``"reprogram"``: cells x write energy, rows x write pulse, one
write per cell per inference against the endurance) and then read as a crossbar layer.

Where the digital units sit (``digital.placement``): ``tile`` (default) puts them beside
every tile's arrays, as ISAAC, at no extra data movement; ``chip`` makes them one block at
the chip's edge with the same lanes, so every digital node's operands cross the tile mesh
to it and back (mean hops ``mesh.hops_per_side x sqrt(tiles) + mesh.hops_into_block``,
router energy per bit and hop) through one link of ``digital.link_bits`` per cycle, which
bounds the time. NEON's nets (``PERIPHERY_NETS``) need no digital unit: their biases ride
on an always-driven row and their ReLUs are a sign test on the shift-and-add output,
costed as shift-and-add ops.

Time: busy time by unit; a node takes ``max(crossbar + adc, buffer, interconnect,
digital) + write``. Energy by component: crossbar (cells), adc, dac, shift_add, buffer,
interconnect, digital, write (counted here, priced by backends/family.py). Area by
component: the arrays' cells, ADCs, DACs, shift-and-add units of every array on the chip,
eDRAM buffers, routers and digital units of every tile. CMOS leakage is not modelled (the
RRAM cells do not leak). Each MAC node is costed at max(its weight bits, input_bits).

Latency and the node: a crossbar layer's time is set by the read pulse (a property of the
RRAM device, NeuroSim's readPulseWidth) and the SAR conversions, whose latency NeuroSim
gives as (bits + 1) x 1 ns at every technode (SarADC.cpp CalculateLatency has no technode
term, unlike its power fit); the periphery clock is the preset's (NeuroSim's 1 GHz at every
node). So energy and area scale with ``chip.node_nm`` and latency does not; every estimate
says in a note which share of its latency these parts fix.

Training (``run.mode = "train"``): :func:`crossbar_train.training` turns the forward pass's
counts into a training step's (backward, weight gradients, weight updates).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import partial
from types import SimpleNamespace

import numpy as np

from nvmc.ir.dialect import NVMC_OPS

from .crossbar_train import Forward, Layers, array_read, combine, feedback_arrays, training
from .errors import TargetError
from .family import KIND, SIMPLE_KINDS, TRANSCENDENTAL_KINDS, Counts, FamilySpec, NotFitting, Params
from .support import op_mask
from .target import Target
from .techlib import DATA_DIR, TechLibError, load_data_file

FAMILY = "crossbar"
SPEC = FamilySpec.load(FAMILY)
SCHEMA = SPEC.schema
# Nets whose per-element ReLU and bias run in the arrays' periphery (NEON's simplified
# microarchitecture, paper 11): the bias as one always-driven row, the ReLU as a sign test
# on the shift-and-add output; costed as shift-and-add ops, not on the digital units.
# Which ops are such nets is the ops' own trait (nvmc.ir.dialect: nvmc.NeonApprox).
PERIPHERY_NETS = frozenset(f"nvmc.{op.name}" for op in NVMC_OPS.values() if "relu-net" in op.traits)


def resolve(p: Params | Target) -> SimpleNamespace:
    """Every number the model reads, in the order ``nvmc explain`` lists them, as one
    namespace in SI units (cached). A Target is resolved through the family's Params."""
    if isinstance(p, Target):
        p = SPEC.params(p)
    if "chip" in p.cache:
        return p.cache["chip"]
    cmos, isaac, ns13, dflt = (partial(p.file, "crossbar", name) for name in ("cmos", "isaac", "neurosim-v13",
                                                                                "defaults"))
    node, bits, adc = int(p["chip.node_nm"]), int(p["periphery.adc_bits"]), p["periphery.adc"]
    try:
        e_node, a_node = cmos(f"scaling.energy_{node}nm"), cmos(f"scaling.area_{node}nm")
        sar_a, sar_b, sar_c, sar_k = (ns13(f"sar_adc.{k}_{node}nm" + ("_w" if k in "ab" else "")) for k in "abck")
    except TechLibError:
        fits = load_data_file(DATA_DIR / "crossbar" / "neurosim-v13.toml").params
        nodes = [m.group(1) for k in fits if (m := re.fullmatch(r"sar_adc\.a_(\d+)nm_w", k))]
        raise TargetError(f"chip.node_nm = {node}: the crossbar data covers {', '.join(nodes)} nm (NeuroSim's "
                          "SAR-ADC fits and SB17 scaling)", where=p.target.where("chip.node_nm")) from None
    rows, cols, cols_per_adc = p["array.rows"], p["array.cols"], p["periphery.cols_per_adc"]
    if cols_per_adc > cols:
        raise TargetError(f"periphery.cols_per_adc = {cols_per_adc} exceeds array.cols = {cols}",
                          where=p.target.where("periphery.cols_per_adc"))
    isaac_node = int(isaac("node.node_nm"))
    e_isaac = p.derive("scale.isaac_energy", e_node / cmos(f"scaling.energy_{isaac_node}nm"),
                       f"scaling.energy_{node}nm / scaling.energy_{isaac_node}nm", "SB17 energy at the node / at "
                       "ISAAC's node: scales ISAAC's component energies")
    a_isaac = p.derive("scale.isaac_area", a_node / cmos(f"scaling.area_{isaac_node}nm"),
                       f"scaling.area_{node}nm / scaling.area_{isaac_node}nm", "SB17 area at the node / at ISAAC's "
                       "node: scales ISAAC's component areas")
    g_on = 1.0 / p["device.r_on_ohm"]
    g_off = g_on / p["device.on_off_ratio"]
    g_mean = g_off + dflt("activity.mean_level_fraction") * (g_on - g_off)
    v_read, t_read = p["device.read_voltage_v"], p["device.read_pulse_s"]
    sar_cycle, vref = ns13("sar_adc.cycle_s"), ns13("sar_adc.reference_read_voltage_v")
    isaac_adc_j, isaac_rate = isaac(f"adc.energy_{bits}b_j") * e_isaac, isaac("adc.sample_rate_hz")
    t_conv = p.derive("array.t_conv_s", 1.0 / isaac_rate if adc == "isaac" else (bits + 1) * sar_cycle,
                      "1 / adc.sample_rate_hz" if adc == "isaac" else "(adc_bits + 1) x sar_adc.cycle_s",
                      "ADC conversion time (NeuroSim's SAR latency is the same at every node; ISAAC's ADC rate is "
                      "given at its node only)")
    t_step = p.derive("array.t_step_s", t_read + cols_per_adc * t_conv, "read_pulse_s + cols_per_adc x t_conv_s",
                      "one input-bit cycle: the read pulse, then each ADC converts its columns in turn")
    cell_bits = p["array.cell_bits"]
    lossless = p.derive("array.lossless_adc_bits", math.ceil(math.log2(rows * (2 ** cell_bits - 1) + 1)),
                        "ceil(log2(rows x (2^cell_bits - 1) + 1))", "the ADC bits that resolve every column sum of "
                        "one input bit")
    mac_j = cmos("ops_45nm.int8_mac_j") * e_node
    slot_j = {k: cmos("ops_45nm.int32_add_j") * e_node for k in SIMPLE_KINDS}
    slot_j["mul"] = cmos("ops_45nm.int8_mult_j") * e_node
    slot_j.update({k: mac_j for k in TRANSCENDENTAL_KINDS})
    slots = {**{k: 1 for k in SIMPLE_KINDS}, **{k: cmos(f"ops_45nm.{k}_mac_equivalents") for k in TRANSCENDENTAL_KINDS}}
    ops_cycle, macs_cycle = dflt("organisation.digital_ops_per_cycle"), dflt("organisation.digital_macs_per_cycle")
    digital_a = p.derive("digital.area_per_tile_um2", (ops_cycle * cmos("area_40nm.adder32_um2") + macs_cycle *
                                                       cmos("area_40nm.mac8_um2")) * a_node,
                         f"(digital_ops_per_cycle x area_40nm.adder32_um2 + digital_macs_per_cycle x "
                         f"area_40nm.mac8_um2) x scaling.area_{node}nm", "a 32-bit adder per op lane and an 8-bit MAC "
                         "per MAC lane (Aladdin, 40 nm taken as 45 nm), scaled by SB17 area to the node")
    cell = "cell_area_1t1r_f2" if p["array.cell"] == "1t1r" else "cell_area_crossbar_f2"
    placement = p["digital.placement"]
    cfg = SimpleNamespace(
        node_nm=node, clock_hz=p["chip.clock_hz"], tiles=p.get("chip.tiles"),
        pes_per_tile=p["chip.pes_per_tile"], arrays_per_pe=p["chip.arrays_per_pe"],
        arrays_per_tile=p["chip.pes_per_tile"] * p["chip.arrays_per_pe"], rows=rows, cols=cols, cell_bits=cell_bits,
        cell_area_f2=ns13(f"device.{cell}"), differential=p["array.signed"] == "differential", v_read=v_read,
        t_read=t_read, g_mean=g_mean, write_energy=p["device.write_energy_j"], write_pulse=p["device.write_pulse_s"],
        endurance=p["device.endurance_cycles"], adc=adc, adc_bits=bits, cols_per_adc=cols_per_adc, t_conv=t_conv,
        t_step=t_step, sar_cycle=sar_cycle, lossless_adc_bits=lossless,
        adc_j=isaac_adc_j if adc == "isaac" else (sar_a * bits + sar_b) * t_conv, sar_c=sar_c, sar_k=sar_k,
        vref=vref, cell_read_j=v_read ** 2 * g_mean * t_read if adc == "isaac" else 0.0,
        weight_bits=p["precision.weight_bits"], input_bits=p["precision.input_bits"],
        error_bits=p["precision.error_bits"], replicate=p["mapping.replicate"] == "on",
        dynamic=p["mapping.dynamic_matmul"], mode=p["run.mode"], algorithm=p["training.algorithm"],
        update_fraction=p["training.update_fraction"], pulses_per_update=p["training.pulses_per_update"],
        feedback_bits=dflt("training.feedback_bits"), input_one=dflt("activity.input_one_fraction"),
        adc_area_um2=isaac(f"adc.area_{bits}b_um2") * a_isaac,
        dac_energy=isaac("dac.drive_energy_j") * e_isaac, dac_area_um2=isaac("dac.area_um2") * a_isaac,
        sa_energy=isaac("shift_add.op_energy_j") * e_isaac, sa_area_um2=isaac("shift_add.area_um2") * a_isaac,
        edram_bits=isaac("edram.access_bits"), edram_area_um2=isaac("edram.area_um2") * a_isaac,
        edram_bit_energy=isaac("edram.access_energy_j") * e_isaac / isaac("edram.access_bits"),
        router_bits=isaac("router.access_bits"), router_area_um2=isaac("router.area_per_tile_um2") * a_isaac,
        router_bit_energy=isaac("router.access_energy_j") * e_isaac / isaac("router.access_bits"),
        mac_j=mac_j, slot_j=slot_j, slots=slots, ops_per_cycle=ops_cycle, macs_per_cycle=macs_cycle,
        digital_area_um2=digital_a, placement=placement, link_bits=p["digital.link_bits"],
        hops_per_side=dflt("mesh.hops_per_side"), hops_into_block=dflt("mesh.hops_into_block"))
    cfg.info = {"node_nm": node, "array": f"{rows}x{cols}", "cell_bits": cell_bits, "adc": adc, "adc_bits": bits,
                "cols_per_adc": cols_per_adc, "lossless_adc_bits": lossless, "weight_bits": cfg.weight_bits,
                "input_bits": cfg.input_bits, "mode": cfg.mode, "digital_placement": placement,
                **({"digital_link_bits": cfg.link_bits} if placement == "chip" else {}),
                **({"algorithm": cfg.algorithm} if cfg.mode == "train" else {})}
    p.cache["chip"] = cfg
    return cfg


# ---------------------------------------------------------------- the model

def map_layers(workload, cfg) -> Layers:
    """Where each node runs and how many arrays it takes (module doc, "Mapping")."""
    c = workload.columns
    f = np.float64
    n_nodes = len(workload.names)
    params = c["params"].astype(f)
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    is_mac = c["kind"] == KIND["mac"]
    static = is_mac & (params > 0)
    dynamic = is_mac & ~static
    xbar = static | (dynamic & (cfg.dynamic == "reprogram"))
    copies = np.where(static, np.clip(np.floor(params / (gk * gn)), 1.0, gb), gb)
    own_bits = np.rint(np.where(c["weight_bits"] > 0, c["weight_bits"], cfg.weight_bits))
    wbits = np.where(static, np.clip(own_bits, 1.0, cfg.weight_bits), float(cfg.input_bits))
    slices = np.ceil(wbits / cfg.cell_bits) * (2.0 if cfg.differential else 1.0)
    colsw = gn * slices
    row_tiles, col_tiles = np.ceil(gk / cfg.rows), np.ceil(colsw / cfg.cols)
    fits_one = (gk <= cfg.rows) & (colsw <= cfg.cols) & (copies > 1)
    pack = np.where(fits_one, np.maximum(1.0, np.minimum(cfg.rows // gk, cfg.cols // np.maximum(colsw, 1.0))), 1.0)
    arrays = np.where(xbar, np.ceil(copies / pack) * row_tiles * col_tiles, 0.0)
    ref_cols = arrays if not cfg.differential else np.zeros(n_nodes)
    mapped = np.where(xbar, copies * gk * colsw, 0.0)
    out_elems = np.where(is_mac, gb * gm * gn, _elements(c["output_bytes"], c["out_bits"]))
    in_elems = np.where(is_mac, gb * gm * gk, _elements(c["input_bytes"], c["act_bits"]))
    return Layers(xbar, static, dynamic, c["kind"] != KIND["view"], copies, gb * gm / copies, gk, gn, wbits, slices,
                  row_tiles, col_tiles, arrays, ref_cols, mapped, out_elems, in_elems)


def _elements(nbytes: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Elements of tensors of ``nbytes`` bytes at ``bits`` bits each (0 where the bits are unknown)."""
    return np.divide(nbytes * 8.0, bits, out=np.zeros(len(bits)), where=bits > 0)


def replicas(single_latency: np.ndarray, arrays: np.ndarray, vectors: np.ndarray, spare: float) -> np.ndarray:
    """Replica count per layer minimising sum(latency / r) with sum((r - 1) x arrays) <= spare.

    The continuous optimum is r = sqrt(latency / (lambda x arrays)); lambda is found by
    bisection (between every layer at its vector count and every layer at one copy) so that
    the floored counts fit the spare arrays. r never exceeds the layer's vector count (a
    replica needs vectors to work on)."""
    r = np.ones_like(arrays)
    live = (arrays > 0) & (single_latency > 0)
    if spare <= 0 or not live.any():
        return r
    t, a, cap = single_latency[live], arrays[live], np.maximum(vectors[live], 1.0)

    def counts(lam: float) -> np.ndarray:
        return np.maximum(np.minimum(np.floor(np.sqrt(t / (lam * a))), cap), 1.0)

    def fits(lam: float) -> bool:  # integer counts x integer arrays: the dot product is exact
        return float(np.dot(counts(lam) - 1.0, a)) <= spare

    lo, hi = float(np.min(t / (a * cap * cap))) / 2.0, float(np.max(t / a))  # lo: every layer at cap, hi: none
    if fits(lo):
        hi = lo
    while hi / lo > 1.0 + 1e-9:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    r[live] = counts(hi)
    return r


def count(workload, p: Params, batch: int = 1) -> Counts:
    cfg = resolve(p)
    fwd = forward(workload, cfg, batch)
    counts = training(workload, cfg, fwd, batch=batch) if cfg.mode == "train" else fwd.counts
    return summarise(cfg, fwd, counts)


def forward(workload, cfg, batch: int = 1) -> Forward:
    """The inference pass: map the layers, size the chip, count every component (module doc)."""
    f = np.float64
    n_nodes = len(workload.names)
    lay = map_layers(workload, cfg)

    # chip size: every static layer's weights, the largest reprogrammed operand, DFA's feedback arrays
    static_arrays = float(lay.arrays[lay.static].sum())
    dyn_arrays = float(lay.arrays[lay.xbar & lay.dynamic].max(initial=0.0))
    feedback = feedback_arrays(cfg, lay, batch) if cfg.mode == "train" and cfg.algorithm == "dfa" else np.zeros(n_nodes)
    required = static_arrays + dyn_arrays + float(feedback.sum())
    apt = cfg.arrays_per_tile
    tiles = cfg.tiles if cfg.tiles is not None else max(1, math.ceil(required / apt))
    if required > tiles * apt:
        raise NotFitting(f"the weights need {int(required)} arrays of {cfg.rows}x{cfg.cols}; {tiles} tiles hold "
                         f"{tiles * apt} ({cfg.pes_per_tile} PEs x {cfg.arrays_per_pe} arrays per tile)")

    # single-copy latency of each crossbar layer, then replicas for the spare arrays
    act_bits = float(cfg.input_bits)
    read_w = np.where(lay.xbar, lay.copies * lay.n * lay.slices + lay.ref_cols, 0.0)
    drive_w = np.where(lay.xbar, lay.copies * lay.k, 0.0)
    rows_per_array = np.where(lay.xbar, lay.k / np.maximum(lay.row_tiles, 1.0), 0.0)
    single = np.where(lay.xbar, lay.vectors * act_bits * cfg.t_step, 0.0)
    spare = tiles * apt - required if cfg.replicate else 0.0
    r = replicas(single, np.where(lay.static, lay.arrays, 0.0), lay.vectors, spare)
    rd = array_read(cfg, vectors=np.where(lay.xbar, lay.vectors, 0.0), cycles=np.full(n_nodes, act_bits),
                    drives=drive_w, reads=read_w, lines_per_array=rows_per_array,
                    cells=lay.mapped_cells + lay.ref_cols * rows_per_array, r=r)
    accumulate = np.where(lay.xbar, lay.vectors * lay.copies * lay.n * (lay.row_tiles - 1.0), 0.0)

    # non-MAC ops on the digital units (or in the periphery of NEON's nets), run-time products on MAC lanes
    c = workload.columns
    work = lay.work
    nets = op_mask(np.asarray(workload.ops, dtype=object), list(PERIPHERY_NETS))
    simple, heavy = (sum(c[k] * cfg.slots[k] for k in kinds) for kinds in (SIMPLE_KINDS, TRANSCENDENTAL_KINDS))
    slots = np.where(work & ~nets, simple, 0.0) + np.where(work, heavy, 0.0)   # a net's adds and ReLU tests: periphery
    energy = (np.where(work & ~nets, sum(c[k] * cfg.slot_j[k] for k in SIMPLE_KINDS), 0.0)
              + np.where(work, sum(c[k] * cfg.slots[k] * cfg.slot_j[k] for k in TRANSCENDENTAL_KINDS), 0.0))
    ops = (slots, np.divide(energy, slots, out=np.zeros(n_nodes), where=slots > 0))   # lane slots, J per slot
    periphery = np.where(work & nets, simple, 0.0)
    ops_time = slots / (cfg.ops_per_cycle * cfg.clock_hz * max(tiles, 1))
    dyn_digital = lay.dynamic & ~lay.xbar
    dyn_macs = np.where(dyn_digital, c["macs"].astype(f), 0.0)
    dyn_time = dyn_macs / (cfg.macs_per_cycle * cfg.clock_hz * tiles)

    # buffers and interconnect: crossbar layers read every vector (im2col) and write outputs;
    # other working nodes read and write their tensors
    buffer_bits = np.where(lay.xbar, lay.vectors * lay.copies * (lay.k + lay.n) * act_bits,
                           np.where(work, (lay.in_elems + lay.out_elems) * act_bits, 0.0))
    ic_bits = np.where(lay.xbar | dyn_digital, lay.out_elems * act_bits, 0.0)
    layer_tiles = np.where(lay.xbar, np.maximum(1.0, np.ceil(lay.arrays * r / apt)), float(tiles))
    ic_time = ic_bits / (cfg.router_bits * cfg.clock_hz * layer_tiles)
    if cfg.placement == "chip":  # every digital node's operands to the chip-level block and back
        remote = np.where(slots > 0, (lay.in_elems + lay.out_elems) * cfg.input_bits, 0.0)
        ic_bits = ic_bits + remote * (cfg.hops_per_side * math.sqrt(max(tiles, 1)) + cfg.hops_into_block)
        ic_time = ic_time + remote / (cfg.link_bits * cfg.clock_hz)

    # reprogrammed dynamic operands: written before every use
    reprog = lay.xbar & lay.dynamic
    write_cells = np.where(reprog, lay.mapped_cells, 0.0)
    busy = {"crossbar": rd["t_crossbar"], "adc": rd["t_adc"],
            "buffer": buffer_bits / (cfg.edram_bits * cfg.clock_hz * layer_tiles), "interconnect": ic_time,
            "digital": ops_time + dyn_time,
            "write": np.where(reprog, np.minimum(lay.k, cfg.rows) * cfg.write_pulse, 0.0)}
    actions = {
        "crossbar": rd["crossbar"],
        "adc": (rd["conversions"], cfg.adc_j),
        "dac": (rd["drives"], cfg.dac_energy),
        "shift_add": (rd["conversions"] + accumulate + periphery, cfg.sa_energy),
        "buffer": (buffer_bits, cfg.edram_bit_energy),
        "interconnect": (ic_bits, cfg.router_bit_energy),
        "digital": combine(ops, (dyn_macs, cfg.mac_j)),
        "write": (write_cells, cfg.write_energy),
    }
    latency = np.maximum.reduce([busy["crossbar"] + busy["adc"], busy["buffer"], busy["interconnect"],
                                 busy["digital"]]) + busy["write"]
    events = {"adc_conversions": rd["conversions"], "dac_drives": rd["drives"], "arrays": lay.arrays * r,
              "replicas": np.where(lay.xbar, r, 0.0), "mapped_cells": lay.mapped_cells * r,
              "array_cells": lay.arrays * r * cfg.rows * cfg.cols, "cells_written": write_cells}
    info = {**cfg.info, "arrays_required": int(required), "tiles": tiles, "arrays_on_chip": tiles * apt}
    mapping = {"units_total": tiles * apt, "units_used": np.where(lay.xbar, lay.arrays * r, np.nan),
               "replication": np.where(lay.xbar, r, np.nan),
               "adc_conversions": np.where(lay.xbar, rd["conversions"], np.nan),
               "onchip_bytes": buffer_bits / 8}
    counts = Counts(actions=actions, busy=busy, latency=latency, area=chip_area(cfg, tiles), events=events, info=info,
                    bits=np.where(work, np.maximum(lay.wbits, act_bits), 0.0), mapping=mapping)
    return Forward(counts, lay, r, tiles, feedback, slots=ops[0], slot_j=ops[1], slot_time=ops_time)


def summarise(cfg, fwd: Forward, counts: Counts) -> Counts:
    """The utilisation, the ADC's share, what runs on digital lanes and what fixes the latency."""
    lay, r, tiles = fwd.lay, fwd.r, fwd.tiles
    info, notes = dict(counts.info), []
    energy = {k: np.asarray(n, dtype=np.float64) * price for k, (n, price) in counts.actions.items()}
    static_arrays = float(lay.arrays[lay.static].sum())
    used_cells = float(lay.mapped_cells[lay.static].sum())
    info["utilization"] = used_cells / (static_arrays * cfg.rows * cfg.cols) if static_arrays else 0.0
    info["chip_utilization"] = float((lay.mapped_cells * r)[lay.static].sum()) / (
        tiles * cfg.arrays_per_tile * cfg.rows * cfg.cols)
    total_e = sum(float(v.sum()) for v in energy.values())
    total_a = sum(counts.area.values())
    info["adc_energy_share"] = float(energy["adc"].sum()) / total_e if total_e else 0.0
    info["adc_area_share"] = counts.area["adc"] / total_a if total_a else 0.0
    notes.append(f"{int(lay.static.sum())} layers on {int(static_arrays)} arrays ({100 * info['utilization']:.1f} % "
                 f"of their cells hold weights), {tiles} tiles; replicas: {int((r[lay.static] - 1).sum())} extra "
                 "layer copies")
    crossbar_share = float(energy["crossbar"].sum()) / total_e if total_e else 0.0
    current = (f"; the column current they sink while converting, {100 * crossbar_share:.1f} %, is booked as "
               "crossbar" if cfg.adc == "neurosim-sar" else "")
    notes.append(f"ADC: {100 * info['adc_energy_share']:.1f} % of energy (circuits{current}), "
                 f"{100 * info['adc_area_share']:.1f} % of area; {cfg.adc_bits}-bit {cfg.adc}, "
                 f"{cfg.lossless_adc_bits} bits would resolve every column sum")
    notes.extend(counts.notes)
    busy, total_t = fwd.counts.busy, float(fwd.counts.latency.sum())
    reads = busy["crossbar"] + busy["adc"]
    read_bound = lay.xbar & (reads >= fwd.counts.latency - busy["write"])
    if total_t > 0 and read_bound.any():
        conv = ("NeuroSim's SAR latency, (adc_bits + 1) x sar_adc.cycle_s at every technode"
                if cfg.adc == "neurosim-sar" else "ISAAC's ADC rate, given at its node only")
        notes.append(f"latency: {100 * float(reads[read_bound].sum()) / total_t:.0f} % of the forward pass is array "
                     f"reads, input_bits x ({cfg.t_read * 1e9:.3g} ns read pulse + {cfg.cols_per_adc} x "
                     f"{cfg.t_conv * 1e9:.3g} ns conversions) per vector; neither scales with chip.node_nm "
                     f"({cfg.node_nm} nm): the read pulse is the RRAM device's, the conversion time {conv}; energy "
                     "and area do scale")
    n_dyn = int(lay.dynamic.sum())
    if n_dyn:
        how = ("digital MAC lanes" if cfg.dynamic == "digital" else
               f"reprogrammed arrays (one write per cell per inference: {cfg.endurance:.3g} inferences before "
               "wear-out)")
        notes.append(f"{n_dyn} products of two run-time operands (attention) run on {how}")
        if cfg.dynamic == "reprogram":
            info["reprogram_lifetime_inferences"] = cfg.endurance
    return replace(counts, info=info, notes=notes)


def chip_area(cfg, tiles: int) -> dict[str, float]:
    """mm^2 by component of a chip of ``tiles`` tiles (every array with its periphery)."""
    um2 = 1e-6  # um^2 -> mm^2
    arrays = tiles * cfg.arrays_per_tile
    f_um = cfg.node_nm * 1e-3
    adcs = math.ceil(cfg.cols / cfg.cols_per_adc)
    return {
        "crossbar": arrays * cfg.rows * cfg.cols * cfg.cell_area_f2 * f_um ** 2 * um2,
        "adc": arrays * adcs * cfg.adc_area_um2 * um2,
        "dac": arrays * cfg.rows * cfg.dac_area_um2 * um2,
        "shift_add": arrays * adcs * cfg.sa_area_um2 * um2,
        "buffer": tiles * cfg.edram_area_um2 * um2,
        "interconnect": tiles * cfg.router_area_um2 * um2,
        "digital": tiles * cfg.digital_area_um2 * um2,
    }


estimate, parameters = SPEC.entry_points(count, resolve, batched=True)
