"""The canonical exact passes: golden IR before/after, and onnxruntime numerics for each."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.harness import check_pipeline
from nvmc.ir import Graph, TensorType
from nvmc.passes import make_pass, run_pipeline
from nvmc.validate.nets import canonicalize_chain

RNG = np.random.default_rng(0)
F32 = TensorProto.FLOAT


def build(nodes, inputs, outputs, inits=None, opset=17) -> Graph:
    """A Graph from onnx.helper nodes; inputs/outputs map names to f32 shapes, inits to arrays."""
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(n, F32, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F32, s) for n, s in outputs.items()],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()])
    return nvmc.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def body(graph: Graph) -> list[str]:
    """The .nvir lines between the header and the closing brace, stripped."""
    return [line.strip() for line in graph.to_text().splitlines()[2:-1]]


def rand(*shape, lo=None, hi=None):
    if lo is not None:
        return RNG.uniform(lo, hi, shape).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- fold-constants
def shape_arithmetic_graph() -> Graph:
    return build([helper.make_node("Shape", ["x"], ["s"], name="shape"),
                  helper.make_node("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
                  helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0, name="concat"),
                  helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")],
                 {"x": [1, 4, 4, 4]}, {"y": [1, 64]},
                 {"zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64)})


def test_fold_constants_folds_shape_arithmetic():
    g, result, report = check_pipeline(shape_arithmetic_graph(), "fold-constants,dce", rel=0.0)
    assert body(g) == ["%target = const i64[2] [1, -1]",
                       "%y = Reshape(%x, %target) : f32[1,64]  // reshape",
                       "return %y"]
    assert result.records[0].result.stats == {"nodes_folded": 3, "consts_created": 2}
    assert report.max_abs_err == 0.0


@pytest.mark.parametrize("engine", ["onnxruntime", "reference"])
def test_fold_constants_evaluates_weight_arithmetic(engine):
    g = build([helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0], name="t"),
               helper.make_node("Mul", ["wt", "two"], ["w2"], name="scale"),
               helper.make_node("MatMul", ["x", "w2"], ["y"], name="mm")],
              {"x": [2, 3]}, {"y": [2, 5]}, {"w": rand(5, 3), "two": np.array([2.0], np.float32)})
    w = g.consts["w"]
    g2, _, _ = check_pipeline(g, f"fold-constants{{engine={engine}}},dce", rel=0.0)
    assert [n.op for n in g2.nodes] == ["MatMul"]
    np.testing.assert_array_equal(g2.consts["w2"], w.T * np.float32(2))


def test_fold_constants_keeps_scalars_scalar():
    g = Graph("s")
    g.add_input("x", TensorType("i64", (1,)))
    g.add_const("a", np.array(3, np.int64))
    g.add_const("b", np.array(4, np.int64))
    g.add_node("Add", ["a", "b"], ["c"], types=[TensorType("i64", ())], name="add")
    g.add_node("Add", ["x", "c"], ["y"], types=[TensorType("i64", (1,))], name="use")
    g.outputs.append("y")
    make_pass("fold-constants").run(g)
    assert g.consts["c"].shape == () and int(g.consts["c"]) == 7


def test_fold_constants_size_limit_and_ops_left_alone():
    g = build([helper.make_node("Expand", ["one", "shape"], ["big"], name="expand"),
               helper.make_node("Add", ["x", "big"], ["y"], name="add"),
               helper.make_node("DequantizeLinear", ["q", "qs"], ["dq"], name="dq"),
               helper.make_node("Add", ["y", "dq"], ["z"], name="add2")],
              {"x": [1, 100]}, {"z": [1, 100]},
              {"one": np.ones(1, np.float32), "shape": np.array([1, 100], np.int64),
               "q": np.ones((1, 100), np.int8), "qs": np.array(0.5, np.float32)})
    result = make_pass("fold-constants", max_elements=10).run(g)
    assert not result.changed and g.producer("big").op == "Expand"
    reasons = dict(result.why_not)
    assert "more than max-elements=10" in reasons["expand"]
    assert reasons["dq"] == "DequantizeLinear is never folded"
    assert make_pass("fold-constants").run(g).changed and g.is_const("big")


def test_fold_constants_goes_on_past_a_node_that_cannot_be_evaluated():
    g = Graph("bad")
    g.add_input("x", TensorType("f32", (3,)))
    g.add_const("v", np.arange(6, dtype=np.float32))
    g.add_const("bad_shape", np.array([4], np.int64))
    g.add_const("one", np.ones(3, np.float32))
    g.add_node("Reshape", ["v", "bad_shape"], ["r"], types=[TensorType("f32", (4,))], name="reshape")
    g.add_node("Neg", ["one"], ["m"], types=[TensorType("f32", (3,))], name="neg")
    g.add_node("Add", ["x", "m"], ["y"], types=[TensorType("f32", (3,))], name="add")
    g.outputs += ["y", "r"]
    result = make_pass("fold-constants").run(g)
    assert g.is_const("m") and g.producer("r").op == "Reshape"
    assert any(node == "reshape" and "evaluation failed" in why for node, why in result.why_not)


# ---------------------------------------------------------------------------------- dce, cse
def test_dce_removes_dead_chains_and_constants_but_keeps_inputs():
    g = build([helper.make_node("Relu", ["x"], ["a"], name="dead1"),
               helper.make_node("Mul", ["a", "w"], ["b"], name="dead2"),
               helper.make_node("Sigmoid", ["x"], ["y"], name="live")],
              {"x": [1, 8], "unused": [1, 8]}, {"y": [1, 8]}, {"w": rand(1, 8), "spare": rand(4)})
    g2, result, _ = check_pipeline(g, "dce", rel=0.0)
    assert body(g2) == ["%y = Sigmoid(%x) : f32[1,8]  // live", "return %y"]
    assert g2.inputs == ["x", "unused"]
    assert result.records[0].result.stats == {"nodes_removed": 2, "consts_removed": 2, "bytes_saved": 48}
    assert not make_pass("dce").run(g2).changed


def test_cse_merges_nodes_and_constants():
    same = rand(1, 8)
    g = build([helper.make_node("Relu", ["x"], ["a"], name="r1"),
               helper.make_node("Relu", ["x"], ["b"], name="r2"),
               helper.make_node("Add", ["a", "w1"], ["c"], name="add1"),
               helper.make_node("Add", ["b", "w2"], ["d"], name="add2"),
               helper.make_node("Mul", ["c", "d"], ["y"], name="mul"),
               helper.make_node("Relu", ["x"], ["out2"], name="r3")],
              {"x": [1, 8]}, {"y": [1, 8], "out2": [1, 8]}, {"w1": same, "w2": same.copy()})
    g2, result, _ = check_pipeline(g, "cse,dce", rel=0.0)
    assert body(g2) == ["%w1 = const f32[1,8] [" + ", ".join(str(np.float32(v)) for v in same.ravel()) + "]",
                        "%a = Relu(%x) : f32[1,8]  // r1",
                        "%c = Add(%a, %w1) : f32[1,8]  // add1",
                        "%y = Mul(%c, %c) : f32[1,8]  // mul",
                        "%out2 = Relu(%x) : f32[1,8]  // r3",  # a graph output keeps its own name
                        "return %y, %out2"]
    assert result.records[0].result.stats == {"nodes_merged": 2, "consts_merged": 1}


# ---------------------------------------------------------------------------- fuse-conv-bn
def _bn_inits(c: int) -> dict:
    return {"scale": rand(c, lo=0.5, hi=1.5), "bias": rand(c), "mean": rand(c), "var": rand(c, lo=0.5, hi=1.5)}


@pytest.mark.parametrize("group, with_bias", [(1, False), (1, True), (4, True)])
def test_fuse_conv_bn_folds_into_conv(group, with_bias):
    inits = {"w": rand(8, 8 // group, 3, 3), **_bn_inits(8)}
    inputs = ["x", "w"] + (["b"] if with_bias else [])
    if with_bias:
        inits["b"] = rand(8)
    g = build([helper.make_node("Conv", inputs, ["c"], name="conv1", kernel_shape=[3, 3], group=group),
               helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], name="bn1",
                                epsilon=1e-3)],
              {"x": [2, 8, 6, 6]}, {"y": [2, 8, 4, 4]}, inits)
    g2, result, report = check_pipeline(g, "fuse-conv-bn,dce", samples=2)
    b = "b" if with_bias else "conv1_b"
    assert body(g2)[-2:] == [f"%y = Conv(%x, %w_fused, %{b}_fused) {{group={group}, kernel_shape=[3, 3]}} "
                             f": f32[2,8,4,4]  // conv1", "return %y"]
    assert result.records[0].result.stats == {"nodes_rewritten": 1}
    assert report.max_rel_err < 1e-6


@pytest.mark.parametrize("trans_b, with_c, beta", [(0, False, 1.0), (1, True, 1.0), (1, True, 0.5), (0, True, 2.0)])
def test_fuse_conv_bn_folds_into_gemm(trans_b, with_c, beta):
    inits = {"w": rand(6, 5) if trans_b else rand(5, 6), **_bn_inits(6)}
    if with_c:
        inits["c"] = rand(6)
    g = build([helper.make_node("Gemm", ["x", "w"] + (["c"] if with_c else []), ["g"], name="fc", transB=trans_b,
                                beta=beta, alpha=0.5),
               helper.make_node("BatchNormalization", ["g", "scale", "bias", "mean", "var"], ["y"], name="bn")],
              {"x": [3, 5]}, {"y": [3, 6]}, inits)
    g2, _, report = check_pipeline(g, "fuse-conv-bn,dce")
    assert [n.op for n in g2.nodes] == ["Gemm"] and report.max_rel_err < 1e-6


def test_fuse_conv_bn_leaves_alone_and_says_why():
    g = build([helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", kernel_shape=[1, 1]),
               helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], name="bn1"),
               helper.make_node("Relu", ["c"], ["r"], name="also_reads_conv"),
               helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["z"],
                                name="bn_on_input")],
              {"x": [1, 4, 2, 2]}, {"y": [1, 4, 2, 2], "r": [1, 4, 2, 2], "z": [1, 4, 2, 2]},
              {"w": rand(4, 4, 1, 1), **_bn_inits(4)})
    result = make_pass("fuse-conv-bn").run(g)
    assert not result.changed
    assert dict(result.why_not) == {
        "bn1": "the result of Conv 'conv1' has 2 readers",
        "bn_on_input": "input 0 of BatchNormalization 'bn_on_input' is a graph input, not the result of Conv/Gemm"}


# -------------------------------------------------------------------------- fuse-activation
def _conv_act_graph():
    return build([helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1", kernel_shape=[1, 1]),
                  helper.make_node("Relu", ["c1"], ["r"], name="relu1"),
                  helper.make_node("Conv", ["r", "w"], ["c2"], name="conv2", kernel_shape=[1, 1]),
                  helper.make_node("Clip", ["c2", "lo", "hi"], ["y"], name="relu6")],
                 {"x": [1, 4, 3, 3]}, {"y": [1, 4, 3, 3]},
                 {"w": rand(4, 4, 1, 1), "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)})


def test_fuse_activation_annotates_and_changes_nothing_else():
    g = _conv_act_graph()
    before = [n.op for n in g.nodes]
    result = make_pass("fuse-activation").run(g)
    assert result.stats == {"activations_fused": 2} and [n.op for n in g.nodes] == before
    text = g.to_text()
    assert '%c1 = Conv(%x, %w) {kernel_shape=[1, 1]} : f32[1,4,3,3] #fused<activation="Relu", node="relu1">' in text
    assert '#fused<activation="Clip", max=6.0, min=0.0, node="relu6">' in text
    assert nvmc.parse_text(text, sidecar={"w": g.consts["w"]}).to_text() == text  # the annotation round-trips
    assert not make_pass("fuse-activation").run(g).changed  # idempotent


def test_fuse_activation_clip_can_be_turned_off():
    g = _conv_act_graph()
    result = make_pass("fuse-activation", clip=False).run(g)
    assert result.stats == {"activations_fused": 1}
    assert ("relu6", "Clip fusion is off (clip=false)") in result.why_not
    assert g.type_of("c2").annotation("fused") is None


# ----------------------------------------------------------------------------- canonicalize
def test_canonicalize_reaches_a_fixed_point_on_the_example_cnn(example_models):
    g = nvmc.load(example_models / "tiny_cnn.onnx")
    g2, result, report = check_pipeline(g, "canonicalize", samples=4)
    stats = result.records[0].result.stats
    assert stats["iterations"] == 2 and stats["nodes_rewritten"] >= 1
    assert not any(n.op == "BatchNormalization" for n in g2.nodes)
    assert report.top1_agreement == 1.0 and report.max_rel_err < 1e-5
    assert not run_pipeline(g2, "canonicalize").changed  # a fixed point is a fixed point


def test_canonicalize_on_the_benchmark_graph():
    g = canonicalize_chain(500)  # benchmarks/bench_passes.py's graph
    g2, result, report = check_pipeline(g, "canonicalize")
    assert len(g2) == 200  # 10 nodes a block -> Conv, Relu, Add, Reshape
    assert report.max_rel_err < 1e-5
