"""A hypothesis strategy for small ONNX models: one or two ops of the kinds nvmc costs
(Conv, MatMul, Gemm, pools, RNNs, Einsum, reshapes, ...) with drawn shapes and attributes.

Shapes are often odd but legal (zero-size, 1-D convs, 3-D convs, broadcasting, large
dimensions), so many models pass ONNX inference and reach the workload analysis and every
cost-model family, where the mutated real models rarely go. Weights come from
ConstantOfShape (a lazy view in nvmc: no memory even when large).
"""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

DIMS = [0, 1, 1, 2, 3, 4, 7, 16, 64, 1000, 2**16]


class _Builder:
    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def weight(self, shape, value: float = 0.5) -> str:
        """A filled weight of ``shape`` (ConstantOfShape of a constant shape)."""
        self.n += 1
        shape_name, name = f"s{self.n}", f"w{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(shape, dtype=np.int64).reshape(-1), shape_name))
        fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [value])
        self.nodes.append(helper.make_node("ConstantOfShape", [shape_name], [name], value=fill))
        return name

    def ints(self, values, name=None) -> str:
        self.n += 1
        name = name or f"i{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name


@st.composite
def onnx_models(draw) -> bytes:
    dim = st.sampled_from(DIMS)
    small = st.sampled_from([0, 1, 2, 3, 4])
    b = _Builder()
    op = draw(st.sampled_from(["Conv", "ConvTranspose", "MatMul", "Gemm", "MaxPool", "AveragePool",
                               "GlobalAveragePool", "Relu", "Softmax", "LayerNormalization",
                               "BatchNormalization", "Add", "Reshape", "Transpose", "Concat", "Einsum", "LSTM",
                               "GRU", "RNN", "ReduceMean", "Flatten", "Gather", "Split", "Slice", "Pad"]))
    rank = draw(st.integers(1, 5))
    x_shape = [draw(dim) for _ in range(rank)]
    ins, attrs = ["x"], {}
    if op in ("Conv", "ConvTranspose"):
        spatial = max(1, rank - 2)
        group = draw(st.sampled_from([1, 1, 2, 3, 4]))
        c = x_shape[1] if rank > 1 else 1
        m = draw(dim)
        k = [draw(st.sampled_from([1, 2, 3, 5, 7])) for _ in range(spatial)]
        w = [m, max(c // group, 0), *k] if op == "Conv" else [c, max(m // group, 0), *k]
        ins.append(b.weight(w))
        if draw(st.booleans()):
            ins.append(b.weight([m if op == "Conv" else max(m // group, 0) * group]))
        attrs = {"group": group}
        if draw(st.booleans()):
            attrs["strides"] = [draw(st.sampled_from([1, 2, 3])) for _ in range(spatial)]
        if draw(st.booleans()):
            attrs["pads"] = [draw(small) for _ in range(2 * spatial)]
        if draw(st.booleans()):
            attrs["dilations"] = [draw(st.sampled_from([1, 2])) for _ in range(spatial)]
    elif op == "MatMul":
        ins.append(b.weight([draw(dim) for _ in range(draw(st.integers(1, 4)))]))
    elif op == "Gemm":
        ins.append(b.weight([draw(dim), draw(dim)]))
        if draw(st.booleans()):
            ins.append(b.weight([draw(dim)]))
        attrs = {"transA": draw(st.integers(0, 1)), "transB": draw(st.integers(0, 1))}
    elif op in ("MaxPool", "AveragePool"):
        spatial = max(1, rank - 2)
        attrs = {"kernel_shape": [draw(st.sampled_from([1, 2, 3, 1000])) for _ in range(spatial)]}
        if draw(st.booleans()):
            attrs["strides"] = [draw(st.sampled_from([1, 2])) for _ in range(spatial)]
        if draw(st.booleans()):
            attrs["ceil_mode"] = 1
    elif op in ("Softmax", "Flatten", "Concat", "Split", "LayerNormalization"):
        attrs = {"axis": draw(st.integers(-rank - 1, rank))}
        if op == "Concat":
            ins.append(b.weight(x_shape[:-1] + [draw(dim)]))
        if op == "LayerNormalization":
            ins.append(b.weight(x_shape[-1:]))
        if op == "Split":
            attrs["num_outputs"] = draw(st.integers(1, 3))
    elif op == "BatchNormalization":
        c = [x_shape[1] if rank > 1 else 1]
        ins += [b.weight(c), b.weight(c, 0.0), b.weight(c, 0.0), b.weight(c, 1.0)]
    elif op == "Add":
        ins.append(b.weight([draw(dim) for _ in range(draw(st.integers(0, rank)))]))
    elif op == "Reshape":
        ins.append(b.ints([draw(st.sampled_from([-1, 0, 1, 2, 3, 16, 2**20])) for _ in range(draw(st.integers(1, 4)))]))
    elif op == "Transpose":
        attrs = {"perm": list(draw(st.permutations(range(rank))))}
    elif op == "Einsum":
        attrs = {"equation": draw(st.sampled_from(["ij,jk->ik", "bij,bjk->bik", "i,i->", "ij->ji", "...ij,...jk->...ik",
                                                    "ii->i", "ab,cd->abcd"]))}
        ins.append(b.weight([draw(dim) for _ in range(draw(st.integers(1, 3)))]))
    elif op in ("LSTM", "GRU", "RNN"):
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        hidden = draw(st.sampled_from([1, 8, 64]))
        dirs = draw(st.sampled_from([1, 2]))
        feat = x_shape[2] if rank > 2 else 1
        ins += [b.weight([dirs, gates * hidden, feat]), b.weight([dirs, gates * hidden, hidden])]
        attrs = {"hidden_size": hidden}
        if dirs == 2:
            attrs["direction"] = "bidirectional"
    elif op == "ReduceMean":
        if draw(st.booleans()):
            ins.append(b.ints([draw(st.integers(-rank, rank - 1))]))
        attrs = {"keepdims": draw(st.integers(0, 1))}
    elif op == "Gather":
        ins.append(b.ints([draw(st.integers(-2, 3)) for _ in range(draw(st.integers(0, 3)))]))
        attrs = {"axis": draw(st.integers(-rank, rank - 1))}
    elif op == "Slice":
        ins += [b.ints([draw(st.integers(-3, 3))]), b.ints([draw(st.sampled_from([-1, 1, 2, 2**62]))])]
    elif op == "Pad":
        ins.append(b.ints([draw(small) for _ in range(2 * rank)]))
    outputs = ["y"] if op not in ("Split", "LSTM") else (
        [f"y{i}" for i in range(attrs.get("num_outputs", 1))] if op == "Split" else ["y", "yh"])
    b.nodes.append(helper.make_node(op, ins, outputs, name="op", **attrs))
    if draw(st.booleans()):  # a second op after the first
        b.nodes.append(helper.make_node(draw(st.sampled_from(["Relu", "Softmax", "Flatten", "ReduceSum"])),
                                        [outputs[0]], ["z"], name="post"))
        outputs = ["z"]
    graph = helper.make_graph(b.nodes, "gen", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs[:1]],
                              b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    # the checker wants the outputs' shapes: take ONNX's inferred ones (a scalar where it has none,
    # which nvmc's own strict inference then rejects, cleanly)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        known = {vi.name: vi.type for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    except Exception:
        known = {}
    for out in model.graph.output:
        t = known.get(out.name)
        if t is not None and t.tensor_type.HasField("shape"):
            out.type.CopyFrom(t)
        else:
            out.type.tensor_type.shape.SetInParent()
    return model.SerializeToString()
