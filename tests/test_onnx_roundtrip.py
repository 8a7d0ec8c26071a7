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
