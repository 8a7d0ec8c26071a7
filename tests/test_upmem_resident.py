"""upmem's ``mapping.activations``: "host" (PrIM's MLP, the default) or "resident" (a layer's output stays
on its DPUs; the next layer gets it by a gather and a broadcast through the host)."""

from __future__ import annotations

import numpy as np
import pytest

import nvmc
from nvmc import backends

from conftest import REPO, run_nvmc

GPT2 = REPO / "examples" / "models" / "gpt2" / "distilgpt2_shape_past.onnx"
DECODE = {"batch": 1, "seq": 1, "past_seq": 128, "total_seq": 129}   # the first decode step after a 128-token prompt
HOST_TIME = ("transfer_in", "transfer_out")


def _estimates(model, dims=None):
    target = lambda mode: backends.load_target("upmem", [f"mapping.activations={mode}"])  # noqa: E731
    default = nvmc.compile(model, "upmem", dims=dims).estimate
    return default, *(nvmc.compile(model, target(m), dims=dims).estimate for m in ("host", "resident"))


@pytest.fixture(scope="module")
def decode():
    return _estimates(GPT2, DECODE)


def test_the_default_is_host_and_unchanged():
    default, host, resident = _estimates(REPO / "examples" / "models" / "tiny_transformer.onnx")
    assert default.totals == host.totals
    assert np.array_equal(default.mapping["host_bytes"], host.mapping["host_bytes"], equal_nan=True)
    assert not any("activations stay on the DPUs" in n for n in host.notes)
    assert any("activations stay on the DPUs" in n for n in resident.notes)


def test_resident_never_moves_more_host_bytes(decode):
    # each DPU receives its input slice less what it already holds (never below zero, never above the slice),
    # and the gathers and streamed operands are the same: per layer, never more bytes
    _, host, resident = decode
    h, r = (np.nan_to_num(e.mapping["host_bytes"]) for e in (host, resident))
    assert np.all(r <= h + 1e-9 * h)
    assert r.sum() < h.sum()
    # the first MAC layer's input and the last one's output cross the host as with "host"
    mac = np.flatnonzero(host.events["dpus_used"] > 0)
    assert r[mac[0]] == h[mac[0]]


def test_decode_drops_by_the_host_transfer_time_it_saves(decode):
    _, host, resident = decode
    # only the CPU->DPU phase changes: the DPU kernels, MRAM streaming, gathers and launches are the same
    for part in ("compute", "mram", "transfer_out", "overhead"):
        assert np.array_equal(host.latency[part], resident.latency[part])
    saved = float(sum(host.latency[k].sum() - resident.latency[k].sum() for k in HOST_TIME))
    assert saved > 0
    assert host.totals["latency_s"] - resident.totals["latency_s"] == pytest.approx(saved, rel=1e-9)
    # from the counts, per MAC layer (weights and KV cache resident: the CPU->DPU phase is the activations):
    # with "host" each of a rank's DPUs gets its slice in turn at the parallel rate; with "resident" a chained
    # layer's DPUs get their slice less what they hold, at the broadcast rate
    rate = {p.key.split(":")[-1]: p.value for p in backends.explain("upmem", sets=["mapping.activations=resident"])}
    parallel = rate["host.cpu_to_dpu_bytes_per_s_per_rank"]
    broadcast = rate["host.broadcast_cpu_to_dpu_bytes_per_s_per_rank"]
    used = host.events["dpus_used"]
    mac = np.flatnonzero(used > 0)
    per_rank = np.minimum(used[mac], rate["system.dpus_per_rank"]) / rate["host.rank_parallelism"]
    kept = np.nan_to_num(host.mapping["host_bytes"] - resident.mapping["host_bytes"])[mac] / used[mac]
    slice_bytes = host.latency["transfer_in"][mac] * parallel / per_rank
    expected = (slice_bytes - kept) * per_rank / np.where(mac > mac[0], broadcast, parallel)
    assert np.allclose(resident.latency["transfer_in"][mac], expected, rtol=1e-9)
    share = saved / sum(host.latency[k].sum() for k in HOST_TIME)
    assert 0 < share < 1                                                  # the first layer's input still crosses


def test_explain_lists_the_key_with_its_source():
    r = run_nvmc("explain", "-t", "upmem", "--set", "mapping.activations=resident")
    assert r.returncode == 0, r.stderr
    assert "host.broadcast_cpu_to_dpu_bytes_per_s_per_rank" in r.stdout      # the rate it then reads, flagged
    default = run_nvmc("explain", "-t", "upmem").stdout
    line = next(ln for ln in default.splitlines() if "mapping.activations" in ln)
    assert line.split()[1:3] == ["host", "source"] and "PrIM" in line
    assert "broadcast_cpu_to_dpu" not in default                             # "host" reads no broadcast rate
