"""Weight and activation quantisation, written as QDQ (QuantizeLinear / DequantizeLinear)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.types import Annotation, TensorType

from .base import Pass, PassError, PassResult, option, register_pass
from .compression_common import (MAC_OPS, QDQ_OPSET, session, Weight, add_savings, find_weights, is_onnx,
                                 measure_error, remove_if_unused, sample_feeds, short_float, upgrade_opset,
                                 workload_totals)


@register_pass("quantize", exact=False)
@dataclass(frozen=True)
class Quantize(Pass):
    """Quantise the weights and the activation inputs of Conv/ConvTranspose/Gemm/MatMul to integers (QDQ).

    1. Weights: each float32 constant read by a MAC node (its weight operand, see
       compression_common) becomes integer codes plus a ``DequantizeLinear``: one scale per
       output channel (``granularity=channel``) or per tensor. ``scheme=symmetric``: int8
       codes in [-(2^(b-1)-1), 2^(b-1)-1], zero point 0, scale = max|w| / (2^(b-1)-1);
       ``asymmetric``: uint8 codes in [0, 2^b-1], scale = (max - min) / (2^b-1) over a range
       stretched to hold 0, which stays exact. Codes of fewer than 8 bits are stored in
       8-bit integers; the ``#quant<bits=..>`` annotation makes the cost model count b bits.
    2. Activations (``activations=true``): each float input of a MAC node that is not its
       weight gets QuantizeLinear -> DequantizeLinear with one scale (per tensor), in
       ``activation-scheme`` (default asymmetric, as onnxruntime's quantiser), from ranges
       calibrated in onnxruntime on ``samples`` seeded random draws or on the ``.npz``
       ``inputs``: ``minmax``, ``percentile`` or ``entropy`` (onnxruntime's histogram
       calibrators). Under 8 bits a ``Clip`` of the integer codes keeps them in b bits.
       Only MAC readers read the quantised value; others keep the float one. A 1-D bias of
       a Conv/Gemm whose input and weight are quantised becomes int32 codes at scale
       s_input * s_weight (onnxruntime can then fuse the QDQ group into QLinearConv).
    3. The IR carries the parameters as ``#quant`` annotations: on codes and decoded
       weights ``bits``, ``scheme``, ``granularity``, and ``scale``/``zero_point`` (numbers
       for a tensor, the names of the constants holding them for channels, plus ``axis``);
       on the activations' QDQ values the same, per tensor.
    4. Left alone: weights that are not float32 constants, weights already decoded by a
       DequantizeLinear, weights shared through a codebook (run share-weights, not both);
       activations that are not float32 or are already decoded.
    5. QDQ needs opset 13: an older model is upgraded first with onnx's version converter
       (as onnxruntime's quantiser does), reported in ``stats['opset_upgraded_from']``.
    6. Error: with ``measure`` (default), the model before and after runs in onnxruntime on
       the calibration inputs; ``PassResult.error`` holds SQNR, max abs/rel error, cosine and
       top-1 agreement. ``stats`` has the bytes (workload analysis) and tensors quantised.

    Before:
        %y = Conv(%x, %w, %b) {kernel_shape=[3,3]} : f32[1,16,8,8]
    After (quantize{bits=4}):
        %x_q = QuantizeLinear(%x, %x_scale, %x_zp) : i8[1,3,8,8] #quant<bits=4, ..., scale=0.0259, zero_point=0>
        %x_c = Clip(%x_q, %x_lo, %x_hi) : i8[1,3,8,8] #quant<bits=4, ...>
        %x_dq = DequantizeLinear(%x_c, %x_scale, %x_zp) : f32[1,3,8,8] #quant<bits=4, ...>
        %w_dq = DequantizeLinear(%w_q, %w_scale, %w_zp) {axis=0} : f32[16,3,3,3] #quant<axis=0, bits=4, granularity="channel", scale="w_scale", scheme="symmetric", zero_point="w_zp">
        %b_dq = DequantizeLinear(%b_q, %b_scale, %b_zp) {axis=0} : f32[16]
        %y = Conv(%x_dq, %w_dq, %b_dq) {kernel_shape=[3,3]} : f32[1,16,8,8]
    """

    bits: int = option(8, min=2, max=8, help="bits per weight and activation")
    granularity: str = option("channel", choices=("channel", "tensor"),
                              help="weights: one scale per output channel or per tensor (activations: per tensor)")
    scheme: str = option("symmetric", choices=("symmetric", "asymmetric"),
                         help="weights: symmetric (signed codes, zero point 0) or asymmetric (unsigned, a zero point)")
    activations: bool = option(True, help="also quantise the activation inputs of MAC nodes (calibrated)")
    activation_scheme: str = option("asymmetric", choices=("asymmetric", "symmetric"),
                                    help="activations: asymmetric (as onnxruntime's default) or symmetric")
    calibration: str = option("minmax", choices=("minmax", "percentile", "entropy"),
                              help="how activation ranges are found (onnxruntime's calibrators for the histograms)")
    samples: int = option(8, min=1, max=100000, help="seeded random calibration draws (when no inputs file)")
    inputs: str = option("", help="an .npz of calibration inputs, arrays named after the graph inputs")
    seed: int = option(0, min=0, help="seed of the random calibration draws")
    percentile: float = option(99.999, min=50.0, max=100.0, help="calibration=percentile: the percentile kept")
    measure: bool = option(True, help="run the model before and after in onnxruntime and report the error")

    def run(self, graph: Graph) -> PassResult:
        result = PassResult(False)
        weights, why_not = self._weights(graph)
        acts = self._activations(graph, weights) if self.activations else []
        result.why_not.extend(why_not)
        if not weights and not acts:
            return result
        need_runs = self.measure or acts
        feeds = sample_feeds(graph, self.samples, self.seed, self.inputs) if need_runs else []
        before = graph.copy() if self.measure else None
        totals_before = workload_totals(graph)
        old = upgrade_opset(graph, QDQ_OPSET)
        if old is not None:
            result.stats["opset_upgraded_from"] = old
            weights, _ = self._weights(graph)
            acts = self._activations(graph, weights) if self.activations else []
        ranges = calibrate(graph, acts, feeds, self.calibration, self.activation_scheme == "symmetric", self.bits,
                           self.percentile) if acts else {}
        weight_scales: dict[str, np.ndarray] = {}  # decoded weight -> its scale(s)
        done: dict[tuple[str, int], str] = {}
        for w in weights:
            key = (w.const, w.out_axis)
            if key not in done:
                done[key], weight_scales[done[key]] = self._quantize_weight(graph, w)
            w.node.inputs = tuple(done[key] if i == w.index else v for i, v in enumerate(w.node.inputs))
        for w in weights:
            remove_if_unused(graph, w.const)
        act_scales: dict[str, float] = {}  # decoded activation -> its scale
        for value, readers in acts:
            dq, act_scales[dq] = self._quantize_activation(graph, value, readers, ranges[value])
        biases = self._quantize_biases(graph, weights, weight_scales, act_scales) if acts else 0
        result.changed = True
        result.stats.update(weights_quantized=len(done), activations_quantized=len(acts), biases_quantized=biases)
        add_savings(result.stats, totals_before, workload_totals(graph))
        if before is not None:
            result.error = measure_error(before, graph, feeds)
        return result

    # ------------------------------------------------------------------ what to quantise
    def _weights(self, graph: Graph) -> tuple[list[Weight], list[tuple[str, str]]]:
        found, why_not = find_weights(graph)
        weights = []
        for w in found:
            t = graph.values[w.const].type
            if w.quantized:
                continue  # quantised already (by an earlier quantize)
            if t.annotation("codebook") is not None:
                why_not.append((w.node.name, f"the weight '%{w.const}' is shared through a codebook (share-weights)"))
            elif t.dtype != "f32":
                why_not.append((w.node.name, f"the weight '%{w.const}' is {t.dtype}, not f32"))
            else:
                weights.append(w)
        return weights, why_not

    def _activations(self, graph: Graph, weights: list[Weight]) -> list[tuple[str, list[Node]]]:
        """(value, MAC nodes reading it) for every float activation input of a MAC node."""
        weight_inputs = {(w.node.name, w.index) for w in weights}
        found: dict[str, list[Node]] = {}
        for node in graph.topo_nodes():
            if not is_onnx(node, *MAC_OPS):
                continue
            slots = (0, 1) if node.op in ("MatMul", "Gemm") else (0,)
            for i in slots:
                v = node.inputs[i] if i < len(node.inputs) else ""
                if not v or graph.is_const(v) or (node.name, i) in weight_inputs:
                    continue
                p = graph.producer(v)
                if graph.values[v].type.dtype != "f32" or (p is not None and is_onnx(p, "DequantizeLinear")):
                    continue
                readers = found.setdefault(v, [])
                if node not in readers:
                    readers.append(node)
        return list(found.items())

    # --------------------------------------------------------------------- rewriting
    def _qrange(self, scheme: str) -> tuple[int, int, np.dtype]:
        if scheme == "symmetric":
            q = 2 ** (self.bits - 1) - 1
            return -q, q, np.dtype(np.int8)
        return 0, 2 ** self.bits - 1, np.dtype(np.uint8)

    def _params(self, lo: np.ndarray, hi: np.ndarray, scheme: str) -> tuple[np.ndarray, np.ndarray]:
        """float32 scales and integer zero points for ranges [lo, hi] (arrays)."""
        qmin, qmax, dtype = self._qrange(scheme)
        lo, hi = np.minimum(lo, 0.0).astype(np.float64), np.maximum(hi, 0.0).astype(np.float64)
        if scheme == "symmetric":
            scale = np.maximum(np.abs(lo), np.abs(hi)) / qmax
            zp = np.zeros(scale.shape)
        else:
            scale = (hi - lo) / (qmax - qmin)
            zp = np.zeros(scale.shape)
        scale = np.array([short_float(s) for s in np.ravel(scale)], dtype=np.float32).reshape(scale.shape)
        scale = np.where((scale > 0) & np.isfinite(scale), scale, np.float32(1.0))  # an empty (or denormal) range
        if scheme == "asymmetric":
            zp = np.clip(np.rint(qmin - lo / scale.astype(np.float64)), qmin, qmax)
        return scale, zp.astype(dtype)

    def _annotation(self, scheme: str, scale, zero_point, axis: int | None = None) -> Annotation:
        params = {"bits": self.bits, "scheme": scheme, "scale": scale, "zero_point": zero_point,
                  "granularity": "tensor" if axis is None else "channel"}
        if axis is not None:
            params["axis"] = axis
        return Annotation.of("quant", params)

    def _quantize_weight(self, graph: Graph, w: Weight) -> tuple[str, np.ndarray]:
        """Add codes, scale, zero point and the DequantizeLinear for ``w``; returns the decoded
        value's name and its scale(s)."""
        array = graph.consts[w.const]
        qmin, qmax, _ = self._qrange(self.scheme)
        per_channel = self.granularity == "channel" and array.ndim >= 1
        if per_channel:
            rows = np.moveaxis(array, w.out_axis, 0).reshape(array.shape[w.out_axis], -1)
            scale, zp = self._params(rows.min(axis=1, initial=0.0), rows.max(axis=1, initial=0.0), self.scheme)
            shape = [1] * array.ndim
            shape[w.out_axis] = -1
            s_b, z_b = scale.reshape(shape), zp.reshape(shape)
        else:
            scale, zp = self._params(np.array(array.min(initial=0.0)), np.array(array.max(initial=0.0)), self.scheme)
            s_b, z_b = scale, zp
        q = np.divide(array, s_b, dtype=np.float32)  # in place from here: VGG-sized layers are 100M+ weights
        np.rint(q, out=q)
        if self.scheme == "asymmetric":
            q += z_b.astype(np.float32)
        codes = np.clip(q, qmin, qmax, out=q).astype(zp.dtype)
        base = w.const
        s_name, z_name = graph.fresh_name(f"{base}_scale"), graph.fresh_name(f"{base}_zp")
        graph.add_const(s_name, scale)
        graph.add_const(z_name, zp)
        if per_channel:
            ann = self._annotation(self.scheme, s_name, z_name, w.out_axis)
        else:
            ann = self._annotation(self.scheme, short_float(scale), int(zp))
        q_name = graph.fresh_name(f"{base}_q")
        graph.add_const(q_name, codes, (ann,) + _other_annotations(graph.values[w.const].type))
        out = graph.fresh_name(f"{base}_dq")
        attrs = {"axis": w.out_axis} if per_channel else {}
        graph.add_node("DequantizeLinear", [q_name, s_name, z_name], [out], attrs, name=graph.fresh_name(out),
                       types=[TensorType("f32", array.shape, (ann,))], meta={"inserted_by": self.name})
        return out, scale

    def _quantize_activation(self, graph: Graph, value: str, readers: list[Node],
                             bounds: tuple[float, float]) -> tuple[str, float]:
        """Add QuantizeLinear [-> Clip] -> DequantizeLinear after ``value`` for ``readers``;
        returns the decoded value's name and its scale."""
        scheme = self.activation_scheme
        qmin, qmax, dtype = self._qrange(scheme)
        scale, zp = self._params(np.array(bounds[0]), np.array(bounds[1]), scheme)
        ann = self._annotation(scheme, short_float(scale), int(zp))
        t = graph.values[value].type
        qtype = TensorType("i8" if dtype == np.int8 else "u8", t.shape, (ann,))
        s_name, z_name = graph.fresh_name(f"{value}_scale"), graph.fresh_name(f"{value}_zp")
        graph.add_const(s_name, np.array(scale, np.float32))
        graph.add_const(z_name, np.array(zp, dtype))
        meta = {"inserted_by": self.name}
        q = graph.fresh_name(f"{value}_q")
        graph.add_node("QuantizeLinear", [value, s_name, z_name], [q], name=graph.fresh_name(q), types=[qtype],
                       meta=meta)
        codes = q
        if self.bits < 8:  # the integer type holds 8 bits: keep the codes in b
            lo, hi = graph.fresh_name(f"{value}_lo"), graph.fresh_name(f"{value}_hi")
            graph.add_const(lo, np.array(qmin, dtype))
            graph.add_const(hi, np.array(qmax, dtype))
            codes = graph.fresh_name(f"{value}_c")
            graph.add_node("Clip", [q, lo, hi], [codes], name=graph.fresh_name(codes), types=[qtype], meta=meta)
        dq = graph.fresh_name(f"{value}_dq")
        graph.add_node("DequantizeLinear", [codes, s_name, z_name], [dq], name=graph.fresh_name(dq),
                       types=[TensorType(t.dtype, t.shape, (ann,) + _other_annotations(t))], meta=meta)
        for node in readers:
            node.inputs = tuple(dq if v == value else v for v in node.inputs)
        return dq, float(scale)

    def _quantize_biases(self, graph: Graph, weights: list[Weight], weight_scales: dict,
                         act_scales: dict[str, float]) -> int:
        """Int32 codes for the 1-D bias of a Conv/Gemm whose input and weight are quantised."""
        count = 0
        for w in weights:
            node = w.node
            if node.op not in ("Conv", "Gemm") or len(node.inputs) < 3 or not graph.is_const(node.inputs[2]):
                continue
            bias = graph.consts[node.inputs[2]]
            x_scale = act_scales.get(node.inputs[0])
            w_scale = weight_scales.get(node.inputs[1])
            if x_scale is None or w_scale is None or bias.ndim != 1 or bias.dtype != np.float32 \
                    or (node.op == "Gemm" and node.attrs.get("beta", 1.0) != 1.0):
                continue
            scale = np.array([short_float(s) for s in np.ravel(np.float64(x_scale) * w_scale)], np.float32)
            if scale.size not in (1, bias.size):
                continue
            per_channel = scale.size > 1
            codes = np.clip(np.rint(bias / scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
            base = node.inputs[2]
            s_name, z_name, q_name = (graph.fresh_name(f"{base}_{k}") for k in ("scale", "zp", "q"))
            graph.add_const(s_name, scale if per_channel else scale.reshape(()))
            graph.add_const(z_name, np.zeros(scale.shape if per_channel else (), np.int32))
            ann = Annotation.of("quant", {"bits": 32, "scheme": "symmetric",
                                          "granularity": "channel" if per_channel else "tensor",
                                          "scale": s_name if per_channel else short_float(scale[0]),
                                          "zero_point": z_name if per_channel else 0})
            graph.add_const(q_name, codes, (ann,))
            out = graph.fresh_name(f"{base}_dq")
            graph.add_node("DequantizeLinear", [q_name, s_name, z_name], [out], {"axis": 0} if per_channel else {},
                           name=graph.fresh_name(out), types=[TensorType("f32", bias.shape, (ann,))],
                           meta={"inserted_by": self.name})
            old = node.inputs[2]
            node.inputs = tuple(out if i == 2 else v for i, v in enumerate(node.inputs))
            remove_if_unused(graph, old)
            count += 1
        return count


def _other_annotations(t: TensorType) -> tuple[Annotation, ...]:
    return tuple(a for a in t.annotations if a.name != "quant")


ENTROPY_BINS = 512  # histogram bins for entropy: 2048 (TensorRT) costs ~1 s per tensor in onnxruntime's loop


def calibrate(graph: Graph, acts: list[tuple[str, list[Node]]], feeds: list[dict[str, np.ndarray]], method: str,
              symmetric: bool, bits: int, percentile: float) -> dict[str, tuple[float, float]]:
    """(low, high) of each activation value over ``feeds``, run in onnxruntime on ``graph``.
    ``minmax`` is the observed range; ``percentile`` and ``entropy`` are onnxruntime's
    histogram calibrators (onnxruntime.quantization.calibrate.HistogramCollector)."""
    names = [v for v, _ in acts]
    runner = session(graph, names)
    collected: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for f in feeds:
        out = runner.run(f)
        for n in names:
            collected[n].append(np.asarray(out[n], dtype=np.float32))
    observed = {n: (float(min(a.min(initial=0.0) for a in arrs)), float(max(a.max(initial=0.0) for a in arrs)))
                for n, arrs in collected.items()}
    for n, (lo, hi) in observed.items():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise PassError(f"calibration: '%{n}' takes non-finite values ({lo}, {hi}) on the calibration inputs",
                            hint='give inputs the model is meant for: quantize{inputs="calibration.npz"}')
    if method == "minmax":
        return observed
    from onnxruntime.quantization.calibrate import HistogramCollector

    # 2048 bins over the signed range and 2^bits quantised bins: TensorRT's 2048 / 128 per half
    if method == "percentile":
        collector = HistogramCollector("percentile", symmetric, 2048, 2 ** bits, percentile, "same")
    else:
        collector = HistogramCollector("entropy", symmetric, ENTROPY_BINS, 2 ** bits, percentile, "same")
    with contextlib.redirect_stdout(io.StringIO()):  # the collector prints its progress
        collector.collect({n: [a.reshape(-1) for a in arrs] for n, arrs in collected.items()})
        found = collector.compute_collection_result()
    # a threshold never widens the observed range (entropy's are symmetric about 0)
    return {n: (max(float(found[n][0]), observed[n][0]), min(float(found[n][1]), observed[n][1])) for n in names}
