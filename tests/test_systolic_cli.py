"""The systolic targets through the real CLI, on transformers and depthwise CNNs, and bad input.

(More bad-input cases, in process: test_systolic_model.py::test_bad_targets_are_clear_errors.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

import nvmc
from nvmc.passes import registered_passes
from nvmc import backends
from conftest import run_nvmc, zoo_path

needs_quantize = pytest.mark.skipif("quantize" not in registered_passes(),
                                    reason="the quantize pass is not in this tree")
TARGETS = [f"systolic-{t}-{n}nm" for t in ("sram", "stt", "sot", "vgsot") for n in (28, 7)]


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_targets_lists_the_eight_systolic_targets():
    rows = {r["name"]: r for r in json.loads(run_nvmc("targets", "--json", check=True).stdout)}
    for name in TARGETS:
        assert rows[name]["family"] == "systolic"


def test_compile_with_array_and_dataflow_overrides(example_models, tmp_path):
    report = tmp_path / "r.json"
    proc = run_nvmc("compile", str(example_models / "tiny_cnn.onnx"), "--target", "systolic-sot-7nm",
                    "--compare", "systolic-sram-7nm", "--set", "array.size=128x128", "--set", "array.dataflow=ws",
                    "--json", str(report), check=True)
    no_traceback(proc)
    assert "energy by component" in proc.stdout and "buffer_leakage" in proc.stdout
    data = json.loads(report.read_text())
    assert data["target"]["family"] == "systolic"
    assert data["target"]["array"] == "128x128" and data["target"]["dataflow"] == "ws"
    assert data["compare"][0]["target"]["buffers"]["ifmap"]["technology"] == "sram"
    assert {"pe_array", "ifmap_buffer", "filter_buffer", "ofmap_buffer"} <= set(data["breakdown"]["area_mm2"])
    assert data["totals"]["latency_s"] > 0 and all(row["latency_s"] is not None for row in data["layers"])


def test_explain_flags_assumed_numbers_and_cites_the_tables():
    proc = run_nvmc("explain", "--target", "systolic-vgsot-28nm", check=True)
    no_traceback(proc)
    assert "ASSUMED" in proc.stdout and "buffer_tables.csv" in proc.stdout and "SB17" in proc.stdout
    params = json.loads(run_nvmc("explain", "--target", "systolic-stt-7nm", "--json", check=True).stdout)["parameters"]
    kinds = {p["key"]: p["kind"] for p in params}
    assert kinds["systolic-edge:mac.int8_mult_45nm_j"] == "source"
    assert kinds["ifmap_buffer.energy_scale"] == "derived"


@pytest.mark.parametrize("sets, message", [
    (["array.size=16x0"], "array.size = '16x0': the array needs at least one row and one column"),
    (["ifmap_buffer.capacity=16"], "ifmap_buffer.capacity = 16 B is smaller than one 256-bit word"),
])
def test_bad_input_is_one_clear_error(example_models, sets, message):
    args = [a for s in sets for a in ("--set", s)]
    proc = run_nvmc("compile", str(example_models / "tiny_cnn.onnx"), "--target", "systolic-sram-28nm", *args)
    assert proc.returncode == 2
    no_traceback(proc)
    assert message in proc.stderr


def test_bad_target_file_names_file_and_line(example_models, tmp_path):
    # the shipped file writes rows = { value = 16, assumed = "..." } (a number with its provenance)
    text = (backends.shipped_targets()["systolic-sram-28nm"]).read_text().replace("rows = { value = 16",
                                                                                  "rows = { value = 0")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    proc = run_nvmc("compile", str(example_models / "tiny_cnn.onnx"), "--target", str(bad))
    assert proc.returncode == 2
    no_traceback(proc)
    assert "bad.toml:" in proc.stderr and "rows = 0: must be positive" in proc.stderr


def test_transformer_runs_its_matmuls_on_the_array(example_models):
    """Acceptance 3: a MatMul-heavy transformer block (projections with shared weights and
    attention's activation x activation MatMuls)."""
    compiled = nvmc.compile(example_models / "tiny_transformer.onnx", TARGETS[:2], batch=1)
    w = compiled.workload
    for est in compiled.estimates:
        assert est.ok and np.isfinite(est.totals["energy_j"])
        matmuls = [i for i, op in enumerate(w.ops) if op == "MatMul"]
        assert len(matmuls) == 8
        assert all(est.events["array_cycles"][i] > 0 for i in matmuls)
        assert est.macs.sum() == w.columns["macs"].sum()
        softmax = w.ops.index("Softmax")
        assert est.latency["vector"][softmax] > 0 and est.events["array_cycles"][softmax] == 0


@needs_quantize
def test_depthwise_cnn_quantised_across_all_targets():
    """Acceptance 3: ShuffleNet (grouped and depthwise convs), int8, on all eight targets."""
    compiled = nvmc.compile(zoo_path("light_shufflenet"), TARGETS, passes="quantize{bits=8,measure=false}")
    w = compiled.workload
    depthwise = [i for i, op in enumerate(w.ops) if op == "Conv" and w.columns["gemm_n"][i] == 1
                 and w.columns["gemm_batch"][i] > 1]
    assert depthwise
    for est in compiled.estimates:
        assert est.ok and est.info["mac_precision"] == "int8"
        assert all(est.events["array_cycles"][i] > 0 for i in depthwise)
    by = {e.target: e for e in compiled.estimates}
    # the 7 nm chip is smaller and spends less energy than the same chip at 28 nm (SB17)
    for tech in ("sram", "stt", "sot", "vgsot"):
        assert by[f"systolic-{tech}-7nm"].totals["area_mm2"] < by[f"systolic-{tech}-28nm"].totals["area_mm2"]
        assert by[f"systolic-{tech}-7nm"].totals["energy_j"] < by[f"systolic-{tech}-28nm"].totals["energy_j"]
