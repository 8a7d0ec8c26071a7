"""The racetrack-hdc family: hand-computed schedules on racetrack and on the FPGA baseline,
the derived transverse-read figures, refusals (non-HDC models, plain ONNX HDC), a mapping
that does not fit, and the CLI (compile --compare fpga, explain)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nvmc
from nvmc.backends import explain, load_target
from nvmc.backends.errors import TargetError, UnsupportedOpError
from nvmc.backends.techlib import library
from nvmc.ir import Graph, TensorType

from conftest import run_nvmc

NS, PJ = 1e-9, 1e-12
# RTSim RM.config @72d6af8 (data/tech/racetrack.toml): latencies, and energies per 32-track word
T_SH, T_RD, T_WR = 2.142 * NS, 1.613 * NS, 4.845 * NS
E_SH, E_RD, E_WR = 19.5 * PJ / 32, 80.1 * PJ / 32, 109.0 * PJ / 32
E_TR = E_RD * (0.504676821 + 0.000958797) / 0.7   # SPIMulator's TR/read energy ratio
E_BIT = 0.03 * PJ / 8                              # Horowitz int8 add / 8
LEAK_BANK = 3.1202 / 2**35 * 64 * 32 * 256         # Eleak per bit of a 4 GiB memory x one bank's bits


def hv(*shape) -> TensorType:
    return TensorType("bool", shape)


@pytest.fixture(scope="module")
def scenario() -> Graph:
    """One node of each kind with round numbers: D = 1000 bits."""
    g = Graph("scenario")
    for x in "abcd":
        g.add_input(x, hv(1, 1000))
    g.add_input("v", hv(1, 100, 1000))
    g.add_const("am", np.zeros((6, 1000), dtype=bool))
    g.add_node("Bind", ["a", "b", "c", "d"], ["bind4"], domain="nvmc", types=[hv(1, 1000)])
    g.add_node("Bind", ["a", "b", "c", "d", "a", "b", "c", "d", "a"], ["bind9"], domain="nvmc", types=[hv(1, 1000)])
    g.add_node("Permute", ["a"], ["perm"], {"axis": 1, "shift": 1}, domain="nvmc", types=[hv(1, 1000)])
    g.add_node("Bundle", ["v"], ["bun"], {"axis": 1, "keepdims": 0, "threshold": 50}, domain="nvmc",
               types=[hv(1, 1000)])
    g.add_const("axes", np.array([1], dtype=np.int64))
    g.add_node("Unsqueeze", ["bun", "axes"], ["q3"], types=[hv(1, 1, 1000)])
    g.add_node("Similarity", ["q3", "am"], ["sim"], {"keepdims": 0}, domain="nvmc",
               types=[TensorType("i32", (1, 6))])
    g.add_node("ArgMin", ["sim"], ["lang"], {"axis": 1, "keepdims": 0}, types=[TensorType("i64", (1,))])
    g.outputs = ["bind4", "bind9", "perm", "lang"]
    nvmc.verify(g)
    return g


def per_node(est) -> dict[str, dict]:
    return {row["name"]: row for row in est.layers()}


def test_transverse_read_is_derived_from_cited_numbers():
    tech = library().tech("racetrack")
    assert tech["transverse_read.energy_j"] == pytest.approx(E_TR, rel=1e-9)
    assert tech["transverse_read.latency_s"] == pytest.approx(T_RD)
    assert tech.param("transverse_read.energy_j").kind == "derived"
    assert all(tech.param(f"transverse_read.{k}").kind == "source"
               for k in ("spim_tr_energy", "spim_read_energy", "spim_tr_cycles", "max_distance"))


def test_racetrack_schedule_by_hand(scenario):
    est = nvmc.compile(scenario, "racetrack-hdc", sets=["racetrack.banks=1"]).estimate   # 8192 tracks
    assert est.ok and est.info["lanes"] == 8192
    rows = per_node(est)
    # Bind of 4: one TR round (TRD 5): a TR, a write and 5 shifts per bit column, one wave
    bind = rows["bind4"]
    assert bind["latency_s"] == pytest.approx(T_RD + T_WR + 5 * T_SH)
    assert bind["transverse_reads"] == 1000 and bind["writes"] == 1000 and bind["shifts"] == 5000
    e = bind["energy_by_component_j"]
    assert e["transverse_read"] + e["write"] + e["shift"] == pytest.approx(1000 * (E_TR + E_WR + 5 * E_SH))
    assert rows["bind9"]["transverse_reads"] == 2000   # 8 more operands / (TRD - 1) = 2 rounds
    # Permute: a read and a write per bit
    assert rows["perm"]["latency_s"] == pytest.approx(T_RD + T_WR)
    assert rows["perm"]["reads"] == rows["perm"]["writes"] == 1000
    # Bundle of 100 vectors: 2 tracks of 50 domains per counter, 10 TR rounds each; 7-bit counters
    bun = rows["bun"]
    assert bun["transverse_reads"] == 1000 * 2 * 10 and bun["shifts"] == 100_000
    assert bun["cmos_bit_ops"] == 20_000 * 7 + 1000 * 7
    assert bun["latency_s"] == pytest.approx(10 * (T_RD + 5 * T_SH) + T_WR)
    # Similarity: the 1000-bit query written once, 6 x 1000 (shift, TR) steps in one wave
    sim = rows["sim"]
    assert sim["writes"] == 1000 and sim["transverse_reads"] == 6000 and sim["shifts"] == 6000
    assert sim["latency_s"] == pytest.approx(T_WR + T_SH + T_RD)
    assert sim["energy_by_component_j"]["cmos"] == pytest.approx(6000 * E_BIT)
    # ArgMin: 6 compares of ceil(log2(1001)) = 10 bits, in CMOS, no time
    assert rows["lang"]["cmos_bit_ops"] == 60 and rows["lang"]["latency_s"] == 0
    # leakage: one 64 KiB bank at the per-bit leakage of RTSim's Eleak figure (3.1202 W) over the
    # 4 GiB configuration it was written for (issue 22: it was 3.1202 W per bank, 50 W for 1 MiB)
    assert est.energy_of("leakage") == pytest.approx(LEAK_BANK * est.totals["latency_s"])


def test_moves_cost_their_bits():
    """Slice and Cast are moves (the workload's kind column, as on every family): on racetrack a
    read and a write per bit, on the FPGA one register bit op per bit (issue 22: they were free)."""
    g = Graph("moves")
    g.add_input("v", hv(1, 4, 1000))
    for name, dim in (("s", 1), ("e", 1), ("a", 2)):
        g.add_const(name, np.array([dim if name != "a" else 1], dtype=np.int64))
    g.add_node("Slice", ["v", "s", "e", "a"], ["w"], types=[hv(1, 3, 1000)])
    g.add_node("Cast", ["w"], ["x"], {"to": 9}, types=[hv(1, 3, 1000)])
    g.add_node("Permute", ["x"], ["y"], {"axis": 2, "shift": 1}, domain="nvmc", types=[hv(1, 3, 1000)])
    g.outputs = ["y"]
    rows = per_node(nvmc.compile(g, "racetrack-hdc", sets=["racetrack.banks=1"]).estimate)
    for name in ("w", "x"):  # the Slice, the Cast
        node = rows[name]
        assert node["reads"] == node["writes"] == 3000 and node["latency_s"] == pytest.approx(T_RD + T_WR)
        assert node["energy_j"] == pytest.approx(3000 * (E_RD + E_WR))
    fpga = per_node(nvmc.compile(g, "fpga").estimate)
    assert all(r["bit_ops"] == 3000 and r["cycles"] == 0 for r in fpga.values() if r["op"] in ("Slice", "Cast"))


def test_leakage_per_bank_as_configured():
    """RTSim's Eleak (3.1202 W) is NVMain's template figure of a 4 GiB memory: per bit, scaled to
    the target's banks, 16 banks (1 MiB) leak 0.76 mW, not 16 x 3.12 = 50 W."""
    tech = library().tech("racetrack")
    assert tech["leakage.per_bank_w"] == pytest.approx(LEAK_BANK)
    assert tech.param("leakage.per_bank_w").kind == "derived" and tech.param("leakage.template_w").kind == "source"
    params = {p.key: p.value for p in explain(load_target("racetrack-hdc"))}
    assert params["racetrack.leakage_w"] == pytest.approx(16 * LEAK_BANK) and params["racetrack.leakage_w"] < 1e-3
    gated = {p.key: p.value for p in explain(load_target("racetrack-hdc", ["racetrack.leakage_scale=0.5"]))}
    assert gated["racetrack.leakage_w"] == pytest.approx(8 * LEAK_BANK)


def test_fpga_schedule_by_hand(scenario):
    est = nvmc.compile(scenario, "fpga").estimate
    rows = per_node(est)
    assert rows["bun"]["cycles"] == 10                  # 100 x 1000 counter updates / 10,000 lanes
    assert rows["sim"]["cycles"] == 1000                # 6 classes at once (22 in parallel), 1 bit per clock
    assert rows["bind4"]["cycles"] == 0 and rows["perm"]["cycles"] == 0   # streamed into the Bundle
    assert est.totals["latency_s"] == pytest.approx(1010 / 200e6)
    assert est.energy_of("static") == pytest.approx(1.0 * 1010 / 200e6)
    fast = nvmc.compile(scenario, "fpga", sets=["fpga.similarity_bits_per_cycle=1000"]).estimate
    assert per_node(fast)["sim"]["cycles"] == 1


def test_does_not_fit_is_a_result(scenario):
    g = Graph("big")
    g.add_input("v", hv(1, 64, 10_000))
    g.add_node("Bundle", ["v"], ["q"], {"axis": 1, "keepdims": 0, "threshold": 32}, domain="nvmc",
               types=[hv(1, 10_000)])
    g.outputs = ["q"]
    est = nvmc.compile(g, "racetrack-hdc", sets=["racetrack.banks=1"]).estimate
    assert not est.ok and "raise racetrack.banks" in est.reason and math.isnan(est.totals["energy_j"])
    assert nvmc.compile(g, "racetrack-hdc").estimate.ok


def test_non_hdc_models_are_refused(example_models):
    graph = nvmc.load(example_models / "tiny_cnn.onnx")
    with pytest.raises(UnsupportedOpError, match=r"\(Conv\) is not supported by target 'racetrack-hdc'.*"
                                                 "hyperdimensional-computing models only"):
        nvmc.compile(graph, "racetrack-hdc")
    with pytest.raises(UnsupportedOpError, match="not supported by target 'fpga'"):
        nvmc.compile(graph, "fpga")


def test_bad_transverse_read_distance():
    with pytest.raises(TargetError, match="spans 2 to 7 domains"):
        explain(load_target("racetrack-hdc", ["racetrack.transverse_read_distance=9"]))


@pytest.fixture(scope="module")
def hdc_onnx(tmp_path_factory):
    import onnx

    from nvmc.validate.nets import hdc_query

    rng = np.random.default_rng(0)
    im = rng.integers(0, 2, (27, 2048)).astype(bool)
    am = rng.integers(0, 2, (6, 2048)).astype(bool)
    model = hdc_query(im, am, length=64, n=4)  # examples/hdc's classifier graph
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("hdc") / "hdc.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_cli_compare_fpga_prints_ratios_breakdown_and_paper(hdc_onnx):
    proc = run_nvmc("compile", str(hdc_onnx), "--passes", "hdc-recognize", "--target", "racetrack-hdc",
                    "--compare", "fpga")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "fpga ÷ racetrack-hdc" in out and "7.8x" in out and "5.3x" in out
    for component in ("shift", "transverse_read", "write", "cmos", "leakage"):
        assert component in out


def test_cli_plain_onnx_hdc_asks_for_the_pass(hdc_onnx):
    proc = run_nvmc("compile", str(hdc_onnx), "--target", "racetrack-hdc")
    assert proc.returncode == 2
    assert "is not supported by target 'racetrack-hdc'" in proc.stderr and "--passes hdc-recognize" in proc.stderr


def test_cli_explain_flags_assumed_fpga_numbers():
    proc = run_nvmc("explain", "--target", "fpga", "--json")
    assert proc.returncode == 0, proc.stderr
    params = {p["key"]: p for p in json.loads(proc.stdout)["parameters"]}
    assert params["fpga.clock_hz"]["kind"] == "assumed" and params["fpga.static_power_w"]["kind"] == "assumed"
    assert params["fpga-16nm:energy.fpga_asic_dynamic_ratio"]["kind"] == "source"
    proc = run_nvmc("explain", "--target", "racetrack-hdc", "--json")
    params = {p["key"]: p for p in json.loads(proc.stdout)["parameters"]}
    assert params["racetrack:transverse_read.energy_j"]["kind"] == "derived"
    # racetrack's own numbers: none assumed (the carbon deployment defaults, --lifetime and
    # --utilisation, are the user's assumed choices on every target)
    assert not [k for k, p in params.items() if p["kind"] == "assumed" and not k.startswith("carbon:deployment.")]
