"""The ``crossbar`` family: RRAM compute-in-memory chips, after DNN+NeuroSim and ISAAC
(shared/reference/seeds.md, papers 7 and 11; parameters in shared/reference/params.md §5).

Organisation: ``tiles`` x ``pes_per_tile`` processing elements x ``arrays_per_pe`` crossbar
arrays of ``rows`` x ``cols`` cells of ``cell_bits`` bits. Each tile has an eDRAM buffer, a
quarter of a router (ISAAC's router is shared by four tiles) and digital units for the
non-MAC ops. Every number comes from the data files under ``data/crossbar/`` (NeuroSim
V1.3 / V2.1 parameters and SAR-ADC model, ISAAC components, Horowitz + SB17 digital
figures) or the target, and ``nvmc explain`` lists them with their sources.

Mapping (weight stationary, layer by layer, as NeuroSim's non-pipelined mode)
==============================================================================

A node with a constant weight (Conv, Gemm, MatMul with a constant operand, an nvmc op whose
MAC rule the workload knows, like NEON's ``nvmc.NeonApprox`` nets, ...) is the
workload's ``gemm_batch`` x (M x N x K) GEMM. Its weight is unrolled (im2col): each of its
``copies`` (conv groups; 1 when a batched MatMul shares one weight) is a K x N matrix whose
rows are array rows and whose columns take ``S = ceil(weight_bits / cell_bits)`` cells each
(bit slicing; twice that with ``signed = "differential"``; ``"offset"`` stores
offset-binary weights and spends one reference column per array, NeuroSim's dummy column).
A model quantised below ``weight_bits`` keeps its own bits (estimated as weight bytes x 8 /
weights, which also counts biases and scales, so it errs high). A copy takes
``ceil(K / rows) x ceil(N S / cols)`` arrays; small copies (depthwise
convolutions) are packed block-diagonally, ``min(rows // K, cols // (N S))`` to an array.
The chip holds every layer's weights at once; ``chip.tiles`` unset sizes the chip to fit
(NeuroSim's floorplan), a given count that is too small is a result, ``ok=False``. Spare
arrays replicate layers (``mapping.replicate``): replica counts minimise the summed layer
latency for the arrays left (a Lagrange split: r ~ sqrt(latency / arrays), floored).

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

Other nodes: non-MAC ops run on the digital units (op energies from Horowitz at 45 nm,
scaled by SB17; transcendental ops weighted by onnx-tool's MAC equivalents), reading and
writing their tensors in the buffer at ``input_bits`` per element (elements = bytes / 4:
f32 tensors). Views (Reshape, Flatten, ...) and folded QDQ nodes cost nothing; data
movement (Transpose, Concat, ...) costs its buffer traffic. A MAC node whose operands both
change at run time (attention's Q K^T and A V) runs on the digital MAC lanes
(``mapping.dynamic_matmul = "digital"``) or is written into spare arrays before use
(``"reprogram"``: cells x write energy, rows x write pulse, one write per cell per
inference against the endurance) and then read as a crossbar layer.

Where the digital units sit (``digital.placement``): ``tile`` (default) puts them beside
every tile's arrays, as ISAAC, at no extra data movement; ``chip`` makes them one block at
the chip's edge with the same lanes, as designs that offload non-MAC ops, so every digital
node's operands cross the tile mesh to it and back through one link of
``digital.link_bits`` per cycle (see :func:`remote_digital`). NEON's nets
(``PERIPHERY_NETS``) need no digital unit: their biases ride on an always-driven row and
their ReLUs are a sign test on the shift-and-add output, costed as shift-and-add ops.

Time: busy time by unit; a node takes ``max(crossbar + adc, buffer, interconnect,
digital) + write``. Energy by component: crossbar (cells), adc, dac, shift_add, buffer,
interconnect, digital, write. Area by component: the arrays' cells, ADCs, DACs,
shift-and-add units of every array on the chip, eDRAM buffers, routers and digital units
of every tile. CMOS leakage is not modelled (the RRAM cells do not leak).

Training (``run.mode = "train"``, see :mod:`crossbar_train`): forward, backward (BP: a
transposed read per layer, in sequence; DFA: a fixed random projection of the output error
to every layer, in parallel), weight gradients on the digital MAC lanes and weight updates
as cell writes, with the endurance budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np


from .support import check_supported, op_mask
from .errors import TargetError
from .estimate import Estimate
from .target import Field, Target
from .techlib import DATA_DIR, DataFile, Param, library, load_data_file

FAMILY = "crossbar"
CROSSBAR_DATA = DATA_DIR / "crossbar"

SCHEMA: dict[str, dict[str, Field]] = {
    "chip": {
        "node_nm": Field("int", "technology node in nm: 32, 22, 14, 10 or 7 (default: the device preset's)"),
        "clock_hz": Field("float", "clock of the digital periphery (default: the preset's)", unit="Hz"),
        "tiles": Field("int", "tiles on the chip (default: just enough to hold every layer's weights)"),
        "pes_per_tile": Field("int", "processing elements per tile"),
        "arrays_per_pe": Field("int", "crossbar arrays per processing element"),
    },
    "array": {
        "device": Field("str", "device preset: a data file of data/crossbar/ (neurosim-v13, neurosim-v21)",
                        default="neurosim-v13"),
        "rows": Field("int", "rows (word lines) per array"),
        "cols": Field("int", "columns (bit lines) per array"),
        "cell_bits": Field("int", "bits stored per cell", maximum=8),
        "cell": Field("choice", "1t1r (one transistor per cell) or crossbar (selector-less, 4 F^2)", default="1t1r",
                      choices=("1t1r", "crossbar")),
        "signed": Field("choice", "offset: offset-binary weights and a reference column per array (NeuroSim); "
                                  "differential: a positive and a negative column per weight column",
                        default="offset", choices=("offset", "differential")),
    },
    "device": {
        "r_on_ohm": Field("float", "cell resistance in the on state, at the read voltage", unit="ohm"),
        "on_off_ratio": Field("float", "R_off / R_on", minimum=1.0),
        "read_voltage_v": Field("float", "read voltage", unit="V"),
        "read_pulse_s": Field("float", "read pulse per input bit", unit="s"),
        "write_energy_j": Field("float", "energy of one programming pulse on one cell", unit="J"),
        "write_pulse_s": Field("float", "programming pulse width", unit="s"),
        "endurance_cycles": Field("float", "write cycles a cell survives"),
    },
    "periphery": {
        "adc": Field("choice", "ADC model: neurosim-sar (NeuroSim's SAR, energy depends on the column current) or "
                               "isaac (ISAAC's ADC by resolution)", default="neurosim-sar",
                     choices=("neurosim-sar", "isaac")),
        "adc_bits": Field("int", "ADC resolution (4 to 10 bits)", minimum=4, maximum=10),
        "cols_per_adc": Field("int", "columns sharing one ADC through a mux"),
    },
    "precision": {
        "weight_bits": Field("int", "bits per weight (a model quantised to fewer keeps its bits)", maximum=16),
        "input_bits": Field("int", "bits per activation, applied bit-serially", maximum=16),
        "error_bits": Field("int", "bits per back-propagated error (training)", default=8, maximum=16),
    },
    "mapping": {
        "replicate": Field("choice", "replicate layers into spare arrays to balance latency", default="on",
                           choices=("on", "off")),
        "dynamic_matmul": Field("choice", "products of two run-time operands (attention): digital MAC lanes, or "
                                          "reprogram the second operand into arrays", default="digital",
                                choices=("digital", "reprogram")),
    },
    "digital": {
        "placement": Field("choice", "where the non-MAC digital units sit: tile (beside every tile's arrays, "
                                     "no extra data movement) or chip (one shared block at the chip's edge with "
                                     "the same lanes: every operand crosses the tile mesh to it and back)",
                           default="tile", choices=("tile", "chip")),
        "link_bits": Field("int", "bits per cycle of the link into a chip-level digital block (default: one "
                                  "router port, ISAAC's 256)", minimum=1),
    },
    "run": {
        "mode": Field("choice", "inference, or train (forward + backward + weight update per step)",
                      default="inference", choices=("inference", "train")),
    },
    "training": {
        "algorithm": Field("choice", "bp (backpropagation) or dfa (direct feedback alignment)", default="bp",
                           choices=("bp", "dfa")),
        "update_fraction": Field("float", "fraction of weights reprogrammed per update", maximum=1.0),
        "pulses_per_update": Field("int", "programming pulses per updated cell"),
    },
}

VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
                      "Constant", "Optional", "OptionalGetElement"})
_SIMPLE = ("add", "cmp", "other")
_TRANSCENDENTAL = ("exp", "log", "sqrt", "pow", "tanh", "erf")
ENERGY_COMPONENTS = ("crossbar", "adc", "dac", "shift_add", "buffer", "interconnect", "digital", "write")
AREA_COMPONENTS = ("crossbar", "adc", "dac", "shift_add", "buffer", "interconnect", "digital")
NODES_NM = (32, 22, 14, 10, 7)
F32_BYTES = 4.0


@lru_cache(maxsize=16)
def data_file(name: str) -> DataFile:
    """A file of ``data/crossbar/`` (cited device, periphery and default figures)."""
    path = CROSSBAR_DATA / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in CROSSBAR_DATA.glob("*.toml"))
        from nvmc.ir.errors import did_you_mean

        raise TargetError(f"no crossbar data file '{name}'{did_you_mean(name, known)}",
                          hint=f"data/crossbar/ has: {', '.join(known)}")
    return load_data_file(path)


@dataclass
class Config:
    """A crossbar target resolved against the data files (SI units)."""

    node_nm: int
    clock_hz: float
    tiles: int | None
    pes_per_tile: int
    arrays_per_pe: int
    rows: int
    cols: int
    cell_bits: int
    cell_area_f2: float
    differential: bool
    r_on: float
    on_off: float
    v_read: float
    t_read: float
    write_energy: float
    write_pulse: float
    endurance: float
    adc: str
    adc_bits: int
    cols_per_adc: int
    weight_bits: int
    input_bits: int
    error_bits: int
    replicate: bool
    dynamic: str
    mode: str
    algorithm: str
    update_fraction: float
    pulses_per_update: int
    feedback_bits: int
    input_one: float
    mean_level: float
    sar: tuple[float, float, float, float]   # a, b, c, k of NeuroSim's SAR column power at the node
    sar_cycle: float
    vref_sar: float
    isaac_adc_energy: float                  # J per conversion at adc_bits, scaled to the node
    isaac_rate: float
    adc_area_um2: float
    dac_energy: float
    dac_area_um2: float
    sa_energy: float
    sa_area_um2: float
    edram_bit_energy: float
    edram_bits: float
    edram_area_um2: float
    router_bit_energy: float
    router_bits: float
    router_area_um2: float
    add_energy: float
    mult_energy: float
    mac_energy: float
    exp_slots: float
    div_slots: float
    digital_ops_per_cycle: float
    digital_macs_per_cycle: float
    digital_area_um2: float                  # per tile
    params: list[Param] = field(default_factory=list)
    digital_placement: str = "tile"
    digital_link_bits: float = 256.0

    @property
    def arrays_per_tile(self) -> int:
        return self.pes_per_tile * self.arrays_per_pe

    @property
    def g_on(self) -> float:
        return 1.0 / self.r_on

    @property
    def g_mean(self) -> float:
        g_off = self.g_on / self.on_off
        return g_off + self.mean_level * (self.g_on - g_off)

    @property
    def t_conv(self) -> float:
        if self.adc == "isaac":
            return 1.0 / self.isaac_rate
        return (self.adc_bits + 1) * self.sar_cycle

    @property
    def t_step(self) -> float:
        return self.t_read + self.cols_per_adc * self.t_conv

    @property
    def lossless_adc_bits(self) -> int:
        """ADC bits that resolve every level of a column sum: rows x (2^cell_bits - 1) + 1."""
        return int(math.ceil(math.log2(self.rows * (2 ** self.cell_bits - 1) + 1)))

    def conversion_energy(self, rows_driven: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ADC circuit, column current) J per conversion of a column whose ``rows_driven``
        cells conduct. NeuroSim's SAR power is (a bits + b) for the circuit plus
        c R_col^-k for the current the column sinks while it is converted, over
        (bits + 1) ns: that second part is the array's read energy. With ISAAC's ADC the
        cells conduct for the read pulse instead (``cell_read_energy``), so it is 0 here."""
        if self.adc == "isaac":
            return np.full(np.shape(rows_driven), self.isaac_adc_energy), np.zeros(np.shape(rows_driven))
        a, b, c, k = self.sar
        g_col = np.maximum(rows_driven, 1e-9) * self.g_mean
        r_col = (1.0 / g_col) * self.vref_sar / self.v_read
        t = (self.adc_bits + 1) * self.sar_cycle
        return np.full(np.shape(rows_driven), (a * self.adc_bits + b) * t), c * np.exp(-k * np.log10(r_col)) * t

    @property
    def cell_read_energy(self) -> float:
        """J per driven cell per read cycle when the cells conduct for the whole read pulse
        (ISAAC-style ADC); 0 with NeuroSim's SAR model, which counts the current per
        conversion (``conversion_energy``)."""
        if self.adc == "isaac":
            return self.v_read ** 2 * self.g_mean * self.t_read
        return 0.0

    def info(self) -> dict:
        return {"node_nm": self.node_nm, "array": f"{self.rows}x{self.cols}", "cell_bits": self.cell_bits,
                "adc": self.adc, "adc_bits": self.adc_bits, "cols_per_adc": self.cols_per_adc,
                "lossless_adc_bits": self.lossless_adc_bits, "weight_bits": self.weight_bits,
                "input_bits": self.input_bits, "mode": self.mode, "digital_placement": self.digital_placement,
                **({"digital_link_bits": self.digital_link_bits} if self.digital_placement == "chip" else {}),
                **({"algorithm": self.algorithm} if self.mode == "train" else {})}


class _Resolver:
    """Fills a target's values from the data files and records every number's provenance."""

    def __init__(self, target: Target):
        self.target = target
        self.params: list[Param] = []
        self.preset = data_file(target["array.device"])
        self.base = data_file("neurosim-v13")
        self.defaults = data_file("defaults")

    def knob(self, key: str, *fallbacks: tuple[DataFile, str]):
        """The target's value of ``key``, else the first fallback data entry that exists."""
        t = self.target
        value, origin = t[key], t.origins.get(key, "default")
        if value is not None:
            kind = "--set" if origin == "--set" else ("default" if origin == "default" else "target")
            note = {"--set": f"--set {key}={t.describe(key)}", "default": "family default"}.get(kind, origin)
            self.params.append(Param(key, value, kind, note, t.source))
            return value
        for data, name in fallbacks:
            p = data.params.get(name)
            if p is not None:
                self.params.append(Param(key, p.value, p.kind, f"= {data.name} {name}: {p.note}", p.origin,
                                         p.formula))
                return p.value
        raise TargetError(f"{key}: no value in the target and none in the data files "
                          f"({', '.join(d.name + ' ' + n for d, n in fallbacks)})", where=t.source)

    def cite(self, data: DataFile, key: str, label: str | None = None) -> float:
        p = data.param(key)
        self.params.append(Param(f"{data.name}:{label or key}", p.value, p.kind, p.note, p.origin, p.formula))
        return p.value

    def derived(self, key: str, value: float, note: str) -> float:
        self.params.append(Param(key, value, "derived", note, "backends/crossbar.py"))
        return value


def resolve(target: Target) -> Config:
    """The target with every default filled in from the data files (cached on the target)."""
    if "config" in target.cache:
        return target.cache["config"]
    r = _Resolver(target)
    p, base, dflt = r.preset, r.base, r.defaults
    cmos, isaac = data_file("cmos"), data_file("isaac")
    rram = library().tech("rram")
    both = lambda name: ((p, name), (base, name))  # noqa: E731

    r.knob("array.device")
    node = int(r.knob("chip.node_nm", *both("array.node_nm")))
    if node not in NODES_NM:
        raise TargetError(f"chip.node_nm = {node}: the crossbar data covers {', '.join(map(str, NODES_NM))} nm "
                          "(NeuroSim's SAR-ADC fits and SB17 scaling)", where=target.source)
    clock = r.knob("chip.clock_hz", *both("array.clock_hz"))
    tiles = r.knob("chip.tiles") if target["chip.tiles"] is not None else None
    pes = int(r.knob("chip.pes_per_tile", (dflt, "organisation.pes_per_tile")))
    apes = int(r.knob("chip.arrays_per_pe", (dflt, "organisation.arrays_per_pe")))
    rows = int(r.knob("array.rows", *both("array.rows")))
    cols = int(r.knob("array.cols", *both("array.cols")))
    cell_bits = int(r.knob("array.cell_bits", *both("array.cell_bits")))
    cell = r.knob("array.cell")
    cell_f2 = r.cite(base, "device.cell_area_1t1r_f2" if cell == "1t1r" else "device.cell_area_crossbar_f2")
    signed = r.knob("array.signed")
    r_on = r.knob("device.r_on_ohm", *both("device.r_on_ohm"))
    on_off = r.knob("device.on_off_ratio", *both("device.on_off_ratio"))
    v_read = r.knob("device.read_voltage_v", *both("device.read_voltage_v"))
    t_read = r.knob("device.read_pulse_s", *both("device.read_pulse_s"))
    w_energy = r.knob("device.write_energy_j", (p, "device.write_energy_j"), (rram, "cell.write_energy_j"))
    w_pulse = r.knob("device.write_pulse_s", (p, "device.write_pulse_s"), (rram, "cell.write_pulse_s"))
    endurance = r.knob("device.endurance_cycles", (p, "device.endurance_cycles"),
                       (dflt, "reliability.endurance_cycles"))
    adc = r.knob("periphery.adc")
    adc_bits = int(r.knob("periphery.adc_bits", *both("array.adc_bits")))
    if not 4 <= adc_bits <= 10:
        raise TargetError(f"periphery.adc_bits = {adc_bits}: the ADC data covers 4 to 10 bits", where=target.source)
    cols_per_adc = int(r.knob("periphery.cols_per_adc", *both("array.cols_per_adc")))
    if cols_per_adc > cols:
        raise TargetError(f"periphery.cols_per_adc = {cols_per_adc} exceeds array.cols = {cols}", where=target.source)
    weight_bits = int(r.knob("precision.weight_bits", *both("array.weight_bits")))
    input_bits = int(r.knob("precision.input_bits", *both("array.input_bits")))
    error_bits = int(r.knob("precision.error_bits"))
    replicate = r.knob("mapping.replicate") == "on"
    dynamic = r.knob("mapping.dynamic_matmul")
    mode = r.knob("run.mode")
    algorithm = r.knob("training.algorithm")
    update_fraction = r.knob("training.update_fraction", (dflt, "training.update_fraction"))
    pulses = int(r.knob("training.pulses_per_update", (dflt, "training.pulses_per_update")))
    feedback_bits = int(r.cite(dflt, "training.feedback_bits"))
    input_one = r.cite(dflt, "activity.input_one_fraction")
    mean_level = r.cite(dflt, "activity.mean_level_fraction")

    # node scaling of the 45 nm (Horowitz, Aladdin) and 32 nm (ISAAC) figures
    e_node = r.cite(cmos, f"scaling.energy_{node}nm")
    a_node = r.cite(cmos, f"scaling.area_{node}nm")
    e_isaac = e_node / r.cite(cmos, "scaling.energy_32nm")
    a_isaac = a_node / r.cite(cmos, "scaling.area_32nm")
    r.derived("scale.isaac_energy", e_isaac, f"SB17 energy at {node} nm / at 32 nm (ISAAC's node)")
    r.derived("scale.isaac_area", a_isaac, f"SB17 area at {node} nm / at 32 nm (ISAAC's node)")
    r.cite(isaac, "node.node_nm")

    sar = tuple(r.cite(base, f"sar_adc.{k}_{node}nm" + ("_w" if k in "ab" else "")) for k in "abck")
    sar_cycle = r.cite(base, "sar_adc.cycle_s")
    vref = r.cite(base, "sar_adc.reference_read_voltage_v")
    isaac_adc = r.cite(isaac, f"adc.energy_{adc_bits}b_j") * e_isaac
    isaac_rate = r.cite(isaac, "adc.sample_rate_hz")
    adc_area = r.cite(isaac, f"adc.area_{adc_bits}b_um2") * a_isaac
    dac_e = r.cite(isaac, "dac.drive_energy_j") * e_isaac
    dac_a = r.cite(isaac, "dac.area_um2") * a_isaac
    sa_e = r.cite(isaac, "shift_add.op_energy_j") * e_isaac
    sa_a = r.cite(isaac, "shift_add.area_um2") * a_isaac
    edram_e = r.cite(isaac, "edram.access_energy_j") * e_isaac
    edram_bits = r.cite(isaac, "edram.access_bits")
    edram_a = r.cite(isaac, "edram.area_um2") * a_isaac
    router_e = r.cite(isaac, "router.access_energy_j") * e_isaac
    router_bits = r.cite(isaac, "router.access_bits")
    router_a = r.cite(isaac, "router.area_per_tile_um2") * a_isaac
    add_e = r.cite(cmos, "ops_45nm.int32_add_j") * e_node
    mult_e = r.cite(cmos, "ops_45nm.int8_mult_j") * e_node
    mac_e = r.cite(cmos, "ops_45nm.int8_mac_j") * e_node
    exp_slots = r.cite(cmos, "ops_45nm.exp_mac_equivalents")
    div_slots = r.cite(cmos, "ops_45nm.div_mac_equivalents")
    ops_cycle = r.cite(dflt, "organisation.digital_ops_per_cycle")
    macs_cycle = r.cite(dflt, "organisation.digital_macs_per_cycle")
    adder_a = r.cite(cmos, "area_40nm.adder32_um2")
    mac_a = r.cite(cmos, "area_40nm.mac8_um2")
    digital_a = (ops_cycle * adder_a + macs_cycle * mac_a) * a_node
    r.derived("digital.area_per_tile_um2", digital_a, "digital_ops_per_cycle x 32-bit adder + digital_macs_per_cycle "
              "x 8-bit MAC (Aladdin, 40 nm taken as 45 nm), scaled by SB17 area to the node")
    cfg = Config(node, clock, tiles, pes, apes, rows, cols, cell_bits, cell_f2, signed == "differential", r_on, on_off,
                 v_read, t_read, w_energy, w_pulse, endurance, adc, adc_bits, cols_per_adc, weight_bits, input_bits,
                 error_bits, replicate, dynamic, mode, algorithm, update_fraction, pulses, feedback_bits, input_one,
                 mean_level, sar, sar_cycle, vref, isaac_adc, isaac_rate, adc_area, dac_e, dac_a, sa_e, sa_a,
                 edram_e / edram_bits, edram_bits, edram_a, router_e / router_bits, router_bits, router_a, add_e,
                 mult_e, mac_e, exp_slots, div_slots, ops_cycle, macs_cycle, digital_a, r.params)
    cfg.digital_placement = r.knob("digital.placement")
    if cfg.digital_placement == "chip":
        cfg.digital_link_bits = float(r.knob("digital.link_bits", (isaac, "router.access_bits")))
    r.derived("array.t_conv_s", cfg.t_conv, "ADC conversion time: (adc_bits + 1) x 1 ns (NeuroSim SAR) or 1 / "
              "sample rate (ISAAC)")
    r.derived("array.t_step_s", cfg.t_step, "one input-bit cycle: read pulse + cols_per_adc conversions")
    r.derived("array.lossless_adc_bits", cfg.lossless_adc_bits, "ceil(log2(rows x (2^cell_bits - 1) + 1)): the "
              "ADC bits that resolve every column sum of one input bit")
    owners = list(dict.fromkeys(p.key.split(":")[0] if ":" in p.key else "" for p in r.params))
    r.params.sort(key=lambda p: owners.index(p.key.split(":")[0] if ":" in p.key else ""))  # stable: grouped
    target.cache["config"] = cfg
    return cfg


def parameters(target: Target) -> list[Param]:
    """Every number the estimate uses, with its provenance (for ``nvmc explain``)."""
    return resolve(target).params


# ---------------------------------------------------------------- the model

@dataclass
class Layers:
    """Per-node mapping columns (numpy arrays aligned with the workload's nodes)."""

    xbar: np.ndarray          # mapped on crossbars (constant weight, or a reprogrammed dynamic operand)
    static: np.ndarray        # xbar with a constant weight (held for the whole run)
    dynamic: np.ndarray       # MAC node with two run-time operands
    work: np.ndarray          # costs anything at all
    copies: np.ndarray        # weight copies (conv groups)
    vectors: np.ndarray       # input vectors per copy
    k: np.ndarray
    n: np.ndarray
    slices: np.ndarray        # cells per weight column (bit slices x differential)
    row_tiles: np.ndarray
    col_tiles: np.ndarray
    arrays: np.ndarray        # arrays of one copy of the layer (all groups)
    ref_cols: np.ndarray      # reference columns (offset mode: one per array)
    mapped_cells: np.ndarray
    out_elems: np.ndarray     # output elements of the node
    in_elems: np.ndarray


def map_layers(workload, cfg: Config) -> Layers:
    """Where each node runs and how many arrays it takes (module doc, "Mapping")."""
    c = workload.columns
    f = np.float64
    n_nodes = len(workload.names)
    folded = c["folded"].astype(bool) if "folded" in c else np.zeros(n_nodes, dtype=bool)
    macs, params = c["macs"].astype(f), c["params"].astype(f)
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    ops = np.asarray(workload.ops, dtype=object)
    is_mac = (macs > 0) & ~folded
    static = is_mac & (params > 0)
    dynamic = is_mac & ~static
    xbar = static | (dynamic & (cfg.dynamic == "reprogram"))
    views = op_mask(ops, list(VIEW_OPS)) & ~is_mac
    work = ~folded & ~views

    copies = np.where(static, np.clip(np.floor(params / (gk * gn)), 1.0, gb), gb)
    vectors = gb * gm / copies
    with np.errstate(divide="ignore", invalid="ignore"):
        model_bits = np.where(params > 0, np.rint(c["weight_bytes"].astype(f) * 8.0 / np.maximum(params, 1.0)), 32.0)
    wbits = np.where(static, np.clip(model_bits, 1.0, cfg.weight_bits), cfg.input_bits)
    slices = np.ceil(wbits / cfg.cell_bits) * (2.0 if cfg.differential else 1.0)
    colsw = gn * slices
    row_tiles = np.ceil(gk / cfg.rows)
    col_tiles = np.ceil(colsw / cfg.cols)
    fits_one = (gk <= cfg.rows) & (colsw <= cfg.cols) & (copies > 1)
    pack = np.where(fits_one, np.maximum(1.0, np.minimum(cfg.rows // gk, cfg.cols // np.maximum(colsw, 1.0))), 1.0)
    arrays = np.where(xbar, np.ceil(copies / pack) * row_tiles * col_tiles, 0.0)
    ref_cols = arrays if not cfg.differential else np.zeros(n_nodes)
    mapped = np.where(xbar, copies * gk * colsw, 0.0)
    out_elems = np.where(is_mac, gb * gm * gn, c["output_bytes"].astype(f) / F32_BYTES)
    in_elems = np.where(is_mac, gb * gm * gk, c["input_bytes"].astype(f) / F32_BYTES)
    return Layers(xbar, static, dynamic, work, copies, vectors, gk, gn, slices, row_tiles, col_tiles, arrays,
                  ref_cols, mapped, out_elems, in_elems)


def replicas(single_latency: np.ndarray, arrays: np.ndarray, vectors: np.ndarray, spare: float) -> np.ndarray:
    """Replica count per layer minimising sum(latency / r) with sum((r - 1) x arrays) <= spare.

    The continuous optimum is r = sqrt(latency / (lambda x arrays)); lambda is found by
    bisection so that the floored counts fit the spare arrays. r never exceeds the layer's
    vector count (a replica needs vectors to work on)."""
    r = np.ones_like(arrays)
    live = (arrays > 0) & (single_latency > 0)
    if spare <= 0 or not live.any():
        return r
    t, a, cap = single_latency[live], arrays[live], np.maximum(vectors[live], 1.0)

    def counts(lam: float) -> np.ndarray:
        return np.clip(np.floor(np.sqrt(t / (lam * a))), 1.0, cap)

    lo, hi = 1e-30, 1e30  # lo: many replicas (too many arrays), hi: none
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if float(np.sum((counts(mid) - 1.0) * a)) > spare:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.0 + 1e-9:
            break
    r[live] = counts(hi)
    return r


# Nets whose per-element ReLU and bias run in the arrays' periphery (NEON's simplified
# microarchitecture, paper 11): the bias as one always-driven row, the ReLU as a sign test
# on the shift-and-add output; costed as shift-and-add ops, not on the digital units.
PERIPHERY_NETS = frozenset({"nvmc.NeonApprox"})


def _nonmac_cost(workload, cfg: Config, lay: Layers, tiles: int) -> dict[str, np.ndarray]:
    """Digital units: energy and time of the non-MAC ops of every node, and what the
    periphery of the arrays does instead (``PERIPHERY_NETS``)."""
    c = workload.columns
    f = np.float64
    simple = sum(c[k].astype(f) for k in _SIMPLE)
    mul = c["mul"].astype(f)
    trans = sum(c[k].astype(f) for k in _TRANSCENDENTAL)
    div = c["div"].astype(f)
    in_periphery = op_mask(np.asarray(workload.ops, dtype=object), list(PERIPHERY_NETS))
    periphery = np.where(in_periphery, simple, 0.0)
    simple = np.where(in_periphery, 0.0, simple)
    heavy_slots = trans * cfg.exp_slots + div * cfg.div_slots
    energy = simple * cfg.add_energy + mul * cfg.mult_energy + heavy_slots * cfg.mac_energy
    slots = simple + mul + heavy_slots
    rate = cfg.digital_ops_per_cycle * cfg.clock_hz * max(tiles, 1)
    work = lay.work.astype(f)
    return {"energy": energy * work, "time": slots / rate * work, "ops": slots * work,
            "periphery_ops": periphery * work}


def remote_digital(cfg: Config, lay: Layers, digital: dict[str, np.ndarray], tiles: int) -> dict[str, np.ndarray]:
    """Operand traffic to a chip-level digital block (``digital.placement = "chip"``).

    Every node with digital work sends its input elements to the block and gets its output
    back, at ``input_bits`` per element, over the tile mesh: a sqrt(T) x sqrt(T) mesh with
    the block at the middle of one edge is on average k/4 hops across plus k/2 hops deep
    (k = sqrt(T)), plus one hop into the block. All of it enters through the block's one
    link (``digital.link_bits`` per cycle; default one ISAAC router port, 256 bits), so the
    link's rate bounds the time; energy is the router's per-bit energy per hop."""
    on = digital["ops"] > 0
    bits = np.where(on, (lay.in_elems + lay.out_elems) * cfg.input_bits, 0.0)
    hops = 0.75 * math.sqrt(max(tiles, 1)) + 1.0
    return {"bits": bits, "hops": np.full_like(bits, hops), "energy": bits * hops * cfg.router_bit_energy,
            "time": bits / (cfg.digital_link_bits * cfg.clock_hz)}


def crossbar_read(cfg: Config, vectors: np.ndarray, cycles: np.ndarray, drives: np.ndarray, reads: np.ndarray,
                  lines_per_array: np.ndarray, cells: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    """Energy and time of applying ``vectors`` to a layer's arrays, ``cycles`` read cycles each.

    Per cycle: ``drives`` lines driven across all arrays (rows of a forward read), ``reads``
    lines converted (columns and reference columns), ``lines_per_array`` lines driven per
    array (they set the column current the ADC sees), ``cells`` cells on driven lines that
    are read. A driven line conducts with probability ``input_one_fraction``; replicas
    ``r`` split the vectors."""
    act = cfg.input_one
    conversions = vectors * cycles * reads
    steps = np.ceil(vectors / np.maximum(r, 1.0)) * cycles
    circuit, column = cfg.conversion_energy(lines_per_array * act)
    return {
        "conversions": conversions,
        "adc": conversions * circuit,
        "dac": vectors * cycles * act * drives * cfg.dac_energy,
        "drives": vectors * cycles * act * drives,
        "crossbar": conversions * column + vectors * cycles * act * cells * cfg.cell_read_energy,
        "shift_add": conversions * cfg.sa_energy,
        "t_crossbar": steps * cfg.t_read,
        "t_adc": steps * cfg.cols_per_adc * cfg.t_conv,
    }


def estimate(workload, target: Target, *, batch: int = 1) -> Estimate:
    cfg = resolve(target)
    check_supported(workload, target, FAMILY)
    names, ops = list(workload.names), list(workload.ops)
    n_nodes = len(names)
    f = np.float64
    lay = map_layers(workload, cfg)

    # chip size: every static layer's weights, the largest reprogrammed operand, DFA's feedback arrays
    static_arrays = float(lay.arrays[lay.static].sum())
    dyn_arrays = float(lay.arrays[lay.xbar & lay.dynamic].max(initial=0.0))
    feedback = np.zeros(n_nodes)
    if cfg.mode == "train" and cfg.algorithm == "dfa":
        from .crossbar_train import feedback_arrays

        feedback = feedback_arrays(cfg, lay, batch)
    required = static_arrays + dyn_arrays + float(feedback.sum())
    apt = cfg.arrays_per_tile
    tiles = cfg.tiles if cfg.tiles is not None else max(1, math.ceil(required / apt))
    info = {**cfg.info(), "arrays_required": int(required), "tiles": tiles, "arrays_on_chip": tiles * apt}
    if required > tiles * apt:
        return Estimate.not_fitting(
            target, f"the weights need {int(required)} arrays of {cfg.rows}x{cfg.cols}; {tiles} tiles hold "
                    f"{tiles * apt} ({cfg.pes_per_tile} PEs x {cfg.arrays_per_pe} arrays per tile)",
            names=names, ops=ops, info=info)

    # single-copy latency of each crossbar layer, then replicas for the spare arrays
    act_bits = float(cfg.input_bits)
    read_w = np.where(lay.xbar, lay.copies * lay.n * lay.slices + lay.ref_cols, 0.0)
    drive_w = np.where(lay.xbar, lay.copies * lay.k, 0.0)
    rows_per_array = np.where(lay.xbar, lay.k / np.maximum(lay.row_tiles, 1.0), 0.0)
    single = np.where(lay.xbar, lay.vectors * act_bits * cfg.t_step, 0.0)
    spare = tiles * apt - required if cfg.replicate else 0.0
    repl_arrays = np.where(lay.static, lay.arrays, 0.0)
    r = replicas(single, repl_arrays, lay.vectors, spare)

    vec = np.where(lay.xbar, lay.vectors, 0.0)
    ref_cells = lay.ref_cols * rows_per_array
    fwd = crossbar_read(cfg, vec, np.full(n_nodes, act_bits), drive_w, read_w, rows_per_array,
                        lay.mapped_cells + ref_cells, r)
    accumulate = np.where(lay.xbar, lay.vectors * lay.copies * lay.n * (lay.row_tiles - 1.0), 0.0)
    digital = _nonmac_cost(workload, cfg, lay, tiles)
    dyn_digital = lay.dynamic & ~lay.xbar
    macs = workload.columns["macs"].astype(f)
    dyn_energy = np.where(dyn_digital, macs * cfg.mac_energy, 0.0)
    dyn_time = np.where(dyn_digital, macs / (cfg.digital_macs_per_cycle * cfg.clock_hz * tiles), 0.0)

    # buffers and interconnect: crossbar layers read every vector (im2col) and write outputs;
    # other working nodes read and write their tensors
    bits_el = act_bits
    buffer_bits = np.where(lay.xbar, lay.vectors * lay.copies * (lay.k + lay.n) * bits_el,
                           np.where(lay.work, (lay.in_elems + lay.out_elems) * bits_el, 0.0))
    ic_bits = np.where(lay.xbar | dyn_digital, lay.out_elems * bits_el, 0.0)
    layer_tiles = np.where(lay.xbar, np.maximum(1.0, np.ceil(lay.arrays * r / apt)), float(tiles))
    ic_energy = ic_bits * cfg.router_bit_energy
    ic_time = ic_bits / (cfg.router_bits * cfg.clock_hz * layer_tiles)
    if cfg.digital_placement == "chip":
        remote = remote_digital(cfg, lay, digital, tiles)
        ic_energy, ic_time = ic_energy + remote["energy"], ic_time + remote["time"]

    # reprogrammed dynamic operands: written before every use
    reprog = lay.xbar & lay.dynamic
    write_cells = np.where(reprog, lay.mapped_cells, 0.0)
    write_time = np.where(reprog, np.minimum(lay.k, cfg.rows) * cfg.write_pulse, 0.0)

    energy = {
        "crossbar": fwd["crossbar"],
        "adc": fwd["adc"],
        "dac": fwd["dac"],
        "shift_add": fwd["shift_add"] + (accumulate + digital["periphery_ops"]) * cfg.sa_energy,
        "buffer": buffer_bits * cfg.edram_bit_energy,
        "interconnect": ic_energy,
        "digital": digital["energy"] + dyn_energy,
        "write": write_cells * cfg.write_energy,
    }
    latency = {
        "crossbar": fwd["t_crossbar"],
        "adc": fwd["t_adc"],
        "buffer": buffer_bits / (cfg.edram_bits * cfg.clock_hz * layer_tiles),
        "interconnect": ic_time,
        "digital": digital["time"] + dyn_time,
        "write": write_time,
    }
    node_latency = np.maximum.reduce([latency["crossbar"] + latency["adc"], latency["buffer"],
                                      latency["interconnect"], latency["digital"]]) + latency["write"]
    events = {"adc_conversions": fwd["conversions"], "dac_drives": fwd["drives"],
              "arrays": lay.arrays * r, "replicas": np.where(lay.xbar, r, 0.0),
              "mapped_cells": lay.mapped_cells * r, "array_cells": lay.arrays * r * cfg.rows * cfg.cols,
              "cells_written": write_cells}
    area = chip_area(cfg, tiles)
    notes, assumptions = [], [f"{p.key} = {_fmt(p.value)}: {p.note}" for p in cfg.params if p.kind == "assumed"]

    if cfg.mode == "train":
        from .crossbar_train import add_training

        node_latency = add_training(workload, cfg, lay, r, tiles, batch, feedback, energy, latency, events,
                                    info, notes, digital, dyn_digital)
    used_cells = float(lay.mapped_cells[lay.static].sum())
    info["utilization"] = used_cells / (static_arrays * cfg.rows * cfg.cols) if static_arrays else 0.0
    info["chip_utilization"] = float((lay.mapped_cells * r)[lay.static].sum()) / (tiles * apt * cfg.rows * cfg.cols)
    total_e = sum(float(v.sum()) for v in energy.values())
    total_a = sum(area.values())
    info["adc_energy_share"] = float(energy["adc"].sum()) / total_e if total_e else 0.0
    info["adc_area_share"] = area["adc"] / total_a if total_a else 0.0
    n_x, n_d = int(lay.static.sum()), int(lay.dynamic.sum())
    notes.insert(0, f"{n_x} layers on {int(static_arrays)} arrays ({100 * info['utilization']:.1f} % of their cells "
                    f"hold weights), {tiles} tiles; replicas: {int((r[lay.static] - 1).sum())} extra layer copies")
    crossbar_share = float(energy["crossbar"].sum()) / total_e if total_e else 0.0
    current = (f"; the column current they sink while converting, {100 * crossbar_share:.1f} %, is booked as "
               "crossbar" if cfg.adc == "neurosim-sar" else "")
    notes.insert(1, f"ADC: {100 * info['adc_energy_share']:.1f} % of energy (circuits{current}), "
                    f"{100 * info['adc_area_share']:.1f} % of area; {cfg.adc_bits}-bit {cfg.adc}, "
                    f"{cfg.lossless_adc_bits} bits would resolve every column sum")
    if n_d:
        how = ("digital MAC lanes" if cfg.dynamic == "digital" else
               f"reprogrammed arrays (one write per cell per inference: {cfg.endurance:.3g} inferences before "
               "wear-out)")
        notes.append(f"{n_d} products of two run-time operands (attention) run on {how}")
        if cfg.dynamic == "reprogram":
            info["reprogram_lifetime_inferences"] = cfg.endurance
    return Estimate(
        target=target.name, family=FAMILY, target_hash=target.hash, names=names, ops=ops, macs=macs,
        node_latency=node_latency, latency=latency, energy=energy, area=area, events=events, batch=batch,
        notes=notes, assumptions=assumptions, info=info, target_file=target.source)


def chip_area(cfg: Config, tiles: int) -> dict[str, float]:
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


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
