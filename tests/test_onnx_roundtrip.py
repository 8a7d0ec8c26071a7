"""ONNX -> IR -> ONNX (and -> .nvir -> IR -> ONNX) gives bit-identical onnxruntime outputs."""

from __future__ import annotations

import numpy as np
import pytest

import nvmc
from conftest import SMALL_ZOO, ZOO_NAMES, materialize_weights, random_feeds, run_ort


def _roundtrips(model):
    graph = nvmc.load(model)
    nvmc.verify(graph)
    text, arrays = nvmc.ir.print_graph(graph, sidecar="w.npz")
    reparsed = nvmc.parse_text(text, sidecar=arrays)
    assert reparsed.to_text(sidecar="w.npz") == text
    return graph, reparsed


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_roundtrip_is_bit_identical(name):
    """Bit-identical with ORT's graph rewrites off. With them on, ORT may fold or fuse our
    exported weights, which the IR-3 originals list as overridable graph inputs (so ORT must
    not fold them there): outputs then agree to float rounding."""
    original = materialize_weights(name)
    feeds = random_feeds(original)
    expected = run_ort(original, feeds, optimize=False)
    graph, reparsed = _roundtrips(original)
    for g in (graph, reparsed):
        got = run_ort(nvmc.export(g), feeds, optimize=False)
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    if name in SMALL_ZOO:  # the big FC models would double the test time for the same check
        for a, b in zip(run_ort(nvmc.export(graph), feeds), run_ort(original, feeds)):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert np.std(expected[0]) > 0, "weights were not materialised: outputs are constant"


@pytest.mark.parametrize("name", ["tiny_cnn", "tiny_transformer"])
def test_example_model_roundtrip(example_models, name):
    import onnx

    original = onnx.load(example_models / f"{name}.onnx")
    graph, reparsed = _roundtrips(original)
    for d in original.graph.input[0].type.tensor_type.shape.dim:
        if d.dim_param:
            d.dim_value = 1
    feeds = random_feeds(original)
    expected = run_ort(original, feeds)
    for g in (graph, reparsed):
        for a, b in zip(run_ort(nvmc.export(g), feeds), expected):
            np.testing.assert_array_equal(a, b)


def test_save_and_load_nvir_files(tmp_path, example_models):
    graph = nvmc.load(example_models / "tiny_cnn.onnx")
    written = nvmc.save(graph, tmp_path / "m.nvir")
    assert [p.name for p in written] == ["m.nvir", "m.npz"]
    again = nvmc.load(tmp_path / "m.nvir")
    assert again.to_text(sidecar="m.npz") == (tmp_path / "m.nvir").read_text()
    nvmc.save(again, tmp_path / "m.onnx")
    feeds = random_feeds(nvmc.export(graph))
    import onnx

    for a, b in zip(run_ort(onnx.load(tmp_path / "m.onnx"), feeds), run_ort(nvmc.export(graph), feeds)):
        np.testing.assert_array_equal(a, b)


def test_export_passes_checker_and_keeps_names(example_models):
    import onnx

    graph = nvmc.load(example_models / "tiny_cnn.onnx")
    model = nvmc.export(graph)
    onnx.checker.check_model(model, full_check=True)
    assert [n.name for n in model.graph.node] == [n.name for n in graph.topo_nodes()]


def test_constant_of_shape_weights_fold_to_zero_copy_constants():
    from conftest import zoo_path

    graph = nvmc.load(zoo_path("light_resnet50"))
    assert not any(n.op == "ConstantOfShape" for n in graph.nodes)
    w = graph.consts["gpu_0/conv1_w_0"]
    assert w.shape == (64, 3, 7, 7) and set(w.strides) == {0}  # a view of one value
    assert not any(name.endswith("__SHAPE") for name in graph.consts)


def _if_model():
    """y = If(sum(x) > 0, then: Relu(a) + 1, else: Neg(a)), with a = Abs(x) - 0.5 from outside."""
    from onnx import TensorProto, helper

    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    then_g = helper.make_graph([helper.make_node("Relu", ["a"], ["t0"]), helper.make_node("Add", ["t0", "one"], ["t"])],
                               "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])], [one])
    else_g = helper.make_graph([helper.make_node("Neg", ["a"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    half = helper.make_tensor("half", TensorProto.FLOAT, [1], [0.5])
    nodes = [
        helper.make_node("Abs", ["x"], ["ax"], "abs"), helper.make_node("Sub", ["ax", "half"], ["a"], "sub"),
        helper.make_node("ReduceSum", ["x"], ["s"], "sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], "gt"),
        helper.make_node("If", ["c"], ["y"], "branch", then_branch=then_g, else_branch=else_g),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(nodes, "ifm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [half, zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_subgraph_ops_round_trip_and_track_outer_uses():
    model = _if_model()
    graph, reparsed = _roundtrips(model)
    branch = graph.node("branch")
    assert branch.implicit_inputs == ("a",)
    assert {u.name for u in graph.users("a")} == {"branch"}  # 'sub' is live through the subgraph
    for sign in (1.0, -1.0):
        feeds = {"x": sign * np.arange(1, 7, dtype=np.float32).reshape(2, 3)}
        expected = run_ort(model, feeds)
        for g in (graph, reparsed):
            np.testing.assert_array_equal(run_ort(nvmc.export(g), feeds)[0], expected[0])
    graph.add_node("Identity", ["a"], ["a2"], name="alias")
    graph.replace_all_uses("a", "a2")  # renames inside the subgraphs too
    assert graph.node("branch").implicit_inputs == ("a2",)
    feeds = {"x": np.ones((2, 3), np.float32)}
    np.testing.assert_array_equal(run_ort(nvmc.export(graph), feeds)[0], run_ort(model, feeds)[0])


def test_external_data_loads_and_is_confined(tmp_path, example_models):
    import onnx

    from nvmc.ir import ModelError

    model = onnx.load(example_models / "tiny_cnn.onnx")
    onnx.save_model(onnx.load(example_models / "tiny_cnn.onnx"), tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    graph = nvmc.load(tmp_path / "ext.onnx")
    feeds = random_feeds(model)
    np.testing.assert_array_equal(run_ort(nvmc.export(graph), feeds)[0], run_ort(model, feeds)[0])

    escaped = onnx.load(tmp_path / "ext.onnx", load_external_data=False)
    for tensor in escaped.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../ext.data"
    (tmp_path / "sub").mkdir()
    onnx.save_model(escaped, tmp_path / "sub" / "escape.onnx")
    with pytest.raises(ModelError, match="outside the model's directory"):
        nvmc.load(tmp_path / "sub" / "escape.onnx")
