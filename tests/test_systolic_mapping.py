"""Graph-level mapping of the systolic family: which GEMMs each op becomes, and their cycles.

Conv (padded, strided), grouped and depthwise Conv, ConvTranspose, Gemm, batched MatMul with a
shared weight (folded into one GEMM of batch x M rows) and activation x activation MatMul
(attention: one GEMM per batch entry). Expected dimensions are worked out by hand below from
the ONNX shapes; cycles then follow SCALE-Sim's closed form (checked in
test_systolic_scalesim.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.backends import systolic_map as smap

RNG = np.random.default_rng(0)


def _model(node, inputs, output, inits=()):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
                              [numpy_helper.from_array(RNG.standard_normal(s).astype(np.float32), n)
                               for n, s in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _cost(model, *sets):
    compiled = nvmc.compile(nvmc.load(model), "systolic-sram-28nm", sets=list(sets))
    return compiled.workload, compiled.estimate


CASES = {
    # name: (model, expected (gemm_batch, M, N, K) as the array runs it)
    "conv_padded_strided": (
        _model(helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
               [("x", [1, 8, 15, 15])], ("y", [1, 16, 8, 8]), [("w", [16, 8, 3, 3])]),
        (1, 64, 16, 72)),          # M = 8x8 real (padded) output pixels, K = 8 x 3 x 3
    "conv_grouped": (
        _model(helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], group=4, pads=[1, 1, 1, 1]),
               [("x", [2, 16, 6, 6])], ("y", [2, 32, 6, 6]), [("w", [32, 4, 3, 3])]),
        (4, 72, 8, 36)),           # per group: M = 2 x 6 x 6, N = 32/4, K = 16/4 x 9
    "conv_depthwise": (
        _model(helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], group=24, pads=[1, 1, 1, 1]),
               [("x", [1, 24, 10, 10])], ("y", [1, 24, 10, 10]), [("w", [24, 1, 3, 3])]),
        (24, 100, 1, 9)),          # one GEMM per channel with N = 1, as SCALE-Sim splits depthwise layers
    "conv_transpose": (
        _model(helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
               [("x", [1, 32, 5, 5])], ("y", [1, 16, 10, 10]), [("w", [32, 16, 2, 2])]),
        (1, 25, 64, 32)),          # each input pixel x (C_in) @ (C_in x C_out k k)
    "gemm_transb": (
        _model(helper.make_node("Gemm", ["x", "w"], ["y"], transB=1),
               [("x", [4, 48])], ("y", [4, 40]), [("w", [40, 48])]),
        (1, 4, 40, 48)),
    "matmul_shared_weight": (
        _model(helper.make_node("MatMul", ["x", "w"], ["y"]),
               [("x", [3, 10, 16])], ("y", [3, 10, 24]), [("w", [16, 24])]),
        (1, 30, 24, 16)),          # the weight is shared by the 3 batch entries: 30 rows
    "matmul_attention": (
        _model(helper.make_node("MatMul", ["q", "k"], ["y"]),
               [("q", [2, 4, 12, 8]), ("k", [2, 4, 8, 12])], ("y", [2, 4, 12, 12])),
        (8, 12, 12, 8)),           # activation x activation: one GEMM per (batch, head)
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_op_maps_to_expected_gemms(name, df):
    model, (gb, m, n, k) = CASES[name]
    workload, est = _cost(model, f"array.dataflow={df}", "array.size=8x4")
    i = int(np.argmax(workload.columns["macs"]))
    assert workload.columns["macs"][i] == gb * m * n * k
    expected = gb * int(smap.compute_cycles(df, 8, 4, m, n, k))
    assert est.events["array_cycles"][i] == expected
    assert est.node_latency[i] >= expected / est.info["clock_hz"]
    # operand accesses: the array reads the im2col / GEMM operands from the buffers
    acc = smap.operand_accesses(df, 8, 4, m, n, k)
    word = est.info["buffers"]["filter"]["word_bits"] / 8
    weight_bytes = 4.0  # fp32 model
    assert est.events["filter_reads"][i] == pytest.approx(gb * acc["filter_reads"] * weight_bytes / word)


def test_depthwise_uses_one_column():
    model, _ = CASES["conv_depthwise"]
    _, est = _cost(model, "array.size=16x16")
    assert est.info["array_utilization"] == pytest.approx(24 * 100 * 9 / (24 * float(
        smap.compute_cycles("os", 16, 16, 100, 1, 9)) * 256))
    assert est.info["array_utilization"] < 1 / 16


def test_views_and_folded_nodes_cost_nothing():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    w = numpy_helper.from_array(RNG.standard_normal((10, 128)).astype(np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    workload, est = _cost(model)
    flat = workload.ops.index("Flatten")
    assert est.node_latency[flat] == 0 and est.node_energy[flat] == 0
