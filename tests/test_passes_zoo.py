"""Acceptance: fuse-conv-bn + fold-constants + dce on every zoo model of the onnx wheel.

The zoo files hold their weights as constant fills; ``random_weights`` replaces every
floating-point constant by seeded random values on the imported graph (float32 uniform
draws: the 143M weights of vgg19 take a second, not the half minute of a protobuf round
trip). 1-D tensors (biases, BN scale/mean/var) get U(0.5, 1.5), positive and so safe as
variances; N-D weights He-uniform, so activations stay in range through deep models. The
outputs must agree to float rounding (max rel error < 1e-5) and no BatchNormalization that
follows a Conv may remain. The logits feeding a final Softmax are compared too: random
weights saturate a softmax to one-hot, which would hide any error behind it.

Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ZOO_NAMES, zoo_path

import nvmc
from nvmc.ir import Graph
from nvmc.harness import check_pipeline

PIPELINE = "fuse-conv-bn,fold-constants,dce"


def random_weights(graph: Graph, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    for name, array in list(graph.consts.items()):
        if array.dtype != np.float32 or array.ndim == 0:
            continue
        data = rng.random(array.shape, dtype=np.float32)
        if array.ndim == 1:
            data += np.float32(0.5)
        else:
            bound = np.float32(np.sqrt(6.0 / max(1, int(np.prod(array.shape[1:])))))
            data *= 2 * bound
            data -= bound
        graph.set_const(name, data)
    return graph


def bn_after_conv(graph) -> int:
    return sum(1 for n in graph.nodes if n.op == "BatchNormalization"
               and (p := graph.producer(n.inputs[0])) is not None and p.op == "Conv")


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_keeps_its_numbers_and_loses_conv_bn(name):
    graph = random_weights(nvmc.load(zoo_path(name)))
    for node in graph.nodes:  # compare the logits as well as the probabilities
        if node.op == "Softmax" and node.inputs[0] not in graph.outputs:
            graph.outputs.append(node.inputs[0])
    before = bn_after_conv(graph)
    transformed, result, report = check_pipeline(graph, PIPELINE, rel=1e-5)
    after = bn_after_conv(transformed)
    bns = sum(n.op == "BatchNormalization" for n in transformed.nodes)
    print(f"\n{name}: {len(graph)} -> {len(transformed)} nodes, Conv+BN folded {before - after} of {before} "
          f"(BatchNormalization left: {bns}, none after a Conv), max rel err {report.max_rel_err:.2e}, "
          f"SQNR {report.sqnr_db:.1f} dB, top-1 {report.top1_agreement}")
    assert after == 0
    assert result.records[0].result.stats["nodes_rewritten"] == before
    assert report.top1_agreement in (None, 1.0)
