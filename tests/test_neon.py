"""The neon pass (issue 9): fitted nets, the nvmc.NeonApprox op, rewrites, numerics, costing."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import special

import nvmc
from nvmc import backends
from nvmc.harness import check_pipeline, compare
from nvmc.passes import PassError, analyze, make_pass, run_pipeline
from nvmc.passes import neon_fit
from nvmc.passes.neon_fit import FUNCTIONS, fit_net

from conftest import REPO, run_nvmc

TRANSFORMER = REPO / "examples" / "models" / "tiny_transformer.onnx"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NVMC_CACHE_DIR", str(tmp_path / "cache"))


def _model(op: str, shape=(2, 64), pre=(), opset: int = 17, **attrs) -> onnx.ModelProto:
    """x -> [pre ops] -> op -> y."""
    nodes, inits, x = [], [], "x"
    for i, (p, const) in enumerate(pre):
        ins = [x]
        if const is not None:
            inits.append(numpy_helper.from_array(np.array(const, np.float32), f"c{i}"))
            ins.append(f"c{i}")
        nodes.append(helper.make_node(p, ins, [f"p{i}"], name=f"pre{i}"))
        x = f"p{i}"
    nodes.append(helper.make_node(op, [x], ["y"], name="target", **attrs))
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape))  # noqa: E731
    return helper.make_model(helper.make_graph(nodes, "g", [vi("x")], [vi("y")], inits),
                             opset_imports=[helper.make_opsetid("", opset)])


# ------------------------------------------------------------------ the fitted nets
@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_each_function_is_bounded_on_its_range(fn):
    net = fit_net(fn, hidden=128, error=1e-3)
    assert net.max_err <= 1e-3 and net.mean_err <= net.max_err / 2
    # independently: random points of the range, the exact function from numpy / scipy
    lo, hi = net.lo, net.hi
    x = np.random.default_rng(1).uniform(lo, hi, 20000)
    exact = {"exp": np.exp, "erf": special.erf, "tanh": np.tanh, "sigmoid": special.expit,
             "reciprocal": lambda v: 1 / v, "rsqrt": lambda v: v ** -0.5, "sqrt": np.sqrt,
             "gelu": lambda v: v * 0.5 * (1 + special.erf(v / np.sqrt(2)))}[fn](x)
    err = np.abs(net(x) - exact)
    err = err / np.abs(exact) if FUNCTIONS[fn].error_kind == "rel" else err / np.abs(exact).max()
    assert err.max() <= 1.2e-3
    # flat beyond the range for functions that saturate, never worse than the edge value
    if fn in ("erf", "tanh", "sigmoid"):
        assert abs(net(np.array([hi + 100.0]))[0] - FUNCTIONS[fn].f(np.array([hi]))[0]) < 2e-3


def test_error_option_picks_the_smallest_net():
    small = fit_net("erf", -3, 3, hidden=64, error=3e-2)
    large = fit_net("erf", -3, 3, hidden=64, error=1e-4)
    assert small.hidden == 8 and large.hidden == 64 and large.max_err < small.max_err


def test_fit_is_deterministic_and_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(neon_fit, "_MEMORY", {})
    a = fit_net("tanh", -3.0, 3.0, hidden=16, error=0.0)
    files = sorted((tmp_path / "cache" / "neon").glob("tanh_*_h16_*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(neon_fit, "_MEMORY", {})
    monkeypatch.setattr(neon_fit, "_fit", lambda *a, **k: pytest.fail("refitted despite the cache"))
    b = fit_net("tanh", -3.0, 3.0, hidden=16, error=0.0)
    for k in ("w1", "b1", "w2", "b2"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.max_err == b.max_err
    assert neon_fit.round_range("exp", -7.0312, 0.0) == (-7.1, 0.0)
    assert neon_fit.round_range("erf", -3.14, 0.0123) == (-3.2, 0.013)


# ------------------------------------------------------------------ the pass
@pytest.mark.parametrize("op,pre,opset", [
    ("Exp", [("Neg", None), ("Abs", None)], 17), ("Erf", [], 17), ("Tanh", [], 17), ("Sigmoid", [], 17),
    ("Reciprocal", [("Abs", None), ("Add", 0.5)], 17), ("Sqrt", [("Abs", None), ("Add", 0.1)], 17),
    ("Gelu", [], 20),
])
def test_elementwise_ops_become_neon_nets(op, pre, opset):
    if op == "Exp":  # exp of -|x|, NEON's softmax use
        pre = [("Abs", None), ("Neg", None)]
    g = nvmc.load(_model(op, pre=pre, opset=opset))
    out, result, report = check_pipeline(g, "neon", rel=5e-3)
    rec = result.records[0].result
    assert [n.qualified_op for n in out.nodes][-1] == "nvmc.NeonApprox"
    assert rec.stats["nodes_rewritten"] == 1 and rec.error["cosine"] > 0.9999
    assert out.nodes[-1].name == "target" and out.nodes[-1].meta["rewritten_by"] == ["neon"]


def test_tiny_transformer_end_to_end():
    g = nvmc.load(TRANSFORMER)
    out, result, report = check_pipeline(g, "neon{ops=all}", rel=5e-3, samples=4)
    rec = result.records[0].result
    ops = [n.qualified_op for n in out.nodes]
    assert not {"Softmax", "Erf", "LayerNormalization"} & set(ops)
    assert ops.count("nvmc.NeonApprox") == 5  # erf, exp + reciprocal (softmax), 2 x rsqrt (layer norms)
    assert report.cosine >= 0.999 and report.max_rel_err <= 5e-3
    assert rec.error["cosine"] >= 0.999
    for fn in ("erf", "exp", "reciprocal", "rsqrt"):
        assert rec.error[f"{fn}.max_err"] <= 1e-3
    assert rec.stats["macs_added"] == sum(2 * n.inputs and 2 * out.consts[n.inputs[1]].shape[1] *
                                          out.values[n.inputs[0]].type.numel()
                                          for n in out.nodes if n.op == "NeonApprox")


def test_default_ranges_and_subset_of_ops():
    g = nvmc.load(TRANSFORMER)
    out = g.copy()
    rec = run_pipeline(out, "neon{ops=softmax+gelu,range=default,check=false}").records[0].result
    ops = [n.qualified_op for n in out.nodes]
    assert "Softmax" not in ops and "Erf" not in ops and ops.count("LayerNormalization") == 2
    assert {w for _, w in rec.why_not} == {"LayerNormalization is not among ops=softmax+gelu"}
    exp = next(n for n in out.nodes if n.op == "NeonApprox" and n.attrs["fn"] == "exp")
    assert (exp.attrs["lo"], exp.attrs["hi"]) == (-16.0, 0.0)
    assert compare(g, out).cosine > 0.999


def test_unsupported_ops_are_left_alone_with_a_reason():
    g = nvmc.load(_model("Log", pre=[("Abs", None), ("Add", 1.0)]))
    rec = run_pipeline(g, "neon").records[0].result
    assert not rec.changed and rec.why_not == [("target", rec.why_not[0][1])]
    assert "Log has no NEON function" in rec.why_not[0][1]
    g = nvmc.load(_model("Softmax", shape=(2, 1), axis=-1))
    assert run_pipeline(g, "neon").records[0].result.why_not == [
        ("target", "axis -1 has one element: the softmax is 1 (canonicalize folds it)")]
    # a layer norm whose mean is read stays
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in (("y", [2, 8]), ("mean", [2, 1]))]
    inits = [numpy_helper.from_array(np.ones(8, np.float32), "s")]
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean"], name="ln", axis=-1)
    g = nvmc.load(helper.make_model(helper.make_graph([node], "g", [x], outs, inits),
                                    opset_imports=[helper.make_opsetid("", 17)]))
    rec = run_pipeline(g, "neon").records[0].result
    assert rec.why_not == [("ln", "its mean / inv-std results are read")]


def test_bad_ops_option_is_refused():
    with pytest.raises(PassError, match="unknown op kind 'sofmax' — did you mean 'softmax'"):
        make_pass("neon", ops="sofmax")


def test_text_form_round_trips(tmp_path):
    g = nvmc.load(TRANSFORMER)
    run_pipeline(g, "neon{check=false}")
    nvmc.save(g, tmp_path / "m.nvir")
    back = nvmc.load(tmp_path / "m.nvir")
    assert "nvmc.NeonApprox" in back.to_text() and back.to_text() == g.to_text()
    assert compare(g, back).max_abs_err == 0.0


# ------------------------------------------------------------------ costing
def test_workload_counts_the_nets_as_gemms():
    g = nvmc.load(TRANSFORMER)
    run_pipeline(g, "neon{check=false}")
    w = analyze(g)
    for i, op in enumerate(w.ops):
        if op != "nvmc.NeonApprox":
            continue
        node = g.node(w.names[i])
        h, e = g.consts[node.inputs[1]].shape[1], g.values[node.inputs[0]].type.numel()
        assert [w[k][i] for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k")] == [2, e, h, 1]
        assert w["macs"][i] == 2 * e * h and w["cmp"][i] == e * h and w["add"][i] == e * (h + 1)
        assert w["params"][i] == 3 * h + 1 and w["erf"][i] == w["exp"][i] == 0
    assert not any("NeonApprox" in n for n in w.notices)


def test_crossbar_costs_nets_on_arrays_and_originals_on_digital_units():
    base = nvmc.load(TRANSFORMER)
    neon = base.copy()
    run_pipeline(neon, "neon{check=false}")
    target = backends.load_target("rram-pim")
    eb = backends.estimate(analyze(base), target)
    en = backends.estimate(analyze(neon), target)
    erf_b = eb.names.index("gelu_erf")
    erf_n = en.names.index("gelu_erf")
    assert eb.events["adc_conversions"][erf_b] == 0 and eb.energy["digital"][erf_b] > 0
    assert en.ops[erf_n] == "nvmc.NeonApprox" and en.events["arrays"][erf_n] > 0
    assert en.events["adc_conversions"][erf_n] > 0
    # the erf left the digital units; the nets' ReLUs and biases run in the arrays' periphery
    assert en.energy["digital"][erf_n] == 0 and en.latency["digital"][erf_n] == 0
    w = analyze(neon)
    periphery = w["cmp"][erf_n] + w["add"][erf_n]
    assert periphery > 0
    cfg = backends.crossbar.resolve(target)
    assert en.energy["shift_add"][erf_n] >= periphery * cfg.sa_energy


def test_reduce_crossbar_turns_row_sums_into_constant_matmuls():
    base = nvmc.load(TRANSFORMER)
    g = base.copy()
    run_pipeline(g, "neon{reduce=crossbar,check=false}")
    sums = [n for n in g.nodes if n.op == "MatMul" and n.name.endswith(("_rowsum", "_rowmean"))]
    assert {n.name.rsplit("_", 1)[1] for n in sums} == {"rowsum", "rowmean"}
    assert not any(n.op in ("ReduceSum", "ReduceMean") for n in g.nodes)
    assert all(n.inputs[1] in g.consts for n in sums)
    report = compare(base, g, samples=2)
    assert report.cosine >= 0.999
    est = backends.estimate(analyze(g), backends.load_target("rram-pim"))
    assert all(est.events["arrays"][est.names.index(n.name)] > 0 for n in sums)


def test_chip_level_digital_block_pays_the_operands_trip():
    """digital.placement=chip: a digital node's operands cross the mesh through the block's link."""
    g = nvmc.load(TRANSFORMER)
    w = analyze(g)
    tile = backends.estimate(w, backends.load_target("rram-pim", sets=["chip.tiles=16"]))
    chip = {bits: backends.estimate(w, backends.load_target(
        "rram-pim", sets=["chip.tiles=16", "digital.placement=chip", f"digital.link_bits={bits}"]))
        for bits in (256, 16)}
    i = tile.names.index("gelu_erf")
    cfg = backends.crossbar.resolve(backends.load_target("rram-pim", sets=["chip.tiles=16", "digital.placement=chip",
                                                                          "digital.link_bits=16"]))
    elems = w["input_bytes"][i] / 4 + w["output_bytes"][i] / 4
    bits = elems * cfg.input_bits
    hops = 0.75 * 4 + 1  # sqrt(16 tiles) = 4: k/4 across + k/2 deep + 1 into the block
    assert tile.energy["interconnect"][i] == 0
    assert chip[16].energy["interconnect"][i] == pytest.approx(bits * hops * cfg.router_bit_energy)
    assert chip[16].latency["interconnect"][i] == pytest.approx(bits / (16 * cfg.clock_hz))
    assert chip[16].totals["latency_s"] > chip[256].totals["latency_s"] > tile.totals["latency_s"]
    assert chip[16].info["digital_link_bits"] == 16 and tile.info["digital_placement"] == "tile"


# ------------------------------------------------------------------ the CLI
def test_cli_compile_exports_a_runnable_model(tmp_path):
    out = tmp_path / "neon.onnx"
    proc = run_nvmc("compile", str(TRANSFORMER), "--target", "rram-pim", "--passes", "neon{ops=softmax+gelu}",
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "nvmc.NeonAp" in proc.stdout
    model = onnx.load(out)
    assert not any(n.domain == "nvmc" for n in model.graph.node)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(TRANSFORMER), providers=["CPUExecutionProvider"])
    a, b = ref.run(None, {"tokens": x})[0], sess.run(None, {"tokens": x})[0]
    assert np.abs(a - b).max() <= 5e-3 * np.abs(a).max()


def test_cli_bad_op_kind(tmp_path):
    proc = run_nvmc("opt", str(TRANSFORMER), "-p", "neon{ops=softmax+gleu}", "-o", str(tmp_path / "o.onnx"))
    assert proc.returncode == 2
    assert "unknown op kind 'gleu'" in proc.stderr and "Traceback" not in proc.stderr


def test_example_prints_nvmc_beside_the_paper():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "examples" / "neon.py")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("paper 2.28x") == 4
    cosines = [float(line.split("cosine ")[1].split(",")[0]) for line in proc.stdout.splitlines() if "end to end" in line]
    assert len(cosines) == 4 and min(cosines) >= 0.999
    assert "busy adc" in proc.stdout and "energy digital" in proc.stdout
    # The sweep's best corner is printed with its cause; whether NEON wins there is not asserted:
    # a swept corner is not a reproduction (nvmc validate --paper 11 judges the shipped setup and
    # names the settings the ratio hinges on; tests/test_validate_compute.py checks it).
    assert "best case of the sweep" in proc.stdout and "busy interconnect" in proc.stdout


def test_an_op_definition_refuses_unknown_count_kinds():
    from nvmc.ir.ops import OpDef

    with pytest.raises(ValueError, match="unknown kinds \\['sin'\\]"):
        OpDef("Nothing", "", (), verify=lambda n, g: None, lower=lambda n, g: None, counts={"sin": 1})
