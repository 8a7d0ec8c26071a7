"""Training mode of the crossbar family: backprop vs direct feedback alignment (paper 7)."""

from __future__ import annotations


import pytest

import nvmc



from nvmc.validate import nets as NETS  # noqa: E402 - the reference networks, defined once in the package


def step(model, algorithm: str, *sets: str):
    return nvmc.compile(model, "rram-pim", sets=["run.mode=train", f"training.algorithm={algorithm}", *sets]).estimate


def test_bp_over_dfa_grows_with_depth():
    step_ratio, backward_ratio = [], []
    for layers in (2, 4, 8, 16):
        model = NETS.mlp(layers, width=256)
        bp, dfa = step(model, "bp"), step(model, "dfa")
        for est in (bp, dfa):
            tr = est.info["training"]
            assert est.totals["latency_s"] == pytest.approx(tr["step_latency_s"], rel=1e-12)   # shares add up
            assert sum(est.energy_by_component().values()) == pytest.approx(est.totals["energy_j"], rel=1e-12)
        step_ratio.append(bp.info["training"]["step_latency_s"] / dfa.info["training"]["step_latency_s"])
        backward_ratio.append(bp.info["training"]["backward_s"] / dfa.info["training"]["backward_s"])
    assert all(a < b for a, b in zip(step_ratio, step_ratio[1:])), step_ratio
    assert all(a < b for a, b in zip(backward_ratio, backward_ratio[1:])), backward_ratio
    # the mechanism: BP's backward is a chain of L - 1 transposed reads, DFA's one projection at once
    assert backward_ratio[-1] / backward_ratio[0] > 10


def test_training_costs_writes_and_endurance():
    model = NETS.mlp(3, width=128)
    infer = nvmc.compile(model, "rram-pim").estimate
    bp = step(model, "bp")
    tr = bp.info["training"]
    assert bp.totals["energy_j"] > infer.totals["energy_j"] and bp.totals["latency_s"] > infer.totals["latency_s"]
    cells = sum(bp.events_total()[k] for k in ("cells_written",))
    weights = 784 * 128 + 128 * 128 + 128 * 10
    assert cells == pytest.approx(weights * 4)                  # every weight, 4 two-bit slices, 1 pulse
    assert bp.energy_of("write") == pytest.approx(cells * 8e-12)  # NS21: (4 V)^2 / 100 kOhm x 50 ns
    assert tr["lifetime_steps"] == pytest.approx(1e6)
    half = step(model, "bp", "training.update_fraction=0.5")
    assert half.info["training"]["lifetime_steps"] == pytest.approx(2e6)
    assert half.energy_of("write") == pytest.approx(0.5 * bp.energy_of("write"))


def test_dfa_needs_feedback_arrays():
    model = NETS.mlp(4, width=256)
    bp, dfa = step(model, "bp"), step(model, "dfa")
    assert dfa.info["feedback_arrays"] > 0
    assert dfa.info["arrays_required"] == bp.info["arrays_required"] + dfa.info["feedback_arrays"]
    assert dfa.totals["area_mm2"] >= bp.totals["area_mm2"]


def test_conv_model_trains(example_models):
    for algorithm in ("bp", "dfa"):
        est = nvmc.compile(example_models / "tiny_cnn.onnx", "rram-pim",
                           sets=["run.mode=train", f"training.algorithm={algorithm}"]).estimate
        assert est.ok and est.info["training"]["backward_s"] > 0
        assert est.totals["latency_s"] == pytest.approx(est.info["training"]["step_latency_s"], rel=1e-12)
