"""The hdc-recognize pass: what it rewrites, what it leaves alone and why, exactness in
onnxruntime (numerics harness), idempotence, and the example model and corpus."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.harness import check_pipeline
from nvmc.passes import run_pipeline
from nvmc.validate import nets

from conftest import REPO, run_nvmc

CORPUS = REPO / "examples" / "hdc" / "corpus"


def hdc_model(im, am, **shape) -> onnx.ModelProto:
    """The example's classifier graph (nets.hdc_query), checked by onnx."""
    model = nets.hdc_query(im, am, **shape)
    onnx.checker.check_model(model)
    return model


def small_model(dim=128, length=12, n=3, classes=3, batch=2):
    rng = np.random.default_rng(0)
    im = rng.integers(0, 2, (len(nets.HDC_ALPHABET), dim)).astype(bool)
    am = rng.integers(0, 2, (classes, dim)).astype(bool)
    return hdc_model(im, am, length=length, n=n, batch=batch), im, am


def ops_of(graph) -> list[str]:
    return sorted(n.qualified_op for n in graph.nodes)


def test_recognises_the_whole_classifier_exactly():
    model, im, am = small_model()
    g, result, report = check_pipeline(nvmc.load(model), "hdc-recognize", rel=0.0, samples=3)
    assert all(o.max_abs_err == 0 for o in report.outputs)
    hdc_ops = [op for op in ops_of(g) if op.startswith("nvmc.")]
    assert hdc_ops == ["nvmc.Bind", "nvmc.Bundle", "nvmc.Permute", "nvmc.Permute", "nvmc.Similarity"]
    bind = next(n for n in g.nodes if n.op == "Bind")
    assert len(bind.inputs) == 3 and bind.name == "ngrams"
    bundle = next(n for n in g.nodes if n.op == "Bundle")
    assert bundle.attrs == {"axis": 1, "count_type": "i32", "keepdims": 0, "threshold": (12 - 3 + 1) // 2}
    assert sorted(n.attrs["shift"] for n in g.nodes if n.op == "Permute") == [1, 2]
    stats = result.records[0].result.stats
    assert stats == {"similarity_rewritten": 1, "bundle_rewritten": 1, "permute_rewritten": 2, "bind_rewritten": 1,
                     "nodes_rewritten": 5}
    assert bundle.meta["rewritten_by"] == ["hdc-recognize"]


def test_recognised_model_matches_the_numpy_reference():
    model, im, am = small_model(batch=2)
    g = nvmc.load(model)
    run_pipeline(g, "hdc-recognize", verify_each=True)
    import onnxruntime as ort

    session = ort.InferenceSession(nvmc.export(g).SerializeToString(), providers=["CPUExecutionProvider"])
    idx = np.random.default_rng(5).integers(0, len(nets.HDC_ALPHABET), (2, 12))
    lang, dist = session.run(None, {"text": idx})
    ref_lang, ref_dist = nets.hdc_reference(idx, im, am, 3)
    assert np.array_equal(lang, ref_lang) and np.array_equal(dist, ref_dist)


def test_idempotent():
    g = nvmc.load(small_model()[0])
    run_pipeline(g, "hdc-recognize")
    text = g.to_text()
    result = run_pipeline(g, "hdc-recognize")
    assert not result.records[0].result.changed and g.to_text() == text


def test_min_dim_leaves_short_vectors_alone_and_says_why():
    g = nvmc.load(small_model(dim=32)[0])
    result = run_pipeline(g, "hdc-recognize{min-dim=64}")
    assert not result.records[0].result.changed
    reasons = dict(result.records[0].result.why_not)
    assert "min-dim" in reasons["ngrams"] and "min-dim" in reasons["rot1"]


def xor_model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "x", inputs, outputs, initializer=list(inits))
    return nvmc.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


def vi(name, shape, t=TensorProto.BOOL):
    return helper.make_tensor_value_info(name, t, shape)


def test_xor_tree_with_a_shared_inner_result_becomes_two_binds():
    nodes = [helper.make_node("Xor", ["a", "b"], ["ab"], name="ab"),
             helper.make_node("Xor", ["ab", "c"], ["abc"], name="abc"),
             helper.make_node("Xor", ["ab", "abc"], ["y"], name="y")]
    g = xor_model(nodes, [vi(x, [2, 64]) for x in "abc"], [vi("y", [2, 64])])
    g2, result, report = check_pipeline(g, "hdc-recognize", rel=0.0)
    binds = {n.name: n.inputs for n in g2.nodes if n.op == "Bind"}
    # 'ab' is read twice: it stays a Bind of its own; 'abc' is read once, by 'y', which absorbs it
    assert binds == {"ab": ("a", "b"), "y": ("ab", "ab", "c")}


def test_leaves_integer_xor_and_non_rotations_alone():
    starts = numpy_helper.from_array(np.array([10], np.int64), "s")
    ends = numpy_helper.from_array(np.array([64], np.int64), "e")
    zero = numpy_helper.from_array(np.array([0], np.int64), "z")
    ten = numpy_helper.from_array(np.array([10], np.int64), "t")
    axes = numpy_helper.from_array(np.array([1], np.int64), "ax")
    nodes = [helper.make_node("BitwiseXor", ["i", "j"], ["k"], name="packed"),
             helper.make_node("Slice", ["x", "s", "e", "ax"], ["hi"], name="hi"),
             helper.make_node("Slice", ["x", "z", "t", "ax"], ["lo"], name="lo"),
             helper.make_node("Concat", ["hi", "lo"], ["y"], name="cat", axis=1)]   # [10:64] + [0:10]: a rotation
    g = xor_model(nodes, [vi("i", [2, 8], TensorProto.UINT8), vi("j", [2, 8], TensorProto.UINT8), vi("x", [2, 64])],
                  [vi("k", [2, 8], TensorProto.UINT8), vi("y", [2, 64])], [starts, ends, zero, ten, axes])
    g2, result, _ = check_pipeline(g, "hdc-recognize", rel=0.0)
    reasons = dict(result.records[0].result.why_not)
    assert "BitwiseXor of integers" in reasons["packed"]
    perm = next(n for n in g2.nodes if n.op == "Permute")
    assert perm.attrs == {"axis": 1, "shift": 54}   # [10:64] first = roll by 64 - 10

    nodes[3] = helper.make_node("Concat", ["lo", "hi"], ["y"], name="cat", axis=1)  # [0:10] + [10:64]: identity
    g = xor_model(nodes, [vi("i", [2, 8], TensorProto.UINT8), vi("j", [2, 8], TensorProto.UINT8), vi("x", [2, 64])],
                  [vi("k", [2, 8], TensorProto.UINT8), vi("y", [2, 64])], [starts, ends, zero, ten, axes])
    result = run_pipeline(g, "hdc-recognize")
    assert "does not rotate axis 1" in dict(result.records[0].result.why_not)["cat"]


def test_explain_pass_cli(tmp_path):
    path = tmp_path / "h.onnx"
    path.write_bytes(small_model(dim=32)[0].SerializeToString())
    proc = run_nvmc("opt", str(path), "-p", "hdc-recognize", "--explain-pass", "hdc-recognize", "-o",
                    str(tmp_path / "h.nvir"))
    assert proc.returncode == 0, proc.stderr
    assert "min-dim" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def trained():
    train, test = nets.hdc_corpus(CORPUS)
    im, am, langs = nets.hdc_train(train, 10_000, 4)
    return im, am, langs, test


def test_language_recognition_accuracy_on_held_out_text(trained):
    """Acceptance: >= 90 % on at least 5 languages, held-out 100-letter windows."""
    im, am, langs, test = trained
    assert len(langs) >= 5
    correct = total = 0
    for i, code in enumerate(langs):
        ws = nets.hdc_windows(test[code], 100)
        pred, _ = nets.hdc_reference(np.stack([nets.hdc_symbols(w) for w in ws]), im, am, 4)
        correct += int(np.sum(pred == i))
        total += len(ws)
    assert total >= 50 and correct / total >= 0.9


def test_exported_model_agrees_with_numpy_exactly(trained):
    im, am, langs, test = trained
    import onnxruntime as ort

    model = hdc_model(im, am, length=100, n=4, batch=4)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    idx = np.stack([nets.hdc_symbols(nets.hdc_windows(test[c], 100)[0]) for c in langs[:4]])
    lang, dist = session.run(None, {"text": idx})
    ref_lang, ref_dist = nets.hdc_reference(idx, im, am, 4)
    assert np.array_equal(lang, ref_lang) and np.array_equal(dist, ref_dist)
    assert list(lang) == [0, 1, 2, 3]


def test_example_script_runs(tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, str(REPO / "examples" / "hdc_language.py"), "--dim", "2000",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "identical outputs" in proc.stdout and "paper (Khan et al.)" in proc.stdout
    assert (tmp_path / "hdc_language.onnx").exists() and (tmp_path / "hdc_language.nvir").exists()
