"""Paper 13's qualitative findings on data-parallel training, from the package functions that
examples/distributed_training.py sweeps; the example prints the paper's figures beside nvmc's
and never returns them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nvmc
from nvmc.backends.collective import network
from nvmc.backends.training import data_parallel
from nvmc.validate.seeds_compute import BATCH, bert_layer, repeat_layers, resnet50

from conftest import REPO

DEVICES = (1, 2, 4, 8, 16, 32, 64)  # the example's sweep
NETWORKS = ("10gbe", "25gbe", "100gbe", "ib-edr", "aws-p3-16xlarge", "aws-p3dn-24xlarge")
PAPER_COMM_SHARE_MAX = 0.90  # paper 13: "up to 90 % of training time in communication"


@pytest.fixture(scope="module")
def forward() -> dict[str, tuple]:
    """Name -> (forward estimate on the gpu target, workload), as the example costs them."""
    r50 = nvmc.compile(resnet50(), "gpu")
    block = nvmc.compile(bert_layer(batch=BATCH["BERT-base"]), "gpu")
    return {"ResNet-50": (r50.estimate, r50.workload), "BERT-base": repeat_layers(block.estimate, block.workload, 12)}


def iteration(fwd, devices: int, net: str, batch: int) -> dict:
    est, wl = fwd
    return data_parallel(est, wl, devices=devices, batch=batch, net=network(net)).info["distributed"]


@pytest.fixture(scope="module")
def results(forward) -> dict:
    """(network, N) -> the iteration's breakdown per model, at the example's per-device batches."""
    return {model: {(name, n): iteration(fwd, n, name, BATCH[model]) for name in NETWORKS for n in DEVICES}
            for model, fwd in forward.items()}


def test_share_grows_with_devices_and_falls_with_bandwidth(results):
    for model in ("ResNet-50", "BERT-base"):
        res = results[model]
        for name in NETWORKS:
            shares = [res[(name, n)]["comm_share_no_overlap"] for n in DEVICES]
            assert shares == sorted(shares) and shares[0] == 0.0
        at64 = [res[(name, 64)]["comm_share_no_overlap"] for name in ("10gbe", "25gbe", "100gbe")]
        assert at64 == sorted(at64, reverse=True)
        # overlap with the backward pass only ever helps
        assert all(d["comm_share"] <= d["comm_share_no_overlap"] for d in res.values())


def test_slow_ethernet_resnet50_mostly_communicates(results, forward):
    d = results["ResNet-50"][("10gbe", 64)]
    assert d["comm_share_no_overlap"] > 0.5          # most of the iteration
    assert d["scaling_efficiency"] < 0.6
    assert results["BERT-base"][("10gbe", 64)]["comm_share_no_overlap"] > 0.8
    # smaller per-device batches: more communication
    shares = {b: iteration(forward["ResNet-50"], 64, "10gbe", b)["comm_share_no_overlap"] for b in (8, 16, 32, 64)}
    assert [shares[b] for b in sorted(shares)] == sorted(shares.values(), reverse=True)


def test_paper_figures_printed_beside_not_returned(results, forward):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "distributed_training.py")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "paper 13: up to 90%" in text and "paper 13: up to 5x" in text
    # the 90 % is about the interconnect inside one machine: compared there, and said not reproduced
    assert text.count("nvmc, 8 GPUs on pcie3 in one machine (that mechanism)") == 2 and "not reproduced" in text
    inside = {m: iteration(fwd, 8, "pcie3", BATCH[m])["comm_share_no_overlap"] for m, fwd in forward.items()}
    assert inside["ResNet-50"] < inside["BERT-base"] < 0.9
    flat = [v for r in results.values() for d in r.values() for v in d.values()] + list(inside.values())
    assert PAPER_COMM_SHARE_MAX not in flat
