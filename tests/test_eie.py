"""The sparse-engine (EIE) family: CSC storage per PE by hand, measured activation sparsity
and load imbalance, spills, and the CLI with --compare cpu,gpu."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from conftest import run_nvmc
from nvmc.backends import family_module, load_target
from nvmc.ir import csc
from nvmc.passes.workload import csc_entries


def gemm_model(w: np.ndarray, relu: bool = True) -> onnx.ModelProto:
    """x[1,K] -> (Relu) -> Gemm with weight w[K,N] (outputs on axis 1)."""
    k, n = w.shape
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu")] if relu else []
    nodes.append(helper.make_node("Gemm", ["r" if relu else "x", "w"], ["y"], name="fc"))
    g = helper.make_graph(nodes, "fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
                          [numpy_helper.from_array(w.astype(np.float32), "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


# A pruned layer: [outputs=4, inputs=40] (stored as Gemm weight [40, 4]); 2 PEs hold rows 0, 2 and 1, 3.
def hand_matrix() -> np.ndarray:
    m = np.zeros((4, 40), np.float32)
    m[0, 0] = 1.0      # PE 0, row 0 of its slice: column 0
    m[2, 0] = -1.0     # PE 0, slice row 1, column 0: gap 0
    m[1, 5] = 0.5      # PE 1, slice row 0, column 5
    m[0, 39] = 2.0     # PE 0, column 39
    return m


def test_pe_entries_by_hand():
    m = hand_matrix()
    # rel_bits=4: no run of 16 zeros within a 2-row slice column, so entries = non-zeros
    assert list(csc.pe_entries(m[None], 2, 4)[0]) == [3, 1]
    # rel_bits=1: a run of >= 2 zeros takes a padding entry per 2 zeros. Whole matrix (1 PE):
    # column 0 rows 0 and 2: first at row 0 (gap 0), then gap 1 -> 0 pads; column 5 row 1:
    # gap 1 -> 0 pads; column 39 row 0 -> 0 pads. 4 entries.
    assert csc_entries(m, 0, 1) == (4, 40)
    # a column with one non-zero at row 3 (gap 3 with rel_bits 1 -> 1 padding entry)
    m2 = np.zeros((4, 1)); m2[3, 0] = 1
    assert csc_entries(m2, 0, 1) == (2, 1)
    assert list(csc.pe_entries(m2[None], 1, 1)[0]) == [2]


def test_storage_of_pruned_shared_layer_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 64)).astype(np.float32)          # [K=256 inputs, N=64 outputs]
    w[rng.random(w.shape) < 0.9] = 0.0                             # ~10 % density
    out = nvmc.compile(gemm_model(w), "eie", passes="share-weights{clusters=16,measure=false}")
    g = out.graph
    t = g.values[next(n for n in g.nodes if n.op == "Gemm").inputs[1]].type
    cb = t.annotation("codebook")
    assert cb.get("format") == "csc" and int(cb.get("index_bits")) == 4 and int(cb.get("rel_bits")) == 4
    m = g.consts[next(n for n in g.nodes if n.op == "Gemm").inputs[1]].T        # [outputs, inputs]
    nnz = int(np.count_nonzero(m))
    # hand: whole-matrix CSC (the workload's accounting): per input column, entries with 16-zero padding
    pads = 0
    for col in m.T:                                          # each input column over the 64 output rows
        rows = np.flatnonzero(col)
        gaps = np.diff(np.concatenate([[-1], rows])) - 1
        pads += int(np.sum(gaps // 16))
    entries = nnz + pads
    # entries, 16-bit pointers, fp32 codebook. The pointers were 32-bit (+514 B) until the CSC format was
    # defined once (nvmc/ir/csc.py) at EIE's cited width (params.md §8, EIE-N: 16-bit column pointers)
    expected = entries * (4 + 4) / 8 + (256 + 1) * 2 + 16 * 4
    fc = out.workload.names.index("fc")
    assert out.workload["weight_bytes"][fc] == pytest.approx(expected)
    assert out.workload["codebook_bytes"][fc] == 64
    # EIE per PE (64 PEs: one output row each): entries = that row's non-zeros + its padding
    est = out.estimate
    per_pe = np.count_nonzero(m, axis=1)       # a 1-row slice per PE: every entry at gap 0, no padding
    assert est.events["entries"][fc] == pytest.approx(per_pe.sum() * est.info["mean_activation_density"])
    assert est.events["pe_bytes"][fc] == pytest.approx(per_pe.max() * (4 + 4) / 8)   # busiest PE's SRAM bytes


def test_activation_sparsity_measured_and_assumed():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((128, 64)).astype(np.float32)
    est = nvmc.compile(gemm_model(w), "eie").estimate
    assert est.info["activation_sparsity"].startswith("measured")
    assert 0.4 < est.info["mean_activation_density"] < 0.6           # ReLU of N(0, 1) inputs
    dense = nvmc.compile(gemm_model(w, relu=False), "eie").estimate
    assert dense.info["mean_activation_density"] == pytest.approx(1.0)
    assert est.totals["latency_s"] < dense.totals["latency_s"]       # zero activations are skipped
    # the family on a bare workload: assumed, and it says so
    g = nvmc.load(gemm_model(w))
    bare = family_module("sparse-engine").estimate(nvmc.analyze(g), load_target("eie"))
    assert bare.info["activation_sparsity"].startswith("assumed")
    # a per-workload fallback: said in the notes (assumptions list the target's assumed numbers)
    assert any("assumed balanced" in n for n in bare.notes)


def test_load_imbalance_is_measured():
    rng = np.random.default_rng(2)
    balanced = rng.standard_normal((64, 64)).astype(np.float32)
    skewed = np.zeros_like(balanced)
    skewed[:, ::64] = rng.standard_normal((64, 1)) * 64               # all weights on output 0 -> PE 0
    skewed[:, 0] = rng.standard_normal(64)
    b = nvmc.compile(gemm_model(balanced, relu=False), "eie").estimate
    s = nvmc.compile(gemm_model(skewed, relu=False), "eie").estimate
    assert b.info["load_balance"] == pytest.approx(1.0)
    assert s.info["load_balance"] == pytest.approx(1 / 64)
    assert s.info["pe_load"] == "measured from the weights"


def test_layer_that_does_not_fit_spills_to_dram():
    w = np.random.default_rng(3).standard_normal((512, 256)).astype(np.float32)
    fits = nvmc.compile(gemm_model(w), "eie").estimate
    spills = nvmc.compile(gemm_model(w), "eie", sets=["pe.spmat_capacity=1KiB"]).estimate
    assert fits.energy_of("dram") == 0 and fits.info["spilled_layers"] == 0
    assert spills.info["spilled_layers"] == 1 and spills.energy_of("dram") > 0
    assert spills.totals["latency_s"] > fits.totals["latency_s"]
    assert any("stream from DRAM" in n for n in spills.notes)


def test_cli_compare_cpu_gpu(tmp_path):
    w = np.random.default_rng(4).standard_normal((512, 256)).astype(np.float32)
    path = tmp_path / "fc.onnx"
    onnx.save(gemm_model(w), path)
    proc = run_nvmc("compile", str(path), "--target", "eie", "--compare", "cpu,gpu", "--passes",
                    "prune{sparsity=0.9,measure=false},share-weights{measure=false}", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["target"]["family"] == "sparse-engine"
    assert report["target"]["activation_sparsity"].startswith("measured")
    assert set(report["ratios"]) == {"cpu", "gpu"}
    assert report["ratios"]["cpu"]["latency_s"] > 1                 # EIE is faster than the CPU roofline
    assert report["carbon"]["operational_g_per_inference"] > 0
    text = run_nvmc("compile", str(path), "--target", "eie", "--compare", "cpu,gpu")
    assert text.returncode == 0 and "cpu ÷ eie" in text.stdout and "carbon per inference" in text.stdout
    explain = run_nvmc("explain", "--target", "eie")
    assert explain.returncode == 0 and "EIE-SS" in explain.stdout and "ACT-L" in explain.stdout


def test_example_alexnet_fc_in_the_papers_order_of_magnitude():
    """examples/eie.py: AlexNet FC6-8 pruned to 10 %, 4-bit shared. Paper (EIE abstract):
    102 GOPS at 600 mW, 1.88e4 frames/s, 189x / 13x faster than CPU / GPU (dense models).
    With the assumed 32 KB pointer SRAM fc8 spills to DRAM; with 64 KiB everything fits."""
    from nvmc.validate.nets import fc_stack
    from nvmc.validate.seeds_pim import EIE_PASSES

    # the shipped target as it is: fc8 spills its pointers to DRAM (said, not hidden by a bigger
    # SRAM). How the figures compare with the paper's, and what they
    # hinge on (pe.count), is nvmc validate's (tests/test_validate_pim.py), not a window here.
    shipped = nvmc.compile(fc_stack("alexnet_fc", [9216, 4096, 4096, 1000]), "eie", passes=EIE_PASSES).estimate
    assert shipped.info["spilled_layers"] > 0 and shipped.info["activation_sparsity"].startswith("measured")
