"""The DRAM-PIM targets and the CPU/GPU baselines through the real CLI (subprocesses), and the example."""

from __future__ import annotations

import json
import subprocess
import sys

import nvmc

from conftest import REPO, run_nvmc, zoo_path

SQUEEZENET = str(zoo_path("light_squeezenet"))


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_targets_and_explain():
    rows = json.loads(run_nvmc("targets", "--json", check=True).stdout)
    families = {r["name"]: r["family"] for r in rows}
    assert families["upmem"] == "upmem" and families["simdram"] == "simdram"
    assert families["mensa"] == families["edge-tpu"] == "mensa"
    assert families["cpu"] == families["gpu"] == "roofline"
    out = run_nvmc("explain", "--target", "upmem", check=True).stdout
    assert "ASSUMED" in out and "PRIM-N" in out and "UPM1" in out and "isa.int8_mac_instructions" in out
    data = json.loads(run_nvmc("explain", "-t", "simdram", "--json", check=True).stdout)
    keys = {p["key"]: p for p in data["parameters"]}
    assert keys["simdram.aap_s"]["kind"] == "derived"
    idd0 = keys["dram:ddr4_3200_x16.idd0_a"]
    assert idd0["kind"] == "source" and "PIMEVAL" in idd0["note"]
    assert any(p["kind"] == "assumed" for p in data["parameters"])


def test_compile_compare_with_baselines(tmp_path):
    report = tmp_path / "r.json"
    proc = run_nvmc("compile", SQUEEZENET, "-t", "upmem", "--compare", "gpu,cpu,simdram", "--json", str(report),
                    "--csv", str(tmp_path / "r.csv"), check=True)
    no_traceback(proc)
    # ratios to upmem: a "gpu ÷ upmem" column, or with four targets and more one row per target
    assert ("gpu ÷ upmem" in proc.stdout or "ratio to upmem" in proc.stdout) and "transfer_in" in proc.stdout
    data = json.loads(report.read_text())
    assert data["target"]["family"] == "upmem" and set(data["ratios"]) == {"gpu", "cpu", "simdram"}
    assert {"compute", "mram", "transfer"} <= set(data["breakdown"]["energy_j"])
    sim = next(c for c in data["compare"] if c["target"]["name"] == "simdram")
    assert {"row_activation", "transfer", "background"} <= set(sim["breakdown"]["energy_j"])
    assert "dpus_used" in data["layers"][0]


def test_compile_binary_net_nvir_and_mensa_partition(tmp_path):
    from nvmc.validate import nets as example

    path = tmp_path / "binary_net.nvir"
    nvmc.save(example.annotate_binary(nvmc.load(example.binary_net())), path)
    proc = run_nvmc("compile", str(path), "-t", "simdram", "--compare", "cpu,gpu", check=True)
    no_traceback(proc)
    assert "binary MAC layers at 14.5 AAPs per MAC step" in proc.stdout and "cpu ÷ simdram" in proc.stdout
    data = json.loads(run_nvmc("compile", SQUEEZENET, "-t", "mensa", "--compare", "edge-tpu", "--json", "-",
                               check=True).stdout)
    partition = data["target"]["partition"]
    assert partition and all({"node", "accelerator", "reason"} <= set(p) for p in partition)
    assert "accelerator" in data["layers"][0]


def test_errors_and_not_fitting():
    proc = run_nvmc("compile", SQUEEZENET, "-t", "simdram", "--set", "simdram.ranks=0")
    assert proc.returncode == 2 and "simdram.ranks" in proc.stderr and "must be positive" in proc.stderr
    no_traceback(proc)
    proc = run_nvmc("compile", SQUEEZENET, "-t", "upmem", "--iso", "area")
    assert proc.returncode == 2 and "--iso does not apply" in proc.stderr
    proc = run_nvmc("compile", SQUEEZENET, "-t", "upmem", "--set", "system.dpus=1", "--set", "mapping.split_m=never")
    assert proc.returncode == 0                                    # 5 MB of weights fit one DPU's 64 MB
    proc = run_nvmc("explain", "-t", "mensa", "--set", "accelerators.device=nope")
    assert proc.returncode == 2 and "unknown device 'nope'" in proc.stderr
    no_traceback(proc)


def test_example_prints_nvmc_beside_the_paper():
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "dram_pim.py"), "gemv", "conv"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "paper: ~23x" in out and "upmem speed-up over gpu" in out and "GPU" in out and "why:" in out
