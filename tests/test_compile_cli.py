"""`nvmc compile`, `nvmc targets`, `nvmc explain` as a user runs them (real subprocesses)."""

from __future__ import annotations

import csv
import json

import onnx
import pytest
from onnx import TensorProto, helper

from conftest import run_nvmc, zoo_path

SQUEEZENET = str(zoo_path("light_squeezenet"))


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_targets_lists_shipped():
    proc = run_nvmc("targets", check=True)
    for name in ("sram", "stt-mram", "sot-mram"):
        assert name in proc.stdout
    rows = json.loads(run_nvmc("targets", "--json", check=True).stdout)
    assert {r["name"] for r in rows} >= {"sram", "stt-mram", "sot-mram"}
    assert all(r["family"] for r in rows)


def test_compile_summary_json_csv_and_onnx_out(tmp_path, example_models):
    model = example_models / "tiny_cnn.onnx"
    before = model.read_bytes()
    out = tmp_path / "out.onnx"
    proc = run_nvmc("compile", str(model), "--target", "sot-mram", "--json", str(tmp_path / "r.json"),
                    "--csv", str(tmp_path / "r.csv"), "-o", str(out), check=True)
    no_traceback(proc)
    for text in ("latency", "energy", "EDP", "area", "energy by component", "l2_leakage", "top", "conv1"):
        assert text in proc.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == "nvmc.report/1"
    assert data["target"]["name"] == "sot-mram" and data["target"]["family"] == "gpu-llc"
    assert set(data["totals"]) >= {"latency_s", "energy_j", "edp_js", "area_mm2", "macs"}
    assert data["totals"]["macs"] == 16 * 1024 * 27 + 16 * 256 * 144 + 16 * 256 * 9 + 160
    assert "energy_j" in data["breakdown"]
    assert {"name", "op", "macs", "latency_s", "energy_j"} <= set(data["layers"][0])
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == len(data["layers"]) and rows[0]["target"] == "sot-mram"
    onnx.checker.check_model(onnx.load(out))
    assert model.read_bytes() == before


def test_compare_and_iso(tmp_path):
    proc = run_nvmc("compile", SQUEEZENET, "--target", "sram", "--compare", "stt-mram,sot-mram", "--iso", "area",
                    "--json", str(tmp_path / "c.json"), check=True)
    assert "stt-mram ÷ sram" in proc.stdout and "sot-mram ÷ sram" in proc.stdout and "L2 capacity" in proc.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert [c["target"]["name"] for c in data["compare"]] == ["stt-mram", "sot-mram"]
    ratios = data["ratios"]["stt-mram"]
    assert ratios["area_mm2"] == pytest.approx(1.0, rel=1e-3)          # iso-area
    assert data["compare"][0]["target"]["llc_capacity_bytes"] > 2 * data["target"]["llc_capacity_bytes"]


def test_json_to_stdout_with_set():
    proc = run_nvmc("compile", SQUEEZENET, "-t", "stt-mram", "--set", "llc.capacity=8MiB", "--json", "-", check=True)
    data = json.loads(proc.stdout)
    assert data["target"]["llc_capacity_bytes"] == 8 * 2**20


def test_explain_lists_sources_and_flags_assumed():
    proc = run_nvmc("explain", "--target", "sot-mram", "--set", "llc.capacity=4MiB", check=True)
    out = proc.stdout
    assert "ASSUMED" in out and "GTX: vortez.net" in out and "NVSim" in out
    assert "llc.capacity" in out and "--set llc.capacity=4MiB" in out
    data = json.loads(run_nvmc("explain", "-t", "sram", "--json", check=True).stdout)
    kinds = {p["kind"] for p in data["parameters"]}
    assert {"source", "derived", "assumed"} <= kinds
    assert all(p["note"] for p in data["parameters"])


@pytest.mark.parametrize("args,fragment", [
    (("--target", "sot-mrma"), "did you mean 'sot-mram'"),
    (("--target", "sram", "--set", "llc.capcity=8MiB"), "did you mean 'llc.capacity'"),
    (("--target", "sram", "--set", "llc.capacity=lots"), "not a capacity"),
    (("--target", "sram", "--compare", "stt,sot-mram"), "unknown target 'stt'"),
])
def test_bad_target_input_exits_2(args, fragment):
    proc = run_nvmc("compile", SQUEEZENET, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and fragment in proc.stderr
    no_traceback(proc)


def test_target_file_with_negative_field(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('schema = "nvmc.target/1"\nname = "mine"\nfamily = "gpu-llc"\n\n[llc]\ntechnology = "sram"\n'
                    'slices = -4\n')
    proc = run_nvmc("compile", SQUEEZENET, "--target", str(mine))
    assert proc.returncode == 2
    assert f"error: {mine}:7: [llc] slices = -4: must be positive" in proc.stderr
    no_traceback(proc)
    mine.write_text(mine.read_text().replace("slices = -4", "slices = 8"))
    assert run_nvmc("compile", SQUEEZENET, "--target", str(mine), check=True).returncode == 0


def test_unsupported_op_exits_2(tmp_path):
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8])  # noqa: E731
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [vi("t")])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    node = helper.make_node("If", ["c"], ["y"], "branch", then_branch=then, else_branch=other)
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])  # decided at run time: nothing to fold
    graph = helper.make_graph([node], "g", [vi("x"), cond], [vi("y")])
    path = tmp_path / "branchy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    proc = run_nvmc("compile", str(path), "--target", "sot-mram")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {path}: node 'branch' (If) is not supported by target 'sot-mram'")
    no_traceback(proc)
    # a condition the user fixes (--input-value) takes its branch: Neg, a costed op
    fixed = run_nvmc("compile", str(path), "--target", "sot-mram", "--input-value", "c=0", "--json", "-")
    assert fixed.returncode == 0, fixed.stderr
    assert [layer["op"] for layer in json.loads(fixed.stdout)["layers"]] == ["Neg", "Identity"]
    assert "1 If node(s)" in fixed.stderr


def test_not_fitting_exits_1():
    proc = run_nvmc("compile", SQUEEZENET, "--target", "stt-mram", "--iso", "area", "--set", "llc.capacity=30MiB")
    assert proc.returncode == 1 and "does not fit" in proc.stdout
    no_traceback(proc)


def test_output_must_not_overwrite_input(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(zoo_path("light_squeezenet").read_bytes())
    proc = run_nvmc("compile", str(model), "--target", "sram", "-o", str(model))
    assert proc.returncode == 2 and "overwrite the input" in proc.stderr


def test_passes_run_before_costing(example_models):
    import nvmc.passes

    if not hasattr(nvmc.passes, "run_pipeline"):
        pytest.skip("this build has no pass pipelines")
    model = str(example_models / "tiny_cnn.onnx")
    data = json.loads(run_nvmc("compile", model, "-t", "sram", "--passes", "dce", "--json", "-", check=True).stdout)
    assert data["pipeline"] == "dce" and data["layers"]
    proc = run_nvmc("compile", model, "-t", "sram", "--passes", "no-such-pass")
    assert proc.returncode == 2 and "no-such-pass" in proc.stderr
    no_traceback(proc)


def test_python_compile_api():
    """nvmc.compile: the same estimate as the CLI, the caller's graph left untouched."""
    import nvmc
    from conftest import REPO

    graph = nvmc.load(REPO / "examples" / "models" / "tiny_cnn.onnx")
    before = graph.to_text()
    out = nvmc.compile(graph, ["sram", "sot-mram"], passes="fuse-conv-bn,dce")
    assert graph.to_text() == before
    assert [e.target for e in out.estimates] == ["sram", "sot-mram"]
    assert not any(n.op == "BatchNormalization" for n in out.graph.nodes)
    assert out.estimate.totals["macs"] == out.workload.totals["macs"] > 0
    sram, sot = (e.totals["energy_j"] for e in out.estimates)
    assert sram > 0 and sot > 0 and sram != sot
