"""``crossbar-noise``: what an RRAM crossbar does to a model's numbers, written into the
model so onnxruntime measures it (paper 3's question: how far does hardware perturbation
move the outputs?). Follows DNN+NeuroSim V1.3's inference wrapper
(``Inference_pytorch/modules/quantization_cpu_np_infer.py`` and ``utee/wage_quantizer.py``,
params.md source NS13).

Importing this module registers the pass (the crossbar family imports it, so
``nvmc compile ... --target rram-pim --passes 'crossbar-noise{sigma=0.1}' -o noisy.onnx``
finds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.types import Annotation, TensorType
from .base import Pass, PassResult, option, register_pass


def effective_weight(w: np.ndarray, *, weight_bits: int, cell_bits: int, on_off: float, sigma: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """The weights a crossbar computes with, as NeuroSim maps them (module doc of the pass).

    Returns the effective weights (float32, same shape) and statistics: cells, slices and
    the relative RMS change from the float weights."""
    w = np.asarray(w, dtype=np.float64)
    wmax = float(np.max(np.abs(w))) if w.size else 0.0
    if wmax == 0.0:
        return w.astype(np.float32), {"cells": 0.0, "slices": 0.0, "weight_rms_change": 0.0}
    top = 2 ** weight_bits - 1
    levels = 2 ** cell_bits
    slices = -(-weight_bits // cell_bits)
    x = np.rint(top / 2.0 * (w / wmax + 1.0))               # offset binary in [0, 2^b - 1]
    lower = 1.0 / on_off
    dummy = (levels - 1) * (1.0 + lower) / 2.0                # NeuroSim's dummy (reference) column
    acc = np.zeros_like(w)
    for k in range(slices):
        r = np.mod(x, levels)
        x = np.rint((x - r) / levels)
        g = (1.0 - lower) * r + (levels - 1) * lower          # conductance in units of G_on: never below G_off
        if sigma > 0:
            g = g * (1.0 + sigma * rng.standard_normal(g.shape))
        acc += levels ** k * (g - dummy) * 2.0 / (1.0 - lower)
    # noise-free, acc = 2 X - (levels^slices - 1); re-centre on 2^b - 1 and scale back
    eff = (acc + (levels ** slices - 1) - top) / top * wmax
    change = float(np.sqrt(np.mean((eff - w) ** 2)) / np.sqrt(np.mean(w ** 2)))
    return eff.astype(np.float32), {"cells": float(w.size * slices), "slices": float(slices),
                                    "weight_rms_change": change}


@register_pass("crossbar-noise", exact=False)
@dataclass(frozen=True)
class CrossbarNoise(Pass):
    """Inject RRAM crossbar non-idealities (variation, on/off ratio, DAC/ADC bits) into weighted layers.

    For each Conv / Gemm / MatMul whose weight is a float constant (DNN+NeuroSim V1.3's
    mapping, quantization_cpu_np_infer.py):

    1. Weights: scaled by the layer's max |w| to [-1, 1], quantised to ``weight-bits``
       offset-binary integers X = round((2^b - 1) / 2 (w + 1)) and sliced into
       ``cell-bits`` cells. Each cell's conductance (in units of G_on) is
       g = (1 - 1/on_off) r + (2^c - 1)/on_off: a cell never goes below G_off.
       Device variation multiplies it by (1 + sigma N(0, 1)), one draw per cell (seeded:
       ``seed``; NeuroSim's ``--vari``). A reference column of conductance
       (2^c - 1)(1 + 1/on_off)/2 is subtracted. The weight constant is replaced by the
       weights this array computes with: ideal arrays give back the quantised weights;
       with variation the G_off offset no longer cancels, so a lower on/off ratio
       means more noise.
    2. Inputs (DAC, ``input-bits`` > 0): QuantizeLinear -> [Clip] -> DequantizeLinear
       to 2^bits levels over the input's calibrated range (bit-serial inputs of that
       many bits).
    3. Outputs (ADC, ``adc-bits`` > 0): the layer's bias moves to an Add after the
       product, and the product goes through QuantizeLinear -> Clip -> DequantizeLinear
       to 2^adc-bits levels over its calibrated range (NeuroSim's fast inference path:
       one ADC quantisation of the layer output; its bit-serial path quantises each
       array's partial sum per input bit and weight slice, which is not done here).
    4. Calibration (ranges): the clean model in onnxruntime on ``samples`` seeded random
       draws or the ``.npz`` ``inputs``; ``measure`` reports the error against the clean
       model on the same inputs (SQNR, cosine, top-1 agreement).

    Cost: the inserted QDQ chains are precision casts, which the workload analysis
    counts as free, and a bias add moves from the product to an Add (same op count):
    the noisy model costs nearly what the clean one does (the Adds' buffer traffic:
    +3 % energy for tiny_cnn on rram-pim). Left alone: weights that are not float
    constants (decoded, shared) and MAC nodes with two run-time operands (attention).

    Before:
        %y = Conv(%x, %w, %b) {kernel_shape=[3,3]} : f32[1,16,8,8]
    After (crossbar-noise{sigma=0.1}):
        %x_q = QuantizeLinear(%x, %x_scale, %x_zp) : u8[1,3,8,8] #quant<bits=8, ...>
        %x_dq = DequantizeLinear(%x_q, %x_scale, %x_zp) : f32[1,3,8,8]
        %p = Conv(%x_dq, %w_xbar) {kernel_shape=[3,3]} : f32[1,16,8,8]
        %p_q = QuantizeLinear(%p, %p_scale, %p_zp) : u8[1,16,8,8] #quant<bits=5, ...>
        %p_c = Clip(%p_q, %p_lo, %p_hi) : u8[1,16,8,8]
        %p_dq = DequantizeLinear(%p_c, %p_scale, %p_zp) : f32[1,16,8,8]
        %y = Add(%p_dq, %b_bcast) : f32[1,16,8,8]
    """

    sigma: float = option(0.0, min=0.0, max=2.0, help="relative conductance variation per cell (std)")
    on_off: float = option(150.0, min=1.0001, help="R_off / R_on of the cells (NeuroSim V1.3: 150)")
    cell_bits: int = option(2, min=1, max=8, help="bits per cell (NeuroSim V1.3: 2)")
    weight_bits: int = option(8, min=2, max=16, help="bits per weight")
    input_bits: int = option(8, min=0, max=8, help="DAC: bits per input (0: inputs stay float)")
    adc_bits: int = option(5, min=0, max=8, help="ADC: bits per output (0: ideal ADC)")
    seed: int = option(0, min=0, help="seed of the variation draws and the calibration inputs")
    samples: int = option(4, min=1, max=100000, help="seeded random calibration draws (when no inputs file)")
    inputs: str = option("", help="an .npz of calibration inputs, arrays named after the graph inputs")
    measure: bool = option(True, help="run the model before and after in onnxruntime and report the error")

    def run(self, graph: Graph) -> PassResult:
        return inject(graph, self)



def inject(graph: Graph, spec) -> PassResult:
    """The pass body (``spec``: a CrossbarNoise instance)."""
    from .compression_common import (QDQ_OPSET, session, find_weights, measure_error, remove_if_unused,
                                                sample_feeds, upgrade_opset)

    result = PassResult(False)
    found, why_not = find_weights(graph)
    result.why_not.extend(why_not)
    layers = []
    for w in found:
        t = graph.values[w.const].type
        if w.quantized or t.dtype != "f32" or t.annotation("codebook") is not None:
            result.why_not.append((w.node.name, f"the weight '%{w.const}' is not a float constant"))
        elif w.node.op == "ConvTranspose":
            result.why_not.append((w.node.name, "ConvTranspose is left alone"))
        else:
            layers.append(w)
    if not layers:
        return result
    feeds = sample_feeds(graph, spec.samples, spec.seed, spec.inputs)
    before = graph.copy() if spec.measure else None
    old = upgrade_opset(graph, QDQ_OPSET)
    if old is not None:
        result.stats["opset_upgraded_from"] = old
        layers = [w for w in find_weights(graph)[0] if w.node.name in {x.node.name for x in layers}]

    # calibration: each layer's activation input and its output before the bias
    probes: dict[str, str] = {}
    clean = graph.copy()
    for w in layers:
        node = clean.node(w.node.name)
        if spec.input_bits:
            probes[f"in:{node.name}"] = node.inputs[0]
        if spec.adc_bits:
            probes[f"out:{node.name}"] = _pre_bias_probe(clean, node)
    ranges = {}
    if probes:
        runner = session(clean, list(dict.fromkeys(probes.values())))
        seen: dict[str, list[float]] = {}
        for f in feeds:
            out = runner.run(f)
            for v in set(probes.values()):
                a = np.asarray(out[v], dtype=np.float64)
                lo, hi = seen.get(v, [np.inf, -np.inf])
                seen[v] = [min(lo, float(a.min(initial=0.0))), max(hi, float(a.max(initial=0.0)))]
        ranges = {k: tuple(seen[v]) for k, v in probes.items()}

    rng = np.random.default_rng(spec.seed)
    changes, cells = [], 0.0
    for w in layers:
        node = graph.node(w.node.name)
        eff, st = effective_weight(graph.consts[w.const], weight_bits=spec.weight_bits, cell_bits=spec.cell_bits,
                                   on_off=spec.on_off, sigma=spec.sigma, rng=rng)
        name = graph.fresh_name(f"{w.const}_xbar")
        graph.add_const(name, eff)
        node.inputs = tuple(name if i == w.index else v for i, v in enumerate(node.inputs))
        remove_if_unused(graph, w.const)
        changes.append(st["weight_rms_change"])
        cells += st["cells"]
        if spec.input_bits:
            lo, hi = ranges[f"in:{node.name}"]
            dq = _qdq(graph, node.inputs[0], lo, hi, spec.input_bits, "dac")
            node.inputs = (dq,) + tuple(node.inputs[1:])
        if spec.adc_bits:
            lo, hi = ranges[f"out:{node.name}"]
            _adc(graph, node, lo, hi, spec.adc_bits)
    result.changed = True
    result.stats.update(layers=len(layers), cells=cells, weight_rms_change=float(np.mean(changes)))
    if before is not None:
        result.error = measure_error(before, graph, feeds)
    return result


def _pre_bias_probe(g: Graph, node: Node) -> str:
    """Split a Conv/Gemm's bias off in the calibration copy; returns the pre-bias value."""
    bias_slot = 2
    if node.op not in ("Conv", "Gemm") or len(node.inputs) <= bias_slot or not node.inputs[bias_slot]:
        return node.outputs[0]
    out = node.outputs[0]
    pre = g.fresh_name(f"{out}_nobias")
    g.add_node(node.op, list(node.inputs[:bias_slot]), [pre], dict(node.attrs), name=g.fresh_name(pre),
               types=[g.values[out].type])
    return pre


def _qdq(g: Graph, value: str, lo: float, hi: float, bits: int, role: str) -> str:
    """QuantizeLinear -> [Clip] -> DequantizeLinear of ``value`` to 2^bits levels on [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)        # the range holds 0 (exact zeros, as ORT's quantiser)
    qmax = 2 ** bits - 1
    scale = np.float32(max(hi - lo, 1e-12) / qmax)
    zp = np.uint8(min(qmax, max(0, int(round(-lo / float(scale))))))
    t = g.values[value].type
    ann = Annotation.of("quant", {"bits": bits, "scheme": "asymmetric", "scale": float(scale), "zero_point": int(zp),
                                  "role": role})
    qtype = TensorType("u8", t.shape, (ann,))
    s_name, z_name = g.fresh_name(f"{value}_{role}_scale"), g.fresh_name(f"{value}_{role}_zp")
    g.add_const(s_name, np.array(scale, np.float32))
    g.add_const(z_name, np.array(zp, np.uint8))
    meta = {"inserted_by": "crossbar-noise"}
    q = g.fresh_name(f"{value}_{role}_q")
    g.add_node("QuantizeLinear", [value, s_name, z_name], [q], name=g.fresh_name(q), types=[qtype], meta=meta)
    codes = q
    if bits < 8:
        lo_n, hi_n = g.fresh_name(f"{value}_{role}_lo"), g.fresh_name(f"{value}_{role}_hi")
        g.add_const(lo_n, np.array(0, np.uint8))
        g.add_const(hi_n, np.array(qmax, np.uint8))
        codes = g.fresh_name(f"{value}_{role}_c")
        g.add_node("Clip", [q, lo_n, hi_n], [codes], name=g.fresh_name(codes), types=[qtype], meta=meta)
    dq = g.fresh_name(f"{value}_{role}_dq")
    g.add_node("DequantizeLinear", [codes, s_name, z_name], [dq], name=g.fresh_name(dq),
               types=[TensorType(t.dtype, t.shape, (ann,))], meta=meta)
    return dq


def _adc(g: Graph, node: Node, lo: float, hi: float, bits: int) -> None:
    """Replace ``node`` by its product (no bias), the ADC's QDQ chain and an Add of the bias."""
    out = node.outputs[0]
    t = g.values[out].type
    meta = {"inserted_by": "crossbar-noise"}
    bias = node.inputs[2] if node.op in ("Conv", "Gemm") and len(node.inputs) > 2 else ""
    product = g.fresh_name(f"{out}_product")
    g.add_node(node.op, list(node.inputs[:2]), [product], dict(node.attrs), name=g.fresh_name(node.name),
               types=[t], meta=dict(node.meta or {}))
    dq = _qdq(g, product, lo, hi, bits, "adc")
    if bias:
        b = g.consts.get(bias)
        if b is not None and node.op == "Conv" and b.ndim == 1:
            name = g.fresh_name(f"{bias}_bcast")
            g.add_const(name, b.reshape([1, -1] + [1] * max(0, len(t.shape or ()) - 2)))
            bias = name
        final = g.fresh_name(f"{out}_biased")
        g.add_node("Add", [dq, bias], [final], name=g.fresh_name(final), types=[t], meta=meta)
    else:
        final = dq
    was_output = out in g.outputs
    g.replace_all_uses(out, final)
    g.remove_node(node)
    if was_output:  # keep the graph output's name
        g.add_node("Identity", [final], [out], name=g.fresh_name(f"{out}_out"), types=[t], meta=meta)
        g.outputs = [out if v == final else v for v in g.outputs]


