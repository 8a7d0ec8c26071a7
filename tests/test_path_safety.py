"""Path safety (issue 15): outputs never replace an input, writes are atomic, external data
and sidecars stay inside the model's directory."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

import nvmc
from nvmc.ir import NvmcError
from nvmc.ir.files import atomic_write, check_output

from conftest import run_nvmc

REPO = Path(__file__).resolve().parents[1]
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(CNN, tmp_path / "m.onnx")
    (tmp_path / "t.toml").write_text((REPO / "backends" / "targets" / "sot-mram.toml").read_text())
    return tmp_path


@pytest.mark.parametrize("args", [
    ["export", "m.onnx", "-o", "m.onnx"],
    ["export", "m.onnx", "-o", "link.onnx"],                      # a symlink to the input
    ["export", "m.onnx", "-o", "hard.onnx"],                      # a hard link to the input
    ["compile", "m.onnx", "--target", "sot-mram", "--json", "m.onnx"],
    ["compile", "m.onnx", "--target", "sot-mram", "--csv", "./m.onnx"],
    ["compile", "m.onnx", "--target", "sot-mram", "--html", "link.onnx"],
    ["compile", "m.onnx", "--target", "t.toml", "--json", "t.toml"],   # the target file is an input too
    ["compile", "m.onnx", "--target", "sot-mram", "--compare", "t.toml", "--csv", "t.toml"],
    ["analyze", "m.onnx", "--json", "m.onnx"],
    ["analyze", "m.onnx", "--csv", "hard.onnx"],
    ["opt", "m.onnx", "--passes", "dce", "-o", "m.onnx"],
    ["opt", "m.onnx", "--passes", "dce", "--json", "m.onnx"],
])
def test_cli_refuses_to_overwrite_an_input(work: Path, args: list[str]) -> None:
    (work / "link.onnx").symlink_to(work / "m.onnx")
    os.link(work / "m.onnx", work / "hard.onnx")
    before = digest(work)
    proc = run_nvmc(*args, cwd=work)
    assert proc.returncode == 2, proc.stderr
    assert "would overwrite the input" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(work) == before


def test_nvir_sidecar_is_an_input_too(work: Path) -> None:
    """`nvmc ir m.nvir -o other.nvir` would write other.npz; refuse when that is m.nvir's sidecar."""
    run_nvmc("ir", "m.onnx", "-o", "m.nvir", cwd=work, check=True)
    (work / "other.npz").symlink_to(work / "m.npz")
    before = digest(work)
    proc = run_nvmc("ir", "m.nvir", "-o", "other.nvir", cwd=work)
    assert proc.returncode == 2 and "m.npz" in proc.stderr, proc.stderr
    assert digest(work) == before
    with pytest.raises(NvmcError, match="overwrite the input"):
        nvmc.save(nvmc.load(work / "m.nvir"), work / "m.npz")
    # the API can opt in, e.g. to rewrite a model in place on purpose
    assert nvmc.save(nvmc.load(work / "m.nvir"), work / "m.nvir", overwrite_inputs=True)[0].name == "m.nvir"


def test_external_data_file_is_an_input(tmp_path: Path) -> None:
    model = onnx.load(CNN)
    onnx.save_model(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.onnx.data",
                    size_threshold=0)
    g = nvmc.load(tmp_path / "ext.onnx")
    assert {Path(p).name for p in g.meta["files"]} == {"ext.onnx", "ext.onnx.data"}
    (tmp_path / "new.onnx.data").symlink_to(tmp_path / "ext.onnx.data")
    with pytest.raises(NvmcError, match="ext.onnx.data"):
        nvmc.save(g, tmp_path / "new.onnx")


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin", "link.bin"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")  # a link that leaves the directory
    model = onnx.load(CNN)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    onnx.save_model(model, folder / "m.onnx")
    proc = run_nvmc("verify", "m.onnx", cwd=folder)
    assert proc.returncode == 2, proc.stderr
    assert "outside the model's directory" in proc.stderr and "Traceback" not in proc.stderr


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o640)

    def fail(f) -> None:
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, fail)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    atomic_write(out, "new")
    assert out.read_text() == "new" and out.stat().st_mode & 0o777 == 0o640  # permissions kept


def test_atomic_write_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(NvmcError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "x.json", "{}")
    with pytest.raises(NvmcError, match="is a directory"):
        atomic_write(tmp_path, "{}")
    check_output(tmp_path / "new.json", [tmp_path / "a.onnx", "-"])  # not existing yet: fine


def test_cli_write_into_a_missing_directory_is_one_clear_error(work: Path) -> None:
    proc = run_nvmc("compile", "m.onnx", "--target", "sot-mram", "--json", "no/such/dir/r.json", cwd=work)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
