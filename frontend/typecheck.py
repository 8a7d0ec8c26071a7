"""Check the IR's value types against ONNX's own shape inference.

The graph is exported without intermediate types, ONNX infers them (strict mode), and
every value whose type ONNX knows must agree with the IR: same element type, same rank,
and equal dimensions wherever both sides have a number.
"""

from __future__ import annotations

import onnx

from functools import lru_cache

from nvmc.ir.errors import VerifyError, did_you_mean
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
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VerifyError(f"ONNX shape inference rejects the graph: {first}") from None
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
        if len(ours.shape) != len(onnx_type.shape):
            raise VerifyError(f"{where} is typed {ours} but ONNX infers {onnx_type}")
        for a, b in zip(ours.shape, onnx_type.shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                raise VerifyError(f"{where} is typed {ours} but ONNX infers {onnx_type}")
    graph.analysis_cache["onnx-types"] = (graph.version, True)
