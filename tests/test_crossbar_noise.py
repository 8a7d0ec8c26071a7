"""crossbar-noise: RRAM non-idealities written into the model, measured in onnxruntime."""

from __future__ import annotations

import numpy as np

import nvmc
from nvmc.passes.crossbar_noise import effective_weight
from nvmc.harness import compare
from nvmc.passes import run_pipeline, workload

from conftest import materialize_weights


def noisy(graph, options: str):
    g = graph.copy()
    result = run_pipeline(g, f"crossbar-noise{{{options}}}", verify_each=True)
    return g, result


def test_effective_weight_ideal_and_on_off():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32))
    eff, st = effective_weight(w, weight_bits=8, cell_bits=2, on_off=150, sigma=0.0, rng=rng)
    step = np.abs(w).max() * 2 / 255
    assert np.max(np.abs(eff - w)) <= step / 2 + 1e-6          # ideal arrays: the 8-bit quantised weights
    assert st["slices"] == 4 and st["cells"] == w.size * 4
    # with variation, a lower on/off ratio (a larger G_off offset that no longer cancels) is noisier
    change = {}
    for on_off in (2.0, 10.0, 1000.0):
        _, s = effective_weight(w, weight_bits=8, cell_bits=2, on_off=on_off, sigma=0.05,
                                rng=np.random.default_rng(1))
        change[on_off] = s["weight_rms_change"]
    assert change[2.0] > change[10.0] > change[1000.0]


def test_agreement_falls_monotonically_with_sigma(example_models):
    g = nvmc.load(example_models / "tiny_cnn.onnx")
    clean_totals = workload.analyze(g).totals
    sqnr, cos = [], []
    for sigma in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4):
        h, result = noisy(g, f"sigma={sigma},seed=0,samples=2,measure=false")
        r = compare(g, h, samples=8, seed=1)
        sqnr.append(r.sqnr_db)
        cos.append(r.cosine)
        assert result.records[0].result.stats["layers"] == 4
    assert all(a > b for a, b in zip(sqnr, sqnr[1:])), sqnr
    assert all(a >= b for a, b in zip(cos, cos[1:])), cos
    # the noisy model costs what the clean one does: the QDQ chains are free, MACs unchanged
    assert workload.analyze(h).totals["macs"] == clean_totals["macs"]


def test_seeded_and_ideal_settings_are_exact(example_models):
    g = nvmc.load(example_models / "tiny_cnn.onnx")
    a, _ = noisy(g, "sigma=0.1,seed=5,samples=1,measure=false")
    b, _ = noisy(g, "sigma=0.1,seed=5,samples=1,measure=false")
    r = compare(a, b, samples=2)
    assert r.max_abs_err == 0.0
    # no variation, float inputs, ideal ADC, 16-bit weights: the model is nearly untouched
    ideal, _ = noisy(g, "sigma=0,input-bits=0,adc-bits=0,weight-bits=16,samples=1,measure=false")
    assert compare(g, ideal, samples=2).max_rel_err < 1e-3


def test_adc_and_dac_bits_alone_move_outputs(example_models):
    g = nvmc.load(example_models / "tiny_cnn.onnx")
    err = {}
    for bits in (3, 5, 8):
        h, result = noisy(g, f"sigma=0,adc-bits={bits},samples=2")
        err[bits] = result.records[0].result.error["sqnr_db"]
    assert err[3] < err[5] < err[8]


def test_zoo_model_noise_moves_outputs():
    model = materialize_weights("light_squeezenet")
    g = nvmc.load(model)
    h, result = noisy(g, "sigma=0.1,samples=1,measure=false")
    r = compare(g, h, samples=1, seed=2)
    assert result.records[0].result.stats["layers"] >= 20
    assert 0.0 < r.cosine < 0.9999
