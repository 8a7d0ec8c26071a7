"""The per-layer mapping record (backends/estimate.MAPPING_FIELDS): one vocabulary for how a layer
was laid onto the hardware, filled by every family with the fields it models, and shown in the
JSON, the CSV, `nvmc compile --layers` and the HTML page.

Each field is checked against what it is made of in its family: the same count the family
prices, so a field that drifted from the cost model would fail here."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

import nvmc
from nvmc.backends.estimate import MAPPING_FIELDS
from nvmc.backends.target import load_target, shipped_targets

from conftest import REPO, run_nvmc

TINY = REPO / "examples" / "models" / "tiny_cnn.onnx"
RESNET = REPO / "examples" / "models" / "resnet50.onnx"
DNN_TARGETS = [n for n in sorted(shipped_targets()) if load_target(n).family != "racetrack-hdc"]
# the fields each family fills (a family may add more; these it must have)
EXPECTED = {"roofline": {"utilization", "units_total", "dram_bytes"},
            "gpu-llc": {"utilization", "units_used", "units_total", "passes", "split_k", "hit_rate", "dram_bytes",
                        "onchip_bytes"},
            "upmem": {"utilization", "units_used", "units_total", "split_k", "replication", "host_bytes"},
            "simdram": {"utilization", "units_used", "units_total", "passes", "split_k", "replication", "host_bytes"},
            "sparse-engine": {"utilization", "units_used", "units_total", "load_balance", "dram_bytes"},
            "mensa": {"utilization", "units_used", "dram_bytes", "onchip_bytes"},
            "crossbar": {"units_used", "units_total", "replication", "adc_conversions", "onchip_bytes"},
            "systolic": {"utilization", "units_used", "units_total", "passes", "compute_cycles", "stall_cycles",
                         "dram_bytes", "onchip_bytes"}}


@pytest.fixture(scope="module")
def tiny():
    return {e.target: e for e in nvmc.compile(TINY, DNN_TARGETS).estimates}


def test_every_family_fills_its_fields_in_one_vocabulary(tiny):
    for name, e in tiny.items():
        assert set(e.mapping) <= set(MAPPING_FIELDS), name
        assert EXPECTED[e.family] <= set(e.mapping), (name, EXPECTED[e.family] - set(e.mapping))
        mac = e.macs > 0
        util = e.mapping.get("utilization")
        if util is not None:
            assert np.all(np.isfinite(util[mac])) and np.all((util[mac] > 0) & (util[mac] <= 1 + 1e-9)), name
        if "units_used" in e.mapping and "units_total" in e.mapping:
            used, total = e.mapping["units_used"][mac], e.mapping["units_total"][mac]
            assert np.all(used >= 1) and np.all(used <= total), name
        for key in ("hit_rate", "load_balance"):
            if key in e.mapping:
                v = e.mapping[key][np.isfinite(e.mapping[key])]
                assert np.all((v >= 0) & (v <= 1)), (name, key)


def test_a_unit_is_the_same_thing_on_one_device(tiny):
    # the gpu roofline and gpu-llc's sram target model the same GTX 1080 Ti: both count its 28 SMs
    assert tiny["gpu"].mapping["units_total"][0] == tiny["sram"].mapping["units_total"][0] == 28
    assert tiny["cpu"].mapping["units_total"][0] == 4                        # the Xeon's cores


def test_fields_are_the_family_counts(tiny):
    gpu = tiny["sot-mram"]
    sms = gpu.info.get("sm_count") or gpu.mapping["units_total"][0]
    mac = gpu.macs > 0
    # waves: thread blocks (x split-K) over the SMs, rounded up; a layer never uses more SMs than blocks
    assert np.all(gpu.mapping["passes"][mac] >= np.ceil(gpu.mapping["units_used"][mac] / sms))
    # what DRAM supplies of the L2 reads: dram_read bytes / line = misses
    line = gpu.info["llc_line_bytes"]
    misses = gpu.events["dram_read_bytes"] / line
    reads = gpu.events["l2_reads"]
    ok = reads > 0
    assert np.allclose(gpu.mapping["hit_rate"][ok], 1 - misses[ok] / reads[ok])
    upmem = tiny["upmem"]
    assert np.array_equal(upmem.mapping["units_used"][upmem.macs > 0], upmem.events["dpus_used"][upmem.macs > 0])
    # the roofline: MACs over (peak at the node's precision x compute time) -> the assumed sustained share
    cpu = tiny["cpu"]
    conv = [i for i, op in enumerate(cpu.ops) if op == "Conv"]
    peak = cpu.info["peak_fp32_macs_per_s"]
    for i in conv:
        assert cpu.mapping["utilization"][i] == pytest.approx(cpu.macs[i] / (peak * cpu.latency["compute"][i]))


def test_json_csv_and_layers_table(tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    r = run_nvmc("compile", str(RESNET), "-t", "sot-mram", "--compare", "upmem,rram-pim", "--layers",
                 "--json", str(out), "--csv", str(table))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    from nvmc.report import validate_report

    validate_report(report)                       # the mapping object is in the published schema
    first = next(x for x in report["layers"] if x["op"] == "Conv")
    assert {"utilization", "units_used", "passes", "split_k", "hit_rate"} <= set(first["mapping"])
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert {"mapping_utilization", "mapping_units_used", "mapping_replication"} <= set(rows[0])
    for name in ("sot-mram (gpu-llc)", "upmem (upmem)", "rram-pim (crossbar)"):
        assert f"layer mapping on {name}" in r.stdout
    assert "util.: the layer's MACs over what the whole target's MAC units could do" in r.stdout


def test_html_draws_utilization_per_layer(tmp_path):
    out = nvmc.compile(TINY, ["sot-mram", "upmem", "rram-pim"])
    from nvmc.report.html import render_html

    page = render_html(out.to_dict(), generated="test")
    payload = json.loads(page.split('<script id="nvmc-data" type="application/json">')[1].split("</script>")[0])
    fig = next(f for f in payload["figures"] if f["id"] == "fig-utilization")
    names = [t["name"] for t in fig["data"]]
    assert names == ["sot-mram", "upmem"]          # the crossbar family has no MAC-rate utilization
    macs = [x for x in out.estimates[0].layers() if x["macs"]]
    assert len(fig["data"][0]["y"]) == len(macs)
    assert all(y is None or 0 < y <= 100 for t in fig["data"] for y in t["y"])
    assert not math.isnan(sum(y for y in fig["data"][0]["y"] if y is not None))
