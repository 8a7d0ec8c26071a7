"""The CLI as a user runs it: real subprocesses, real files, exit codes and messages."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import run_nvmc


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_version_and_help():
    out = run_nvmc("--version", check=True).stdout
    assert out.startswith("nvmc, version ")
    helptext = run_nvmc("--help", check=True).stdout
    for cmd in ("analyze", "ir", "export", "verify"):
        assert cmd in helptext


def test_analyze_example_with_json_and_csv(tmp_path, example_models):
    proc = run_nvmc("analyze", str(example_models / "tiny_cnn.onnx"), "--json", str(tmp_path / "a.json"),
                    "--csv", str(tmp_path / "a.csv"), check=True)
    assert "conv2" in proc.stdout and "MACs" in proc.stdout
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["schema"] == "nvmc.analysis/1"
    # conv1 3x3x3 -> 16 at 32x32, conv2 16->16 3x3 at 16x16, depthwise 16 at 16x16, fc 16->10
    assert data["totals"]["macs"] == 16 * 1024 * 27 + 16 * 256 * 144 + 16 * 256 * 9 + 160
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0].startswith("name,op,macs") and len(lines) == 1 + len(data["nodes"])


def test_ir_then_export_round_trip(tmp_path, example_models):
    nvir = tmp_path / "cnn.nvir"
    run_nvmc("ir", str(example_models / "tiny_cnn.onnx"), "-o", str(nvir), check=True)
    assert (tmp_path / "cnn.npz").exists()
    run_nvmc("export", str(nvir), "-o", str(tmp_path / "cnn.onnx"), check=True)
    onnx.checker.check_model(onnx.load(tmp_path / "cnn.onnx"))
    printed = run_nvmc("ir", str(nvir), check=True).stdout
    assert printed == nvir.read_text().replace("cnn.npz", "cnn.npz")


def test_dynamic_batch_notice_and_binding(example_models):
    model = str(example_models / "tiny_transformer.onnx")
    proc = run_nvmc("analyze", model, check=True)
    assert "batch dimension 'batch' of input 'tokens' bound to 1 (set it with --dim batch=N)" in proc.stderr
    bound = run_nvmc("analyze", model, "--input-shape", "tokens=4x16x64", "--json", "-", check=True)
    one = json.loads(run_nvmc("analyze", model, "--json", "-", check=True).stdout)["totals"]["macs"]
    assert json.loads(bound.stdout)["totals"]["macs"] == 4 * one
    by_name = run_nvmc("analyze", model, "--dim", "batch=4", "--json", "-", check=True)  # the same, by its name
    assert json.loads(by_name.stdout)["totals"]["macs"] == 4 * one


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _unknown_op_model(path):
    node = helper.make_node("FancyOp", ["x"], ["y"], name="attn/Fancy_3")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _dynamic_model(path):
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


BAD_INPUTS = {
    "random bytes": (lambda d, ex: _write(d / "r.onnx", np.random.default_rng(1).bytes(2000)),
                     "not a valid ONNX model"),
    "truncated": (lambda d, ex: _write(d / "t.onnx", (ex / "tiny_cnn.onnx").read_bytes()[:5000]),
                  "not a valid ONNX model"),
    "empty": (lambda d, ex: _write(d / "e.onnx", b""), "the file is empty"),
    "missing": (lambda d, ex: d / "missing.onnx", "file not found"),
    "unknown op": (lambda d, ex: _unknown_op_model(d / "u.onnx"),
                   "node 'attn/Fancy_3' uses op 'FancyOp', which is not an ONNX operator in opset 17"),
    "unbound dim": (lambda d, ex: _dynamic_model(d / "dyn.onnx"),
                    "value '%y' has the unbound dimension 'seq'"),
    "nvir syntax": (lambda d, ex: _write(d / "s.nvir", b"graph @g(%x: f32[1]) -> (%x: f32[1]) {\n  return %x %x\n}\n"),
                    "s.nvir:2:13: unexpected '%x'"),
    "nvir undefined": (lambda d, ex: _write(
        d / "u.nvir", b"graph @g(%x: f32[1]) -> (%y: f32[1]) {\n  %y = Relu(%z) : f32[1]\n  return %y\n}\n"),
        "u.nvir:2:13: unknown value '%z'"),
    "not text": (lambda d, ex: _write(d / "b.nvir", b"\xff\xfe\x00binary"), "not a text file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error(tmp_path, example_models, case):
    make, expected = BAD_INPUTS[case]
    path = make(tmp_path, example_models)
    before = digest(path) if path.exists() else None
    proc = run_nvmc("analyze", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and expected in proc.stderr, proc.stderr
    assert (digest(path) if path.exists() else None) == before


def test_bad_option_values_exit_2(example_models):
    proc = run_nvmc("analyze", str(example_models / "tiny_cnn.onnx"), "--input-shape", "x=1xfoo")
    assert proc.returncode == 2 and "NAME=DIMS" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_nvmc("analyze", str(example_models / "tiny_cnn.onnx"), "--input-shape", "nope=1x3x32x32")
    assert proc.returncode == 2 and "inputs are: x" in proc.stderr


def test_export_refuses_to_overwrite_its_input(tmp_path, example_models):
    model = tmp_path / "m.onnx"
    model.write_bytes((example_models / "tiny_cnn.onnx").read_bytes())
    before = digest(model)
    proc = run_nvmc("export", str(model), "-o", str(model))
    assert proc.returncode == 2 and "overwrite the input" in proc.stderr
    assert digest(model) == before


def test_no_colour_codes_when_piped(example_models):
    proc = run_nvmc("analyze", str(example_models / "tiny_cnn.onnx"))
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout
