"""The Python API: its docstring examples run (doctest), it is typed (py.typed), and
nvmc.estimate / nvmc.run_passes behave as documented."""

from __future__ import annotations

import doctest
import importlib
import inspect
import tomllib

import pytest

import nvmc
from conftest import REPO
from nvmc.backends.errors import TargetError

TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
DOCTESTED = ["nvmc", "nvmc.api", "nvmc.budget", "nvmc.report", "nvmc.generation"]
PUBLIC = ["load", "save", "verify", "analyze", "compile", "run_passes", "estimate", "export", "generate"]


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module, monkeypatch):
    monkeypatch.chdir(REPO)                   # the examples use paths relative to the repository
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{module} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module} failed (run: " \
                               f"python -m doctest -v {module.replace('.', '/')}.py)"


def test_public_functions_are_typed_and_documented_with_examples():
    for name in PUBLIC:
        fn = getattr(nvmc, name)
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, f"nvmc.{name} has no return type"
        for p in sig.parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                assert p.annotation is not inspect.Parameter.empty, f"nvmc.{name}({p.name}) has no type"
        assert fn.__doc__, f"nvmc.{name} has no docstring"
    for name in ("load", "save", "compile", "run_passes", "estimate", "generate"):
        assert ">>>" in getattr(nvmc, name).__doc__, f"nvmc.{name}'s docstring has no example"


def test_py_typed_ships():
    assert (REPO / "nvmc" / "py.typed").exists()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in data["package-data"]["nvmc"] and "schema/*.json" in data["package-data"]["nvmc"]
    assert "nvmc.report" in data["packages"]


def test_estimate_overrides_and_batch():
    g = nvmc.load(TINY_CNN)
    before = g.to_text()
    plain = nvmc.estimate(g, "sot-mram")
    by_name = nvmc.estimate(g, "sot-mram", llc_capacity="8MiB")
    by_dict = nvmc.estimate(g, "sot-mram", **{"llc.capacity": 8 * 2**20})
    assert by_name.info["llc_capacity_bytes"] == by_dict.info["llc_capacity_bytes"] == 8 * 2**20
    assert by_name.totals == by_dict.totals and by_name.target_hash == by_dict.target_hash != plain.target_hash
    assert g.to_text() == before                                     # the caller's graph is untouched
    assert nvmc.estimate(g, "sot-mram", batch=4).batch == 4
    with pytest.raises(TargetError, match="unknown target field 'llc_capcity' — did you mean 'llc_capacity'"):
        nvmc.estimate(g, "sot-mram", llc_capcity="8MiB")
    with pytest.raises(TargetError, match="not a capacity"):
        nvmc.estimate(g, "sot-mram", llc_capacity="lots")


def test_run_passes_in_place_and_the_estimate_follows():
    g = nvmc.load(TINY_CNN)
    result = nvmc.run_passes(g, "fuse-conv-bn,dce")
    assert [r.name for r in result.records] == ["fuse-conv-bn", "dce"] and result.records[0].changed
    assert "BatchNormalization" not in {n.op for n in g.nodes}
    est = nvmc.estimate(g, "sram")
    assert "bn1" not in est.names and est.totals["macs"] == nvmc.analyze(g).totals["macs"]
    rows = est.layers()
    assert len(rows) == len(est.names) and {"name", "op", "macs", "latency_s", "energy_j"} <= set(rows[0])
