"""Carbon (backends/carbon.py): ACT's formula by hand from the cited inputs, grid changes only
the operational part, every target's report carries it, and the CLI options."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nvmc
from conftest import REPO, run_nvmc
from nvmc.backends.carbon import act_node, carbon, carbon_per_area, grid_intensity
from nvmc.backends.errors import TargetError
from nvmc.backends.estimate import Estimate

TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
YEAR_S = 365.25 * 24 * 3600


def fake(area_mm2: float, energy_j: float, latency_s: float, batch: int = 1, node_nm: float | None = 7) -> Estimate:
    info = {"node_nm": node_nm} if node_nm else {}
    return Estimate("t", "f", "0" * 64, ["n"], ["Gemm"], np.ones(1), np.array([latency_s]), {"c": np.array([latency_s])},
                    {"c": np.array([energy_j])}, {"die": area_mm2} if area_mm2 else {}, batch=batch, info=info)


def test_carbon_per_area_by_hand():
    # ACT 7 nm: (CI_fab 583 x EPA 2.15 + mean(GPA95 350, GPA99 200) + MPA 500) / yield 0.875
    assert carbon_per_area(7)["total_g_per_cm2"] == pytest.approx((583 * 2.15 + 275 + 500) / 0.875)
    assert carbon_per_area(7)["total_g_per_cm2"] == pytest.approx(2318.2, abs=0.1)     # params.md §10: 2.32 kg/cm2
    assert carbon_per_area(28)["total_g_per_cm2"] == pytest.approx(1328.2, abs=0.1)    # 1.33 kg/cm2


def test_carbon_adds_up_by_hand():
    # 1 cm2 at 7 nm, 3.6 J (1e-6 kWh) and 1 s per inference, 1 year at full use, grid 300 g/kWh
    c = carbon(fake(100.0, 3.6, 1.0), grid=300, lifetime_years=1, utilisation=1.0)
    embodied = (583 * 2.15 + 275 + 500) / 0.875 * 1.0 + 150                 # die + one package
    assert c["embodied_g"] == pytest.approx(embodied)
    assert c["operational_g_per_inference"] == pytest.approx(300e-6)
    assert c["inferences_lifetime"] == pytest.approx(YEAR_S)
    assert c["embodied_g_per_inference"] == pytest.approx(embodied / YEAR_S)
    assert c["total_g_per_inference"] == pytest.approx(300e-6 + embodied / YEAR_S)
    # batch 4 in 1 s: each inference holds the chip 0.25 s and uses 0.9 J
    c4 = carbon(fake(100.0, 3.6, 1.0, batch=4), grid=300, lifetime_years=1, utilisation=0.5)
    assert c4["operational_g_per_inference"] == pytest.approx(75e-6)
    assert c4["embodied_g_per_inference"] == pytest.approx(embodied * 0.25 / (0.5 * YEAR_S))


def test_grid_changes_only_operational():
    e = fake(50.0, 1e-3, 1e-3)
    a = carbon(e, grid="world")
    b = carbon(e, grid="iceland")
    assert a["grid_g_per_kwh"] == 301 and b["grid_g_per_kwh"] == 28
    assert b["operational_g_per_inference"] == pytest.approx(a["operational_g_per_inference"] * 28 / 301)
    assert a["embodied_g_per_inference"] == b["embodied_g_per_inference"]
    assert a["embodied_g"] == b["embodied_g"]


def test_nodes_grids_and_missing_data():
    assert act_node(7) == (7, "") and act_node(45)[0] == 28 and "older" in act_node(45)[1]
    assert act_node(16)[0] == 14 and act_node(22)[0] == 20
    assert grid_intensity("Europe") == (295, "europe") and grid_intensity("250")[0] == 250
    with pytest.raises(TargetError, match="did you mean 'europe'"):
        grid_intensity("europa")
    with pytest.raises(TargetError):
        grid_intensity(-1)
    no_area = carbon(fake(0, 1e-3, 1e-3))
    assert no_area["embodied_g"] is None and "no area" in no_area["note"]
    assert no_area["operational_g_per_inference"] > 0
    no_node = carbon(fake(10, 1e-3, 1e-3, node_nm=None))
    assert no_node["embodied_g"] is None and "process node" in no_node["note"]


def test_every_target_gets_carbon_in_the_report():
    out = nvmc.compile(TINY_CNN, ["systolic-sot-7nm", "sram", "cpu"], grid="usa", lifetime_years=5)
    for e in out.estimates:
        assert e.carbon["grid"] == "usa" and e.carbon["lifetime_years"] == 5
        assert e.carbon["operational_g_per_inference"] > 0
    report = out.to_dict()
    assert report["carbon"]["embodied_g"] > 150 and report["carbon"]["node_nm"] == 7
    assert all("carbon" in c for c in report["compare"])
    jsonschema = pytest.importorskip("jsonschema")
    from nvmc.report import report_schema

    jsonschema.Draft202012Validator(report_schema()).validate(report)


def test_cli_grid_and_lifetime():
    a = json.loads(run_nvmc("compile", str(TINY_CNN), "-t", "systolic-sram-7nm", "--json", "-", "--grid", "iceland",
                            "--lifetime", "2", check=True).stdout)["carbon"]
    b = json.loads(run_nvmc("compile", str(TINY_CNN), "-t", "systolic-sram-7nm", "--json", "-", "--grid", "600",
                            "--lifetime", "2", check=True).stdout)["carbon"]
    assert a["grid"] == "iceland" and b["grid_g_per_kwh"] == 600 and a["lifetime_years"] == 2
    assert a["embodied_g_per_inference"] == pytest.approx(b["embodied_g_per_inference"])
    assert b["operational_g_per_inference"] == pytest.approx(a["operational_g_per_inference"] * 600 / 28)
    bad = run_nvmc("compile", str(TINY_CNN), "-t", "sram", "--grid", "mars")
    assert bad.returncode == 2 and "unknown grid 'mars'" in bad.stderr and "Traceback" not in bad.stderr


# Peer: ACT itself (facebookresearch/ACT @abc9fbb, act.core.logic_model.LogicModel().get_cpa with its
# defaults: GPA97, yield 0.875, Taiwan fab grid), run in a throwaway venv by
# tests/data/refs/act/run_act.py (how: its docstring); its output, in g CO2e/cm^2:
ACT_CPA_G_PER_CM2 = {int(k): v for k, v in json.loads(
    (REPO / "tests" / "data" / "refs" / "act" / "act_cpa.json").read_text())["g_per_cm2"].items()}


@pytest.mark.parametrize("node", sorted(ACT_CPA_G_PER_CM2))
def test_carbon_per_area_matches_act(node):
    assert carbon_per_area(node)["total_g_per_cm2"] == pytest.approx(ACT_CPA_G_PER_CM2[node], rel=1e-12)
