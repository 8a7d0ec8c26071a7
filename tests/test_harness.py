"""The numerics harness: metrics on known arrays, model comparisons, `nvmc check`."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import run_nvmc
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.harness import assert_numerics_close, compare, compare_arrays
from nvmc.ir import NvmcError


def test_metrics_on_known_arrays():
    ref = np.array([[1.0, -2.0, 3.0, 4.0]], np.float32)
    same = compare_arrays("y", ref, ref.copy())
    assert (same.max_abs_err, same.max_rel_err, same.sqnr_db, same.cosine) == (0.0, 0.0, float("inf"), 1.0)
    noisy = ref + np.array([[0.0, 0.1, 0.0, -0.2]], np.float32)
    c = compare_arrays("y", ref, noisy)
    assert c.max_abs_err == pytest.approx(0.2, rel=1e-6)
    assert c.max_rel_err == pytest.approx(0.2 / 4.0, rel=1e-6)  # relative to max |reference|
    assert c.sqnr_db == pytest.approx(10 * np.log10(30.0 / 0.05), rel=1e-5)
    assert c.top1_agreement == 1.0  # argmax still index 3
    flipped = compare_arrays("y", ref, np.array([[1.0, -2.0, 5.0, 4.0]], np.float32))
    assert flipped.top1_agreement == 0.0


def test_top1_is_for_classifier_outputs_only():
    logits = np.random.default_rng(0).standard_normal((4, 10, 1, 1)).astype(np.float32)
    assert compare_arrays("p", logits, logits).top1_agreement == 1.0  # [N, C, 1, 1] counts as [N, C]
    assert compare_arrays("f", logits.reshape(4, 10, 1, 1)[..., 0, :], logits[..., 0, :]).top1_agreement == 1.0
    assert compare_arrays("img", np.ones((1, 3, 4, 4), np.float32), np.ones((1, 3, 4, 4), np.float32)
                          ).top1_agreement is None
    assert compare_arrays("idx", np.arange(4), np.arange(4)).top1_agreement is None


def test_nan_inf_and_shape_mismatch():
    a = np.array([np.nan, np.inf, 1.0], np.float32)
    assert compare_arrays("y", a, a.copy()).max_abs_err == 0.0  # same NaN / inf positions agree
    assert np.isnan(compare_arrays("y", a, np.array([0.0, np.inf, 1.0], np.float32)).max_abs_err)
    m = compare_arrays("y", np.ones((2, 3)), np.ones((3, 2)))
    assert m.note == "shape [2, 3] vs [3, 2]" and m.max_rel_err == float("inf")


def _linear_model(scale: float = 1.0) -> onnx.ModelProto:
    w = (np.random.default_rng(0).standard_normal((8, 5)) * scale).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"], name="fc")], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 5])],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_compare_models_in_every_form(tmp_path):
    model = _linear_model()
    onnx.save(model, tmp_path / "a.onnx")
    nvmc.save(nvmc.load(model), tmp_path / "a.nvir")
    graph = nvmc.load(model)
    for other in (model, graph, tmp_path / "a.onnx", str(tmp_path / "a.nvir")):
        report = compare(graph, other, samples=3, seed=1)
        assert report.max_abs_err == 0.0 and report.samples == 3 and report.top1_agreement == 1.0
    off = compare(model, _linear_model(1.001))
    assert 1e-4 < off.max_rel_err < 2e-3 and off.sqnr_db == pytest.approx(60, abs=1)
    with pytest.raises(AssertionError, match="max rel error .* exceeds 1e-05"):
        assert_numerics_close(model, _linear_model(1.001), rel=1e-5)


def test_user_inputs_from_npz(tmp_path):
    x = np.ones((2, 8), np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    report = compare(_linear_model(), _linear_model(), inputs=tmp_path / "in.npz")
    assert report.inputs_from.endswith("in.npz") and report.max_abs_err == 0.0
    np.savez(tmp_path / "bad.npz", xx=x)
    with pytest.raises(NvmcError, match="array 'xx' is not an input of the model — did you mean 'x'"):
        compare(_linear_model(), _linear_model(), inputs=tmp_path / "bad.npz")


def test_check_command(tmp_path):
    onnx.save(_linear_model(), tmp_path / "a.onnx")
    onnx.save(_linear_model(1.001), tmp_path / "b.onnx")
    proc = run_nvmc("check", str(tmp_path / "a.onnx"), str(tmp_path / "a.onnx"), "--rtol", "1e-5", check=True)
    assert "max rel err" in proc.stdout and "logits" in proc.stdout
    proc = run_nvmc("check", str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), "--rtol", "1e-5",
                    "--samples", "2")
    assert proc.returncode == 1 and "exceeds --rtol 1e-05" in proc.stderr
    proc = run_nvmc("check", str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), "--json", "-", check=True)
    data = json.loads(proc.stdout)
    assert data["schema"] == "nvmc.numerics/1" and data["outputs"][0]["name"] == "logits"
    proc = run_nvmc("check", str(tmp_path / "a.onnx"), str(tmp_path / "missing.onnx"))
    assert proc.returncode == 2 and "missing.onnx: file not found" in proc.stderr and "Traceback" not in proc.stderr
