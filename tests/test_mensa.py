"""The mensa family's roofline per layer: each accelerator's time is bounded by the bandwidth of
its own DRAM path (the in-memory ones by the 3D stack's), and the mapping record's stall cycles
are the excess of that bound over the compute."""

from __future__ import annotations

import numpy as np
import pytest

import nvmc
from nvmc.validate import nets as EX

STACK = "memory.stack_bandwidth_bytes_per_s"


@pytest.fixture(scope="module")
def lstm():
    # one LSTM layer (batch 1, 32 steps): its 393 KB of int8 weights exceed lstm_centric's 64 KiB weight share, so
    # they stream from the stack every step; the output MatMul (32 MACs per parameter) stays on compute_centric
    return nvmc.load(EX.edge_lstm(seq=32, hidden=256, inputs=128, layers=1))


def _at(graph, bandwidth: float | None = None):
    return nvmc.compile(graph, "mensa", sets=[f"{STACK}={bandwidth}"] if bandwidth else []).estimate


def test_stack_bandwidth_bounds_only_the_in_memory_layers_that_outrun_it(lstm):
    shipped = _at(lstm)
    i, j = shipped.names.index("lstm0"), shipped.names.index("joint")
    assert shipped.events["accelerator"][i] == 1 and shipped.events["accelerator"][j] == 0
    clock = shipped.info["accelerators"]["lstm_centric"]["peak_macs_per_s"] / 128     # 1 x 128 lanes
    cycles, dram = shipped.mapping["compute_cycles"][i], shipped.mapping["dram_bytes"][i]
    # the band: streaming int8 weights is about one byte per MAC, so the 128-lane vector at 500 MHz
    # outruns the stack below about 64 GB/s (the knee), and is compute-bound at the shipped 256 GB/s
    knee = dram * clock / cycles
    assert 1.0 <= dram / shipped.macs[i] < 1.1 and 60e9 < knee < 70e9
    assert shipped.mapping["stall_cycles"][i] == 0 and shipped.node_latency[i] == pytest.approx(cycles / clock)

    below = {f: _at(lstm, knee * f) for f in (1 / 8, 1 / 4, 1 / 2)}
    above = {f: _at(lstm, knee * f) for f in (2, 4, 16)}
    for f, est in below.items():                    # bandwidth-bound: the DRAM bytes over the stack's bandwidth
        assert est.node_latency[i] == pytest.approx(dram / (knee * f), rel=1e-12)
        assert est.mapping["stall_cycles"][i] == pytest.approx((1 / f - 1) * cycles, rel=1e-9)
        assert "lstm_centric: 1 MAC layers (1 bound by" in " ".join(est.notes)
    assert below[1 / 8].node_latency[i] == pytest.approx(2 * below[1 / 4].node_latency[i], rel=1e-12)
    assert below[1 / 4].node_latency[i] == pytest.approx(2 * below[1 / 2].node_latency[i], rel=1e-12)
    for est in above.values():                      # compute-bound: the stack's bandwidth does not show
        assert est.node_latency[i] == shipped.node_latency[i] and est.mapping["stall_cycles"][i] == 0
        assert "lstm_centric: 1 MAC layers (0 bound by" in " ".join(est.notes)
    # the compute-centric layer reads over LPDDR, not the stack: unchanged at every stack bandwidth
    for est in [*below.values(), *above.values()]:
        assert est.node_latency[j] == shipped.node_latency[j]
        assert est.mapping["stall_cycles"][j] == shipped.mapping["stall_cycles"][j]


def test_stall_cycles_are_the_roofline_excess_on_every_node(lstm):
    est = _at(lstm, 8e9)
    work = np.isfinite(est.mapping["compute_cycles"])
    clock = 500e6                                   # every mensa-g accelerator's clock
    roofline = np.maximum(est.latency["compute"], est.latency["memory"])
    assert np.allclose((est.mapping["compute_cycles"] + est.mapping["stall_cycles"])[work], roofline[work] * clock)
    assert np.all(est.mapping["stall_cycles"][work] >= 0)
