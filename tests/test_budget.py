"""--budget: parsing, checking, and the exit codes a deployment flow's CI relies on.

0: every budget kept; 3: a budget exceeded (one line per broken budget); 2: a malformed
budget (before the model is read); 1: a target the model does not fit (wins over 3).
"""

from __future__ import annotations

import json

import pytest

from conftest import REPO, run_nvmc, zoo_path
from nvmc.budget import EXIT_BUDGET, METRICS, check_budgets, parse_budgets
from nvmc.ir.errors import NvmcError
from nvmc.report import validate_report

TINY_CNN = str(REPO / "examples" / "models" / "tiny_cnn.onnx")


@pytest.mark.parametrize("text,metric,limit", [
    ("latency=5ms", "latency", 5e-3),
    ("latency = 250 us", "latency", 250e-6),
    ("latency<=2s", "latency", 2.0),
    ("energy=2mJ", "energy", 2e-3),
    ("energy=40µJ", "energy", 40e-6),
    ("energy_per_inference=3nJ", "energy_per_inference", 3e-9),
    ("energy-per-inference=1J", "energy_per_inference", 1.0),
    ("edp=1uJs", "edp", 1e-6),
    ("edp=2J*s", "edp", 2.0),
    ("area=10mm2", "area", 10.0),
    ("area=0.5mm^2", "area", 0.5),
    ("area=2000um2", "area", 2e-3),
    ("area=1cm2", "area", 100.0),
    ("throughput=1000/s", "throughput", 1000.0),
    ("throughput=2k/s", "throughput", 2000.0),
    ("throughput=30", "throughput", 30.0),
    ("LATENCY=1e-3s", "latency", 1e-3),
])
def test_parse(text, metric, limit):
    (b,) = parse_budgets(text)
    assert b.metric == metric and b.limit == pytest.approx(limit, rel=1e-12)


@pytest.mark.parametrize("text,fragment", [
    ("latncy=5ms", "unknown budget metric 'latncy' — did you mean 'latency'?"),
    ("latency=5", "'latency=5': needs a unit"),
    ("latency=5mJ", "unknown unit 'mJ'"),
    ("area=10mm", "unknown unit 'mm' — did you mean 'mm"),
    ("energy=-1mJ", "must be positive"),
    ("energy=lots", "is not a number with a unit"),
    ("latency", "'latency' is not METRIC=VALUE"),
    ("", "empty budget"),
])
def test_parse_errors_name_the_part_and_the_fix(text, fragment):
    with pytest.raises(NvmcError) as info:
        parse_budgets(text)
    assert info.value.where == "--budget" and fragment in info.value.message
    assert "e.g." in (info.value.hint or "") or "metrics:" in (info.value.hint or "") or fragment == "must be positive"


def test_several_budgets_and_the_check():
    budgets = parse_budgets("latency=5ms,energy=2mJ,area=10mm2,throughput=100/s")
    assert [b.metric for b in budgets] == ["latency", "energy", "area", "throughput"]
    ok = {"latency_s": 4e-3, "energy_j": 1e-3, "area_mm2": 9.9, "throughput_ips": 250.0}
    bad = {"latency_s": 6e-3, "energy_j": 1e-3, "area_mm2": 12.0, "throughput_ips": 50.0}
    results = check_budgets(budgets, [("good", ok), ("bad", bad), ("nofit", {"latency_s": float("nan")})])
    assert [r.ok for r in results] == [True] * 4 + [False, True, False, False] + [False] * 4
    messages = [r.message() for r in results if not r.ok]
    assert messages[0] == "bad: latency 6 ms exceeds the budget of 5 ms by 20%"
    assert messages[1] == "bad: area 12 mm² exceeds the budget of 10 mm² by 20%"
    assert messages[2] == "bad: throughput 50 inf/s is below the budget of 100 inf/s by 50%"
    assert messages[3] == "nofit: latency cannot be checked: the model does not fit the target"
    assert set(METRICS) == {"latency", "energy", "energy_per_inference", "edp", "area", "throughput",
                            "ttft", "token_latency", "tokens_per_s", "j_per_token"}     # the last four: --generate


def test_cli_budget_kept_exceeded_and_in_json(tmp_path):
    ok = run_nvmc("compile", TINY_CNN, "-t", "sot-mram", "--budget", "latency=1s,energy=1J,area=100mm2")
    assert ok.returncode == 0, ok.stderr
    assert "budget ok: sot-mram: latency" in ok.stderr and "budget exceeded" not in ok.stderr

    report = tmp_path / "r.json"
    bad = run_nvmc("compile", TINY_CNN, "-t", "sram", "--compare", "sot-mram", "--budget", "energy=100uJ,latency=1s",
                   "--json", str(report))
    assert bad.returncode == EXIT_BUDGET == 3, bad.stderr
    lines = bad.stderr.strip().splitlines()
    broken = [line for line in lines if line.startswith("budget exceeded: ")]
    assert broken == [next(line for line in lines if line.startswith("budget exceeded: sram: energy"))]
    assert "exceeds the budget of 100 µJ by" in broken[0]
    assert lines[-1] == "error: 1 budget(s) exceeded (exit 3)"
    assert "Traceback" not in bad.stderr
    data = json.loads(report.read_text())
    validate_report(data)                                    # budgets and compare are in the schema
    checks = {(b["target"], b["metric"]): b for b in data["budgets"]}
    assert set(checks) == {(t, m) for t in ("sram", "sot-mram") for m in ("energy", "latency")}
    assert checks["sram", "energy"]["ok"] is False and checks["sot-mram", "energy"]["ok"] is True
    assert checks["sram", "energy"]["value"] == data["totals"]["energy_j"] and checks["sram", "energy"]["limit"] == pytest.approx(1e-4)


def test_cli_bad_budget_exits_2_before_reading_the_model(capsys):
    from nvmc.cli import main

    with pytest.raises(SystemExit) as info:
        main(["compile", "no/such/model.onnx", "-t", "sram", "--budget", "latency=5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --budget: 'latency=5': needs a unit")
    assert "hint: latency takes s, ms, us, ns, e.g. latency=5ms" in err


def test_cli_quiet_prints_only_broken_budgets():
    proc = run_nvmc("compile", TINY_CNN, "-t", "sram", "--budget", "latency=1s,energy=1uJ", "-q")
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        next(line for line in proc.stderr.splitlines() if line.startswith("budget exceeded: sram: energy")),
        "error: 1 budget(s) exceeded (exit 3)"]


def test_cli_not_fitting_wins_over_budget():
    proc = run_nvmc("compile", str(zoo_path("light_squeezenet")), "-t", "stt-mram", "--iso", "area",
                    "--set", "llc.capacity=30MiB", "--budget", "latency=1s", "-q")
    assert proc.returncode == 1
    assert "stt-mram: does not fit" in proc.stderr
    assert "budget exceeded: stt-mram: latency cannot be checked: the model does not fit the target" in proc.stderr
