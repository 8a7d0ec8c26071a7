"""Bandwidth-limited (``interface.mode = "user"``) timing of the systolic family against SCALE-Sim.

Provenance of the reference numbers: tests/data/refs/scalesim/scalesim_user_bw_refs.json, 88
SCALE-Sim 3.0.0 (PyPI) runs with ``InterfaceBandwidth: USER`` made by run_user_bw.py (README.md
there, section "USER (bandwidth-limited) mode": configs, versions, the source lines of every
rule). Layers: ResNet-18's stem, a 3x3 and a strided 1x1 conv, two GEMMs; 32x32 and 128x128
arrays, os / ws / is; ifmap = filter = ofmap SRAM of 64 kB at 1, 4 and 16 words/cycle, and of
8192 kB at 4 words/cycle. SCALE-Sim's word is one byte, so kB are kilo-words.

What is compared (nvmc.backends.systolic_bandwidth, fed the layer as SCALE-Sim maps it: no
padding, ``E = ceil((H - F + s) / s)``, window positions off the image are no words):

* compute cycles: equal in every run;
* buffer refills (window slides), read back from SCALE-Sim's DRAM read counts: equal wherever the
  count's stated condition holds (no word twice in the operand's stream, window back in place
  after a wrap), recorded otherwise;
* total (and so stall) cycles: equal where the closed form is exact (nothing misses, the ofmap
  never fills); otherwise within the band argued in test_total_cycles_within_the_recorded_band.

Then the family end to end (a GEMM layer through ``nvmc.compile`` equals the closed form and
SCALE-Sim's DRAM reads), CALC mode stall-free, and monotonicity in the bandwidth.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc import backends
from nvmc.backends import systolic_bandwidth as sbw
from nvmc.backends import systolic_map as smap
from nvmc.backends.errors import TargetError

REPO = Path(__file__).resolve().parents[1]
REFS = REPO / "tests" / "data" / "refs" / "scalesim"
MODELS = REPO / "examples" / "models"
RECORDS = json.loads((REFS / "scalesim_user_bw_refs.json").read_text())["records"]
OK = [r for r in RECORDS if r["status"] == "ok"]
RNG = np.random.default_rng(26)


def _ifmap_words(rec) -> int:
    """Valid words of SCALE-Sim's im2col ifmap (operand_matrix.create_ifmap_matrix): a window
    position off the image is -1, not a word. Rows and columns separate: sum over output rows of
    the kernel rows inside the image, times the same for columns, times the channels."""
    if rec["kind"] == "gemm":
        return rec["gemm_M"] * rec["gemm_K"]
    h, w, fh, fw, c, s = (rec[k] for k in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "stride"))
    eh, ew = -(-(h - fh + s) // s), -(-(w - fw + s) // s)
    inside = lambda e, size, f: sum(max(0, min(f, size - o * s)) for o in range(e))   # noqa: E731
    return inside(eh, h, fh) * inside(ew, w, fw) * c


def _dims(rec):
    cfg = rec["cfg"]
    return cfg["df"], cfg["rows"], cfg["cols"], rec["gemm_M"], rec["gemm_N"], rec["gemm_K"]


def _model(rec, bandwidth=None) -> dict:
    """The closed form for one record, as scalars."""
    cfg = rec["cfg"]
    df, R, C, m, n, k = _dims(rec)
    out = sbw.user_cycles(df, R, C, [m], [n], [k], bandwidth=bandwidth or cfg["bw_words_per_cycle"],
                          ifmap_capacity=cfg["ifmap_kb"] * 1024, filter_capacity=cfg["filter_kb"] * 1024,
                          ofmap_capacity=cfg["ofmap_kb"] * 1024, ifmap_words=[_ifmap_words(rec)])
    return {key: float(v[0]) for key, v in out.items()}


def _windows(rec):
    cfg = rec["cfg"]
    return {"ifmap": sbw.windows([_ifmap_words(rec)], [cfg["ifmap_kb"] * 1024], 0.5),
            "filter": sbw.windows([rec["gemm_K"] * rec["gemm_N"]], [cfg["filter_kb"] * 1024], 0.5)}


def _ofmap_fits(rec) -> bool:
    df, R, C, m, n, k = _dims(rec)
    rf, _ = smap.folds(df, R, C, m, n, k)
    return m * n * (1 if df == "os" else int(rf)) <= rec["cfg"]["ofmap_kb"] * 1024


def _nothing_misses(rec) -> bool:
    return all(bool(w.fits[0]) for w in _windows(rec).values()) and _ofmap_fits(rec)


MODEL = {r["run_id"]: _model(r) for r in OK}


def test_the_records_are_the_committed_88():
    assert len(OK) == 88
    assert {r["cfg"]["df"] for r in OK} == {"os", "ws", "is"}
    assert {r["cfg"]["bw_words_per_cycle"] for r in OK} == {1, 4, 16}


def test_compute_cycles_equal_scalesim():
    for r in OK:
        assert MODEL[r["run_id"]]["compute"] == r["compute_cycles"], r["run_id"]


def test_exact_where_nothing_misses_and_the_ofmap_never_fills():
    """Condition: both read operands fit the active half of their buffer (n_sets <= na: no window
    slide ever) and the words written to the ofmap buffer fit it (no drain can make the array
    wait). Then SCALE-Sim never stalls and the closed form is exact: total = compute cycles."""
    exact = [r for r in OK if _nothing_misses(r)]
    assert {r["run_id"] for r in OK if r["memory"] == "sram8192kB_bw4"} <= {r["run_id"] for r in exact}
    for r in exact:
        got = MODEL[r["run_id"]]
        assert (got["total"], got["stall"]) == (r["total_cycles"], r["stall_cycles"]) == (r["compute_cycles"], 0), \
            r["run_id"]
        assert got["ifmap_slides"] == got["filter_slides"] == 0


def _recorded_slides(rec, op):
    """SCALE-Sim's window slides of one read buffer, from its DRAM read count: reads = (n0 + k L)
    BW with n0 = ceil(A / BW) initial request lines and L = ceil(H / BW) per slide."""
    bw = rec["cfg"]["bw_words_per_cycle"]
    w = _windows(rec)[op]
    k = (rec[f"dram_{op}_reads"] / bw - math.ceil(int(w.active[0]) / bw)) / math.ceil(int(w.prefetch[0]) / bw)
    assert k == int(k), (rec["run_id"], op, k)
    return int(k)


def _count_is_exact(rec, op) -> bool:
    """The slide count's exactness condition (systolic_bandwidth docstring): no word twice in the
    operand's prefetch stream (a GEMM, a filter, or a conv whose windows do not overlap) and a
    wrap puts the window back where it was, x = na (with x = n - ceil((n - na) / np) np)."""
    w = _windows(rec)[op]
    n, na, np_ = int(w.n[0]), int(w.na[0]), int(w.np_[0])
    unique = rec["kind"] == "gemm" or op == "filter" or (rec["stride"] >= rec["filt_h"] and
                                                           rec["stride"] >= rec["filt_w"])
    return unique and n - math.ceil((n - na) / np_) * np_ == na


def test_buffer_refills_equal_scalesim_dram_reads():
    exact, other = 0, []
    for r in OK:
        for op in ("ifmap", "filter"):
            got = int(MODEL[r["run_id"]][f"{op}_slides"])
            w, bw = _windows(r)[op], r["cfg"]["bw_words_per_cycle"]
            if bool(w.fits[0]):   # the operand fits: only the first fill is read
                assert got == 0
                assert r[f"dram_{op}_reads"] <= math.ceil(int(w.active[0]) / bw) * bw, r["run_id"]
                continue
            want = _recorded_slides(r, op)
            if _count_is_exact(r, op):
                assert got == want, (r["run_id"], op, got, want)
                exact += 1
            else:
                other.append((abs(got - want) / want, r["run_id"], op, got, want))
    # the rest are conv ifmaps whose windows overlap (im2col duplicates: SCALE-Sim finds a copy of
    # a word elsewhere in the stream) with x < na; recorded, not asserted equal
    worst = max(other)
    print(f"\nrefills: {exact} operand runs with the exact count, all equal; {len(other)} others, "
          f"{sum(e == 0 for e, *_ in other)} equal, largest difference {worst[0]:.0%} ({worst[1]} {worst[2]}: "
          f"{worst[3]} vs SCALE-Sim's {worst[4]})")
    assert exact > 2 * len(other)
    assert all(_count_is_exact(r, op) for r in OK if r["kind"] == "gemm" for op in ("ifmap", "filter")
               if not bool(_windows(r)[op].fits[0]))
    assert {rid.split("__")[0] for _, rid, *_ in other} <= {"resnet18_Conv1", "resnet18_Conv4_1b"}


def test_total_cycles_within_the_recorded_band():
    """Outside the exact class the total is an estimate. Its error has two sources, both in the
    model's structure, not in fitted constants:

    1. the combination max(t_c, read bounds, drain bound): SCALE-Sim's misses cost 2 x their wait
       (the doubled stall), so a run with 1-3 slides pays 0-2 refill periods P more or less than
       the paired 2 ceil(k/2) P, depending on where in the layer the misses fall (at most one P
       per operand, a few % of a read-bound total); and read stalls and ofmap drains that bind in
       different phases add, while max() keeps the larger: at most the smaller bound, which is
       large only when both are of similar size (gemm M256 N128 K256 32x32 is at 1 and 4 words/
       cycle: reads 131k and drains 199k cycles);
    2. the slide count where its exactness condition fails (conv ifmaps with overlapping windows);
       it matters only where that operand's refills bind.

    Recorded over the 64 runs outside the exact class: max 12.8 % (gemm M256 N128 K256 32x32 is,
    1 word/cycle: reads and drains both bind), mean 1.5 %, 44 within 1 %; 15 % / 2 % are those
    numbers plus a margin, tight enough to fail on a changed rule (the pure-stream slide count
    without wraps, for one, is off by up to 96 %)."""
    errors = sorted((abs(MODEL[r["run_id"]]["total"] - r["total_cycles"]) / r["total_cycles"], r["run_id"])
                    for r in OK if not _nothing_misses(r))
    values = np.array([e for e, _ in errors])
    print(f"\ntotal cycles outside the exact class ({len(values)} runs): {np.sum(values == 0)} equal, "
          f"{np.sum(values <= 0.01)} within 1 %, {np.sum(values <= 0.05)} within 5 %; "
          f"mean {values.mean():.2%}, max {values.max():.2%} ({errors[-1][1]})")
    assert len(values) == len(OK) - len([r for r in OK if _nothing_misses(r)]) > 60
    assert values.max() <= 0.15
    assert values.mean() <= 0.02
    for r in OK:   # never below the stall-free compute time
        assert MODEL[r["run_id"]]["total"] >= MODEL[r["run_id"]]["compute"]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_halving_the_bandwidth_never_reduces_total_cycles(df):
    m, n, k = (RNG.integers(1, hi, 400) for hi in (6000, 3000, 6000))
    cap = RNG.choice([4096, 65536, 262144, 1 << 20], 400)
    rows, cols = (32, 32) if df != "is" else (16, 64)
    bw = 64.0
    prev = None
    while bw >= 0.25:
        got = sbw.user_cycles(df, rows, cols, m, n, k, bandwidth=bw, ifmap_capacity=cap, filter_capacity=cap // 2,
                              ofmap_capacity=cap)
        assert np.all(got["total"] >= got["compute"])
        if prev is not None:
            assert np.all(got["total"] >= prev), df
        prev, bw = got["total"], bw / 2
    assert np.any(prev > got["compute"])   # the sweep reaches bandwidth-bound layers


# ------------------------------------------------------------------ the family end to end
def _matmul(m, k, n):
    w = numpy_helper.from_array(RNG.standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [w])
    return nvmc.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("run_id", ["gemm_M64_N256_K768__32x32_os__sram64kB_bw4",
                                    "gemm_M64_N256_K768__32x32_ws__sram64kB_bw4"])
def test_a_gemm_layer_end_to_end_equals_the_closed_form_and_scalesim_reads(run_id):
    """The record's GEMM as an fp32 MatMul: 4-byte operands, so SCALE-Sim's 64 k-word SRAMs are
    256 KiB buffers and its 4 words/cycle are 16 one-byte words (bytes) per cycle, as a SCALE-Sim
    config read with 4-byte words maps them (backends/scalesim_config.py). Its array cycles are
    the closed form's, and its DRAM reads are SCALE-Sim's, word for word (first fill + refills of
    both operands): the refetches the stall model counts are the ones the traffic (and the DRAM
    energy) counts."""
    rec = next(r for r in OK if r["run_id"] == run_id)
    df, R, C, m, n, k = _dims(rec)
    sets = [f"array.size={R}x{C}", f"array.dataflow={df}", "interface.mode=user",
            f"interface.bandwidth_words_per_cycle={4 * rec['cfg']['bw_words_per_cycle']}",
            *(f"{b}_buffer.capacity={rec['cfg'][b + '_kb'] * 4}KiB" for b in ("ifmap", "filter", "ofmap"))]
    est = nvmc.compile(_matmul(m, k, n), "systolic-sram-28nm", sets=sets).estimate
    i = int(np.argmax(est.macs))
    ev = {key: float(v[i]) for key, v in est.events.items()}
    assert ev["compute_cycles"] == rec["compute_cycles"]
    assert ev["array_cycles"] == ev["compute_cycles"] + ev["stall_cycles"] == MODEL[run_id]["total"]
    assert ev["ifmap_refills"] == _recorded_slides(rec, "ifmap")
    assert ev["filter_refills"] == _recorded_slides(rec, "filter")
    assert ev["dram_read_bytes"] == 4 * (rec["dram_ifmap_reads"] + rec["dram_filter_reads"])
    assert est.node_latency[i] >= ev["array_cycles"] / est.info["clock_hz"]
    assert est.info["interface"] == "user" and est.info["interface_bytes_per_cycle"] == 16
    assert any("USER mode" in note and "16 words (bytes) per cycle" in note for note in est.notes)


def test_calc_mode_is_stall_free_and_user_mode_adds_only_stalls():
    model = nvmc.load(MODELS / "tiny_cnn.onnx")
    calc = nvmc.compile(model, "systolic-sram-28nm").estimate
    assert not np.any(calc.events["stall_cycles"])
    assert np.array_equal(calc.events["array_cycles"], calc.events["compute_cycles"])
    assert "interface" not in calc.info and not any("USER" in note for note in calc.notes)
    user = nvmc.compile(model, "systolic-sram-28nm", sets=["interface.mode=user",
                                                           "interface.bandwidth_words_per_cycle=1"]).estimate
    assert np.array_equal(user.events["compute_cycles"], calc.events["compute_cycles"])
    assert np.all(user.events["stall_cycles"] >= 0) and user.events["stall_cycles"].sum() > 0
    assert np.array_equal(user.events["array_cycles"], user.events["compute_cycles"] + user.events["stall_cycles"])
    assert user.node_latency.sum() > calc.node_latency.sum()


def test_halving_the_bandwidth_never_reduces_a_layers_cycles():
    model = nvmc.load(MODELS / "resnet50.onnx")
    workload = nvmc.analyze(model)
    prev = None
    for bw in (64, 32, 16, 8, 4, 2, 1):
        est = backends.estimate(workload, "systolic-sram-28nm",
                                sets=["interface.mode=user", f"interface.bandwidth_words_per_cycle={bw}"])
        cycles = est.events["array_cycles"]
        if prev is not None:
            assert np.all(cycles >= prev), bw
        prev = cycles
    assert prev.sum() > est.events["compute_cycles"].sum()


def test_default_bandwidth_is_the_devices_dram_and_is_explained():
    params = {p.key: p for p in backends.explain("systolic-sram-28nm", sets=["interface.mode=user"])}
    derived = params["interface.bandwidth_words_per_cycle"]
    assert derived.kind == "derived" and "dram.bandwidth_bytes_per_s / array.clock_hz" in derived.note
    assert derived.value == params["dram.bandwidth_bytes_per_s"].value / params["array.clock_hz"].value
    assert params["interface.mode"].value == "user"
    given = {p.key: p for p in backends.explain("systolic-sram-28nm", sets=["interface.mode=user",
                                                                          "interface.bandwidth_words_per_cycle=8"])}
    assert (given["interface.bandwidth_words_per_cycle"].kind, given["interface.bandwidth_words_per_cycle"].value) == \
        ("--set", 8)
    calc = {p.key for p in backends.explain("systolic-sram-28nm")}
    assert "interface.mode" in calc and "interface.bandwidth_words_per_cycle" not in calc


@pytest.mark.parametrize("sets, message", [
    (["interface.mode=usr"], "expected one of 'calc', 'user'"),
    (["interface.bandwidth_words_per_cycle=0"], "must be positive"),
    (["interface.mode=user", "buffers.usable_fraction=1"], "needs a prefetch half"),
])
def test_bad_interface_settings_are_clear_errors(sets, message):
    with pytest.raises(TargetError, match=message):
        backends.explain("systolic-sram-28nm", sets=sets)


def _conv_model(kernel: int, stride: int, size: int = 12, channels: int = 4):
    w = numpy_helper.from_array(RNG.standard_normal((8, channels, kernel, kernel)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[stride, stride], name="conv")
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             [1, channels, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, None, None])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kernel, stride, approximate", [(3, 1, True), (3, 2, True), (2, 2, False), (1, 1, False)])
def test_user_mode_says_where_overlapping_windows_make_refills_approximate(kernel, stride, approximate):
    # systolic_bandwidth.py's stated limit: a pixel that appears in several windows (kernel > stride)
    # is hit elsewhere in SCALE-Sim's stream, which the closed form does not model: the report says so
    est = nvmc.compile(_conv_model(kernel, stride), "systolic-sram-28nm", sets=["interface.mode=user"]).estimate
    said = [note for note in est.notes if "overlapping windows" in note]
    assert bool(said) == approximate
    assert not any("overlapping windows" in note
                   for note in nvmc.compile(_conv_model(kernel, stride), "systolic-sram-28nm").estimate.notes)
