"""Generation costing (nvmc/generation.py, `nvmc compile --generate`): a prefill, then decode steps
with a growing KV cache, on the committed tiny GPT-2 exports (tests/data/gpt2, random weights;
2 layers, 4 heads of 16, fp32, with and without past_key_values).

Each figure is checked against what it is made of: a step is one `nvmc.compile` of the graph at
that step's shapes, the KV cache is the past inputs' size per position, the interpolation
between costed contexts agrees with costing every step."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import nvmc
from nvmc.generation import Decoder, GenerateSpec, contexts, generate
from nvmc.ir.errors import NvmcError

from conftest import REPO, run_nvmc

PAST = REPO / "tests" / "data" / "gpt2" / "tiny_gpt2_past.onnx"
NO_PAST = REPO / "tests" / "data" / "gpt2" / "tiny_gpt2.onnx"
LAYERS, HEADS, HEAD_DIM, FP32 = 2, 4, 16, 4          # GPT2Config of export_gpt2.py


@pytest.fixture(scope="module")
def proto():
    import onnx

    return onnx.load(str(PAST))


def test_decoder_dims_are_read_from_the_graph(proto):
    import onnx

    d = Decoder.of(proto)
    assert (d.seq, d.batch, d.past, d.total) == ("seq", "batch", "past_seq", "total_seq")
    assert len(d.past_inputs) == 2 * LAYERS
    assert d.prefill(128, 1) == {"seq": 128, "past_seq": 0, "total_seq": 128, "batch": 1}
    assert d.step(200, 2) == {"seq": 1, "past_seq": 200, "total_seq": 201, "batch": 2}
    plain = Decoder.of(onnx.load(str(NO_PAST)))
    assert plain.past is None and plain.step(200, 1) == {"seq": 201, "batch": 1}   # re-runs the sequence


def test_a_model_without_a_sequence_input_is_refused():
    with pytest.raises(NvmcError, match=r"token input with a symbolic sequence dim") as info:
        generate(REPO / "examples" / "models" / "tiny_cnn.onnx", "gpu", prompt=4, tokens=4)
    assert info.value.hint


@pytest.mark.parametrize("text,message", [("prompt=16", "needs both"), ("prompt=a,tokens=2", "cannot read"),
                                          ("prompt=0,tokens=2", "at least 1"), ("tokens=2,prompt=3,x=1", "cannot read")])
def test_bad_spec(text, message):
    with pytest.raises(NvmcError, match=message):
        GenerateSpec.parse(text)


def test_contexts_cover_the_decode_range():
    assert contexts(GenerateSpec(128, 1)) == []                             # the prefill makes the one token
    assert contexts(GenerateSpec(128, 5)) == [128, 129, 130, 131]           # few: every step
    many = contexts(GenerateSpec(128, 4096, samples=9))
    assert many[0] == 128 and many[-1] == 128 + 4096 - 2 and len(many) == 9


def test_prefill_and_steps_are_compiles_at_those_shapes(proto):
    g = generate(proto, ["gpu", "systolic-sram-28nm"], prompt=32, tokens=4)
    for i, target in enumerate(["gpu", "systolic-sram-28nm"]):
        r = g.results[i]
        pre = nvmc.compile(proto, target, dims={"batch": 1, "seq": 32, "past_seq": 0, "total_seq": 32}).estimate
        assert r.ttft_s == pytest.approx(pre.totals["latency_s"]) and r.per_token_energy_j[0] == pytest.approx(
            pre.totals["energy_j"])
        for k, c in enumerate((32, 33, 34)):                # tokens 2..4 read 32..34 cached tokens
            step = nvmc.compile(proto, target, dims={"batch": 1, "seq": 1, "past_seq": c, "total_seq": c + 1}).estimate
            assert r.per_token_latency_s[k + 1] == pytest.approx(step.totals["latency_s"])
        s = r.summary()
        assert s["tokens_per_s"] == pytest.approx(4 / r.per_token_latency_s.sum())
        assert s["j_per_token"] == pytest.approx(r.per_token_energy_j.sum() / 4)


def test_kv_cache_bytes_are_the_past_inputs_per_position(proto):
    g = generate(proto, "gpu", prompt=100, tokens=28)
    per_token = 2 * LAYERS * HEADS * HEAD_DIM * FP32                      # keys and values of every layer
    assert g.kv_bytes_per_token == per_token
    assert g.kv_bytes_total == per_token * (100 + 28 - 1)                 # the last token is never cached
    d = g.to_dict()
    assert d["schema"] == "nvmc.generation/1" and d["kv_cache"]["bytes_total"] == g.kv_bytes_total
    mem = d["targets"][0]["memories"]
    assert mem and all(m["need_bytes"] == g.weight_bytes + g.kv_bytes_total for m in mem)


def test_interpolated_steps_agree_with_costing_every_step(proto):
    # a step's cost is affine in its context on these targets (weights read once, attention and
    # KV reads linear), so linear interpolation between 5 costed contexts may differ from costing
    # all 63 only by the steps where a family's rounding (folds, tiles, waves) changes: < 1 %
    targets = ["gpu", "sot-mram", "systolic-sram-28nm", "upmem"]
    every = generate(proto, targets, prompt=64, tokens=64, samples=63)
    some = generate(proto, targets, prompt=64, tokens=64, samples=5)
    assert len(every.contexts) == 63 and len(some.contexts) == 5
    for a, b in zip(every.results, some.results):
        assert b.total_s == pytest.approx(a.total_s, rel=0.01) and b.total_j == pytest.approx(a.total_j, rel=0.01)


def test_longer_context_costs_more_per_token(proto):
    g = generate(proto, ["cpu", "systolic-sram-28nm", "upmem"], prompt=16, tokens=1024)
    for r in g.results:
        tok = r.per_token_latency_s[1:]
        assert np.all(np.diff(tok) >= -1e-15) and tok[-1] > tok[0], r.target   # attention grows with the cache


def test_without_past_each_step_reruns_the_sequence():
    g = generate(NO_PAST, "gpu", prompt=16, tokens=8)
    assert g.kv_bytes_per_token is None and "re-runs the whole sequence" in " ".join(g.notes())
    step = nvmc.compile(NO_PAST, "gpu", dims={"batch": 1, "seq": 16 + 3 + 1}).estimate   # token 5: 19 read, 1 new
    assert g.results[0].per_token_latency_s[4] == pytest.approx(step.totals["latency_s"])


def test_workload_marks_the_kv_cache_reads(proto):
    g = nvmc.load(proto, dims={"batch": 1, "seq": 1, "past_seq": 255, "total_seq": 256})
    w = nvmc.analyze(g)
    c = w.columns
    attention = [i for i, op in enumerate(w.ops) if op == "MatMul" and c["cache_bytes"][i] > 0]
    assert len(attention) == 2 * LAYERS                                   # QK^T and AV of every layer
    # each reads the whole cache of one layer's keys (or values): 256 positions after the append
    assert all(c["cache_bytes"][i] == 256 * HEADS * HEAD_DIM * FP32 for i in attention)
    assert not any(c["cache_bytes"][i] for i, op in enumerate(w.ops) if op in ("Shape", "Gemm"))
    # quantised, the cache reaches the MatMuls through precision casts, and is read at 8 bits
    nvmc.run_passes(g, "quantize{bits=8,measure=false,samples=1}")
    q = nvmc.analyze(g)
    mm = [i for i, op in enumerate(q.ops) if op == "MatMul" and q.columns["cache_bytes"][i] > 0]
    assert len(mm) == 2 * LAYERS and all(q.columns["cache_bytes"][i] == 256 * HEADS * HEAD_DIM for i in mm)


def test_upmem_keeps_the_kv_cache_resident_or_streams_it(proto):
    dims = {"batch": 1, "seq": 1, "past_seq": 1023, "total_seq": 1024}
    resident, stream = (nvmc.compile(proto, nvmc.backends.load_target("upmem", [f"mapping.kv_cache={m}"]),
                                     dims=dims).estimate for m in ("resident", "stream"))
    w = nvmc.analyze(nvmc.load(proto, dims=dims))
    kv = float(w.columns["cache_bytes"][np.asarray(w.columns["macs"]) > 0].sum())
    # streaming sends each DPU its share of the cache: the host moves exactly the cache more per step
    extra = stream.events["host_bytes"].sum() - resident.events["host_bytes"].sum()
    assert extra == pytest.approx(kv, rel=1e-9)
    assert stream.totals["latency_s"] > resident.totals["latency_s"]
    assert resident.info["kv_cache"] == "resident"


def test_cli_prints_the_generation_and_writes_json(tmp_path):
    out = tmp_path / "gen.json"
    r = run_nvmc("compile", str(PAST), "-t", "gpu", "--compare", "upmem,racetrack-hdc", "--generate",
                "prompt=64,tokens=32", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "TTFT" in r.stdout and "tokens/s" in r.stdout and "KV cache 1 KiB/token" in r.stdout
    assert "not costed on racetrack-hdc" in r.stderr                         # an HDC-only target says why
    data = json.loads(out.read_text())
    assert data["schema"] == "nvmc.generation/1" and [t["target"] for t in data["targets"]] == [
        "gpu", "upmem", "racetrack-hdc"]
    assert data["targets"][2]["ok"] is False and data["targets"][0]["decode"]["steps"] == 31


def test_cli_csv_has_every_token(tmp_path):
    import csv

    out = tmp_path / "t.csv"
    r = run_nvmc("compile", str(PAST), "-t", "gpu", "--compare", "upmem", "--generate", "prompt=16,tokens=40", "-q",
                 "--csv", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * 40 and rows[0]["phase"] == "prefill" and rows[1]["context"] == "16"
    assert rows[39]["context"] == str(16 + 38) and {x["costed"] for x in rows} == {"yes", "interpolated"}
    g = generate(PAST, ["gpu", "upmem"], prompt=16, tokens=40)
    assert [float(x["latency_s"]) for x in rows[:40]] == pytest.approx(list(g.results[0].per_token_latency_s), rel=1e-6)


def test_cli_refuses_what_generation_does_not_combine_with():
    # -o and --budget combine with it: tests/test_generation_budget.py
    r = run_nvmc("compile", str(PAST), "-t", "gpu", "--generate", "prompt=4,tokens=4", "--mode", "train")
    assert r.returncode == 2 and "--mode train does not combine" in r.stderr and "Traceback" not in r.stderr
    assert "a generation is inference" in r.stderr and "hint: leave out --mode train" in r.stderr
    r = run_nvmc("compile", str(PAST), "-t", "gpu", "--generate", "prompt=4,tokens=4", "--dim", "seq=3")
    assert r.returncode == 2 and "--dim" in r.stderr                    # bound per step, not by the user
    assert "binds the decoder's batch, sequence and past-length dims itself" in r.stderr
    assert "hint: leave them out and set the lengths with --generate prompt=P,tokens=T" in r.stderr
    r = run_nvmc("compile", str(PAST), "-t", "gpu", "--generate", "prompt=4")
    assert r.returncode == 2 and "needs both prompt and tokens" in r.stderr


def test_importer_evaluates_constants_directly_as_the_reference_evaluator_does():
    # the importer's shape-arithmetic folding skips onnx's reference evaluator for Constant and
    # Identity (hundreds per GPT-2 export): each result must be the evaluator's, dtype and shape too
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from nvmc.frontend.onnx_import import _evaluate_directly

    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    nodes = [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(x)),
             helper.make_node("Constant", [], ["b"], value_int=7), helper.make_node("Constant", [], ["c"], value_ints=[1, 2]),
             helper.make_node("Constant", [], ["d"], value_float=0.5),
             helper.make_node("Constant", [], ["e"], value_floats=[0.25, 4.0]),
             helper.make_node("Identity", ["x"], ["f"])]
    for node in nodes:
        values = {"x": x}
        sub = helper.make_model(helper.make_graph(
            [node], "c", [], [helper.make_empty_tensor_value_info(o) for o in node.output],
            [numpy_helper.from_array(x, "x")] if node.input else []), opset_imports=[helper.make_opsetid("", 17)])
        (ref,) = ReferenceEvaluator(sub).run(list(node.output), {})
        (got,) = _evaluate_directly(node, values)
        assert got.dtype == np.asarray(ref).dtype and np.array_equal(got, ref), node.op_type
    assert _evaluate_directly(helper.make_node("Add", ["x", "x"], ["y"]), {"x": x}) is None     # the evaluator's
    assert _evaluate_directly(helper.make_node("Constant", [], ["s"], value_string="a"), {}) is None


def test_html_page_draws_the_per_token_curves_from_the_json(tmp_path):
    from nvmc.report.html import render_generation_html

    g = generate(PAST, ["sram", "sot-mram", "racetrack-hdc"], prompt=32, tokens=64, samples=4)
    data = g.to_dict()
    data["model"] = "<b>odd</b> name.onnx"                     # a name is only text
    page = render_generation_html(data, generated="test")
    payload = json.loads(page.split('<script id="nvmc-data" type="application/json">')[1].split("</script>")[0])
    figs = {f["id"]: f for f in payload["figures"]}
    assert set(figs) == {"fig-token-latency", "fig-token-energy"}
    lat = figs["fig-token-latency"]["data"]
    assert [t["name"] for t in lat] == ["sram", "sot-mram"]                # the HDC-only target has no curve
    assert lat[0]["x"] == g.contexts and len(lat[0]["y"]) == len(g.contexts)
    assert "<b>odd</b>" not in page and "&lt;b&gt;odd&lt;/b&gt;" in page
    assert "not costed" in page and "Weights + KV cache" in page


def test_cpu_roofline_calibrated_to_the_measured_machine_against_onnxruntime():
    # benchmarks/data: onnxruntime's recorded latencies of a distilgpt2-size GPT-2 on the machine it
    # measured, and the cpu roofline at that machine's measured peaks (the benchmark regenerates the
    # target from the record and exits 1 when the committed one is stale)
    from nvmc.validate import peers

    bench = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_cpu_vs_ort.py")],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bench.returncode == 0, bench.stderr
    measured = json.loads(peers.ORT_MEASURED.read_text())["onnxruntime"]
    prefill, decode = peers.onnxruntime()
    assert prefill.published == measured["prefill"]["median_ms"] and "fp32_macs_per_cycle_per_core" in prefill.hinges_on
    last = measured["decode"][-1]
    step = nvmc.compile(peers.GPT2_SHAPE, str(peers.CPU_HERE), dims={"batch": 1, "seq": 1, "past_seq": last["past_seq"],
                                                                    "total_seq": last["past_seq"] + 1}).estimate
    assert decode.published == last["median_ms"] and decode.nvmc == pytest.approx(step.totals["latency_s"] * 1e3)
    assert decode.status == "reproduced" and not decode.hinges_on      # within 25 % on measured figures only
    assert f"decode step, context {last['context']}" in bench.stdout


def test_batch_counts_every_sequence(proto):
    one, two = (generate(proto, "sot-mram", prompt=16, tokens=8, batch=b).results[0] for b in (1, 2))
    s1, s2 = one.summary(), two.summary()
    assert s2["tokens_per_s"] == pytest.approx(2 * 8 / two.total_s)          # two sequences' tokens per second
    assert s2["j_per_token"] == pytest.approx(two.total_j / 16)
    assert s1["area_mm2"] == s2["area_mm2"] and s1["area_mm2"] > 0            # the L2 array the family models


def test_fill_weights_count_as_their_materialised_copies():
    # a zoo "light" weight is one value broadcast over its shape: its non-zeros and EIE's CSC entries
    # per PE are read from the value, without walking millions of elements, and equal the copy's
    from nvmc.passes.workload import _nonzeros, _pe_entries_batched

    for value in (0.02, 0.0):
        fill = np.broadcast_to(np.float32(value), (300, 70))
        copy = np.array(fill)
        assert _nonzeros(fill) == np.count_nonzero(copy)
        got = _pe_entries_batched({0: fill}, np.array([4.0]), 64)[0]
        want = _pe_entries_batched({0: copy}, np.array([4.0]), 64)[0]
        assert np.array_equal(got, want)
