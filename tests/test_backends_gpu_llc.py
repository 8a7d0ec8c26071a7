"""The gpu-llc cost model: hand-computed small cases, capacity behaviour, the Estimate."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc import backends
from nvmc.backends import Estimate, UnsupportedOpError
from nvmc.backends.gpu_llc import LLC_COMPONENTS
from nvmc.passes.workload import NONMAC_KINDS, Workload

MIB = 2**20
CORES, CLOCK, BW = 3584, 1.582e9, 484e9
EXACT = ["llc.slices=1", "llc.banks_per_slice=1", "gpu.utilization=1.0", "gpu.kernel_overhead_s=0"]
SMS, CORES_PER_SM = 28, 128


def model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def vi(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def const(name, *shape):
    return numpy_helper.from_array(np.full(shape, 0.5, dtype=np.float32), name)


def workload_of(m):
    return nvmc.analyze(nvmc.load(m))


@pytest.fixture(scope="module")
def fc_workload():
    """y[1,512] = x[1,256] @ W^T, W[512,256]: M=1, N=512, K=256, 512 KiB of weights."""
    return workload_of(model([helper.make_node("Gemm", ["x", "w"], ["y"], "fc", transB=1)],
                             [vi("x", 1, 256)], [vi("y", 1, 512)], [const("w", 512, 256)]))


def test_fc_layer_by_hand(fc_workload):
    est = backends.estimate(fc_workload, "sram", sets=EXACT)
    arr = backends.library().array_table("sram").at(2816 * 1024)
    # L2 loads: 4 column blocks (512/128) stream x (1 KiB) + 1 row block streams W (512 KiB)
    loads = 4 * 1024 + 1 * 524288
    # DRAM: W once; x resident (1 KiB, written by its producer); y (2 KiB) stays in the L2
    dram_read, dram_write, stores = 524288, 0, 2048
    reads, writes = (loads + dram_write) / 128, (stores + dram_read) / 128
    assert (reads, writes) == (4128, 4112)
    assert est.events["l2_reads"][0] == reads and est.events["l2_writes"][0] == writes
    assert est.events["dram_read_bytes"][0] == dram_read and est.events["dram_write_bytes"][0] == dram_write
    # 4 blocks of 1 x 128 x 256 MACs in one wave (4 < 28 SMs; K = 256 is too short to split)
    t_compute = 1 * 128 * 256 / (CORES_PER_SM * CLOCK)
    t_l2 = reads * arr.read_latency_s + writes * arr.write_latency_s
    t_dram = dram_read / BW
    assert est.latency["compute"][0] == pytest.approx(t_compute)
    assert est.latency["l2"][0] == pytest.approx(t_l2)
    assert est.latency["dram"][0] == pytest.approx(t_dram)
    latency = max(t_compute, t_l2, t_dram)
    assert est.totals["latency_s"] == pytest.approx(latency)
    mac_j = (3.7e-12 + 0.9e-12) * 0.174
    expected = {"compute": 131072 * mac_j, "l2_read": reads * arr.read_energy_j,
                "l2_write": writes * arr.write_energy_j, "l2_leakage": latency * arr.leakage_w,
                "dram": dram_read * 8 * 20e-12}
    for k, v in expected.items():
        assert est.energy[k][0] == pytest.approx(v), k
    total = sum(expected.values())
    assert est.totals["energy_j"] == pytest.approx(total)
    assert est.totals["edp_js"] == pytest.approx(total * latency)
    assert est.totals["area_mm2"] == pytest.approx(arr.area_mm2)
    assert est.totals["throughput_ips"] == pytest.approx(1 / latency)


def test_banks_divide_l2_time_and_overhead_adds(fc_workload):
    one = backends.estimate(fc_workload, "stt-mram", sets=EXACT)
    many = backends.estimate(fc_workload, "stt-mram", sets=["gpu.utilization=1.0"])
    assert many.latency["l2"][0] == pytest.approx(one.latency["l2"][0] / 88)
    assert many.latency["overhead"][0] == 5e-6
    assert many.node_latency[0] == pytest.approx(max(many.latency[k][0] for k in ("compute", "l2", "dram")) + 5e-6)


def test_split_k_and_waves():
    """y[1,128] = x[1,4096] @ W[4096,128]: one 1 x 128 block; K = 4096 splits 16 ways (<= 28 SMs)."""
    wl = workload_of(model([helper.make_node("MatMul", ["x", "w"], ["y"], "gemv")],
                           [vi("x", 1, 4096)], [vi("y", 1, 128)], [const("w", 4096, 128)]))
    est = backends.estimate(wl, "sram", sets=EXACT)
    split = min(28 // 1, 4096 // 256)
    assert split == 16
    out = 128 * 4
    partials = (split - 1) * out
    assert est.events["l2_reads"][0] * 128 == pytest.approx(4096 * 4 + 4096 * 128 * 4 + partials)
    assert est.events["l2_writes"][0] * 128 == pytest.approx(out + partials + 4096 * 128 * 4)
    assert est.latency["compute"][0] == pytest.approx(1 * 128 * (4096 / split) / (CORES_PER_SM * CLOCK))

    # 64 blocks of 128 x 128 x 64 on 28 SMs: 3 waves, no split (64 > 28)
    wl = workload_of(model([helper.make_node("MatMul", ["x", "w"], ["y"], "mm")],
                           [vi("x", 1024, 64)], [vi("y", 1024, 1024)], [const("w", 64, 1024)]))
    est = backends.estimate(wl, "sram", sets=EXACT)
    assert est.latency["compute"][0] == pytest.approx(3 * 128 * 128 * 64 / (CORES_PER_SM * CLOCK))


@pytest.fixture(scope="module")
def big_gemm():
    """X[1024,2048] @ W[2048,2048]: 8 MiB of activations, 16 MiB of weights, 8 MiB out."""
    return workload_of(model([helper.make_node("MatMul", ["x", "w"], ["y"], "mm")],
                             [vi("x", 1024, 2048)], [vi("y", 1024, 2048)], [const("w", 2048, 2048)]))


def test_working_sets_that_do_not_fit_miss(big_gemm):
    small = backends.estimate(big_gemm, "sram")
    c = 2.75  # MiB
    # 8 row blocks x 16 column blocks. Re-streaming x (15 more passes, 8 MiB, miss 1 - c/8) is cheaper
    # than re-streaming W (7 more passes, 16 MiB, miss 1 - c/16).
    restream = min(15 * 8 * (1 - c / 8), 7 * 16 * (1 - c / 16))
    assert small.events["dram_read_bytes"][0] == pytest.approx((16 + 8 * (1 - c / 8) + restream) * MIB)
    assert small.events["dram_write_bytes"][0] == pytest.approx(8 * (1 - c / 8) * MIB)
    big = backends.estimate(big_gemm, "sram", sets=["llc.capacity=16MiB"])
    assert big.events["dram_read_bytes"][0] == pytest.approx(16 * MIB)    # weights only
    assert big.events["dram_write_bytes"][0] == 0
    # L2 loads do not depend on the capacity; fills and write-backs do
    loads = 16 * 8 * MIB + 8 * 16 * MIB
    assert small.events["l2_reads"][0] * 128 == pytest.approx(loads + small.events["dram_write_bytes"][0])


def test_dram_traffic_falls_with_capacity(big_gemm):
    traffic = [backends.estimate(big_gemm, "sot-mram", sets=[f"llc.capacity={c}MiB"]).events["dram_read_bytes"].sum()
               for c in (1, 2, 4, 8, 16)]
    assert all(a >= b for a, b in zip(traffic, traffic[1:])) and traffic[0] > traffic[-1]


def test_attention_matmul_splits_activation_operands():
    """Q[4,64,32] @ K^T[4,32,64]: both operands are activations (no weights)."""
    wl = workload_of(model([helper.make_node("MatMul", ["q", "k"], ["s"], "qk")],
                           [vi("q", 4, 64, 32), vi("k", 4, 32, 64)], [vi("s", 4, 64, 64)]))
    est = backends.estimate(wl, "sram")
    # A = B = 32 KiB; one block per GEMM: loads = 64 KiB; all resident: no DRAM traffic
    assert est.events["l2_reads"][0] * 128 == 65536
    assert est.events["dram_read_bytes"][0] == 0


def test_elementwise_and_views():
    wl = workload_of(model([helper.make_node("Relu", ["x"], ["r"], "relu"),
                            helper.make_node("Reshape", ["r", "shape"], ["y"], "flat")],
                           [vi("x", 1, 64, 32, 32)], [vi("y", 1, 65536)],
                           [numpy_helper.from_array(np.array([1, 65536], dtype=np.int64), "shape")]))
    est = backends.estimate(wl, "sram")
    assert est.events["l2_reads"][0] * 128 == 262144 and est.events["l2_writes"][0] * 128 == 262144
    assert est.latency["compute"][0] == pytest.approx(65536 / (CORES * CLOCK))
    assert est.latency["overhead"][0] == 5e-6 and est.latency["overhead"][1] == 0
    assert est.node_latency[1] == 0 and est.node_energy[1] == 0       # a view costs nothing


def test_unsupported_op_is_named():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [vi("t", 1, 8)])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", 1, 8)])
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])  # decided at run time (a constant one folds)
    wl = workload_of(model([helper.make_node("If", ["c"], ["y"], "branch", then_branch=then, else_branch=other)],
                           [vi("x", 1, 8), cond], [vi("y", 1, 8)]))
    with pytest.raises(UnsupportedOpError) as info:
        backends.estimate(wl, "sot-mram")
    assert "node 'branch' (If)" in info.value.message and "sot-mram" in info.value.message


def test_not_fitting_is_a_result(fc_workload):
    est = backends.estimate(fc_workload, "stt-mram", sets=["llc.capacity=30MiB", "llc.iso=area"])
    assert not est.ok and "iso-area" in est.reason
    assert np.isnan(est.totals["latency_s"])
    data = json.loads(est.to_json())
    assert data["ok"] is False and data["totals"]["latency_s"] is None

    n = 1
    cols = {k: np.zeros(n, dtype=np.int64) for k in ("macs", "params", "gemm_batch", "gemm_m", "gemm_n", "gemm_k",
                                                     *NONMAC_KINDS)}
    cols.update(weight_bytes=np.array([64e9]), input_bytes=np.zeros(1), output_bytes=np.zeros(1),
                weight_density=np.ones(1))
    huge = backends.estimate(Workload(["w"], ["Add"], cols), "sram")
    assert not huge.ok and "DRAM" in huge.reason


def test_iso_area_grows_mram_capacity():
    gpu_llc = backends.family_module("gpu-llc")
    llc = gpu_llc.llc_array(gpu_llc.SPEC.params(backends.load_target("stt-mram", ["llc.iso=area"])))
    sram_area = backends.library().array_table("sram").at(2816 * 1024).area_mm2
    assert llc.area_mm2 == pytest.approx(sram_area, rel=1e-6)
    assert llc.capacity_bytes > 2 * 2816 * 1024
    same = gpu_llc.llc_array(gpu_llc.SPEC.params(backends.load_target("sram", ["llc.iso=area"])))
    assert same.capacity_bytes == 2816 * 1024


def test_capacity_outside_table_is_a_target_error(fc_workload):
    with pytest.raises(backends.TargetError, match="no SRAM array data"):
        backends.estimate(fc_workload, "sram", sets=["llc.capacity=256KiB"])


def test_report_schema(fc_workload):
    est = backends.estimate(fc_workload, "sot-mram")
    assert isinstance(est, Estimate)
    data = json.loads(est.to_json())
    assert data["schema"] == "nvmc.report/1"
    assert data["target"]["name"] == "sot-mram" and len(data["target"]["hash"]) == 64
    assert set(data["totals"]) >= {"latency_s", "energy_j", "edp_js", "area_mm2", "macs", "throughput_ips",
                                   "energy_per_inference_j"}
    assert set(data["breakdown"]) >= {"energy_j", "latency_s", "area_mm2"}
    assert set(data["breakdown"]["energy_j"]) == {"compute", *LLC_COMPONENTS, "dram"}
    layer = data["layers"][0]
    assert {"name", "op", "macs", "latency_s", "energy_j"} <= set(layer)
    assert layer["name"] == "fc" and layer["macs"] == 131072
    assert any(a.startswith("gpu.utilization = 0.75") for a in data["assumptions"])


def test_resnet50_is_fast_and_sane(zoo_resnet50):
    import time

    wl = nvmc.analyze(nvmc.load(zoo_resnet50))
    start = time.perf_counter()
    est = backends.estimate(wl, "sot-mram")
    assert time.perf_counter() - start < 0.5
    t = est.totals
    assert t["macs"] == pytest.approx(4.09e9, rel=0.01)
    # ~4.1 GMAC at 5.67 TMAC/s x 0.75 is >= 1 ms of compute (more: batch-1 layers fill few SMs), plus
    # 175 kernels x 5 us; DRAM moves at least the 98 MiB of weights
    assert 1.5e-3 < t["latency_s"] < 4e-3
    assert est.latency["compute"].sum() > 4.09e9 / (CORES * CLOCK * 0.75)
    assert est.events["dram_read_bytes"].sum() >= 97.7 * MIB
    assert 5e-3 < t["energy_j"] < 0.1


@pytest.fixture(scope="module")
def zoo_resnet50():
    from conftest import zoo_path

    return zoo_path("light_resnet50")
