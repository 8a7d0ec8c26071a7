"""DRAM-PIM families (upmem, mensa, simdram) and the roofline baselines (cpu, gpu): hand-computed
cases, the peer tool's numbers, the qualitative findings of the DRAM-PIM paper, errors."""

from __future__ import annotations

import json

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc import backends
from nvmc.backends import TargetError, UnsupportedOpError
from nvmc.backends.simdram import SPEC as SIMDRAM
from nvmc.validate import nets as EX  # the DRAM PIM study's models (examples/dram_pim.py uses them too)
from nvmc.backends.simdram import element_aaps, int_add_aaps, int_mul_aaps, mac_aaps
from nvmc.backends.simdram import resolve as simdram_resolve
from nvmc.backends.systolic_map import compute_cycles

from conftest import REPO, ZOO_NAMES, zoo_path

TARGETS = ["upmem", "mensa", "edge-tpu", "simdram", "cpu", "gpu"]
OPSET = [helper.make_opsetid("", 17)]


gemv = EX.gemv


# ------------------------------------------------------------------ the library
def test_cited_derivations():
    lib = backends.library()
    up = lib.device("upmem-prim-2556")
    assert up["isa.int32_add_ops_per_s"] == pytest.approx(350e6 / 6)        # PrIM: f / #instructions
    assert up["mram.read_bandwidth_bytes_per_s"] == pytest.approx(2048 * 350e6 / (77 + 0.5 * 2048))
    assert up["isa.int32_mac_instructions"] == 5 + 32 and up["isa.int8_mac_instructions"] == 6
    dram = lib.tech("dram")
    assert dram["ddr4_3200_x16.row_activate_precharge_s"] == pytest.approx((52 + 22) * 0.63e-9)
    # Micron/DRAMPower: VDD x (IDD0 tRC - IDD3N tRAS - IDD2N tRP) x tCK
    assert dram["ddr4_3200_x16.act_pre_energy_per_chip_j"] == pytest.approx(
        1.2 * (0.095 * 74 - 0.056 * 52 - 0.037 * 22) * 0.63e-9)
    assert dram["ddr4_3200_x16.chips_per_rank"] == 4 and dram["ddr4_3200_x16.banks"] == 8
    for name in ("upmem-prim-2556", "simdram-ddr4", "mensa-g", "edge-tpu-like", "xeon-e3-1275-v3",
                 "gtx-1080-ti-roofline"):
        assert all(p.note.strip() for p in lib.device(name).params.values())


@pytest.mark.parametrize("target", TARGETS)
def test_explain_lists_every_number_and_flags_assumptions(target):
    params = backends.explain(target)
    kinds = {p.kind for p in params}
    assert "assumed" in kinds and ("source" in kinds or "derived" in kinds)
    assert all(p.note for p in params)


# ------------------------------------------------------------------ upmem, by hand
def test_upmem_gemv_by_hand():
    """y[1, 5112] = x[1, 1024] @ W, int8: 2 columns on each of the 2,556 DPUs, K not split."""
    est = nvmc.compile(gemv(5112, 1024), "upmem").estimate
    i = est.names.index("gemv")
    assert est.events["dpus_used"][i] == 2556 and est.events["k_split"][i] == 1
    t_compute = 2 * 1024 * 6 / 350e6                                 # MACs per DPU x int8 instructions / f
    t_in = 1024 * 64 / 6.68e9                                        # the vector to each of a rank's 64 DPUs
    t_out = 2 * 4 * 64 / 4.74e9                                      # two int32 outputs per DPU
    read_bw = 2048 * 350e6 / (77 + 1024)
    t_mram = (2048 + 1024) / read_bw + 8 / (2048 * 350e6 / (61 + 1024))
    assert est.latency["compute"][i] == pytest.approx(t_compute)
    assert est.latency["mram"][i] == pytest.approx(t_mram)
    assert est.latency["transfer_in"][i] == pytest.approx(t_in)
    assert est.latency["transfer_out"][i] == pytest.approx(t_out)
    assert est.node_latency[i] == pytest.approx(t_in + max(t_compute, t_mram) + t_out + 20e-6)
    assert est.energy["compute"][i] == pytest.approx(0.1 * t_compute * 2556)
    assert est.energy["transfer"][i] == pytest.approx((1024 + 8) * 2556 * 8 * 20e-12)


def test_upmem_precision_sets_instruction_cost():
    fp = nvmc.compile(gemv(5112, 1024, int8=False), "upmem").estimate
    i8 = nvmc.compile(gemv(5112, 1024), "upmem").estimate
    # software float MAC (5 + 71 + 183 instructions) against an int8 one (6)
    assert fp.latency["compute"][0] / i8.latency["compute"][0] == pytest.approx(259 / 6)
    assert any("float (software-emulated" in n for n in fp.notes)


def test_upmem_weights_beyond_mram_do_not_fit():
    est = nvmc.compile(gemv(16384, 16384), "upmem", sets=["system.dpus=2"]).estimate
    assert not est.ok and "exceed the MRAM" in est.reason
    stream = nvmc.compile(gemv(16384, 16384), "upmem", sets=["system.dpus=2", "mapping.weights=stream"]).estimate
    assert stream.ok and stream.latency["transfer_in"].sum() > 256 * 2**20 / 6.68e9 / 2


# ------------------------------------------------------------------ simdram, by hand and against PIMeval
def simdram_params():
    """The shipped simdram target's resolved parameters (what the micro-program costs read)."""
    p = SIMDRAM.params(backends.load_target("simdram"))
    simdram_resolve(p)
    return p


def test_simdram_bulk_xor_by_hand():
    """z = x XOR y over 2^20 one-bit lanes: 2 row-steps of 12 AAPs on 524,288 lanes (one rank)."""
    graph = EX.annotate_bits(nvmc.load(EX.bulk_xor(1 << 20)))
    est = nvmc.compile(graph, "simdram").estimate
    t_aap = 74 * 0.63e-9
    e_aap = 4 * 1.2 * (0.095 * 74 - 0.056 * 52 - 0.037 * 22) * 0.63e-9 * 2 * 1.22
    assert est.latency["row_activations"][0] == pytest.approx(2 * 12 * t_aap)
    assert est.energy["row_activation"][0] == pytest.approx(16 * 12 * e_aap)     # 16 bank-rows of 65,536 bits
    assert est.energy["background"][0] == pytest.approx(2 * 12 * t_aap * 4 * 1.2 * 0.056)


def test_simdram_micro_program_costs():
    cfg = simdram_params()
    b = np.array([1.0, 8.0, 32.0])
    assert mac_aaps(b, b, cfg).tolist() == [(1 + 2) / 2 + 13, 0.5 * 8 * 13 * 9, 2 * 0.5 * 24 * 13 * 25]
    assert element_aaps(np.array([8.0]), ["Add"], cfg)["add"][0] == 13 * 8


# PIMeval-PIMbench (UVA-LavaLab) @40ce162, device PIM_DEVICE_BITSIMD_V_AP, one DDR4-3200 rank: pimAdd / pimMul
# on 262,144 elements (one pass per core), as tests/data/refs/pimeval/run_pimeval.sh runs and records them.
_PIMEVAL = json.loads((REPO / "tests" / "data" / "refs" / "pimeval" / "pimeval_refs.json").read_text())
PIMEVAL_MS = {(op, int(ty[3:])): _PIMEVAL["cases"][f"{op}.{ty}"]["runtime_ms"] for op in ("add", "mul")
              for ty in ("int8", "int32")}
PIMEVAL_ROW_NS = _PIMEVAL["device"]["row_read_ns"]


def test_simdram_against_pimeval():
    cfg = simdram_params()
    t_aap = cfg["simdram.aap_s"]
    assert t_aap * 1e9 == pytest.approx(PIMEVAL_ROW_NS)        # same DDR4 timing, same row-op time
    ours = {("add", b): int_add_aaps(b, cfg) for b in (8, 32)}
    ours.update({("mul", b): int_mul_aaps(b, b, cfg) for b in (8, 32)})
    # how costs grow with the width: linear for add, quadratic for multiply, in both models (within 5 %)
    for op in ("add", "mul"):
        assert ours[(op, 32)] / ours[(op, 8)] == pytest.approx(PIMEVAL_MS[(op, 32)] / PIMEVAL_MS[(op, 8)], rel=0.05)
    # the absolute gap is the design's: PIMeval's BitSIMD-V-AP computes in sense-amplifier logic (a row
    # read + write per bit and cheap logic steps); SIMDRAM/Ambit's majority logic copies operands into
    # compute rows first. Ours is 3.5-4.5x PIMeval's per operation.
    for key, ms in PIMEVAL_MS.items():
        assert 3.5 < ours[key] * t_aap / (ms * 1e-3) < 4.5, key


# ------------------------------------------------------------------ roofline, by hand
def test_gpu_roofline_gemv_and_oversubscription():
    small = nvmc.compile(gemv(16384, 16384), "gpu").estimate
    t_dram = 16384 * 16384 / 484e9
    assert small.latency["dram"][0] == pytest.approx(t_dram + 0 * small.latency["dram"][0], rel=1e-3)
    assert small.node_latency[0] == pytest.approx(t_dram + 5e-6, rel=1e-3)
    big = nvmc.compile(gemv(131072, 131072), "gpu").estimate
    frac = big.info["streamed_weight_fraction"]
    over = 131072**2 + 131072 * 5 - 11811160064                    # weights + x + y beyond 11 GiB
    assert frac == pytest.approx(over / 131072**2)
    assert big.latency["host_link"][0] == pytest.approx(131072**2 * frac / 15.75e9)
    assert any("oversubscribed" in n for n in big.notes)


def test_cpu_roofline_does_not_fit_beyond_memory():
    est = nvmc.compile(gemv(262144, 262144), "cpu").estimate
    assert not est.ok and "memory" in est.reason


# ------------------------------------------------------------------ mensa
def lstm_fc_dw_model():
    """An LSTM (batch 1, 16 steps, 5 M weights), a batch-1 fully-connected layer, a depthwise and a
    standard conv."""
    w_fill, w_shape = EX.fill("W", [1, 4096, 256], 0.01)      # 4 M + 1 M weights: beyond the Edge TPU's buffer
    r_fill, r_shape = EX.fill("R", [1, 4096, 1024], 0.01)
    fc = numpy_helper.from_array(np.full((256, 256), 0.01, np.float32), "fc")
    dw = numpy_helper.from_array(np.full((32, 1, 3, 3), 0.1, np.float32), "dw")
    cv = numpy_helper.from_array(np.full((32, 32, 3, 3), 0.1, np.float32), "cv")
    nodes = [w_fill, r_fill, helper.make_node("LSTM", ["x", "W", "R"], ["y"], "lstm", hidden_size=1024),
             helper.make_node("Squeeze", ["y"], ["yh"], "squeeze"),
             helper.make_node("Gemm", ["v", "fc"], ["z"], "fc"),
             helper.make_node("Conv", ["img", "dw"], ["d"], "dw", group=32, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["d", "cv"], ["e"], "conv", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 1, 256]),
                                           helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 256]),
                                           helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 32, 56, 56])],
                          [helper.make_tensor_value_info("yh", TensorProto.FLOAT, [16, 1024]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 256]),
                           helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 32, 56, 56])],
                          [w_shape, r_shape, fc, dw, cv])
    return helper.make_model(g, opset_imports=OPSET)


@pytest.fixture(scope="module")
def mixed():
    return {e.target: e for e in nvmc.compile(lstm_fc_dw_model(), ["mensa", "edge-tpu"]).estimates}


def test_mensa_partition_rule_and_reasons(mixed):
    placed = {p["node"]: p for p in mixed["mensa"].info["partition"]}
    assert placed["lstm"]["accelerator"] == "lstm_centric" and "recurrent" in placed["lstm"]["reason"]
    assert placed["fc"]["accelerator"] == "data_centric" and "memory-bound" in placed["fc"]["reason"]
    assert placed["dw"]["accelerator"] == "data_centric" and "cannot fill" in placed["dw"]["reason"]
    assert placed["conv"]["accelerator"] == "compute_centric" and "compute-bound" in placed["conv"]["reason"]
    base = mixed["edge-tpu"]
    assert {p["accelerator"] for p in base.info["partition"]} == {"compute_centric"}
    accel = dict(zip(mixed["mensa"].names, mixed["mensa"].events["accelerator"]))
    assert accel == {"lstm": 1, "squeeze": -1, "fc": 2, "dw": 2, "conv": 0}


def test_edge_tpu_cycles_are_scalesim_exact(mixed):
    """The standard conv on the 64x64 array: 3136 x 32 x 288 GEMM, SCALE-Sim os cycles at 500 MHz."""
    base = mixed["edge-tpu"]
    i = base.names.index("conv")
    assert base.latency["compute"][i] == pytest.approx(int(compute_cycles("os", 64, 64, 3136, 32, 288)) / 500e6)


def test_mensa_moves_activations_between_accelerators(mixed):
    m = mixed["mensa"]
    i = m.names.index("conv")                      # after the depthwise layer in memory: back to the SoC
    assert m.events["transfer_bytes"][i] > 0 and m.latency["transfer"][i] > 0


# ------------------------------------------------------------------ every target on the zoo and a transformer
@pytest.mark.parametrize("model", [*ZOO_NAMES, "tiny_transformer", "tiny_cnn"])
def test_all_targets_compile(model, example_models):
    path = example_models / f"{model}.onnx" if model.startswith("tiny") else zoo_path(model)
    components = {"upmem": {"compute", "mram", "transfer"}, "mensa": {"compute", "buffer", "memory", "transfer"},
                  "edge-tpu": {"compute", "buffer", "memory"}, "simdram": {"row_activation", "transfer", "background"},
                  "cpu": {"compute", "dram", "static"}, "gpu": {"compute", "dram", "host_link", "static"}}
    for est in nvmc.compile(path, TARGETS).estimates:
        assert est.ok, (est.target, est.reason)
        totals = est.totals
        assert math.isfinite(totals["latency_s"]) and totals["latency_s"] > 0, est.target
        assert math.isfinite(totals["energy_j"]) and totals["energy_j"] > 0, est.target
        assert components[est.target] <= set(est.energy), est.target
        assert sum(est.energy_by_component().values()) == pytest.approx(totals["energy_j"])
        est.to_json()


def test_unsupported_and_bad_input():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "then", [],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    g = helper.make_graph([helper.make_node("If", ["c"], ["z"], "branch", then_branch=then, else_branch=then)],
                          "m", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    model = helper.make_model(g, opset_imports=OPSET)
    for target in ("upmem", "mensa", "simdram", "gpu"):
        with pytest.raises(UnsupportedOpError, match="'branch' \\(If\\)"):
            nvmc.compile(model, target)
    with pytest.raises(TargetError, match="tasklets"):
        backends.load_target("upmem", ["system.tasklets=0"])
    with pytest.raises(TargetError, match="must be <= 24"):
        backends.load_target("upmem", ["system.tasklets=32"])
    with pytest.raises(TargetError, match="simdram.dram = 'ddr5'"):
        backends.explain("simdram", sets=["simdram.dram=ddr5"])
    with pytest.raises(TargetError, match="unknown device"):
        backends.explain("mensa", sets=["accelerators.device=tpu9"])


# ------------------------------------------------------------------ the paper's qualitative findings
def _latency(model, target, **kw):
    return nvmc.compile(model, target, **kw).estimate.totals["latency_s"]


def test_upmem_ahead_of_gpu_on_large_gemv_behind_on_conv():
    """UPMEM beats the GPU on GEMV once the matrix oversubscribes the GPU's memory, not before;
    the compute-bound conv runs far faster on the GPU."""
    assert _latency(gemv(131072, 131072), "upmem") < _latency(gemv(131072, 131072), "gpu")
    assert _latency(gemv(16384, 16384), "upmem") > _latency(gemv(16384, 16384), "gpu")
    conv = EX.conv_stack()
    assert _latency(conv, "upmem") > 10 * _latency(conv, "gpu")
    # Oversubscribed, the GPU's time is the excess of W crossing the host link, so the speed-up
    # follows the link's bandwidth: half the bandwidth, nearly twice the ratio (the DRAM part of
    # the GPU's time does not scale). The paper's 23x is reached only at an unsourced ~2 GB/s:
    # 'not reproduced' in nvmc validate, which names the setting (issue 25).
    big, upmem = gemv(131072, 131072), _latency(gemv(131072, 131072), "upmem")
    ratios = [_latency(big, "gpu", sets=[f"memory.host_link_bytes_per_s={bw}"]) / upmem for bw in (8e9, 4e9, 2e9)]
    assert all(1.8 < b / a <= 2.0 for a, b in zip(ratios, ratios[1:])), ratios


def test_simdram_strong_only_on_low_bit_and_bitwise_work():
    binary = EX.annotate_binary(nvmc.load(EX.binary_net()))
    full = nvmc.load(EX.binary_net())
    s_bin, s_full = _latency(binary, "simdram"), _latency(full, "simdram")
    assert s_full > 1000 * s_bin                                       # full precision: possible, but slow
    # against the CPU, SIMDRAM gains a hundredfold from binarisation; the CPU barely does
    assert (_latency(full, "cpu") / s_full) * 100 < _latency(binary, "cpu") / s_bin
    assert _latency(binary, "simdram", sets=["simdram.ranks=4", "simdram.channels=4"]) < _latency(binary, "cpu")
    bulk = EX.annotate_bits(nvmc.load(EX.bulk_xor()))
    assert _latency(bulk, "simdram") * 5 < _latency(bulk, "cpu")
    assert _latency(bulk, "simdram", sets=["simdram.ranks=4"]) < _latency(bulk, "gpu")
    notes = " ".join(nvmc.compile(full, "simdram").estimate.notes)
    assert "float MAC layers at 7800 AAPs per MAC step" in notes


def test_mensa_ahead_of_edge_tpu_on_memory_bound_layers(mixed):
    m, b = mixed["mensa"], mixed["edge-tpu"]
    for layer in ("lstm", "fc", "dw"):                  # memory-bound or unable to fill the array: faster
        i = m.names.index(layer)
        assert m.node_latency[i] < b.node_latency[i], layer
    for layer in ("lstm", "fc"):                        # weights from the stack, not over LPDDR4: cheaper
        i = m.names.index(layer)
        assert m.node_energy[i] < 0.5 * b.node_energy[i], layer
    i = m.names.index("conv")                        # the same array: the compute-bound conv is not faster
    assert m.latency["compute"][i] == pytest.approx(b.latency["compute"][i])
    lstm = EX.edge_lstm()
    est = {e.target: e for e in nvmc.compile(lstm, ["mensa", "edge-tpu"]).estimates}
    assert est["mensa"].totals["latency_s"] * 1.5 < est["edge-tpu"].totals["latency_s"]
    assert est["mensa"].totals["energy_j"] * 2 < est["edge-tpu"].totals["energy_j"]
