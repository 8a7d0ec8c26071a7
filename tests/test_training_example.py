"""examples/distributed_training.py reproduces paper 13's qualitative findings, prints the
paper's figures beside nvmc's and never returns them."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed_training.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("distributed_training", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = io.StringIO()
    return mod, mod.main(out), out.getvalue()


def test_share_grows_with_devices_and_falls_with_bandwidth(run):
    mod, results, _ = run
    for model in ("ResNet-50", "BERT-base"):
        res = results[model]
        for name in mod.NETWORKS:
            shares = [res[(name, n)]["comm_share_no_overlap"] for n in mod.DEVICES]
            assert shares == sorted(shares) and shares[0] == 0.0
        at64 = [res[(name, 64)]["comm_share_no_overlap"] for name in ("10gbe", "25gbe", "100gbe")]
        assert at64 == sorted(at64, reverse=True)
        # overlap with the backward pass only ever helps
        assert all(d["comm_share"] <= d["comm_share_no_overlap"] for d in res.values())


def test_slow_ethernet_resnet50_mostly_communicates(run):
    _, results, _ = run
    d = results["ResNet-50"][("10gbe", 64)]
    assert d["comm_share_no_overlap"] > 0.5          # most of the iteration
    assert d["scaling_efficiency"] < 0.6
    assert results["BERT-base"][("10gbe", 64)]["comm_share_no_overlap"] > 0.8
    # smaller per-device batches: more communication
    shares = results["batch_sensitivity"]
    assert [shares[b] for b in sorted(shares)] == sorted(shares.values(), reverse=True)


def test_paper_figures_printed_beside_not_returned(run):
    mod, results, text = run
    assert "paper 13: up to 90%" in text and "paper 13: up to 5x" in text
    # the 90 % is about the interconnect inside one machine: compared there, and said not reproduced
    assert text.count("nvmc, 8 GPUs on pcie3 in one machine (that mechanism)") == 2 and "not reproduced" in text
    assert results["ResNet-50 inside one machine"] < results["BERT-base inside one machine"] < 0.9
    flat = [v for r in results.values() if isinstance(r, dict) for d in r.values()
            for v in (d.values() if isinstance(d, dict) else [d])]
    assert mod.PAPER["comm_share_max"] not in flat
