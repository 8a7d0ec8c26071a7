"""The systolic family's traffic, energy, area and node scaling on hand-computed scenarios.

Scenario: one Gemm, x [64, 256] @ w [256, 128] (fp32, no bias) on a 16x16 output-stationary
array with the systolic-*-28nm buffers (ifmap 256 KiB, filter 512 KiB, ofmap 256 KiB, 256-bit
words, half of each usable for reuse):
  M, N, K = 64, 128, 256; row folds 4, column folds 8; cycles = 32 x (16 + 16 + 256 - 2) - 1
  A = 64 KiB fits the ifmap half (128 KiB), B = 128 KiB fits the filter half: nothing is
  re-fetched. The weights (128 KiB) fit the filter buffer: resident across back-to-back
  inferences. The input comes from DRAM (first node), the output goes there (last node).
  ifmap reads  = col_folds x M x K x 4 B / 32 B = 16384 words; writes = 64 KiB / 32 B = 2048
  filter reads = row_folds x K x N x 4 B / 32 B = 16384 words; writes = 0 (resident)
  ofmap writes = M x N x 4 B / 32 B = 1024; reads (drain to DRAM) = 1024
  DRAM = 64 KiB + 32 KiB.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.passes import registered_passes
from nvmc import backends
from nvmc.backends import load_target
from nvmc.backends.errors import TargetError
from nvmc.backends.systolic import SPEC, resolve
from nvmc.backends.techlib import library

needs_quantize = pytest.mark.skipif("quantize" not in registered_passes(),
                                    reason="the quantize pass is not in this tree")
RNG = np.random.default_rng(1)
MACS = 64 * 256 * 128
CYCLES = 32 * (16 + 16 + 256 - 2) - 1


def _gemm_model(dtype=np.float32, bias=False):
    elem = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16}[dtype]
    inits = [numpy_helper.from_array(RNG.standard_normal((256, 128)).astype(dtype), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(RNG.standard_normal(128).astype(dtype), "b"))
        inputs.append("b")
    graph = helper.make_graph([helper.make_node("Gemm", inputs, ["y"])], "gemm",
                              [helper.make_tensor_value_info("x", elem, [64, 256])],
                              [helper.make_tensor_value_info("y", elem, [64, 128])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _estimate(model, target="systolic-sram-28nm", *sets):
    t = load_target(target, list(sets))
    return nvmc.compile(nvmc.load(model), t, batch=1).estimate, resolve(SPEC.params(t))


def test_hand_computed_gemm_traffic_and_energy():
    est, cfg = _estimate(_gemm_model())
    ev = {k: float(v.sum()) for k, v in est.events.items()}
    assert ev["array_cycles"] == CYCLES
    assert (ev["ifmap_reads"], ev["ifmap_writes"]) == (16384, 2048)
    assert (ev["filter_reads"], ev["filter_writes"]) == (16384, 0)
    assert (ev["ofmap_writes"], ev["ofmap_reads"]) == (1024, 1024)
    assert (ev["dram_read_bytes"], ev["dram_write_bytes"]) == (65536, 32768)
    e = est.energy_by_component()
    b = cfg.buffers
    assert e["ifmap_read"] == pytest.approx(16384 * b["ifmap"].read_energy_j)
    assert e["ifmap_write"] == pytest.approx(2048 * b["ifmap"].write_energy_j)
    assert e["filter_read"] == pytest.approx(16384 * b["filter"].read_energy_j)
    assert e["ofmap_write"] == pytest.approx(1024 * b["ofmap"].write_energy_j)
    assert e["dram"] == pytest.approx(98304 * 8 * 8e-12)          # LPDDR4 8 pJ/bit (TAE-S)
    # fp32 MAC = (3.7 + 0.9) pJ at 45 nm (Horowitz) x SB17 45 -> 28 nm (0.5132, params.md §1)
    assert e["mac"] == pytest.approx(MACS * 4.6e-12 * 0.5132, rel=1e-3)
    assert e["pe_registers"] == pytest.approx(MACS * 64 * cfg.register_energy_j_per_bit)
    latency = est.totals["latency_s"]
    assert latency == pytest.approx(CYCLES / 500e6)               # array-bound at 500 MHz
    assert e["buffer_leakage"] == pytest.approx(latency * sum(x.leakage_w for x in b.values()))
    assert est.info["weights_resident"] is True


@needs_quantize
def test_int8_after_quantize_lowers_mac_energy_and_bytes():
    model = _gemm_model()
    fp32, _ = _estimate(model)
    graph = nvmc.load(model)
    q = nvmc.compile(graph, "systolic-sram-28nm", passes="quantize{bits=8,measure=false}").estimate
    assert q.info["mac_precision"] == "int8" and fp32.info["mac_precision"] == "fp32"
    # int8 MAC = 0.2 pJ mult + 0.1 pJ int32 add (Horowitz 45 nm), same scaling
    assert q.energy_of("mac") == pytest.approx(MACS * 0.3e-12 * 0.5132, rel=1e-3)
    assert q.events_total()["filter_reads"] == pytest.approx(16384 / 4)   # 1-byte weights
    assert q.events_total()["dram_read_bytes"] < fp32.events_total()["dram_read_bytes"] / 3


def test_fp16_model_costs_fp16_macs():
    est, _ = _estimate(_gemm_model(np.float16))
    assert est.info["mac_precision"] == "fp16"
    assert est.energy_of("mac") == pytest.approx(MACS * (1.1e-12 + 0.9e-12) * 0.5132, rel=1e-3)


def test_bias_adds_run_on_the_vector_unit():
    est, cfg = _estimate(_gemm_model(bias=True))
    assert est.energy_of("vector") == pytest.approx(64 * 128 * cfg.add_energy_j[3])


def test_idle_leakage_power_gating_and_weight_residency():
    model = _gemm_model()
    sram, cfg = _estimate(model, "systolic-sram-28nm", "operation.inferences_per_s=1000")
    latency = sram.totals["latency_s"]
    leak = sum(b.leakage_w for b in cfg.buffers.values())
    assert sram.energy_of("idle_leakage") == pytest.approx((1e-3 - latency) * leak)
    assert sram.info["meets_rate"] and sram.info["weights_resident"]
    gated, _ = _estimate(model, "systolic-sram-28nm", "operation.inferences_per_s=1000",
                         "buffers.power_gating=idle-sram")
    assert gated.energy_of("idle_leakage") == 0
    assert not gated.info["weights_resident"]                       # gated SRAM loses its weights
    assert gated.events_total()["dram_read_bytes"] == 65536 + 131072
    assert gated.events_total()["filter_writes"] == 131072 / 32
    stt, _ = _estimate(model, "systolic-stt-28nm", "operation.inferences_per_s=1000")
    assert stt.energy_of("idle_leakage") == 0 and stt.info["weights_resident"]   # MRAM: gated, keeps its data
    slow, _ = _estimate(model, "systolic-sram-28nm", "operation.inferences_per_s=1e6")
    assert slow.info["meets_rate"] is False and any("NOT met" in n for n in slow.notes)


def test_activations_through_dram_and_refetch_when_a_tile_does_not_fit():
    model = _gemm_model()
    small, _ = _estimate(model, "systolic-sram-28nm", "ifmap_buffer.capacity=8KiB", "filter_buffer.capacity=8KiB",
                         "array.dataflow=ws")
    # ws streams A once per column fold (8); 64 KiB does not fit a 4 KiB half: miss = 1 - 4/64
    a_refetch = 65536 * 7 * (1 - 4096 / 65536)
    # weights (128 KiB) no longer fit the 8 KiB filter buffer: fetched each inference
    assert small.events_total()["dram_read_bytes"] == pytest.approx(65536 + 131072 + a_refetch)
    assert not small.info["weights_resident"]


@pytest.mark.parametrize("tech", ["stt", "sot", "vgsot"])
@pytest.mark.parametrize("node", [28, 7])
def test_mram_buffers_at_iso_capacity_are_at_least_30_percent_smaller(tech, node):
    """Acceptance 2: the NVSim data give >= 30 % less buffer area at the same capacities."""
    model = _gemm_model()
    sram, _ = _estimate(model, f"systolic-sram-{node}nm")
    mram, _ = _estimate(model, f"systolic-{tech}-{node}nm")
    buffers = ("ifmap_buffer", "filter_buffer", "ofmap_buffer")
    ratio = sum(mram.area[b] for b in buffers) / sum(sram.area[b] for b in buffers)
    assert ratio <= 0.70, ratio


def test_7nm_vs_28nm_follows_stillmaker_baas():
    """Acceptance 2: node scaling is SB17's (hwcomponents techscaling.py, Vdd 0.8 V), not invented."""
    def energy(a, b, c, vdd=0.8):
        return a * vdd ** 2 + b * vdd + c
    e32, e20, e7 = energy(0.9559, -0.7823, 0.471), energy(0.373, -0.1582, 0.04104), energy(0.1776, -0.09097, 0.02447)
    e28 = e32 + (e20 - e32) * (32 - 28) / (32 - 20)                  # linear in node (params.md §1)
    area28 = 0.46 + (0.21 - 0.46) * (32 - 28) / (32 - 20)              # 45 nm row of AREA_SCALING
    _, c28 = _estimate(_gemm_model(), "systolic-sot-28nm")
    _, c7 = _estimate(_gemm_model(), "systolic-sot-7nm")
    assert c7.mac_energy_j[2] / c28.mac_energy_j[2] == pytest.approx(e7 / e28)
    for role in ("ifmap", "filter", "ofmap"):
        b28, b7 = c28.buffers[role], c7.buffers[role]
        assert b7.read_energy_j / b28.read_energy_j == pytest.approx(e7 / e28)
        assert b7.leakage_w / b28.leakage_w == pytest.approx(e7 / e28)
        assert b7.area_mm2 / b28.area_mm2 == pytest.approx(0.059 / area28)
        assert b7.read_latency_s == b28.read_latency_s
    assert e7 / e28 == pytest.approx(0.1838, abs=1e-4)


def test_leakage_and_dynamic_split_reported():
    est, _ = _estimate(_gemm_model(), "systolic-sram-7nm", "operation.inferences_per_s=40")
    comps = est.energy_by_component()
    assert {"buffer_leakage", "idle_leakage", "ifmap_read", "mac", "dram"} <= set(comps)
    assert comps["idle_leakage"] > comps["buffer_leakage"] > 0


def test_buffer_data_come_from_the_nvsim_tables():
    lib = library()
    for tech in ("sram", "stt-mram", "sot-mram", "vgsot-mram"):
        assert lib.tech(tech).settings["buffer_array.table"] == "nvsim_buffers/buffer_tables.csv"
    params = {p.key: p for p in backends.explain("systolic-vgsot-7nm")}
    assert params["ifmap_buffer.array.read_energy_j"].kind == "source"
    assert "buffer_tables.csv" in params["ifmap_buffer.array.read_energy_j"].origin
    assert params["array.clock_hz"].kind == "assumed" and "systolic-edge" in params["array.clock_hz"].note


@pytest.mark.parametrize("sets, message", [
    (["array.size=16x0"], "at least one row and one column"),
    (["array.size=big"], "expected ROWSxCOLS"),
    (["array.rows=0"], "must be positive"),
    (["array.cols=0"], "array.cols: must be positive"),
    (["array.dataflow=rs"], "expected one of 'os', 'ws', 'is'"),
    (["ifmap_buffer.capacity=16"], "smaller than one 256-bit word"),
    (["ofmap_buffer.word_bits=128"], "no NVSim buffer data for 128-bit words"),
    (["filter_buffer.capacity=64MiB"], "no sram buffer data at that capacity"),
    (["filter_buffer.technology=rram"], "has no on-chip buffer data"),
    (["array.node_nm=3"], "outside the Stillmaker & Baas scaling table"),
])
def test_bad_targets_are_clear_errors(sets, message):
    with pytest.raises(TargetError, match=message.replace("(", r"\(")):
        backends.explain("systolic-sram-28nm", sets=sets)


def test_elementwise_ops_run_in_the_mac_output_path():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 16, 16])],
                              [numpy_helper.from_array(RNG.standard_normal((16, 8, 3, 3)).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    fused, _ = _estimate(model)
    alone, _ = _estimate(model, "systolic-sram-28nm", "vector.fusion=none")
    relu = fused.ops.index("Relu")
    assert fused.node_latency[relu] == 0 and fused.events["ifmap_reads"][relu] == 0
    assert fused.latency["vector"][0] == pytest.approx(16 * 16 * 16 / 16 / 500e6)   # Relu's slots, at the Conv
    assert alone.events["ifmap_reads"][relu] == 16 * 16 * 16 * 4 / 32 and alone.node_latency[relu] > 0
    assert fused.events_total()["dram_write_bytes"] == alone.events_total()["dram_write_bytes"] == 16 * 16 * 16 * 4


def _single(node, inputs, output, inits=(), extra_nodes=()):
    graph = helper.make_graph([*extra_nodes, node], "g",
                              [helper.make_tensor_value_info(n, e, s) for n, e, s in inputs],
                              [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
                              [numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_strided_1x1_conv_reads_only_the_pixels_it_samples():
    """A stride-2 1x1 conv reads one input pixel in four: its A operand is the im2col volume
    (gemm_batch x M x K), not the whole input (ZigZag comparison, tests/data/refs/zigzag)."""
    w = RNG.standard_normal((128, 64, 1, 1)).astype(np.float32)
    model = _single(helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1], strides=[2, 2]),
                    [("x", TensorProto.FLOAT, [1, 64, 28, 28])], ("y", [1, 128, 14, 14]), [("w", w)])
    est, _ = _estimate(model)
    sampled = 14 * 14 * 64 * 4                  # 50 KiB of the 196 KiB input; fits the ifmap half
    assert est.events_total()["dram_read_bytes"] == sampled       # weights resident; before: 200704
    assert est.events_total()["ifmap_writes"] == sampled / 32


def test_gather_reads_its_rows_from_dram():
    """An embedding lookup fetches the rows it selects (weight_read_bytes), not its table."""
    table = RNG.standard_normal((4000, 64)).astype(np.float32)      # 1 MB: not resident in 512 KiB
    model = _single(helper.make_node("Gather", ["table", "ids"], ["y"]),
                    [("ids", TensorProto.INT64, [1, 8])], ("y", [1, 8, 64]), [("table", table)])
    est, _ = _estimate(model)
    rows = 8 * 64 * 4
    assert est.events_total()["dram_read_bytes"] == rows + 8 * 8        # rows + the indices
    assert est.events_total()["filter_reads"] == rows / 32
    assert not est.info["weights_resident"]


def test_a_weight_computed_at_run_time_is_the_b_operand():
    """A Gemm whose B comes from the inputs (only its bias is constant) streams B like a weight:
    weight-stationary, B is fetched once, not re-streamed as A once per column fold."""
    bias = RNG.standard_normal(1000).astype(np.float32)
    model = _single(helper.make_node("Gemm", ["x", "b", "c"], ["y"]),
                    [("x", TensorProto.FLOAT, [1, 1024]), ("b", TensorProto.FLOAT, [1024, 1000])],
                    ("y", [1, 1000]), [("c", bias)])
    est, _ = _estimate(model, "systolic-sram-28nm", "array.dataflow=ws")
    inputs = (1024 + 1024 * 1000) * 4
    assert est.events_total()["dram_read_bytes"] == pytest.approx(inputs)    # before: 63 passes over B


@needs_quantize
def test_a_width_the_array_lacks_is_costed_at_the_nearest_class_and_says_so():
    """The array computes int4 / int8 / fp16 / fp32 (data/families/systolic.toml [precision]):
    an int6 model runs at int8 and the estimate carries the precision note."""
    q8 = nvmc.compile(nvmc.load(_gemm_model()), "systolic-sram-28nm", passes="quantize{bits=8,measure=false}")
    assert q8.estimate.precision["costed"] == "int8" and "note" not in q8.estimate.precision
    q6 = nvmc.compile(nvmc.load(_gemm_model()), "systolic-sram-28nm", passes="quantize{bits=6,measure=false}")
    assert q6.estimate.precision["model"] == "int6" and q6.estimate.precision["costed"] == "int8"
    assert "int6 model costed at int8" in q6.estimate.precision["note"]
