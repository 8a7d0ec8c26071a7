"""nvmc validate, seeds 7 (DFA on CIM), 11 (NEON), 12 (Winograd F4), 13 (distributed training)
and the peer tools: the rows' structure, and that each status follows from what the model does
(exact counts agree exactly; a figure that tracks an assumed setting names it, and the setting
is one ``nvmc explain`` marks as assumed)."""

from __future__ import annotations

import json

import math
import shlex

import pytest
from nvmc.backends import explain

from nvmc.cli import cli
from nvmc.validate import STATUSES, judge
from nvmc.validate import peers as PE
from nvmc.validate import seeds_compute as SC

SEEDS = (SC.dfa_on_cim, SC.neon, SC.winograd, SC.distributed_training)
PEERS = (PE.scalesim, PE.onnx_tool, PE.neurosim, PE.zigzag, PE.act, PE.pimeval, PE.nccl)


@pytest.fixture(scope="module")
def rows():
    return {fn.__name__: fn() for fn in SEEDS + PEERS}


def _kind(target: str, key: str) -> str:
    return next(p.kind for p in explain(target) if p.key.split(":", 1)[-1] == key)


def test_rows_are_complete_and_judged(rows):
    every = [r for rs in rows.values() for r in rs]
    assert {r.paper for fn in SEEDS for r in rows[fn.__name__]} == {7, 11, 12, 13}
    assert {r.paper for fn in PEERS for r in rows[fn.__name__]} == {
        "SCALE-Sim", "onnx-tool", "DNN+NeuroSim", "ZigZag", "ACT", "PIMeval", "NCCL"}
    for r in every:
        assert r.status in STATUSES and r.claim and r.setup and r.unit is not None, r
        assert r.nvmc is None or math.isfinite(r.nvmc), r
        assert r.published is None or math.isfinite(r.published), r
        if r.status != "reproduced":
            assert r.cause, r
        if r.hinges_on:
            assert r.status == "not reproduced", r
        # the status is the rules' own (row() judged it; nothing overrode it)
        pivot = 0.0 if isinstance(r.paper, str) else None
        if pivot is not None and r.published is not None:
            assert r.status == judge(r.published, r.nvmc, r.tolerance, hinges_on=r.hinges_on, pivot=pivot), r
        # one nvmc CLI line, of a command that exists
        words = shlex.split(r.command)
        assert words[0] == "nvmc" and words[1] in cli.commands, r.command


def test_exact_counts_agree_exactly(rows):
    """Counts both sides make by the same rule: equal, not close."""
    exact = rows["scalesim"] + rows["onnx_tool"] + rows["act"] + [r for r in rows["winograd"] if "fewer MACs" in r.claim]
    assert len(exact) == 5
    for r in exact:
        assert r.tolerance == 0.0 and r.nvmc == r.published and r.status == "reproduced", r
    assert {r.nvmc for r in rows["winograd"] if "fewer MACs" in r.claim} == {4.0, 2.25}
    assert "54 of 54 layers equal" in rows["scalesim"][0].setup


def test_dfa_gains_far_less_than_n_and_tracks_the_pulse_count(rows):
    accuracy, speed = rows["dfa_on_cim"]
    assert accuracy.nvmc is None and accuracy.status == "not reproduced"          # not modelled, said so
    assert 1.0 < speed.nvmc < SC.DFA_LAYERS / 2                                   # faster, by far less than N
    assert "training.pulses_per_update" in speed.hinges_on
    assert _kind("rram-pim", "training.pulses_per_update") == "assumed"


def test_neon_is_slower_than_the_digital_units_on_the_shipped_target(rows):
    (r,) = rows["neon"]
    assert r.nvmc < 1.0 < r.published and r.status == "not reproduced"
    assert _kind("rram-pim", "organisation.digital_ops_per_cycle") == "assumed"
    assert _kind("rram-pim", "digital.placement") == "default"                    # a family default, no source
    assert "digital.placement=chip" in r.cause


def test_winograd_accuracy_and_end_to_end(rows):
    by_claim = {r.claim: r for r in rows["winograd"]}
    acc = next(r for c, r in by_claim.items() if "accurate" in c)
    assert acc.published is None and 0.0 <= acc.nvmc <= SC.WINO_NEARLY_PP and acc.status == "reproduced"
    speed = next(r for c, r in by_claim.items() if "speed-up" in c)
    assert speed.nvmc > 1.0 and "vector.lanes" in speed.hinges_on
    assert _kind("systolic-sram-28nm", "vector.lanes") == "assumed"
    energy = next(r for c, r in by_claim.items() if "energy efficiency" in c)
    assert energy.status == judge(SC.WINO_ENERGY_EFF, energy.nvmc, SC.UP_TO)
    if energy.nvmc < 1.0:                                   # a disagreement names its mechanism
        assert "MACs cost" in energy.cause and "DRAM energy" in energy.cause


def test_distributed_training_on_the_papers_mechanisms(rows):
    intra, slowdown = rows["distributed_training"]
    # inside one machine on PCIe 3.0 compute dominates at the examples' batches ...
    assert 0.0 < intra.nvmc < SC.COMM_PIVOT_PCT and intra.status == "not reproduced"
    assert "batch" in intra.hinges_on and "at batch 1" in intra.cause
    # ... networked instances are slower than one instance, by a factor that tracks the compute rate
    assert slowdown.nvmc > 1.0 and "compute.utilization" in slowdown.hinges_on
    assert _kind("gpu", "compute.utilization") == "assumed"


def test_neurosim_rows_read_the_committed_run(rows):
    ns = PE.neurosim_output()
    assert ns["latency_s"] == pytest.approx(1.35931e-3) and ns["area_mm2"] == pytest.approx(58.7334)
    energy, latency, area = rows["neurosim"]
    assert energy.published == pytest.approx(41.8147 + 1.48458)                   # µJ
    assert latency.published == pytest.approx(1e3 * ns["latency_s"]) and area.published == ns["area_mm2"]
    assert _kind("rram-neurosim", "activity.input_one_fraction") == "assumed"


def test_peers_read_their_records_not_copies(rows):
    act = json.loads((PE.REFS / "act" / "act_cpa.json").read_text())  # tests/data/refs/act/run_act.py's output
    assert rows["act"][0].published == act["g_per_cm2"]["7"]
    pimeval = json.loads((PE.REFS / "pimeval" / "pimeval_refs.json").read_text())   # run_pimeval.sh's output
    assert rows["pimeval"][0].published == pytest.approx(pimeval["cases"]["mul.int32"]["runtime_ms"] * 1e3)   # µs
    nccl = json.loads((PE.REFS / "nccl" / "nccl_tuning.json").read_text())["commits"][0]   # extract_tuning.py's
    assert PE._nccl_ring_latencies()[:2] == pytest.approx((nccl["baseLat"]["values"]["RING"]["SIMPLE"] * 1e-6,
                                                           nccl["hwLat"]["values"]["NET"]["RING"]["SIMPLE"] * 1e-6))
    latency, energy = rows["zigzag"]
    assert abs(latency.nvmc / latency.published - 1) <= PE.SAME_HW      # same hardware numbers on both sides
    assert energy.nvmc > 0 and energy.published > 0
