"""Small ONNX models that put one element type where a model can hold it, for the dtype
fuzzer (tests/test_fuzz_surfaces.py): every ``onnx.TensorProto`` data type but UNDEFINED, in
a graph input, an initializer, a Cast target, a Constant value and a DequantizeLinear input,
at several opsets.

    data = dtype_model("INT4", "dequantize", opset=21, rng=np.random.default_rng(0))

The models are built as ONNX allows them, not as nvmc would like them: some are refused by
onnx's checker or shape inference (a type an op does not take at that opset), and nvmc must
then say so cleanly (exit 2), never crash.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = [name for name, v in TensorProto.DataType.items() if v != TensorProto.UNDEFINED]
PLACES = ["input", "initializer", "cast", "constant", "dequantize"]
_NEWEST = onnx.defs.onnx_opset_version()
OPSETS = sorted({o for o in (11, 13, 17, 19, 21, 23, 25, _NEWEST) if o <= _NEWEST})
_SUB_BYTE = {"UINT4", "INT4", "FLOAT4E2M1", "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2"}


def _values(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray | list:
    """``n`` values that fit ``dtype`` (bytes for STRING, complex for COMPLEX*)."""
    dt = getattr(TensorProto, dtype)
    if dt == TensorProto.STRING:
        return [bytes(rng.integers(97, 123, size=3).tolist()) for _ in range(n)]
    if dtype == "BOOL":
        return rng.integers(0, 2, size=n).astype(bool)
    if dtype.startswith("COMPLEX"):
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(helper.tensor_dtype_to_np_dtype(dt))
    if dtype.startswith(("UINT", "INT")):
        bits = {"UINT2": 2, "INT2": 2, "UINT4": 4, "INT4": 4}.get(dtype, 8)
        lo = 0 if dtype.startswith("U") else -(1 << (bits - 1))
        return rng.integers(lo, lo + (1 << bits), size=n)
    return rng.uniform(-2, 2, size=n).astype(np.float32)  # helper.make_tensor converts to the float format


def tensor(dtype: str, dims: list[int], name: str, rng: np.random.Generator) -> onnx.TensorProto:
    dt = getattr(TensorProto, dtype)
    values = _values(dtype, int(np.prod(dims)) if dims else 1, rng)
    if dtype in _SUB_BYTE or dtype.startswith(("FLOAT8", "BFLOAT")) or dt == TensorProto.STRING:
        return helper.make_tensor(name, dt, dims, list(values) if not isinstance(values, list) else values)
    array = np.asarray(values).astype(helper.tensor_dtype_to_np_dtype(dt)).reshape(dims)
    return numpy_helper.from_array(array, name)


def dtype_model(dtype: str, place: str, opset: int, rng: np.random.Generator, *, newest_ir: bool = True) -> bytes:
    """A model with ``dtype`` at ``place``; serialized as built (not checked). Its IR version is
    the newest onnx knows, or (``newest_ir=False``) the one that came with ``opset``."""
    dt = getattr(TensorProto, dtype)
    f32 = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    nodes, inits, inputs, outputs = [], [], [], []
    if place == "input":
        inputs = [vi("x", dt, [2, 3])]
        nodes = [helper.make_node("Identity", ["x"], ["y"], name="use_x")]
        outputs = [vi("y", dt, [2, 3])]
    elif place == "initializer":
        inits = [tensor(dtype, [2, 3], "w", rng)]
        inputs = [vi("x", f32, [2, 3])]
        nodes = [helper.make_node("Cast", ["w"], ["wf"], name="cast_w", to=f32),
                 helper.make_node("Add", ["x", "wf"], ["y"], name="add")]
        outputs = [vi("y", f32, [2, 3])]
    elif place == "cast":
        inputs = [vi("x", f32, [2, 3])]
        nodes = [helper.make_node("Cast", ["x"], ["c"], name="to_type", to=dt),
                 helper.make_node("Cast", ["c"], ["y"], name="back", to=f32)]
        outputs = [vi("y", f32, [2, 3])]
    elif place == "constant":
        inputs = [vi("x", f32, [2, 3])]
        nodes = [helper.make_node("Constant", [], ["k"], name="const", value=tensor(dtype, [2, 3], "k", rng)),
                 helper.make_node("Cast", ["k"], ["kf"], name="cast_k", to=f32),
                 helper.make_node("Mul", ["x", "kf"], ["y"], name="mul")]
        outputs = [vi("y", f32, [2, 3])]
    elif place == "dequantize":
        inits = [tensor(dtype, [4, 4], "wq", rng), numpy_helper.from_array(np.array(0.5, np.float32), "scale")]
        inputs = [vi("x", f32, [1, 4])]
        nodes = [helper.make_node("DequantizeLinear", ["wq", "scale"], ["w"], name="dq"),
                 helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
        outputs = [vi("y", f32, [1, 4])]
    else:
        raise AssertionError(place)
    graph = helper.make_graph(nodes, f"{dtype.lower()}_{place}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = helper.VERSION_TABLE[-1][1] if newest_ir else max(7, _ir_for(opset))
    return model.SerializeToString()


def _ir_for(opset: int) -> int:
    """The lowest IR version of the onnx release that brought ``opset``."""
    for _release, ir, op, *_ in helper.VERSION_TABLE:
        if op >= opset:
            return ir
    return helper.VERSION_TABLE[-1][1]
