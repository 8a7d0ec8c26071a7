"""Conversions between ONNX protobuf types/attributes and nvmc IR types/attribute values."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nvmc.ir.errors import ModelError
from nvmc.ir.graph import SUBGRAPH_DECODERS
from nvmc.ir.types import TensorType

_ONNX_TO_NVMC = {
    TensorProto.FLOAT: "f32", TensorProto.FLOAT16: "f16", TensorProto.DOUBLE: "f64",
    TensorProto.BFLOAT16: "bf16", TensorProto.INT8: "i8", TensorProto.INT16: "i16",
    TensorProto.INT32: "i32", TensorProto.INT64: "i64", TensorProto.UINT8: "u8",
    TensorProto.UINT16: "u16", TensorProto.UINT32: "u32", TensorProto.UINT64: "u64",
    TensorProto.BOOL: "bool", TensorProto.STRING: "str", TensorProto.COMPLEX64: "c64",
    TensorProto.COMPLEX128: "c128", TensorProto.FLOAT8E4M3FN: "f8e4m3fn",
    TensorProto.FLOAT8E4M3FNUZ: "f8e4m3fnuz", TensorProto.FLOAT8E5M2: "f8e5m2",
    TensorProto.FLOAT8E5M2FNUZ: "f8e5m2fnuz", TensorProto.UINT4: "u4", TensorProto.INT4: "i4",
    **{getattr(TensorProto, onnx_name): nvmc_name for onnx_name, nvmc_name in (
        ("FLOAT4E2M1", "f4e2m1"), ("FLOAT8E8M0", "f8e8m0"), ("UINT2", "u2"), ("INT2", "i2"),
        ("FLOAT6E2M3", "f6e2m3"), ("FLOAT6E3M2", "f6e3m2")) if hasattr(TensorProto, onnx_name)},  # newer onnx
}
_NVMC_TO_ONNX = {v: k for k, v in _ONNX_TO_NVMC.items()}
SUBGRAPH_DECODERS.append(onnx.GraphProto.FromString)  # the IR reads .nvir subgraphs through it


def elem_type_name(elem_type: int) -> str:
    if elem_type not in _ONNX_TO_NVMC:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise ModelError(f"element type {name} is not supported")
    return _ONNX_TO_NVMC[elem_type]


def onnx_elem_type(dtype: str) -> int:
    return _NVMC_TO_ONNX[dtype]


def type_from_proto(tp: onnx.TypeProto, what: str) -> TensorType | None:
    """TensorType of a ValueInfo's type; None when ONNX left it unknown."""
    kind = tp.WhichOneof("value")
    if kind is None:
        return None
    if kind != "tensor_type":
        raise ModelError(f"{what} has a {kind.replace('_type', '')} type; nvmc handles tensors only")
    tt = tp.tensor_type
    if tt.elem_type == TensorProto.UNDEFINED:
        return None
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
    return TensorType(elem_type_name(tt.elem_type), shape)


def value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, onnx_elem_type(t.dtype), None if t.shape is None else list(t.shape))


def to_array(tensor: onnx.TensorProto, base_dir: str | None = None) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor, base_dir or "")
    except Exception as e:  # onnx raises plain exceptions for bad payloads
        raise ModelError(f"tensor '{tensor.name}' cannot be read: {e}") from None


_PROBE_BYTES = 32 << 20


def from_array(array: np.ndarray, name: str) -> onnx.TensorProto:
    array = np.asarray(array, order="C")  # a filled constant (a broadcast view) is materialised here
    if array.nbytes > _PROBE_BYTES:
        # numpy_helper copies the bytes once more, then protobuf copies them into its own
        # memory and crashes (SIGSEGV) where that allocation fails (under a memory limit):
        # ask for both copies first, so that running out of memory is a MemoryError here
        probe = bytearray(2 * array.nbytes + (array.nbytes >> 3))
        del probe
    return numpy_helper.from_array(array, name)  # keeps 0-d scalars 0-d


def attr_from_proto(attr: onnx.AttributeProto, where: str) -> Any:
    A = onnx.AttributeProto
    t = attr.type
    if t == A.FLOAT:
        return _nice_float(attr.f)
    if t == A.INT:
        return int(attr.i)
    if t == A.STRING:
        return attr.s.decode("utf-8", "surrogateescape")
    if t == A.FLOATS:
        return [_nice_float(x) for x in attr.floats]
    if t == A.INTS:
        return [int(x) for x in attr.ints]
    if t == A.STRINGS:
        return [s.decode("utf-8", "surrogateescape") for s in attr.strings]
    if t == A.TENSOR:
        return to_array(attr.t)
    if t == A.GRAPH:
        return attr.g
    raise ModelError(f"{where}: attribute '{attr.name}' of type {A.AttributeType.Name(t)} is not supported")


def _nice_float(x: float) -> float:
    """The float32 value as the shortest decimal that reads back to it (0.02, not 0.0199999995)."""
    return float(str(np.float32(x))) if np.isfinite(x) else float(x)


def attr_to_proto(name: str, value: Any, op: str, domain: str, opset: int) -> onnx.AttributeProto:
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, from_array(value, ""))
    if isinstance(value, list) and not value:
        return helper.make_attribute(name, [], attr_type=_schema_attr_type(op, domain, opset, name))
    if isinstance(value, list) and any(isinstance(v, float) for v in value):
        value = [float(v) for v in value]
    return helper.make_attribute(name, value)


def _schema_attr_type(op: str, domain: str, opset: int, name: str) -> int:
    try:
        schema = onnx.defs.get_schema(op, opset, domain)
        return schema.attributes[name].type
    except Exception:
        return onnx.AttributeProto.INTS
