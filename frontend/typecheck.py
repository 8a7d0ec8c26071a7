"""Check the IR's value types against ONNX's own shape inference.

The graph is exported without intermediate types, ONNX infers them (strict mode), and
every value whose type ONNX knows must agree with the IR: same element type, same rank,
and equal dimensions wherever both sides have a number.
"""

from __future__ import annotations

import math
from functools import lru_cache

import onnx

from nvmc.ir.errors import NvmcError, VerifyError, did_you_mean, first_line
from nvmc.ir.graph import Graph, gc_paused

from .onnx_export import lower_nvmc_ops, to_onnx
from .onnx_types import _schema_attr_type, type_from_proto

_LIST_KINDS = {onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS, onnx.AttributeProto.STRINGS,
               onnx.AttributeProto.TENSORS, onnx.AttributeProto.GRAPHS}


def _check_empty_lists(graph: Graph) -> None:
    """An empty list takes its ONNX kind from the op's schema: one given for a scalar
    attribute (``alpha=[]``) cannot be written (onnx.helper asserts)."""
    for node in graph.nodes:
        for key, value in node.attrs.items():
            if isinstance(value, list) and not value:
                opset = graph.opsets.get(node.domain, graph.opsets.get("", 17))
                if _schema_attr_type(node.op, node.domain, opset, key) not in _LIST_KINDS:
                    raise VerifyError(f"node '{node.name}' ({node.qualified_op}): attribute '{key}' is an empty "
                                      f"list, but the op takes a single value there",
                                      hint="give it a value or leave it out")


MAX_PROPAGATED = 1 << 20  # values ONNX's data propagation computes for one Range (about 0.3 s and 100 MB a million)


def check_propagation(model: onnx.ModelProto, error: type[NvmcError] = VerifyError) -> None:
    """Refuse a Range whose constant inputs make more than MAX_PROPAGATED values, before ONNX
    shape inference runs: its data propagation computes each of them as a protobuf dimension
    (a 200-byte model asking for 2**28 takes every byte of the machine's memory)."""
    graphs = [model.graph]
    while graphs:
        g = graphs.pop()
        scalars = {t.name: t for t in g.initializer if len(t.dims) == 0 or list(t.dims) == [1]}
        for node in g.node:
            if node.op_type == "Constant":
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                if value is not None and node.output and (len(value.dims) == 0 or list(value.dims) == [1]):
                    scalars[node.output[0]] = value
            for a in node.attribute:
                graphs += [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            if node.op_type != "Range" or len(node.input) != 3 or not all(i in scalars for i in node.input):
                continue
            try:
                start, limit, delta = (float(onnx.numpy_helper.to_array(scalars[i]).reshape(-1)[0]) for i in node.input)
                count = math.ceil((limit - start) / delta) if delta else 0
            except (ValueError, OverflowError, IndexError, TypeError):  # NaN, inf, a damaged tensor: no number
                continue
            if count > MAX_PROPAGATED:
                raise error(f"Range node '{node.name or node.output[0]}' makes {count:,} values from constant inputs; "
                            f"ONNX shape inference computes at most {MAX_PROPAGATED:,} here",
                            hint="check its start, limit and delta (a typo?)")


def infer_strict(model: onnx.ModelProto, failure: str, error: type[NvmcError] = VerifyError,
                 where: str | None = None) -> onnx.ModelProto:
    """ONNX shape inference in strict mode, with data propagation (after ``check_propagation``):
    a node whose declared types contradict inference is an error, not a graph whose types
    `verify` would later reject. It raises ``error`` with ``failure`` and ONNX's first line."""
    check_propagation(model, error)
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        first = first_line(e)
        raise error(f"{failure}: {first}", where=where) from None


@lru_cache(maxsize=None)
def _schema(op: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op, opset, domain)
    except onnx.defs.SchemaError:
        return None


@lru_cache(maxsize=None)
def _op_names(domain: str) -> tuple[str, ...]:
    return tuple(sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain == domain}))


def _check_schemas(graph: Graph) -> None:
    """Every ONNX op exists at the graph's opset and takes the attributes it is given (a
    hand-edited .nvir with ``Cnv`` or ``kernel_shap`` must not reach an export that
    onnxruntime then refuses). nvmc ops are lowered before this runs."""
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx", "ai.onnx.ml"):
            continue
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = graph.opsets.get(domain, graph.opsets.get("", 17))
        schema = _schema(node.op, domain, opset)
        if schema is None:
            raise VerifyError(f"node '{node.name}' uses op '{node.op}', which is not an ONNX operator in opset "
                              f"{opset}{did_you_mean(node.op, _op_names(domain))}",
                              hint="fix the op name (ONNX op names are case-sensitive)")
        for key in node.attrs:
            if key not in schema.attributes:
                raise VerifyError(f"node '{node.name}' ({node.op}): '{key}' is not an attribute of {node.op}"
                                  f"{did_you_mean(key, sorted(schema.attributes))}",
                                  hint=f"{node.op} takes: {', '.join(sorted(schema.attributes)) or 'no attributes'}")


def verify_types(graph: Graph) -> None:
    cached = graph.analysis_cache.get("onnx-types")
    if cached and cached[0] == graph.version:
        return
    lowered = lower_nvmc_ops(graph)
    _check_schemas(lowered)
    _check_empty_lists(lowered)
    # Weights are passed as typed inputs: inference needs their types, not their data.
    with gc_paused():  # 100k protobuf messages: the collector's full passes would add ~30 %
        model = to_onnx(lowered, value_infos=False, large_consts_as_inputs=64)
    for out in model.graph.output:  # let ONNX infer these too, so a mismatch names the value
        out.type.tensor_type.ClearField("shape")
    inferred = infer_strict(model, "ONNX shape inference rejects the graph")
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        onnx_type = type_from_proto(vi.type, f"value '{vi.name}'")
        if onnx_type is None or vi.name not in lowered.values:
            continue
        ours = lowered.values[vi.name].type
        producer = lowered.producer(vi.name)
        where = f"value '%{vi.name}'" + (f" of node '{producer.name}' ({producer.op})" if producer else "")
        if ours.dtype != onnx_type.dtype:
            raise VerifyError(f"{where} is typed {ours.dtype} but ONNX infers {onnx_type.dtype}")
        if ours.shape is None or onnx_type.shape is None:
            continue
        if len(ours.shape) != len(onnx_type.shape) or any(
                isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(ours.shape, onnx_type.shape)):
            raise VerifyError(f"{where} is typed {ours} but ONNX infers {onnx_type}")
    graph.analysis_cache["onnx-types"] = (graph.version, True)
