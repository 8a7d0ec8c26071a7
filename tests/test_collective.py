"""All-reduce cost formulas, networks as data, bucketing and overlap (backends/collective.py),
checked against hand computations."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from nvmc.backends.collective import (DATA, Link, Network, buckets, hierarchical_allreduce_s, interconnects, network,
                                      overlap, parse_bandwidth, parse_energy_per_bit, parse_latency,
                                      ring_allreduce_s, tree_allreduce_s)
from nvmc.backends.errors import TargetError


# ------------------------------------------------------------------ closed forms, by hand
def test_ring_allreduce_matches_hand_computation():
    # 100 MB over 8 devices on 10 GbE (1.25e9 B/s), 25 us per step:
    # 2 x 7/8 x 1e8 / 1.25e9 = 0.14 s, plus 2 x 7 x 25e-6 = 0.35 ms
    assert ring_allreduce_s(1e8, 8, 1.25e9, 25e-6) == pytest.approx(0.14 + 0.00035, rel=1e-12)
    # two devices: each sends half, twice: S / B + 2 alpha
    assert ring_allreduce_s(1e6, 2, 1e9, 1e-6) == pytest.approx(1e-3 + 2e-6, rel=1e-12)
    assert ring_allreduce_s(1e8, 1, 1.25e9, 25e-6) == 0.0


def test_tree_allreduce_has_logarithmic_latency():
    # N = 8: 2 x log2(8) = 6 steps; N = 5: 2 x ceil(log2 5) = 6 steps; same bandwidth term as the ring
    assert tree_allreduce_s(1e8, 8, 1.25e9, 25e-6) == pytest.approx(0.14 + 6 * 25e-6, rel=1e-12)
    assert tree_allreduce_s(1e3, 5, 1e9, 1e-5) == pytest.approx(6e-5 + 2 * 4 / 5 * 1e-6, rel=1e-12)
    # latency-bound: tree beats ring at many devices and few bytes
    assert tree_allreduce_s(8, 64, 1e9, 1e-5) < ring_allreduce_s(8, 64, 1e9, 1e-5) / 10


def test_ring_scales_as_stated_with_n_and_bytes():
    b, a = 1e9, 0.0
    t = [ring_allreduce_s(1e8, n, b, a) for n in (2, 4, 8, 64, 1024)]
    assert t == sorted(t)                                       # grows with N ...
    assert t[-1] < 2e8 / b and t[-1] == pytest.approx(2e8 / b, rel=1e-3)  # ... towards 2 S / B
    assert ring_allreduce_s(2e8, 8, b, a) == pytest.approx(2 * ring_allreduce_s(1e8, 8, b, a))  # linear in S
    # the latency term grows linearly with N
    assert ring_allreduce_s(0, 17, b, 1e-6) == pytest.approx(32e-6)


def test_hierarchical_allreduce_by_hand():
    intra = Link("nvlink2", "", 150e9, 5.7e-6, 5e-12)
    inter = Link("25gbe", "", 3.125e9, 25e-6, 250e-12)
    s = 1e8
    # 16 devices, 8 per node, 2 nodes:
    inside = 2 * 7 * 5.7e-6 + 2 * 7 / 8 * s / 150e9
    between = 2 * 1 * 25e-6 + 2 * 1 / 2 * s / 3.125e9
    assert hierarchical_allreduce_s(s, 16, 8, intra, inter) == pytest.approx(inside + between, rel=1e-12)
    # fits in one node: just the ring inside it
    assert hierarchical_allreduce_s(s, 4, 8, intra, inter) == pytest.approx(ring_allreduce_s(s, 4, 150e9, 5.7e-6))
    net = network("aws-p3-16xlarge")
    assert net.algorithm == "hierarchical" and net.devices_per_node == 8
    assert net.allreduce_s(s, 16) == pytest.approx(inside + between, rel=1e-12)


def test_energy_is_bits_sent_times_energy_per_bit():
    net = network("10gbe")
    # 4 devices each send 2 x 3/4 x S bytes
    assert net.allreduce_j(1e6, 4) == pytest.approx(4 * 1.5e6 * 8 * 500e-12)
    assert net.allreduce_j(1e6, 1) == 0.0


# ------------------------------------------------------------------ data and settings
def test_presets_are_cited_or_assumed():
    doc = tomllib.loads(DATA.read_text())
    for name, link in doc["link"].items():
        for key in ("bandwidth_bytes_per_s", "latency_s", "energy_per_bit_j"):
            entry = link[key]
            assert {"source", "assumed"} & set(entry), (name, key)
        assert "source" in link["bandwidth_bytes_per_s"], name     # every bandwidth comes from a spec
    assert {"pcie3", "pcie4", "nvlink2", "nvlink3", "10gbe", "25gbe", "100gbe", "ib-edr"} <= set(interconnects())
    assert network("25gbe").link.bandwidth == 25e9 / 8
    assert network("pcie3").link.bandwidth == pytest.approx(16 * 8e9 * 128 / 130 / 8, rel=1e-4)


@pytest.mark.parametrize("text, value", [("25Gbit/s", 3.125e9), ("25Gb/s", 3.125e9), ("100Gbps", 12.5e9),
                                         ("12.5GB/s", 12.5e9), ("800Mbit/s", 1e8)])
def test_parse_bandwidth(text, value):
    assert parse_bandwidth(text) == pytest.approx(value)


def test_parse_latency_and_energy():
    assert parse_latency("5us") == pytest.approx(5e-6)
    assert parse_latency("0.5ms") == pytest.approx(5e-4)
    assert parse_energy_per_bit("100pJ") == pytest.approx(1e-10)


def test_custom_network_from_settings():
    net = network(None, ["net.bandwidth=25Gbit/s", "net.latency=5us"])
    assert net.link.bandwidth == 3.125e9 and net.link.latency == pytest.approx(5e-6)
    assert net.allreduce_s(1e6, 4) == pytest.approx(ring_allreduce_s(1e6, 4, 3.125e9, 5e-6))
    net = network("10gbe", ["net.algorithm=tree", "net.bucket=1MiB"])
    assert net.algorithm == "tree" and net.bucket_bytes == 2**20
    net = network("25gbe", ["net.algorithm=hierarchical", "net.intra=nvlink3", "net.devices_per_node=4"])
    assert net.inter.name == "25gbe" and net.intra.name == "nvlink3"


@pytest.mark.parametrize("name, sets, message", [
    ("10gbr", [], "did you mean '10gbe'"),
    (None, ["net.bandwidth=25"], "needs a unit"),
    (None, ["net.bandwidth=25Gbit/s"], "net.latency"),
    (None, ["net.latency=5"], "needs a unit"),
    ("10gbe", ["net.bandwith=1GB/s"], "did you mean 'net.bandwidth'"),
    ("10gbe", ["net.algorithm=star"], "ring, tree, hierarchical"),
    (None, [], "no network"),
])
def test_bad_network_input_is_a_clear_error(name, sets, message):
    with pytest.raises(TargetError, match=message):
        network(name, sets)


# ------------------------------------------------------------------ bucketing and overlap
def test_buckets_pack_in_order():
    assert buckets(np.array([10.0, 10.0, 10.0]), 15).tolist() == [0, 0, 1]
    assert buckets(np.array([40.0, 1.0]), 15).tolist() == [0, 2]          # a big gradient fills its own


def _net(cap):
    # 2 devices, no latency, 100 B/s: an all-reduce of S bytes takes S / 100 s
    return Network("t", "ring", Link("t", "", 100.0, 0.0, 0.0), bucket_bytes=cap)


def test_overlap_by_hand():
    bwd = np.array([1.0, 1.0, 1.0])          # graph order; the backward pass runs node 2, 1, 0
    grads = np.array([0.0, 100.0, 100.0])
    # cap 100: node 2's bucket is ready at 1 s and all-reduced by 2 s; node 1's ready at 2 s, done at 3 s
    ov = overlap(bwd, grads, _net(100), 2)
    assert ov.bucket_ready_s.tolist() == [1.0, 2.0] and ov.bucket_end_s.tolist() == [2.0, 3.0]
    assert ov.comm_s == 2.0 and ov.exposed_s == 0.0 and ov.hidden_s == 2.0
    # one bucket: ready at 2 s, done at 4 s, 1 s past the backward pass's end (3 s)
    ov = overlap(bwd, grads, _net(1000), 2)
    assert ov.comm_s == 2.0 and ov.exposed_s == pytest.approx(1.0) and ov.hidden_s == pytest.approx(1.0)
    # one device: nothing to exchange
    assert overlap(bwd, grads, _net(100), 1).comm_s == 0.0


def test_overlap_latency_per_bucket():
    net = Network("t", "ring", Link("t", "", 1e9, 1e-3, 0.0), bucket_bytes=10)
    ov = overlap(np.zeros(4), np.full(4, 10.0), net, 4)
    assert len(ov.bucket_bytes) == 4
    assert ov.comm_s == pytest.approx(4 * ring_allreduce_s(10, 4, 1e9, 1e-3))
    assert math.isclose(ov.exposed_s, ov.comm_s)                 # no backward to hide behind


def test_ring_agrees_with_nccls_own_tuning_model():
    """NCCL's cost model for a ring all-reduce (NVIDIA/nccl src/graph/tuning.cc, 2019:
    latency = baseLat[Ring][Simple] 8.4 us + nsteps x hwLat, nsteps = 2(N-1); algorithm
    bandwidth = busBw x N / nsteps), the constants as tests/data/refs/nccl/extract_tuning.py read
    them from NCCL's source; nvmc's ring is the same without NCCL's constant launch latency."""
    from nvmc.validate.peers import _nccl_ring_latencies

    base_lat, hw_lat, _ = _nccl_ring_latencies()
    assert (base_lat, hw_lat) == pytest.approx((8.4e-6, 6.6e-6))        # the values nvmc's ring was built on
    net = network("ib-edr")
    bus_bw = net.link.bandwidth
    for n in (2, 8, 64):
        for s in (1e3, 25 * 2**20, 1e9):
            nsteps = 2 * (n - 1)
            nccl = base_lat + nsteps * hw_lat + s / (bus_bw * n / nsteps)
            assert net.allreduce_s(s, n) == pytest.approx(nccl - base_lat, rel=1e-9)
