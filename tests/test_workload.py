"""MAC / op / byte conventions, checked against hand-computed layers and onnx-tool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from conftest import ZOO_NAMES, zoo_path
from nvmc.ir.errors import ShapeError

REFS = json.loads((Path(__file__).parent / "data" / "refs" / "onnx_tool_zoo.json").read_text())


def one_node_model(op, inputs, out_shape, attrs=None, weights=(), out_dtype=TensorProto.FLOAT, opset=17):
    """A model with one node; ``inputs`` are (name, shape) graph inputs, ``weights`` arrays."""
    inits = [numpy_helper.from_array(a, n) for n, a in weights]
    names = [n for n, _ in inputs] + [n for n, _ in weights]
    node = helper.make_node(op, names, ["y"], name="n", **(attrs or {}))
    graph = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", out_dtype, out_shape) if out_shape is not None
         else helper.make_empty_tensor_value_info("y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model) if out_shape is None else model  # types the output


def row(model):
    w = nvmc.analyze(nvmc.load(model))
    assert len(w) == 1
    return w.row(0)


def test_conv_macs_bias_and_bytes():
    w = np.ones((8, 3, 3, 3), np.float32)
    b = np.ones(8, np.float32)
    r = row(one_node_model("Conv", [("x", [2, 3, 10, 10])], None, {"kernel_shape": [3, 3]},
                           [("w", w), ("b", b)]))
    # out 2x8x8x8; MACs = 2*8*8*8 * 3*3*3
    assert r["macs"] == 2 * 8 * 8 * 8 * 27
    assert r["gemm"] == [1, 2 * 8 * 8, 8, 27]
    assert r["nonmac_ops"] == {"add": 2 * 8 * 8 * 8}  # the bias
    assert r["params"] == 8 * 27 + 8 and r["weight_bytes"] == 4 * (8 * 27 + 8)
    assert r["input_bytes"] == 4 * 2 * 3 * 100 and r["output_bytes"] == 4 * 2 * 8 * 64


def test_depthwise_and_grouped_conv():
    dw = row(one_node_model("Conv", [("x", [1, 16, 8, 8])], None, {"group": 16, "pads": [1, 1, 1, 1]},
                            [("w", np.ones((16, 1, 3, 3), np.float32))]))
    assert dw["macs"] == 16 * 8 * 8 * 9 and dw["gemm"] == [16, 64, 1, 9]
    grouped = row(one_node_model("Conv", [("x", [1, 16, 8, 8])], None, {"group": 4},
                                 [("w", np.ones((32, 4, 1, 1), np.float32))]))
    assert grouped["macs"] == 32 * 64 * 4 and grouped["gemm"] == [4, 64, 8, 4]


def test_conv_transpose():
    r = row(one_node_model("ConvTranspose", [("x", [1, 4, 5, 5])], None, {"strides": [2, 2]},
                           [("w", np.ones((4, 6, 3, 3), np.float32))]))
    # every input pixel (25) of every input channel (4) scatters into 6 channels x 3x3
    assert r["macs"] == 25 * 4 * 6 * 9


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_transposes(trans_a, trans_b):
    a_shape = [7, 5] if trans_a else [5, 7]
    b = np.ones((3, 7) if trans_b else (7, 3), np.float32)
    r = row(one_node_model("Gemm", [("a", a_shape)], None, {"transA": trans_a, "transB": trans_b}, [("b", b)]))
    assert r["macs"] == 5 * 3 * 7 and r["gemm"] == [1, 5, 3, 7]


@pytest.mark.parametrize("a,b,macs", [
    ([2, 4, 8, 16], [2, 4, 16, 8], 2 * 4 * 8 * 8 * 16),   # batched attention-like
    ([2, 1, 8, 16], [3, 16, 4], 2 * 3 * 8 * 4 * 16),      # broadcast batch
    ([16], [16, 4], 4 * 16),                              # 1-D left operand
    ([5, 16], [16], 5 * 16),                              # 1-D right operand
])
def test_matmul_shapes(a, b, macs):
    model = one_node_model("MatMul", [("a", a), ("b", b)], None)
    assert row(model)["macs"] == macs


def test_einsum_and_lstm():
    e = row(one_node_model("Einsum", [("a", [2, 3, 4]), ("b", [2, 4, 5])], None, {"equation": "bij,bjk->bik"}))
    assert e["macs"] == 2 * 3 * 4 * 5
    hidden, inp, seq, batch = 8, 6, 5, 2
    lstm = one_node_model("LSTM", [("x", [seq, batch, inp])], None, {"hidden_size": hidden},
                          [("W", np.ones((1, 4 * hidden, inp), np.float32)),
                           ("R", np.ones((1, 4 * hidden, hidden), np.float32))])
    assert row(lstm)["macs"] == seq * batch * 4 * hidden * (inp + hidden)


def test_nonmac_conventions():
    sm = row(one_node_model("Softmax", [("x", [4, 10])], None, {"axis": 1}))
    assert sm["macs"] == 0 and sm["nonmac_ops"] == {"cmp": 40, "add": 80, "exp": 40, "div": 40}
    mp = row(one_node_model("MaxPool", [("x", [1, 2, 8, 8])], None, {"kernel_shape": [2, 2], "strides": [2, 2]}))
    assert mp["nonmac_ops"] == {"cmp": 2 * 16 * 3}
    gap = row(one_node_model("GlobalAveragePool", [("x", [1, 4, 5, 5])], None))
    assert gap["nonmac_ops"] == {"add": 4 * 24, "div": 4}
    moved = row(one_node_model("Transpose", [("x", [2, 3])], None, {"perm": [1, 0]}))
    assert moved["nonmac_ops"] == {} and moved["output_bytes"] == 24


def test_unknown_rule_is_reported_not_hidden():
    w = nvmc.analyze(nvmc.load(one_node_model("Det", [("x", [3, 3])], None)))
    assert w.row(0)["nonmac_ops"] == {"other": 1}
    assert any("Det" in n for n in w.notices)


def test_weight_density_counts_zeros():
    w = np.ones((4, 4), np.float32)
    w[:, :3] = 0
    r = row(one_node_model("MatMul", [("a", [2, 4])], None, weights=[("w", w)]))
    assert r["weight_density"] == pytest.approx(0.25)


def test_quant_annotation_sets_weight_bytes():
    from nvmc.ir import Annotation

    g = nvmc.load(one_node_model("MatMul", [("a", [2, 4])], None, weights=[("w", np.ones((4, 4), np.float32))]))
    before = nvmc.analyze(g).row(0)["weight_bytes"]
    g.values["w"].type = g.values["w"].type.with_annotation(Annotation.of("quant", {"bits": 4}))
    assert before == 16 * 4
    assert nvmc.analyze(g).row(0)["weight_bytes"] == 16 * 0.5


def test_unbound_dimension_is_a_clear_error():
    model = one_node_model("Relu", [("x", [1, "seq", 4])], [1, "seq", 4])
    g = nvmc.load(model)
    with pytest.raises(ShapeError, match="(?s)unbound dimension 'seq'.*--dim seq=N .*inputs: x f32\\[1,seq,4\\]"):
        nvmc.analyze(g)
    bound = nvmc.load(model, input_shapes={"x": (1, 7, 4)})
    assert nvmc.analyze(bound).row(0)["output_bytes"] == 4 * 28


def test_batch_dimension_defaults_to_one_with_notice():
    g = nvmc.load(one_node_model("Relu", [("x", ["N", 4])], ["N", 4]))
    assert g.type_of("x").shape == (1, 4)
    assert any("bound to 1" in n for n in g.meta["notices"])


def test_analysis_is_cached_until_the_graph_changes(example_models):
    g = nvmc.load(example_models / "tiny_cnn.onnx")
    first = nvmc.analyze(g)
    assert nvmc.analyze(g) is first
    g.add_const("unused", np.zeros(1, np.float32))
    assert nvmc.analyze(g) is not first


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_totals_match_onnx_tool(name):
    """Reference numbers from onnx-tool 1.0.1 (tests/data/refs/onnx_tool_zoo.md says how)."""
    ref = REFS["models"][name]
    w = nvmc.analyze(nvmc.load(zoo_path(name)))
    assert w.totals["macs"] == ref["conv_gemm_matmul_macs_no_bias"]
    c, ops = w.columns, np.array(w.ops)
    mac_ops = np.isin(ops, ["Conv", "Gemm", "MatMul"])
    assert int(c["add"][mac_ops].sum()) == ref["bias_adds"]
    # where both tools count one op per element, the non-MAC counts agree too
    per_op = ref["per_op_type_macs_onnx_tool"]
    if "Relu" in per_op:
        assert int(c["cmp"][ops == "Relu"].sum()) == per_op["Relu"]
    if "Sum" in per_op:
        assert int(c["add"][ops == "Sum"].sum()) == per_op["Sum"]
    if "MaxPool" in per_op:  # onnx-tool: k*k per output; nvmc: k*k - 1 compares
        outs = c["output_bytes"][ops == "MaxPool"] / 4
        assert int(c["cmp"][ops == "MaxPool"].sum() + outs.sum()) == per_op["MaxPool"]


def test_analysis_json_schema(example_models):
    data = json.loads(nvmc.analyze(nvmc.load(example_models / "tiny_cnn.onnx")).to_json())
    assert data["schema"] == "nvmc.analysis/1"
    assert set(data["totals"]) >= {"macs", "params", "weight_bytes", "activation_bytes"}
    assert set(data["nodes"][0]) >= {"name", "op", "macs", "params", "weight_bytes", "input_bytes",
                                     "output_bytes", "nonmac_ops"}
