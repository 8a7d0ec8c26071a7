"""What quantize, prune and share-weights share: where a layer's weights are, running the
model in onnxruntime (calibration, measured error), the opset upgrade QDQ needs, per-layer maps.

A *weight* is a constant read by a MAC node (Conv, ConvTranspose, Gemm, MatMul), either
directly (float weights) or through a ``DequantizeLinear`` of integer codes (a weight the
``quantize`` pass has already quantised). ``Weight.out_axis`` is the axis of its output
channels (features), ``Weight.in_axis`` the axis of its input channels (the reduction):

    Conv           W[C_out, C_in/group, k...]   out 0, in 1
    ConvTranspose  W[C_in, C_out/group, k...]   out 1, in 0
    Gemm           B[K, N] (B[N, K] if transB)  out 1, in 0 (out 0, in 1)
    MatMul         B[..., K, N] (input 1)       out -1, in -2
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from nvmc.ir.errors import did_you_mean, first_line
from nvmc.ir.files import INPUTS_NPZ_BYTES, load_npz
from nvmc.ir.graph import Graph, Node
from nvmc.ir.types import TensorType, numpy_dtype

from .base import OptionError, PassError

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
QDQ_OPSET = 13  # per-axis QuantizeLinear / DequantizeLinear
# A compression pass works on a weight as dense float arrays (several copies for k-means or
# statistics): memory in proportion to the weights the model holds. A *filled* constant (a
# ConstantOfShape, stored as a broadcast view) holds nothing until a pass materialises it, so
# a 154-byte model can name gigabytes; one of more than this many elements is left alone,
# said why (it holds one value: there is nothing to compress).
MAX_FILLED_WEIGHT_ELEMENTS = 2**24


@dataclass(frozen=True)
class Weight:
    node: Node  # the MAC node reading the weight
    index: int  # its input slot
    value: str  # what the node reads: the constant, or the DequantizeLinear's result
    const: str  # the constant holding the data: float weights or integer codes
    dq: Node | None  # the DequantizeLinear decoding the codes, if quantised
    out_axis: int
    in_axis: int

    @property
    def quantized(self) -> bool:
        return self.dq is not None


def is_onnx(node: Node, *ops: str) -> bool:
    return node.domain in ("", "ai.onnx") and node.op in ops


def weight_slot(node: Node, graph: Graph) -> tuple[int, int, int] | str | None:
    """(input slot, out axis, in axis) of the weight of a MAC node; why not (str); None if
    the node is not a MAC node."""
    if not is_onnx(node, *MAC_OPS):
        from .workload import has_mac_rule

        if has_mac_rule(node.qualified_op):  # an nvmc op with MACs (nvmc.WinogradConv): said, not skipped silently
            return (f"{node.qualified_op} computes its MACs in a form of its own; the compression passes rewrite "
                    f"{', '.join(MAC_OPS)}: run them before the pass that made it")
        return None
    slot = 1  # every MAC op reads its weight on input 1
    if node.op in ("Conv", "ConvTranspose"):
        axes = (0, 1) if node.op == "Conv" else (1, 0)
    elif node.op == "Gemm":
        axes = (0, 1) if node.attrs.get("transB", 0) else (1, 0)
    else:
        rank = graph.type_of(node.inputs[1]).rank if len(node.inputs) > 1 else None
        if rank is None or rank < 2:
            return f"{node.op} '{node.name}' has no 2-D weight operand"
        axes = (rank - 1, rank - 2)
    if len(node.inputs) <= slot or not node.inputs[slot]:
        return f"{node.op} '{node.name}' has no weight input"
    return slot, axes[0], axes[1]


def find_weight(node: Node, graph: Graph) -> Weight | str | None:
    """The weight of a MAC node; why it has none usable (str); None for other nodes."""
    slot = weight_slot(node, graph)
    if slot is None or isinstance(slot, str):
        return slot
    index, out_axis, in_axis = slot
    value = node.inputs[index]
    p = graph.producer(value)
    if graph.is_const(value):
        const, dq = value, None
    elif p is not None and is_onnx(p, "DequantizeLinear") and graph.is_const(p.inputs[0]):
        const, dq = p.inputs[0], p
    else:
        const = None
    if const is not None:
        array = graph.consts[const]
        if array.size > MAX_FILLED_WEIGHT_ELEMENTS and 0 in array.strides:
            return (f"its weight '%{const}' is one value filled into {array.size:,} elements (a ConstantOfShape); "
                    f"a compression pass materialises at most {MAX_FILLED_WEIGHT_ELEMENTS:,}")
        return Weight(node, index, value, const, dq, out_axis, in_axis)
    what = "a graph input" if p is None else f"computed by {p.op} '{p.name}'"
    return f"input {index} of {node.op} '{node.name}' is {what}, not a constant weight"


def find_weights(graph: Graph) -> tuple[list[Weight], list[tuple[str, str]]]:
    """Every MAC node's weight, in topological order, and (node, reason) for those without."""
    found, why_not = [], []
    for node in graph.topo_nodes():
        w = find_weight(node, graph)
        if w is None:
            continue
        if isinstance(w, str):
            why_not.append((node.name, w))
        else:
            found.append(w)
    return found, why_not


def dequantized(graph: Graph, w: Weight) -> np.ndarray:
    """The float values of a weight (decoding integer codes with their scale and zero point)."""
    array = graph.consts[w.const]
    if w.dq is None:
        return array
    scale = graph.consts[w.dq.inputs[1]].astype(np.float32)
    zp = graph.consts[w.dq.inputs[2]] if len(w.dq.inputs) > 2 and w.dq.inputs[2] else np.zeros((), np.int32)
    scale, zp = along_axis(scale, w, array), along_axis(zp, w, array)
    return (array.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale


def along_axis(param: np.ndarray, w: Weight, array: np.ndarray) -> np.ndarray:
    """A per-axis scale or zero point of ``w``'s DequantizeLinear, shaped to broadcast against its codes ``array``."""
    if param.ndim != 1 or array.ndim < 2:
        return param
    shape = [1] * array.ndim
    shape[int(w.dq.attrs.get("axis", 1)) % array.ndim] = -1
    return param.reshape(shape)


def short_float(x: float) -> float:
    """``x`` rounded to float32, as the shortest decimal that reads back to that float32, so
    annotations print short and materialise exactly."""
    return float(str(np.float32(x)))


# ------------------------------------------------------------------ editing helpers
def replace_const(graph: Graph, node: Node, index: int, array: np.ndarray, base: str) -> str:
    """Give ``node`` the constant ``array`` on input ``index``: the constant is changed in
    place when ``node`` is its only reader, else a new constant is added for ``node``."""
    old = node.inputs[index]
    if graph.is_const(old) and old not in graph.outputs and all(u is node for u in graph.users(old)):
        graph.set_const(old, array)
        return old
    name = graph.fresh_name(base)
    graph.add_const(name, array, graph.values[old].type.annotations if old in graph.values else ())
    node.inputs = tuple(name if i == index else v for i, v in enumerate(node.inputs))
    return name


def set_shape(graph: Graph, value: str, shape: Sequence[Any]) -> None:
    t = graph.values[value].type
    if t.shape != tuple(shape):
        graph.values[value].type = t.with_shape(tuple(shape))


def remove_if_unused(graph: Graph, value: str) -> None:
    if value and graph.is_const(value) and not graph.has_users(value) and value not in graph.outputs:
        graph.remove_value(value)


# -------------------------------------------------------------------- layer maps
def parse_layer_map(text: str, owner: str, option: str, lo: float, hi: float) -> list[tuple[str, float]]:
    """'conv1=0.5,fc*=0' -> [('conv1', 0.5), ('fc*', 0.0)]; OptionError naming a bad entry."""
    entries = []
    for raw in (e.strip() for e in text.replace(";", ",").split(",")):
        if not raw:
            continue
        pattern, eq, value = raw.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not eq or not pattern.strip() or not lo <= number <= hi:
            raise OptionError(f"option '{option}' of '{owner}': entry '{raw}' is not LAYER=VALUE with a value in "
                              f"[{lo:g}, {hi:g}]", hint=f'e.g. {option}="conv1=0.5,fc*=0" (globs over node names)')
        entries.append((pattern.strip(), number))
    return entries


def layer_value(entries: list[tuple[str, float]], name: str, default: float) -> float:
    for pattern, value in entries:
        if fnmatch.fnmatchcase(name, pattern):
            return value
    return default


def check_layer_map(entries: list[tuple[str, float]], names: Iterable[str], owner: str) -> None:
    names = list(names)
    for pattern, _ in entries:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise PassError(f"{owner}: layer pattern '{pattern}' matches no Conv/Gemm/MatMul node"
                            f"{did_you_mean(pattern, names)}", hint="patterns are globs over node names")


# --------------------------------------------------------------- running the model
def session(graph: Graph, extra_outputs: Sequence[str] = ()):
    """An onnxruntime session on ``graph`` (frontend/runtime.py) whose failures are PassErrors."""
    from nvmc.frontend.runtime import Session  # onnxruntime loads when a pass runs a graph

    return Session(graph, "model", extra_outputs=extra_outputs, error=PassError)


def sample_feeds(graph: Graph, samples: int, seed: int, inputs: str = "") -> list[dict[str, np.ndarray]]:
    """Input draws: seeded random ones (floats ~ N(0, 1), integers in [0, 8), booleans fair
    coins, as the numerics harness draws them), or the arrays of the ``.npz`` ``inputs``.

    In an ``.npz``, each array is named after a graph input and holds one sample of the
    input's shape, several stacked on a new leading axis, or several concatenated along
    the batch axis (a leading dimension that is a multiple of the input's)."""
    from nvmc.frontend.runtime import draw

    if inputs:
        return _npz_feeds(graph, inputs)
    rng = np.random.default_rng(seed)
    types = {name: graph.values[name].type for name in graph.inputs}
    return [{name: draw(rng, tuple(d if isinstance(d, int) else 1 for d in (t.shape or ())), numpy_dtype(t.dtype))
             for name, t in types.items()} for _ in range(samples)]


def _npz_feeds(graph: Graph, path: str) -> list[dict[str, np.ndarray]]:
    arrays = load_npz(path, "calibration inputs", max_bytes=INPUTS_NPZ_BYTES, error=PassError)
    names = list(graph.inputs)
    for key in arrays:
        if key not in names:
            raise PassError(f"'{path}': array '{key}' is not an input of the model{did_you_mean(key, names)}",
                            hint=f"inputs are: {', '.join(names)}")
    split: dict[str, list[np.ndarray]] = {}
    for name in names:
        if name not in arrays:
            raise PassError(f"'{path}': no array for input '{name}'")
        t = graph.values[name].type
        shape = tuple(t.shape or ())
        a = arrays[name].astype(numpy_dtype(t.dtype), copy=False)
        if a.shape == shape:
            split[name] = [a]
        elif a.shape[1:] == shape:
            split[name] = list(a)
        elif shape and a.ndim == len(shape) and a.shape[1:] == shape[1:] and isinstance(shape[0], int) \
                and shape[0] > 0 and a.shape[0] % shape[0] == 0:
            split[name] = np.split(a, a.shape[0] // shape[0])
        else:
            raise PassError(f"'{path}': array '{name}' has shape {list(a.shape)}; the input is {t}",
                            hint="give one sample of the input's shape, or samples stacked on a new first axis")
    counts = {len(v) for v in split.values()}
    if len(counts) != 1:
        raise PassError(f"'{path}': the arrays hold different numbers of samples ({sorted(counts)})")
    return [{n: split[n][i] for n in names} for i in range(counts.pop())]


def measure_error(before: Graph, after: Graph, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """The error of ``after`` against ``before`` on ``feeds``, by the numerics harness's
    metrics: max abs / max rel error, SQNR (dB), cosine, top-1 agreement (classifiers).
    Over several outputs, the worst of each; infinite SQNR (equal outputs) is left out."""

    from nvmc.frontend.runtime import compare_arrays

    a, b = session(before), session(after)
    runs = [(a.run(f), b.run(f)) for f in feeds]
    worst: dict[str, float] = {}
    for name in a.output_names:
        ref = np.concatenate([r[name].reshape(1, *r[name].shape) for r, _ in runs])
        out = np.concatenate([o[name].reshape(1, *o[name].shape) for _, o in runs])
        if ref.ndim >= 3:  # samples x batch x ... -> (samples * batch) x ...
            ref, out = ref.reshape(-1, *ref.shape[2:]), out.reshape(-1, *out.shape[2:])
        elif ref.ndim == 2 and len(runs) == 1:
            ref, out = ref[0], out[0]
        c = compare_arrays(name, ref, out)
        metrics = {"max_abs_err": c.max_abs_err, "max_rel_err": c.max_rel_err, "sqnr_db": c.sqnr_db,
                   "cosine": c.cosine, "top1_agreement": c.top1_agreement}
        for key, value in metrics.items():
            if value is None or (key == "sqnr_db" and math.isinf(value)):
                continue
            higher_is_worse = key in ("max_abs_err", "max_rel_err")
            if key not in worst or (value > worst[key] if higher_is_worse else value < worst[key]):
                worst[key] = float(value)
    return worst


def workload_totals(graph: Graph) -> dict[str, float] | None:
    """Weight bytes, activation bytes and MACs (workload analysis), None when the graph has
    shapes the analysis cannot bind."""
    from nvmc.ir.errors import ShapeError

    from .analysis import get_analysis

    try:
        w = get_analysis(graph, "workload")
    except ShapeError:
        return None
    c = w.columns
    return {"weight_bytes": float(c["weight_bytes"].sum()), "activation_bytes": float(c["output_bytes"].sum()),
            "macs": float(c["macs"].sum())}


def add_savings(stats: dict[str, float], before: dict[str, float] | None, after: dict[str, float] | None) -> None:
    if before is None or after is None:
        return
    stats["weight_bytes_saved"] = before["weight_bytes"] - after["weight_bytes"]
    stats["activation_bytes_saved"] = before["activation_bytes"] - after["activation_bytes"]
    stats["bytes_saved"] = stats["weight_bytes_saved"] + stats["activation_bytes_saved"]
    stats["macs_saved"] = before["macs"] - after["macs"]


# ------------------------------------------------------------------ opset upgrade
def upgrade_opset(graph: Graph, version: int) -> int | None:
    """Raise the graph's ONNX opset to ``version`` (onnx's version converter, as
    onnxruntime's quantiser does), in place; returns the old version, or None if it was
    recent enough. Node names, value names, types' annotations and node metadata are kept;
    the converter may add nodes (e.g. Unsqueeze's axes become an input in opset 13)."""
    from nvmc.frontend import import_model, to_onnx
    from onnx import version_converter

    old = graph.opsets.get("", 1)
    if old >= version:
        return None
    if any(n.domain not in ("", "ai.onnx") for n in graph.nodes):
        raise PassError(f"the graph's ONNX opset is {old} and it has non-ONNX ops; quantisation needs opset "
                        f">= {version}", hint="quantise before passes that introduce nvmc ops")
    limit = 64
    skeleton = to_onnx(graph, value_infos=False, large_consts_as_inputs=limit)
    try:
        converted = version_converter.convert_version(skeleton, version)
    except Exception as e:
        first = first_line(e)
        raise PassError(f"cannot upgrade the model from opset {old} to {version}: {first}",
                        hint=f"export the model at opset >= {version}") from None
    new = import_model(converted, source="opset upgrade")
    weights = {n for n, a in graph.consts.items() if a.size > limit}
    _transplant(graph, new, weights)
    return old


def _transplant(graph: Graph, new: Graph, weights: set[str]) -> None:
    """Make ``graph`` hold ``new``'s nodes, constants and opsets; ``weights`` (constants
    that ``new`` has as graph inputs) keep their data."""
    old_types = {name: v.type for name, v in graph.values.items()}
    old_meta = {n.name: n.meta for n in graph.nodes}
    graph.outputs = []
    for node in reversed(graph.topo_nodes()):
        graph.remove_node(node)
    keep = set(new.consts) | weights | set(graph.inputs)
    for name in [n for n in graph.consts if n not in keep]:
        graph.remove_value(name)
    for name, array in new.consts.items():
        if name in graph.consts:
            if not np.array_equal(graph.consts[name], array):
                graph.set_const(name, array)
        else:
            graph.add_const(name, array)

    def typed(name: str, t: TensorType) -> TensorType:
        before = old_types.get(name)
        if before is None:
            return t
        # the converter changes op versions, not what a value holds: a shape the re-import could
        # not infer again (shape arithmetic over a weight it saw only as a typed input) is kept
        shape = before.shape if not t.is_static and before.is_static and before.dtype == t.dtype else t.shape
        return TensorType(t.dtype, shape, before.annotations)

    for node in new.topo_nodes():
        meta = old_meta.get(node.name, node.meta)
        graph.add_node(node.op, node.inputs, node.outputs, node.attrs, name=node.name, domain=node.domain,
                       types=[typed(o, new.values[o].type) for o in node.outputs], meta=meta)
    graph.outputs = list(new.outputs)
    graph.opsets = dict(new.opsets)
