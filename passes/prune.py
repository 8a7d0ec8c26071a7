"""Magnitude pruning of MAC weights: unstructured, N:M, or whole output channels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nvmc.ir.graph import Graph, Node
from nvmc.ir.types import Annotation

from .base import OptionError, Pass, PassResult, option, register_pass
from .compression_common import (Weight, add_savings, along_axis, check_layer_map, dequantized, find_weight,
                                 find_weights, is_onnx, layer_value, measure_error, parse_layer_map, replace_const,
                                 sample_feeds, set_shape, workload_totals)


@register_pass("prune", exact=False)
@dataclass(frozen=True)
class Prune(Pass):
    """Zero the smallest weights of Conv/ConvTranspose/Gemm/MatMul, or remove whole output channels.

    1. The weight of each MAC node (see compression_common: a float constant, or integer
       codes under a DequantizeLinear, where "zero" is the zero point and the magnitude is
       the decoded value) is ranked by magnitude |w|, per layer.
    2. ``unstructured``: the ``sparsity`` fraction of smallest weights become zero.
       ``n:m`` (write ``pattern="n:m"``): in every group of ``m`` consecutive weights along
       the input channels (the reduction: C_in of a Conv at each kernel position, K of a
       Gemm/MatMul) the ``n`` largest are kept, so the density is n/m and ``sparsity`` is
       not used; a layer whose input channels are not a multiple of ``m`` is left alone.
       Both annotate the weight ``#sparsity<density=.., pattern=..>``; shapes do not change.
    3. ``channel``: floor(``sparsity`` x C_out) output channels with the smallest L1 norm
       are removed, really: the layer's weight, bias and per-channel scales shrink, the
       values downstream shrink, and so do their readers up to the next MAC node, whose
       input channels are removed (a Conv's weight axis 1, the rows of a Gemm/MatMul
       weight, also through a Flatten or a 2-D Reshape). Between them only ops that act
       per channel are followed: elementwise ops whose other operands are constants
       (sliced when they hold one value per channel), activations, BatchNormalization,
       pooling, per-tensor Quantize/DequantizeLinear. A layer whose channels reach anything
       else (a residual Add, a Concat, a grouped Conv, a Transpose, a graph output...) is
       left alone, with the reason.
    4. ``layers="conv1=0.5,fc*=0"`` sets the sparsity per layer (globs over node names,
       first match wins, 0 leaves a layer alone); a pattern that matches no layer is an error.
    5. Error: with ``measure`` (default) the model runs before and after in onnxruntime on
       ``samples`` seeded random draws or the ``.npz`` ``inputs`` (``PassResult.error``);
       ``stats`` has the weights zeroed, channels removed, and the bytes and MACs saved.

    Before (prune{pattern=channel,sparsity=0.5}):
        %a = Conv(%x, %w1, %b1) {kernel_shape=[3,3], pads=[1,1,1,1]} : f32[1,8,8,8]  // conv1
        %r = Relu(%a) : f32[1,8,8,8]
        %y = Conv(%r, %w2) {kernel_shape=[1,1]} : f32[1,4,8,8]  // conv2
    After (w1: f32[4,3,3,3], b1: f32[4], w2: f32[4,4,1,1]):
        %a = Conv(%x, %w1, %b1) {kernel_shape=[3,3], pads=[1,1,1,1]} : f32[1,4,8,8]  // conv1
        %r = Relu(%a) : f32[1,4,8,8]
        %y = Conv(%r, %w2) {kernel_shape=[1,1]} : f32[1,4,8,8]  // conv2
    """

    sparsity: float = option(0.5, min=0.0, max=0.99, help="fraction of weights (or channels) removed per layer")
    pattern: str = option("unstructured", choices=("unstructured", "n:m", "channel"),
                          help="unstructured, n:m (n kept in every m), or channel (output channels removed)")
    n: int = option(2, min=1, max=63, help="n:m: weights kept in each group")
    m: int = option(4, min=2, max=64, help="n:m: group size along the input channels")
    criterion: str = option("magnitude", choices=("magnitude",), help="what ranks weights (channels: L1 norm)")
    layers: str = option("", help='per-layer sparsity: "conv1=0.5,fc*=0" (globs over node names; 0 = leave alone)')
    samples: int = option(4, min=1, max=100000, help="seeded random draws to measure the error on")
    inputs: str = option("", help="an .npz of inputs to measure the error on, arrays named after the graph inputs")
    seed: int = option(0, min=0, help="seed of the random draws")
    measure: bool = option(True, help="run the model before and after in onnxruntime and report the error")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n >= self.m:
            raise OptionError(f"options of 'prune': n must be less than m (n={self.n}, m={self.m})",
                              hint="n:m keeps n weights in every group of m, e.g. n=2,m=4")
        parse_layer_map(self.layers, self.name, "layers", 0.0, 0.99)

    def run(self, graph: Graph) -> PassResult:
        result = PassResult(False)
        entries = parse_layer_map(self.layers, self.name, "layers", 0.0, 0.99)
        weights, why_not = find_weights(graph)
        result.why_not.extend(why_not)
        check_layer_map(entries, [w.node.name for w in weights], self.name)
        if not weights:
            return result
        feeds = sample_feeds(graph, self.samples, self.seed, self.inputs) if self.measure else []
        before = graph.copy() if self.measure else None
        totals_before = workload_totals(graph)
        if self.pattern == "channel":
            self._prune_channels(graph, [w.node for w in weights], entries, result)
        else:
            self._prune_weights(graph, weights, entries, result)
        result.changed = bool(result.stats.get("layers_pruned"))
        if result.changed:
            add_savings(result.stats, totals_before, workload_totals(graph))
            if before is not None:
                result.error = measure_error(before, graph, feeds)
        return result

    # ----------------------------------------------------------- unstructured and N:M
    def _prune_weights(self, graph: Graph, weights: list[Weight], entries, result: PassResult) -> None:
        done: set[str] = set()
        zeroed = layers = 0
        for w in weights:
            sparsity = layer_value(entries, w.node.name, self.sparsity)
            if w.const in done:
                continue
            if sparsity == 0.0 and (self.pattern == "unstructured" or entries):
                if entries:
                    result.why_not.append((w.node.name, "the layers map gives it sparsity 0"))
                continue
            values = dequantized(graph, w)
            keep = self._keep_mask(values, w, sparsity)
            if isinstance(keep, str):
                result.why_not.append((w.node.name, keep))
                continue
            done.add(w.const)
            array = graph.consts[w.const]
            before = int(np.count_nonzero(values))
            pruned = np.where(keep, array, _zero_of(graph, w, array)).astype(array.dtype)
            graph.set_const(w.const, pruned)
            after = int(np.count_nonzero(np.where(keep, values, 0)))
            params = {"density": round(after / max(1, values.size), 6), "pattern": self.pattern}
            if self.pattern == "n:m":
                params.update(n=self.n, m=self.m)
            _annotate(graph, w.const, Annotation.of("sparsity", params))
            zeroed += before - after
            layers += 1
        result.stats.update(layers_pruned=layers, weights_zeroed=zeroed)

    def _keep_mask(self, values: np.ndarray, w: Weight, sparsity: float) -> np.ndarray | str:
        magnitude = np.abs(values)
        if self.pattern == "unstructured":
            k = int(round(sparsity * values.size))
            if k == 0:
                return f"sparsity {sparsity:g} of {values.size} weights rounds to none"
            keep = np.ones(values.size, dtype=bool)
            keep[np.argpartition(magnitude.reshape(-1), k - 1)[:k]] = False
            return keep.reshape(values.shape)
        moved = np.moveaxis(magnitude, w.in_axis, -1)
        k = moved.shape[-1]
        if k % self.m:
            return f"its {k} input channels are not a multiple of m={self.m}"
        groups = moved.reshape(-1, self.m)
        if self.m <= 8:  # rank by pairwise comparison: m^2 passes, much faster than argsort on tiny rows
            cols = [groups[:, i] for i in range(self.m)]
            keep = np.empty(groups.shape, dtype=bool)
            for i in range(self.m):  # rank = larger ones + equal ones before it (a stable order)
                rank = np.zeros(len(groups), dtype=np.int32)
                for j in range(self.m):
                    if j != i:
                        rank += (cols[j] > cols[i]) if j > i else (cols[j] >= cols[i])
                keep[:, i] = rank < self.n
        else:
            order = np.argsort(-groups, axis=-1, kind="stable")
            keep = np.zeros(groups.shape, dtype=bool)
            np.put_along_axis(keep, order[:, :self.n], True, axis=-1)
        return np.moveaxis(keep.reshape(moved.shape), -1, w.in_axis)

    # -------------------------------------------------------------------- channels
    def _prune_channels(self, graph: Graph, nodes: list[Node], entries, result: PassResult) -> None:
        removed = layers = 0
        for node in nodes:
            if not graph.has_node(node.name):
                continue
            w = find_weight(node, graph)
            if not isinstance(w, Weight):
                continue
            sparsity = layer_value(entries, node.name, self.sparsity)
            if sparsity == 0.0:
                continue
            reason = _channel_layer_check(graph, node)
            channels = graph.consts[w.const].shape[w.out_axis]
            drop = int(math.floor(sparsity * channels + 1e-9))
            if not reason and drop == 0:
                reason = f"sparsity {sparsity:g} of {channels} output channels rounds to none"
            if reason:
                result.why_not.append((node.name, reason))
                continue
            drop = min(drop, channels - 1)
            values = dequantized(graph, w)
            scores = np.abs(np.moveaxis(values, w.out_axis, 0)).reshape(channels, -1).sum(axis=1)
            keep = np.sort(np.argsort(-scores, kind="stable")[:channels - drop])
            plan = _ChannelPlan(graph)
            reason = plan.layer(node, w, keep, channels)
            if reason:
                result.why_not.append((node.name, reason))
                continue
            plan.apply()
            removed += drop
            layers += 1
        result.stats.update(layers_pruned=layers, channels_removed=removed)


def _zero_of(graph: Graph, w: Weight, array: np.ndarray) -> np.ndarray | int:
    """What 'zero' is in ``w``'s constant: 0, or the zero point(s) of its codes."""
    if w.dq is None or len(w.dq.inputs) < 3 or not w.dq.inputs[2]:
        return 0
    return along_axis(graph.consts[w.dq.inputs[2]], w, array)


def _annotate(graph: Graph, value: str, ann: Annotation) -> None:
    v = graph.values[value]
    v.type = v.type.with_annotation(ann)


def _channel_layer_check(graph: Graph, node: Node) -> str | None:
    if node.op in ("Conv", "ConvTranspose") and node.attrs.get("group", 1) != 1:
        return f"grouped {node.op} (group={node.attrs['group']})"
    if node.op == "Gemm" and node.attrs.get("transA", 0):
        return "Gemm with transA"
    if node.op == "MatMul" and graph.type_of(node.outputs[0]).rank is None:
        return "its result has an unknown rank"
    return None


# Ops that act on each channel alone, for any channel axis: the first input carries the
# channels; further inputs must be constants holding one value (Clip bounds, Q/DQ scales).
_UNARY = {"Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf",
          "Gelu", "Softplus", "Softsign", "Mish", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Identity",
          "Dropout", "Clip", "Cast", "Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "Sin", "Cos",
          "QuantizeLinear", "DequantizeLinear"}
# Elementwise ops with broadcasting: other operands are constants (sliced when per channel).
_BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"}
_POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"}


class _ChannelPlan:
    """Removing some output channels of one layer: the checks first (``layer`` returns why
    not, changing nothing), then ``apply``."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.edits: list[Callable[[], None]] = []
        self.shapes: dict[str, tuple] = {}
        self.keep_of: dict[str, int] = {}  # walked value -> id of its keep array
        self.nodes: set[str] = set()

    def apply(self) -> None:
        for edit in self.edits:
            edit()
        for value, shape in self.shapes.items():
            set_shape(self.g, value, shape)

    def layer(self, node: Node, w: Weight, keep: np.ndarray, channels: int) -> str | None:
        g = self.g
        reason = self.slice_input(node, w.index, w.out_axis, keep)
        if reason:
            return reason
        out = node.outputs[0]
        rank = g.type_of(out).rank
        axis = rank - 1 if node.op == "MatMul" else 1
        if len(node.inputs) > 2 and node.inputs[2]:  # the bias: [C] for a Conv, broadcast for a Gemm
            reason = (self.slice_input(node, 2, 0, keep) if node.op in ("Conv", "ConvTranspose")
                      else self.slice_broadcast(node, 2, axis, rank, keep, channels))
            if reason:
                return reason
        self.nodes.add(node.name)
        return self.walk(out, axis, keep, channels)

    # ---------------------------------------------------------------- slicing
    def slice_input(self, node: Node, index: int, axis: int, keep: np.ndarray) -> str | None:
        """Schedule ``node``'s constant input ``index`` (or the codes under its
        DequantizeLinear) to keep only ``keep`` along ``axis``."""
        g = self.g
        value = node.inputs[index]
        if len(g.users(value)) > 1 or value in g.outputs:
            return f"input '%{value}' of {node.op} '{node.name}' is shared with other nodes"
        if g.is_const(value):
            self.edits.append(lambda: replace_const(g, node, index, np.take(g.consts[node.inputs[index]], keep,
                                                                           axis=axis), value))
            return None
        dq = g.producer(value)
        if dq is None or not is_onnx(dq, "DequantizeLinear") or not g.is_const(dq.inputs[0]):
            return f"input '%{value}' of {node.op} '{node.name}' is not a constant"
        codes = dq.inputs[0]
        ndim = g.consts[codes].ndim
        params = [i for i in (1, 2) if i < len(dq.inputs) and dq.inputs[i] and g.consts[dq.inputs[i]].size > 1]
        per_axis = bool(params) and int(dq.attrs.get("axis", 1)) % ndim == axis % ndim
        for i in [0] + (params if per_axis else []):
            if len(g.users(dq.inputs[i])) > 1:
                return f"the codes or scales of '%{value}' are shared with other nodes"
        self.edits.append(lambda: replace_const(g, dq, 0, np.take(g.consts[dq.inputs[0]], keep, axis=axis), codes))
        if per_axis:
            for i in params:
                self.edits.append(lambda i=i: replace_const(g, dq, i, np.take(g.consts[dq.inputs[i]], keep),
                                                            dq.inputs[i]))
        shape = list(g.type_of(value).shape)
        shape[axis] = len(keep)
        self.shapes[value] = tuple(shape)
        return None

    def slice_broadcast(self, node: Node, index: int, axis: int, rank: int, keep, channels: int) -> str | None:
        """A constant operand broadcast against a value of rank ``rank`` whose channels are
        on ``axis``: nothing to do if it holds one value along it, sliced if one per channel."""
        g = self.g
        value = node.inputs[index]
        shape = g.type_of(value).shape
        if shape is None:
            return f"input '%{value}' of {node.op} '{node.name}' has an unknown shape"
        at = axis - (rank - len(shape))
        if at < 0 or shape[at] == 1:
            return None
        if shape[at] != channels:
            return f"input '%{value}' of {node.op} '{node.name}' has {shape[at]} entries on the channel axis, not {channels}"
        return self.slice_input(node, index, at, keep)

    # ---------------------------------------------------------------- walking
    def walk(self, value: str, axis: int, keep: np.ndarray, channels: int) -> str | None:
        g = self.g
        if value in g.outputs:
            return f"its channels reach the graph output '%{value}'"
        t = g.type_of(value)
        if not t.is_static:
            return f"'%{value}' has a shape that is not static ({t})"
        shape = list(t.shape)
        shape[axis] = len(keep)
        self.shapes[value] = tuple(shape)
        self.keep_of[value] = id(keep)
        for user in g.users(value):
            if user.name in self.nodes:
                continue
            self.nodes.add(user.name)
            reason = self.consumer(user, value, axis, keep, channels)
            if reason:
                return reason
        return None

    def consumer(self, u: Node, v: str, axis: int, keep: np.ndarray, channels: int) -> str | None:
        g = self.g
        op = u.op if u.domain in ("", "ai.onnx") else u.qualified_op
        rank = len(g.type_of(v).shape)
        first = u.inputs[0] == v
        if op in _UNARY and first:
            for other in u.inputs[1:]:
                if other and (not g.is_const(other) or g.consts[other].size != 1):
                    return f"{op} '{u.name}' has a per-element operand '%{other}'"
            return self._walk_outputs(u, axis, keep, channels)
        if op in _BINARY:
            out_shape = g.type_of(u.outputs[0]).shape
            if out_shape != g.type_of(v).shape:
                return f"{op} '{u.name}' broadcasts '%{v}' to another shape"
            for i, other in enumerate(u.inputs):
                if other == v or not other:
                    continue
                if g.is_const(other):
                    reason = self.slice_broadcast(u, i, axis, rank, keep, channels)
                    if reason:
                        return reason
                elif self.keep_of.get(other) != id(keep):
                    return f"its channels meet '%{other}' in {op} '{u.name}', which would need the same channels"
            return self._walk_outputs(u, axis, keep, channels)
        if op in ("BatchNormalization", "InstanceNormalization") and first and axis == 1:
            for i in range(1, len(u.inputs)):
                reason = self.slice_input(u, i, 0, keep) if u.inputs[i] else None
                if reason:
                    return reason
            return self._walk_outputs(u, axis, keep, channels)
        if op in _POOLS and first and axis == 1:
            return self._walk_outputs(u, axis, keep, channels)
        if op in ("Conv", "ConvTranspose", "Gemm", "MatMul") and first:
            return self._reader(u, axis, rank, keep)
        if op in ("Flatten", "Reshape") and first and axis == 1 and rank >= 2:
            return self._flatten(u, v, keep, channels)
        return f"its channels reach {op} '{u.name}', which prune cannot shrink"

    def _walk_outputs(self, u: Node, axis: int, keep, channels: int) -> str | None:
        for o in u.outputs:
            if o and (self.g.has_users(o) or o in self.g.outputs):
                reason = self.walk(o, axis, keep, channels)
                if reason:
                    return reason
            elif o and self.g.type_of(o).rank == len(self.g.type_of(u.inputs[0]).shape):  # unread (a mask)
                self.shapes[o] = tuple(len(keep) if i == axis else d for i, d in enumerate(self.g.type_of(o).shape))
        return None

    def _reader(self, u: Node, axis: int, rank: int, keep) -> str | None:
        """A MAC node reading the channels: its weight loses the matching input channels."""
        w = find_weight(u, self.g)
        if not isinstance(w, Weight):
            return w or f"{u.op} '{u.name}' has no constant weight"
        if u.op in ("Conv", "ConvTranspose") and (u.attrs.get("group", 1) != 1 or axis != 1):
            return f"{u.op} '{u.name}' is grouped (group={u.attrs.get('group')})"
        if u.op == "Gemm" and (u.attrs.get("transA", 0) or axis != 1):
            return f"Gemm '{u.name}' has transA"
        if u.op == "MatMul" and axis != rank - 1:
            return f"MatMul '{u.name}' reads the channels on axis {axis}, not its reduction axis"
        return self.slice_input(u, w.index, w.in_axis, keep)

    def _flatten(self, u: Node, v: str, keep, channels: int) -> str | None:
        """Flatten (axis 1) or a Reshape to [N, C*S]: each channel is a block of S features."""
        g = self.g
        in_shape = g.type_of(v).shape
        out = u.outputs[0]
        out_shape = g.type_of(out).shape
        if out_shape is None or len(out_shape) != 2 or out_shape[0] != in_shape[0]:
            return f"{u.op} '{u.name}' does not flatten the channels into the features ({out_shape})"
        if u.op == "Flatten" and u.attrs.get("axis", 1) != 1:
            return f"Flatten '{u.name}' has axis {u.attrs.get('axis')}"
        block = int(np.prod(in_shape[2:], dtype=np.int64))
        features = (keep[:, None] * block + np.arange(block)[None, :]).reshape(-1)
        if u.op == "Reshape":
            target = u.inputs[1]
            if not g.is_const(target):
                return f"the shape of Reshape '{u.name}' is not a constant"
            new = np.array([in_shape[0], features.size], dtype=g.consts[target].dtype)
            self.edits.append(lambda: replace_const(g, u, 1, new, target))
        return self.walk(out, 1, features, channels * block)
