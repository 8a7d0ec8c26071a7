"""Training iterations on any family and data parallelism (backends/training.py), through
the API and the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_nvmc

import nvmc
from nvmc.backends.collective import network, ring_allreduce_s
from nvmc.backends.errors import TargetError
from nvmc.backends.training import data_parallel, generic_step, gradient_bytes, training_step

TINY = "examples/models/tiny_cnn.onnx"


@pytest.fixture(scope="module")
def gpu():
    out = nvmc.compile(TINY, "gpu")
    return out.estimates[0], out.workload


def test_generic_step_backward_is_twice_forward(gpu):
    est, wl = gpu
    step = generic_step(est, wl, est.batch)
    mac = wl.columns["macs"] > 0
    np.testing.assert_allclose(step.backward[mac], 2 * est.node_latency[mac])
    np.testing.assert_allclose(step.backward[~mac], est.node_latency[~mac])
    # the update: 3 x weight bytes at the node's forward byte rate, only where there are weights
    c = wl.columns
    w = c["weight_bytes"].astype(float)
    ratio = np.where(w > 0, 3 * w / (w + c["input_bytes"] + c["output_bytes"]), 0.0)
    np.testing.assert_allclose(step.update, est.node_latency * ratio)
    assert step.update[w == 0].sum() == 0
    # energy: forward + backward + update, per component
    np.testing.assert_allclose(step.energy_j, float((est.node_energy * ((1 + np.where(mac, 2, 1)) + ratio)).sum()))
    # a per-device batch of 4 x the graph's scales forward and backward, not the update
    step4 = generic_step(est, wl, 4 * est.batch)
    np.testing.assert_allclose(step4.forward, 4 * step.forward)
    np.testing.assert_allclose(step4.update, step.update)


def test_one_device_has_no_communication(gpu):
    est, wl = gpu
    one = data_parallel(est, wl, devices=1)
    d = one.info["distributed"]
    assert d["comm_s"] == 0 and d["comm_share"] == 0 and d["scaling_efficiency"] == 1.0
    assert one.totals["latency_s"] == pytest.approx(training_step(est, wl, est.batch).time_s)


def test_data_parallel_comm_matches_the_formula(gpu):
    est, wl = gpu
    grads = float(gradient_bytes(wl).sum())
    assert grads == pytest.approx(float(wl.columns["weight_bytes"].sum()))     # fp32 weights, dense
    net = network(None, ["net.bandwidth=10Gbit/s", "net.latency=20us", "net.bucket=1GiB"])   # one bucket
    est8 = data_parallel(est, wl, devices=8, batch=16, net=net)
    d = est8.info["distributed"]
    assert d["buckets"] == 1
    assert d["comm_s"] == pytest.approx(ring_allreduce_s(grads, 8, 1.25e9, 20e-6), rel=1e-12)
    # one bucket is ready only at the end of the backward pass: nothing hides
    assert d["comm_exposed_s"] == pytest.approx(d["comm_s"])
    assert d["iteration_s"] == pytest.approx(d["compute_s"] + d["comm_s"])
    assert est8.totals["latency_s"] == pytest.approx(d["iteration_s"])
    assert est8.batch == 8 * 16 and est8.totals["throughput_ips"] == pytest.approx(d["samples_per_s"])
    assert d["energy_network_j"] == pytest.approx(8 * 2 * 7 / 8 * grads * 8 * 0.0)          # no energy per bit set
    assert est8.totals["energy_j"] == pytest.approx(d["energy_j"])


def test_share_grows_with_devices_and_falls_with_bandwidth(gpu):
    est, wl = gpu
    share = {}
    for name in ("10gbe", "100gbe", "nvlink2"):
        net = network(name)
        share[name] = [data_parallel(est, wl, devices=n, batch=8, net=net).info["distributed"]["comm_share"]
                       for n in (2, 4, 16, 64)]
        assert share[name] == sorted(share[name])
    assert share["10gbe"][-1] > share["100gbe"][-1] > share["nvlink2"][-1]


def test_overlap_never_slower_and_buckets_hide_communication(gpu):
    est, wl = gpu
    net = network("10gbe", ["net.bucket=4KiB"])
    d = data_parallel(est, wl, devices=4, batch=64, net=net).info["distributed"]
    assert d["buckets"] > 1
    assert d["iteration_s"] <= d["iteration_s_no_overlap"]
    assert d["comm_overlapped_s"] > 0
    assert d["comm_exposed_s"] + d["comm_overlapped_s"] == pytest.approx(d["comm_s"])
    assert d["energy_j"] <= d["energy_j_no_overlap"]


def test_quantised_gradients_are_smaller():
    q = nvmc.compile(TINY, "gpu", passes="quantize{bits=8}")
    full = nvmc.compile(TINY, "gpu")
    assert gradient_bytes(q.workload).sum() < 0.5 * gradient_bytes(full.workload).sum()


def test_family_with_its_own_training_mode():
    out = nvmc.compile(TINY, "rram-pim", sets=["run.mode=train"])
    est = out.estimates[0]
    step = training_step(est, out.workload, est.batch)
    assert step.source == "family"
    tr = est.info["training"]
    assert step.forward.sum() == pytest.approx(tr["forward_s"])
    assert step.backward.sum() == pytest.approx(tr["backward_s"])
    assert step.time_s == pytest.approx(tr["step_latency_s"])


def test_bad_counts_are_clear_errors(gpu):
    est, wl = gpu
    with pytest.raises(TargetError, match="at least one device"):
        data_parallel(est, wl, devices=0)
    with pytest.raises(TargetError, match="needs a network"):
        data_parallel(est, wl, devices=4)


# ------------------------------------------------------------------ the CLI
def test_cli_train_data_parallel_json(tmp_path):
    from nvmc.report import validate_report

    out = tmp_path / "r.json"
    r = run_nvmc("compile", TINY, "--target", "gpu", "--mode", "train", "--devices", "8", "--parallel", "data",
                 "--interconnect", "10gbe,ib-edr", "--batch", "16", "--json", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    validate_report(report)
    d = report["target"]["distributed"]
    assert report["target"]["name"] == "gpu@10gbe" and report["compare"][0]["target"]["name"] == "gpu@ib-edr"
    assert d["devices"] == 8 and d["batch_per_device"] == 16 and report["batch"] == 128
    assert d["comm_share"] > report["compare"][0]["target"]["distributed"]["comm_share"]
    assert "data-parallel training on 8 device(s)" in r.stdout


def test_cli_net_settings_and_crossbar():
    r = run_nvmc("compile", TINY, "--target", "rram-pim", "--mode", "train", "--devices", "4",
                 "--set", "net.bandwidth=25Gbit/s", "--set", "net.latency=5us", "--json", "-")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["target"]["distributed"]
    assert d["step"] == "family" and d["network"]["link"]["bandwidth_bytes_per_s"] == 3.125e9


@pytest.mark.parametrize("args, message", [
    (["--mode", "train", "--devices", "0"], "need at least one device"),
    (["--mode", "train", "--devices", "4", "--interconnect", "10gbr"], "did you mean '10gbe'"),
    (["--mode", "train", "--devices", "4", "--set", "net.bandwidth=25", "--set", "net.latency=5us"],
     "needs a unit"),
    (["--mode", "train", "--devices", "4"], "no network"),
    (["--devices", "4", "--interconnect", "10gbe"], "only with --mode train"),
])
def test_cli_bad_input(args, message):
    r = run_nvmc("compile", TINY, "--target", "gpu", *args)
    assert r.returncode == 2
    assert message in r.stderr
