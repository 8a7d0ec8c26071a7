"""Acceptance 3: every zoo model of the onnx wheel, quantised, exports to QDQ ONNX that passes
onnx.checker and runs in onnxruntime.

The zoo models are opset 9, so quantize first upgrades them to opset 13 (onnx's version
converter). Weights are seeded random (test_passes_zoo.random_weights), calibration is one
seeded random draw. Settings rotate over the models so each path is exercised somewhere:
bits 8/4/2, symmetric/asymmetric, channel/tensor, minmax/percentile. The logits before a
final Softmax are compared too (random weights saturate the softmax). Run with ``-s`` for
the numbers.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ZOO_NAMES, zoo_path
from test_passes_zoo import random_weights

import nvmc
from nvmc.frontend import to_onnx
from nvmc.harness import INLINE_WEIGHTS, compare
from nvmc.passes import run_pipeline

SETTINGS = {
    "light_bvlc_alexnet": "bits=8",
    "light_densenet121": "bits=8,scheme=asymmetric",
    "light_inception_v1": "bits=4",
    "light_inception_v2": "bits=8,granularity=tensor",
    "light_resnet50": "bits=8,calibration=percentile",
    "light_shufflenet": "bits=4,activation-scheme=symmetric",
    "light_squeezenet": "bits=2",
    "light_vgg19": "bits=8",
    "light_zfnet512": "bits=8,activations=false",
}


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_quantizes_to_runnable_qdq(name, tmp_path):
    graph = random_weights(nvmc.load(zoo_path(name)))
    for node in graph.nodes:  # compare the logits as well as the probabilities
        if node.op == "Softmax" and node.inputs[0] not in graph.outputs:
            graph.outputs.append(node.inputs[0])
    q = graph.copy()
    options = SETTINGS.get(name, "bits=8")
    result = run_pipeline(q, f"quantize{{{options},samples=1,measure=false}}", verify_each=True).records[0].result
    assert result.stats["opset_upgraded_from"] == 9 and q.opsets[""] == 13
    macs = sum(n.op in ("Conv", "Gemm") for n in graph.nodes)  # inception_v1's Gemm weight is a Reshape:
    assert result.stats["weights_quantized"] + len(result.why_not) == macs  # fold-constants would fold it
    # the checker on the exported model (weights as typed inputs: the checker reads no data)
    model = to_onnx(q, large_consts_as_inputs=INLINE_WEIGHTS)
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" in ops and ("QuantizeLinear" in ops) == ("activations=false" not in options)
    report = compare(graph, q)  # both exported and run in onnxruntime
    assert all(not o.note and np.isfinite(o.max_abs_err) for o in report.outputs)
    logits = [o for o in report.outputs if o.name not in graph.outputs[:1]] or report.outputs
    print(f"\n{name} quantize{{{options}}}: weight bytes {nvmc.analyze(graph).totals['weight_bytes']:,} -> "
          f"{nvmc.analyze(q).totals['weight_bytes']:,}; logits SQNR {logits[0].sqnr_db:.1f} dB, "
          f"top-1 agreement {logits[0].top1_agreement}")
    if options.startswith("bits=8"):
        assert logits[0].sqnr_db > 20


def test_saved_qdq_file_runs_in_onnxruntime(tmp_path):
    """The real export path (nvmc.save): a file onnx.checker accepts and onnxruntime runs,
    with its graph optimisations on (it fuses the QDQ groups), computing what the IR says."""
    graph = random_weights(nvmc.load(zoo_path("light_squeezenet")))
    q = graph.copy()
    run_pipeline(q, "quantize{bits=8,samples=1,measure=false}")
    path = tmp_path / "squeezenet.qdq.onnx"
    nvmc.save(q, path)
    onnx.checker.check_model(str(path), full_check=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    name = q.inputs[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {name: x})[0]
    ref = compare(q, str(path), inputs={name: x})
    assert ref.max_abs_err < 1e-4  # ORT's fused integer kernels vs the exported QDQ, unoptimised
    assert out.shape == (1, 1000, 1, 1) and np.isfinite(out).all()
