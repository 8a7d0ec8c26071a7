"""Out-of-tree passes through the `nvmc.passes` entry point.

The slow test pip-installs examples/plugin into a fresh virtual environment (which sees
this environment's packages, nvmc included, through a .pth file) and runs its pass
through `nvmc opt`. The fast tests fake an installed distribution on sys.path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import nvmc
from nvmc.passes import PassError, get_pass, registered_passes
from nvmc.passes import base as pass_base
from nvmc.passes import plugins

REPO = Path(__file__).resolve().parents[1]


def _identity_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"], name="id"), helper.make_node("Relu", ["a"], ["y"], name="relu")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_example_plugin_installs_into_a_fresh_venv_and_runs_in_nvmc_opt(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The fresh venv sees this environment's packages (nvmc, onnx, pip, setuptools), .pth files included.
    (site / "_nvmc_test_base.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    source = shutil.copytree(REPO / "examples" / "plugin", tmp_path / "plugin")  # builds leave files behind
    cmd = [str(python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", str(source)]
    if importlib.util.find_spec("wheel") is not None:
        cmd.insert(-1, "--no-build-isolation")  # offline and fast; else pip fetches setuptools + wheel
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No matching distribution found for" in proc.stdout + proc.stderr:
        pytest.skip("no package index reachable to fetch the plugin's build requirements")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    run = [str(python), "-m", "nvmc"]
    listing = subprocess.run(run + ["passes", "strip-identity"], capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("strip-identity (exact; nvmc_example_plugin.StripIdentity)")

    model, out = _identity_model(tmp_path / "m.onnx"), tmp_path / "out.onnx"
    opt = subprocess.run(run + ["opt", str(model), "--passes", "strip-identity,dce", "-o", str(out)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert opt.returncode == 0, opt.stderr
    g = nvmc.load(out)
    assert [(n.op, n.inputs) for n in g.nodes] == [("Relu", ("x",))]
    assert "strip-identity" not in registered_passes()  # installed there, not here

    # the same package's cost-model family: a count function and a data file, nothing else
    targets = subprocess.run(run + ["targets", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert targets.returncode == 0, targets.stderr
    assert {"name": "scratchpad-npu", "family": "scratchpad"}.items() <= next(
        t for t in json.loads(targets.stdout) if t["name"] == "scratchpad-npu").items()
    compiled = subprocess.run(run + ["compile", str(REPO / "examples" / "models" / "tiny_cnn.onnx"), "-t",
                                     "scratchpad-npu", "--json", "-"], capture_output=True, text=True, env=env,
                              timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    report = json.loads(compiled.stdout)
    assert report["scope"]["system"] == "accelerator" and report["totals"]["area_mm2"] is None
    assert report["precision"]["costed"] == "int8" and "fp32 model costed at int8" in report["precision"]["note"]
    assert set(report["breakdown"]["energy_j"]) == {"compute", "scratchpad", "dram", "static"}
    explained = subprocess.run(run + ["explain", "-t", "scratchpad-npu", "--json"], capture_output=True, text=True,
                               env=env, timeout=120)
    assert explained.returncode == 0, explained.stderr
    kinds = {p["key"]: p["kind"] for p in json.loads(explained.stdout)["parameters"] if not p["key"].startswith("carbon")}
    assert set(kinds.values()) <= {"source", "derived", "assumed"}, kinds


@pytest.fixture()
def fake_distribution(tmp_path, monkeypatch):
    """Write an installed-looking distribution with two entry points, one of them broken."""
    (tmp_path / "fake_nvmc_plugin.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from nvmc.passes import Pass, PassResult

        @dataclass(frozen=True)
        class Noop(Pass):
            """Does nothing (registered by the entry point, not by a decorator).

            Before: x. After: x.
            """
            def run(self, graph):
                return PassResult(False)
    '''))
    info = tmp_path / "fake_nvmc_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-nvmc-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[nvmc.passes]\nfake-noop = fake_nvmc_plugin:Noop\nfake-broken = fake_nvmc_plugin_missing:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.load_plugins(reload=True)
    yield
    for name in ("fake-noop", "fake-broken"):
        pass_base._REGISTRY.pop(name, None)
        plugins._failures.pop(name, None)
    sys.modules.pop("fake_nvmc_plugin", None)


def test_entry_points_register_passes_and_report_broken_ones(fake_distribution):
    cls = get_pass("fake-noop")
    assert cls.name == "fake-noop" and cls.__module__ == "fake_nvmc_plugin"
    assert ("fake-noop", "fake_nvmc_plugin:Noop", "fake-nvmc-plugin 1.0") in plugins.plugin_entry_points()
    assert "fake-broken" in plugins.plugin_failures()
    with pytest.raises(PassError) as e:
        get_pass("fake-broken")
    assert "failed to load: fake_nvmc_plugin_missing:Thing: ModuleNotFoundError" in e.value.hint
    assert "fake-noop" in str(nvmc.passes.parse_pipeline("dce,fake-noop"))
